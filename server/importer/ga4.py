"""Google Analytics 4's BigQuery export (`events_*` tables) as newline-delimited JSON, one event per line, as
`bq extract --destination_format NEWLINE_DELIMITED_JSON` (or the console's export) writes it; gzip too.

Read per line (the export's schema, https://support.google.com/analytics/answer/7029846):
- `event_timestamp`: microseconds since the epoch in UTC (a string or a number: BigQuery writes INT64 as a
  string in JSON). `event_date` is in the property's time zone and is not used: a day is a UTC day here.
- `event_name`: `page_view` becomes a pageview; GA4's automatic bookkeeping events (`session_start`,
  `first_visit`, `user_engagement`, `scroll`) are skipped with that reason; any other name becomes a custom
  event of that name, its string and number parameters as properties.
- `event_params` (`[{key, value: {string_value|int_value|float_value|double_value}}]`): `page_location` (the
  page URL: its host is the site, so one file may hold several sites), `page_referrer`, `page_title`,
  `ga_session_id` (the visit).
- `user_pseudo_id`: the visitor (keyed with the import's daily salt; never stored as is).
- `device.category` / `operating_system` / `web_info.browser`: device columns (GA4 holds no user agent and no
  IP address: nothing is hashed, no geo lookup). `geo.country` is a country name, not a code: not imported.
GA4 has already left out the traffic it calls bots, so no bot rule applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit, Parser, Source, host_of
from pixel.server.importer.lines import WrongKind, check_kind, read_lines

AUTOMATIC = frozenset(("session_start", "first_visit", "user_engagement", "scroll"))
PAGE_PARAMS = frozenset(
    ("page_location", "page_referrer", "page_title", "ga_session_id", "ga_session_number")
)
DEVICES = {"desktop": "desktop", "mobile": "mobile", "tablet": "tablet", "smart tv": "tv"}
EARLIEST_US = 946_684_800_000_000  # 2000-01-01: GA4 did not exist before; an earlier time is a broken line
LATEST_US = 4_102_444_800_000_000  # 2100-01-01


def _value(value: Any) -> str | None:
    if type(value) is not dict:
        return None
    for key in ("string_value", "int_value", "float_value", "double_value"):
        got = value.get(key)
        if got is not None and type(got) in (str, int, float):
            return str(got)
    return None


def parse(text: str) -> Hit | Malformed | str | None:
    if not text.strip():
        return None
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Malformed("not a JSON object")
    if type(event) is not dict:
        return Malformed("not a JSON object")
    name = event.get("event_name")
    if type(name) is not str or not name:
        return Malformed("no event_name")
    try:
        micros = int(event.get("event_timestamp"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return Malformed("no event_timestamp")
    if not EARLIEST_US <= micros < LATEST_US:
        return Malformed("event_timestamp out of range")
    if name in AUTOMATIC:
        return f"GA4 automatic event ({name})"
    params: dict[str, str] = {}
    raw = event.get("event_params")
    for item in raw if type(raw) is list else ():
        if type(item) is dict and type(item.get("key")) is str:
            got = _value(item.get("value"))
            if got is not None:
                params[item["key"]] = got
    location = params.get("page_location", "")
    got_device = event.get("device")
    device: dict[str, Any] = got_device if type(got_device) is dict else {}
    got_web = device.get("web_info")
    web: dict[str, Any] = got_web if type(got_web) is dict else {}
    try:
        split = urlsplit(location) if location else None
        host = (split.hostname or "") if split else ""
    except ValueError:
        return Malformed("page_location is not a URL")
    if split is not None and (split.scheme.lower() not in ("http", "https") or not host):
        return "page_location not an http(s) URL"
    host = host_of(host or str(web.get("hostname") or ""))
    if not host and not location:
        return "no page_location"
    columns = {
        "browser": str(web.get("browser") or "")[:64],
        "os": str(device.get("operating_system") or "")[:64],
        "device_type": DEVICES.get(str(device.get("category") or "").lower(), ""),
    }
    visitor = event.get("user_pseudo_id")
    session = params.get("ga_session_id", "")
    return Hit(
        ts_ms=micros // 1000,
        host=host,
        path=(split.path if split else "") or "/",
        query=split.query if split else "",
        referrer=params.get("page_referrer", ""),
        event_name="pageview" if name == "page_view" else name,
        title=params.get("page_title", ""),
        visitor_key=str(visitor) if type(visitor) in (str, int) else "",
        session_key=f"{visitor}:{session}" if session and visitor else "",
        params={} if name == "page_view" else {k: v for k, v in params.items() if k not in PAGE_PARAMS},
        columns={k: v for k, v in columns.items() if v},
    )


def check(path: Path) -> None:
    check_kind(path)
    for _number, _offset, _end, text in read_lines(path):
        if not text.strip():
            continue
        try:
            first = orjson.loads(text)
        except orjson.JSONDecodeError:
            first = None
        if type(first) is not dict or "event_timestamp" not in first or "event_name" not in first:
            raise WrongKind(
                f"{path.name} is not a GA4 BigQuery export (newline-delimited JSON with event_timestamp)"
            )
        return
    raise WrongKind(f"{path.name} is empty")


def parser(path: Path) -> Parser:
    return parse


SOURCE = Source("ga4", "a GA4 BigQuery export (newline-delimited JSON, gzip too)", check, parser)
