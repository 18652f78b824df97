"""What an event may hold: the one validation the collector (before its 204) and the shipper (before it
builds a row) share, so that whatever the collector accepts, the shipper can turn into a row (or a dead
letter, see below) and never gets stuck on.

A request body is a JSON object (one event) or an array of 1..`max_events_per_request` (100) of them.
An event is accepted when all of this holds:

- It is a JSON object of at most `MAX_EVENT_KEYS` (64) keys.
- Every value is a scalar — a string, a number, a boolean or null — except the values of `page` / `p`,
  `device` / `d` and `params` / `a` (custom parameters), which may also be objects. Those objects hold
  scalars only: at most `MAX_NESTED_KEYS` (32) keys for page and device, at most `MAX_PARAMS` (50) keys of at
  most `MAX_PARAM_KEY` (64) characters for params. No array is accepted anywhere inside an event, and
  nothing nests deeper: an event's depth is at most 2 (the event, then its page/device/params object). This
  is what the tracker sends (`tracker/src/track.js`: flat string, finite number and boolean parameters).
- `page` / `p`, when present, is an object or null; its URL (`page.url` / `p.u`), when given and not
  empty, is a string: an absolute `http://` or `https://` URL with a host (any letter case) or a path
  starting with `/`. A `javascript:`, `data:`, `vbscript:`, `file:` or any other scheme is refused: such a
  URL is never stored, not even as a path.

This is what an event may *hold*. What it must *have* is left to the shipper, as before: an event without
an event name (`event_name` / `n`, a non-empty string once NUL characters and white space are removed) or
without a site (`site` / `h`, or a page URL with a host), or whose URL `urllib.parse` cannot split (an
unclosed IPv6 bracket), is accepted by the collector and goes to the dead letters with the reason. So an
accepted event always ends as a row, a dead letter, or a drop the site asked for (DNT, its rules).

Compact keys (`n`, `p`, `u` inside `p`, ...) are aliases only in an event that has `n`, and the long key
wins when both are present, as in `pixel.server.shipper.normalize.expand_short_keys`.

Typed parameters (`pixel.server.typedfields`: `revenue` and `currency` on any event, the web vitals of a
`web_vitals` event, the message, source, line, column and hash of an `error` event) and the 404 flag (`f` /
`not_found`) are held to no more than the above: any scalar is accepted, and the shipper stores a value in
its typed column only when it passes that column's check (an ISO 4217 currency, an amount that fits
Decimal(18, 4), a vital within its range, a line number that fits UInt32, texts cut to their column's length),
else keeps it as an ordinary custom property. So a bad typed value never refuses, and never dead-letters, an
event the collector accepted (tests/enrich/test_typed_fields.py inserts every such row into chDB).

String lengths are not refused beyond the body's limit (64 KiB): the shipper cuts each column to its size
(event name 100 characters, URLs 2,048, parameter values 1,000, ...) and removes NUL characters from every
string it stores. The collector answers 400 with `{"error", "detail"}` naming the first problem found; the
shipper sends an event of an older spool (written before this check, or by an older collector) that fails
it to the dead letters with the same detail as its reason.

The collector marks each spool record it accepted by these rules (`CHECKED`, in the record's flags); the shipper
checks only the events of records without that mark (written by an older collector, or by anything else), so a
request's events are checked once. When these rules become stricter, the mark changes with them: records marked
by the older rules are then checked again.

The check runs on the collector's request path: the value types are tested with C-level set operations over
`map(type, ...)` (no recursion, no copies, no per-value Python loop); only a refused event is walked value by
value, to name its problem.
"""

from __future__ import annotations

from typing import Any

MAX_EVENT_KEYS = 64
MAX_NESTED_KEYS = 32
MAX_PARAMS = 50
MAX_PARAM_KEY = 64

# The keys whose values may be objects (of scalars), and how many keys such an object may have.
_NESTED = {"page": MAX_NESTED_KEYS, "p": MAX_NESTED_KEYS, "device": MAX_NESTED_KEYS, "d": MAX_NESTED_KEYS}
_PARAMS = ("params", "a")
_OBJECT_KEYS = {**_NESTED, **dict.fromkeys(_PARAMS, MAX_PARAMS)}
_NO_HOST = ("", "/", "?", "#", "\\")
_SCALARS = frozenset((str, int, float, bool, type(None)))
_SCALAR_OR_DICT = _SCALARS | {dict}
_DICT = frozenset((dict,))
_SCALAR = "a string, number, boolean or null"

# The spool record flag of a body whose every event passed `check_body` with these rules (see above). Change
# it to another value (never a `d` or `g`, the DNT and GPC flags) whenever an event these rules accept must be
# refused.
CHECKED = "c1"


def _kind(value: Any) -> str:
    t = type(value)
    return "an object" if t is dict else "an array" if t is list else t.__name__


def _key(key: str) -> str:
    """A key as a detail quotes it: bounded, printable."""
    return repr(key[:40])[1:-1]


def _shape_problem(event: dict[str, Any]) -> str:
    """What `check_event`'s fast test refused: the first value of a type or size not allowed."""
    for key, value in event.items():
        t = type(value)
        if t in _SCALARS:
            continue
        if t is not dict:
            return f"{_key(key)} must be {_SCALAR} or an object, not {_kind(value)}"
        if key in _PARAMS:
            if len(value) > MAX_PARAMS:
                return f"{_key(key)} has {len(value)} parameters; the limit is {MAX_PARAMS}"
            for k, v in value.items():
                if type(v) not in _SCALARS:
                    return f"parameter {_key(k)} must be {_SCALAR}, not {_kind(v)}"
                if len(k) > MAX_PARAM_KEY:
                    return f"parameter name {_key(k)}... is longer than {MAX_PARAM_KEY} characters"
            continue
        limit = _NESTED.get(key)
        if limit is None:
            return f"{_key(key)} must be {_SCALAR}, not an object"
        if len(value) > limit:
            return f"{_key(key)} has {len(value)} keys; the limit is {limit}"
        for k, v in value.items():
            if type(v) not in _SCALARS:
                return f"{_key(key)}.{_key(k)} must be {_SCALAR}, not {_kind(v)}"
    return "the event's shape is not allowed"


def check_body(doc: Any, max_events: int) -> tuple[int, tuple[str, str] | None]:
    """(number of events, None) when `doc` (a parsed request body) is acceptable, else (0, (error, detail))."""
    if type(doc) is dict:
        problem = check_event(doc)
        return (1, None) if problem is None else (0, ("invalid event", problem))
    if type(doc) is not list:
        return 0, ("not an event", "the body must be a JSON object or an array of objects")
    n = len(doc)
    if n == 0:
        return 0, ("no events", "the array is empty")
    if n > max_events:
        return 0, ("too many events", f"{n} events in one request; the limit is {max_events}")
    if not _DICT.issuperset(map(type, doc)):
        i = next(i for i, item in enumerate(doc) if type(item) is not dict)
        return 0, ("not an event", f"item {i} of the array is not a JSON object")
    for i, item in enumerate(doc):
        problem = check_event(item)
        if problem is not None:
            return 0, ("invalid event", f"item {i}: {problem}")
    return n, None


def check_event(event: Any) -> str | None:
    """None when `event` may be stored, else what is wrong with it (one sentence, bounded)."""
    if type(event) is not dict:
        return "the event is not a JSON object"
    if len(event) > MAX_EVENT_KEYS:
        return f"the event has {len(event)} keys; the limit is {MAX_EVENT_KEYS}"
    # The types are checked by C-level set operations over map(type, ...); `_shape_problem` walks the event
    # only to name the problem once one is known to exist.
    types = list(map(type, event.values()))
    if not _SCALAR_OR_DICT.issuperset(types):
        return _shape_problem(event)
    objects = types.count(dict)
    if objects:
        for key in event.keys() & _OBJECT_KEYS:
            value = event[key]
            if type(value) is dict:
                objects -= 1
                if len(value) > _OBJECT_KEYS[key] or not _SCALARS.issuperset(map(type, value.values())):
                    return _shape_problem(event)
                if value and key in _PARAMS and max(map(len, value)) > MAX_PARAM_KEY:
                    return _shape_problem(event)
        if objects:
            return _shape_problem(event)  # an object under another key
    if "n" in event:  # the compact format: short keys are aliases, a long key present wins
        page = event["page"] if "page" in event else event.get("p")
        url = (page["url"] if "url" in page else page.get("u")) if type(page) is dict else None
    else:
        page = event.get("page")
        url = page.get("url") if type(page) is dict else None
    if page is not None and type(page) is not dict:
        return "page must be an object"
    if url is not None and type(url) is not str:
        return "page.url must be a string"
    if url:
        if (
            url.startswith(("https://", "http://"))
            and (url[8:9] if url[4] == "s" else url[7:8]) not in _NO_HOST
        ):
            return None  # the common case: an http(s) URL with a host
        if url_kind(url) == "":
            return "page.url must be an http(s) URL or a path starting with /"
    return None


def url_kind(url: str) -> str:
    """'absolute' for an http(s) URL with something after `//`, 'path' for a path ("/..." but not "//host"),
    'scheme-relative' for `//host/...`; '' for anything else (another scheme, no scheme and no leading /).

    Leading white space and control characters are ignored as browsers and `urllib.parse` ignore them.
    """
    if url[:1] <= " ":
        url = url.lstrip("".join(map(chr, range(33))))
    head = url[:8].lower()
    if head.startswith("https://"):
        rest = url[8:]
    elif head.startswith("http://"):
        rest = url[7:]
    elif url[:2] == "//":
        return "scheme-relative" if url[2:3] not in ("", "/", "?", "#") else ""
    elif url[:1] == "/":
        return "path"
    else:
        return ""
    return "absolute" if rest[:1] not in ("", "/", "?", "#", "\\") else ""
