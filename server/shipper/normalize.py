"""Raw tracker events (the wire format) to typed rows of the events table.

Every value is checked and bounded here; an event that cannot become a row raises `BadEvent` with a
reason, and the shipper sends it to the dead letters instead of dropping it. The shipper first applies the
event format the collector applies (`pixel.server.eventformat.check_event`); this module stays safe on any
input all the same (other callers, older records):

- No NUL character reaches a column: it is removed from every string (event name, ids, URL parts,
  property names and values).
- Only an http(s) URL or a path starting with `/` is stored as the page's URL and path (`eventformat.url_kind`);
  anything else (`javascript:`, `data:`, `vbscript:`, no scheme) leaves url, host, path and query empty. A
  referrer is kept only when it is an http(s) URL or an `android-app://` one (a source); else it is empty.
- A property value that is not a scalar (which the event format refuses) is stored as its JSON when it
  can be serialised and is at most 1,000 characters, else left out: never an error.
- Revenue (any event), web vitals (`web_vitals` events) and errors (`error` events) become typed columns
  and leave `props`; a value that fails its check stays in `props` only (`pixel.server.typedfields`). The
  404 flag (`f` / `not_found` = 1 or true) becomes `not_found` = 1. Columns at their default are left out
  of the row (the store fills them in).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import orjson

from pixel.server.errors import PixelError
from pixel.server.eventformat import MAX_PARAMS, url_kind
from pixel.server.typedfields import typed_columns

MAX_PROPS = MAX_PARAMS


class BadEvent(PixelError, ValueError):
    pass


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        if type(value) in (int, float, bool):
            value = str(value).lower() if type(value) is bool else str(value)
        else:
            return ""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit]


def _uint(value: Any, ceiling: int) -> int:
    if type(value) in (int, float) and value == value:  # not NaN
        return max(0, min(int(value), ceiling))
    return 0


def _prop_value(value: Any) -> str | None:
    t = type(value)
    if t is str:
        return (value.replace("\x00", "") if "\x00" in value else value)[:1000]
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return orjson.dumps(value).decode()
    if value is None:
        return None
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # deeper than orjson's limit, or keys that are not strings
        return None
    return text[:1000] if "\\u0000" not in text else None


@lru_cache(maxsize=65_536)
def split_url(url: str) -> tuple[str, str, str] | None:
    """(host, path, query) of a page URL, None when it is neither an http(s) URL nor a path (`url_kind`: a
    `javascript:` or `data:` URL, another scheme); cached, as a site's pages repeat. Raises BadEvent."""
    if url_kind(url) == "":
        return None
    try:
        parts = urlsplit(url)
        return (parts.hostname or "")[:255], parts.path, parts.query
    except ValueError:
        raise BadEvent("page.url is not a URL") from None


@lru_cache(maxsize=16_384)
def _kept_referrer(referrer: str) -> str:
    """The referrer if it is an http(s) URL or an `android-app://` one (a source), else ''; cached, as a
    site's referrers repeat."""
    if url_kind(referrer) == "absolute":
        return referrer
    return referrer if referrer[:14].lower().startswith("android-app://") else ""


def _referrer(value: Any) -> str:
    referrer = _text(value, 2048)
    return _kept_referrer(referrer) if referrer else ""


# The tracker's compact wire format (bench/README.md, "Wire format"): one-letter keys, aliases of the
# long ones. A long key present wins.
_SHORT_KEYS = {
    "i": "event_id",
    "n": "event_name",
    "t": "ts",
    "h": "site",
    "v": "visitor_id",
    "s": "session_id",
    "u": "user_id",
    "p": "page",
    "d": "device",
    "e": "engaged_ms",
    "c": "scroll_depth",
    "a": "params",
    "f": "not_found",
}
_SHORT_NESTED = {
    "page": {"u": "url", "t": "title", "r": "referrer"},
    "device": {"s": "screen", "v": "viewport", "l": "lang", "z": "tz", "r": "dpr", "w": "webdriver"},
}


def expand_short_keys(event: dict[str, Any]) -> dict[str, Any]:
    """Rename the compact format's short keys to the long ones, in place (enrichment reads the event too)."""
    for short, long in _SHORT_KEYS.items():
        if short in event:
            event.setdefault(long, event.pop(short))
    for key, names in _SHORT_NESTED.items():
        nested = event.get(key)
        if type(nested) is dict:
            for short, long in names.items():
                if short in nested:
                    nested.setdefault(long, nested.pop(short))
    return event


def event_id_for(segment: str, offset: int, index: int) -> str:
    """A server-side event id that is the same every time the same spool record is read again."""
    return hashlib.blake2b(f"{segment}:{offset}:{index}".encode(), digest_size=16).hexdigest()


def normalize(
    event: Any, received_ms: int, *, min_ms: int, segment: str, offset: int, index: int
) -> dict[str, Any]:
    """One wire-format event to a row dict (column name -> value). Raises BadEvent."""
    if type(event) is not dict:
        raise BadEvent("event is not a JSON object")
    if "n" in event:  # the compact format (its event name is required)
        expand_short_keys(event)
    name = event.get("event_name")
    if type(name) is str and "\x00" in name:
        name = name.replace("\x00", "")
    if type(name) is not str or not name.strip():
        raise BadEvent("event_name is missing or not a non-empty string")
    page = event.get("page")
    if page is not None and type(page) is not dict:
        raise BadEvent("page must be an object")
    page = page or {}
    url = _text(page.get("url"), 2048)
    parts = split_url(url) if url else None
    if parts is None:
        url = ""  # none, or javascript:, data:, another scheme: never stored, not even as a path
        parts = ("", "", "")
    host, path, query = parts
    path = path or _text(page.get("path"), 2048)
    if path[:1] != "/":
        path = ""
    site = _text(event.get("site"), 255).strip().lower() or host
    if not site:
        raise BadEvent("no site: neither site nor page.url is given")

    ts = event.get("ts")
    if (type(ts) is int or type(ts) is float) and min_ms <= ts <= received_ms + 60_000:
        timestamp_ms = int(ts)
    else:  # missing, malformed, too old or in the future: the receive time is the best we know
        timestamp_ms = received_ms

    event_id = _text(event.get("event_id"), 64) or event_id_for(segment, offset, index)

    device = event.get("device")
    device = device if type(device) is dict else {}
    params = event.get("params")
    props: dict[str, str] = {}
    if type(params) is dict:
        for key, value in params.items():
            if len(props) >= MAX_PROPS:
                break
            text = _prop_value(value)
            if text is not None:
                props[(key.replace("\x00", "") if "\x00" in key else key)[:64]] = text

    row: dict[str, Any] = {
        "timestamp": timestamp_ms / 1000,
        "received_at": received_ms / 1000,
        "site": site,
        "event_id": event_id,
        "event_name": name.strip()[:100],
        "visitor_id": _text(event.get("visitor_id"), 128),
        "session_id": _text(event.get("session_id"), 128),
        "user_id": _text(event.get("user_id"), 128),
        "url": url,
        "host": host,
        "path": path[:2048],
        "query": query[:2048],
        "title": _text(page.get("title"), 512),
        "referrer": _referrer(page.get("referrer")),
        "screen": _text(device.get("screen"), 20),
        "language": _text(device.get("lang"), 35),
        "timezone": _text(device.get("tz"), 64),
        "engaged_ms": _uint(event.get("engaged_ms"), 2**32 - 1),
        "scroll_depth": _uint(event.get("scroll_depth"), 100),
        "props": props,
    }
    if type(params) is dict and params:
        row.update(typed_columns(row["event_name"], params, props))
    not_found = event.get("not_found")
    if (not_found is True or type(not_found) in (int, float)) and not_found == 1:
        row["not_found"] = 1
    return row
