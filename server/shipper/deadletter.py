"""Rows of the `dead_letters` table: what the shipper could not store, with why, and never a raw IP.

A dead letter is built from anything — an unreadable spool line, an event nested hundreds of levels deep, a
row the store refused — so nothing here may fail on its input:

- The payload is the event re-serialised when it can be (`orjson`, whose depth limit a refused event can
  exceed), else the request body as received; the request facts before the body (which hold the client's
  IP) are never part of it.
- IP addresses are replaced by `[ip]` in the payload and the reason: the request's own address in every
  spelling the enrichment's scrub knows and as spooled (`pixel.server.enrich.privacy.scrub_text`, the one stored rows get), then every IPv4 address and every valid IPv6 address (also with `%3A` for `:`, as a
  URL carries it). More is replaced than strictly needed (a version string shaped like an IPv4 address):
  a dead letter is for diagnosis, and a raw IP must never be stored.
- NUL characters become the text `\\u0000`; the payload is cut at `PAYLOAD_MAX` characters and the reason
  at `REASON_MAX` (after the scrub, so a cut never leaves a whole address).
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

import orjson

from pixel.server.enrich.privacy import scrub_text

PAYLOAD_MAX = 16 * 1024
REASON_MAX = 1000

_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:%])(?:[0-9A-Fa-f]{0,4}(?::|%3[Aa])){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![0-9A-Za-z:])"
)


def _v4(match: re.Match[str]) -> str:
    text = match.group(0)
    return "[ip]" if all(int(part) <= 255 for part in text.split(".")) else text


def _v6(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text.replace("%3A", ":").replace("%3a", ":"))
    except ValueError:
        return text
    return "[ip]"


def scrub(text: str, ip: str = "") -> str:
    """`text` without IP addresses (`ip`, the request's own, first) and without raw NUL characters."""
    if ip and len(ip) >= 2 and ip in text:  # the address exactly as spooled, whatever a proxy wrote
        text = text.replace(ip, "[ip]")
    if ip:
        text = scrub_text(text, ip)
    if "." in text:
        text = _IPV4.sub(_v4, text)
    if ":" in text or "%3" in text:
        text = _IPV6.sub(_v6, text)
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def payload_of(value: Any, fallback: bytes = b"") -> bytes:
    """`value` as JSON, or `fallback` (the body as received) when it cannot be serialised (too deep)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: recursion limit, a non-string key, ...
        return fallback


def dead_letter(
    received_ms: float, segment: str, offset: int, reason: str, payload: bytes, ip: str = ""
) -> dict[str, Any]:
    """A row of `dead_letters`. `ip`: the request's client address (scrubbed from payload and reason)."""
    text = payload.decode("utf-8", "replace")
    return {
        "received_at": received_ms / 1000 if 0 <= received_ms < 4_102_444_800_000 else 0.0,
        "failed_at": time.time(),
        "segment": segment[:255],
        "offset": offset,
        "reason": _cut(scrub(reason, ip), REASON_MAX),
        "payload": _cut(scrub(text, ip), PAYLOAD_MAX),
    }
