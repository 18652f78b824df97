"""One spooled request: the body as received plus the server-side facts that are gone later.

    <received_ms> TAB <client_ip> TAB <user_agent> TAB <accept_language> TAB <origin_host> TAB <cdn_country>
    TAB <flags> TAB <body> LF

`flags` holds `d` when the request carried `DNT: 1` and `g` for `Sec-GPC: 1` (sites may honour them), and
`pixel.server.eventformat.CHECKED` when the collector checked every event of the body by the rules of its version.

`cdn_country` is a CDN's geo header (CF-IPCountry and the like), kept only when the operator enabled
CDN geo headers and the request came from a trusted proxy; otherwise empty.

The body is the request's JSON, validated by the collector and kept byte for byte (no decode and
re-encode on the hot path); a raw LF or CR can only be insignificant whitespace in valid JSON, so it
is replaced by a space to keep one record per line. Header values are HTTP header bytes, which can
hold no LF; a TAB in them is replaced by a space.
"""

from __future__ import annotations

from typing import NamedTuple

from pixel.server.errors import PixelError

HEADER = b"#pixel-spool v1\n"


class Record(NamedTuple):
    received_ms: int
    ip: str
    user_agent: str
    accept_language: str
    origin_host: str
    cdn_country: str
    flags: str
    body: bytes


def _clean(value: bytes) -> bytes:
    return value.replace(b"\t", b" ") if b"\t" in value else value


def encode_record(
    received_ms: int,
    ip: bytes,
    ua: bytes,
    lang: bytes,
    origin: bytes,
    country: bytes,
    flags: bytes,
    body: bytes,
) -> bytes:
    if b"\n" in body or b"\r" in body:
        body = body.replace(b"\n", b" ").replace(b"\r", b" ")
    head = b"\t".join((b"%d" % received_ms, ip, ua, lang, origin, country, flags))
    if head.count(b"\t") != 6:  # a TAB inside a header value (rare): one scan decides, then clean each
        head = b"\t".join(
            (
                b"%d" % received_ms,
                _clean(ip),
                _clean(ua),
                _clean(lang),
                _clean(origin),
                _clean(country),
                flags,
            )
        )
    return b"".join((head, b"\t", body, b"\n"))


def body_of(line: bytes) -> bytes:
    """The body part of a (possibly torn) record line, never its request facts; b"" when not found."""
    parts = line.split(b"\t", 7)
    return parts[7] if len(parts) == 8 else b""


class BadRecord(PixelError, ValueError):
    pass


def parse_record(line: bytes) -> Record:
    """Parse one spool line (without its LF). Raises BadRecord on a torn or foreign line."""
    parts = line.split(b"\t", 7)
    if len(parts) != 8:
        raise BadRecord("record has fewer than 8 fields (torn write?)")
    try:
        received_ms = int(parts[0])
    except ValueError:
        raise BadRecord("record does not start with a receive time") from None
    return Record(
        received_ms,
        parts[1].decode("ascii", "replace"),
        parts[2].decode("utf-8", "replace"),
        parts[3].decode("utf-8", "replace"),
        parts[4].decode("utf-8", "replace"),
        parts[5].decode("ascii", "replace"),
        parts[6].decode("ascii", "replace"),
        parts[7],
    )
