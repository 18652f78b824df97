"""Umami's events as CSV with a header line: its data export (the `website_event` columns joined with the
session's, as Umami Cloud's export and its ClickHouse `website_event` table hold them) or a plain dump of
Postgres/MySQL `website_event` (`\\copy website_event TO 'f.csv' CSV HEADER`); gzip too.

Columns are found by the header's names; `created_at` and `url_path` are required, all others optional:
- `created_at`: `2024-03-05 10:00:00`, with fractions of a second and/or a zone (`+00`, `+01:00`, `Z`, `T`
  between date and time); without a zone it is UTC (Umami stores UTC).
- `event_type` 1 (or absent) is a pageview, 2 a custom event named by `event_name`; `event_data` is another
  table and is not imported (custom events come without their properties).
- `hostname`: the site (one file may hold several websites: the other hosts are skipped); a row without it
  belongs to `--site`. `website_id`s found are listed in the preview.
- `url_path`, `url_query`, `page_title`; the referrer from `referrer_domain`, `referrer_path`, `referrer_query`
  (`https://` assumed; none when `referrer_domain` is empty).
- `session_id` is the visitor and `visit_id` the visit (keyed with the import's daily salt, never stored as
  is); `browser`, `os`, `device`, `country` (ISO code), `language`, `screen` from the export's session columns.
Umami has already left bots out, so no bot rule applies. A quoted field over several lines is malformed.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit, Parser, Source, host_of
from pixel.server.importer.lines import WrongKind, check_kind, read_lines

REQUIRED = ("created_at", "url_path")
BROWSERS = {
    "chrome": "Chrome",
    "crios": "Chrome Mobile iOS",
    "firefox": "Firefox",
    "fxios": "Firefox iOS",
    "safari": "Safari",
    "ios": "Mobile Safari",
    "ios-webview": "Mobile Safari",
    "edge-chromium": "Edge",
    "edge": "Edge",
    "opera": "Opera",
    "samsung": "Samsung Internet",
    "android": "Android Browser",
}
DEVICES = {"desktop": "desktop", "laptop": "desktop", "mobile": "mobile", "tablet": "tablet"}


def parse_time(text: str) -> int:
    """`2024-03-05 10:00:00[.123456][+00|+01:00|Z]` to UTC epoch ms (no zone: UTC). ValueError if bad."""
    text = text.strip().replace("T", " ")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sign, zone = text[:19], "", ""
    rest = text[19:]
    for i, c in enumerate(rest):
        if c in "+-":
            sign, zone, rest = c, rest[i + 1 :], rest[:i]
            break
    if zone and ":" not in zone:
        zone = zone[:2] + ":" + (zone[2:] or "00")
    when = datetime.fromisoformat(head + rest + (sign + zone if sign else ""))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not 1970 <= when.year <= 2099:
        raise ValueError(text)
    return int(when.timestamp() * 1000)


class UmamiParser:
    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.at = {name.strip().lower(): i for i, name in enumerate(header)}

    def _get(self, row: list[str], name: str) -> str:
        i = self.at.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    def __call__(self, text: str) -> Hit | Malformed | str | None:
        if not text.strip():
            return None
        try:
            row = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration):
            return Malformed("not a CSV line")
        if [c.lstrip("\ufeff").strip().lower() for c in row] == self.header:
            return None  # the header
        if len(row) != len(self.header):
            return Malformed(f"{len(row)} fields, the header has {len(self.header)}")
        get = self._get
        try:
            ts = parse_time(get(row, "created_at"))
        except ValueError:
            return Malformed(f"bad created_at {get(row, 'created_at')[:40]!r}")
        kind = get(row, "event_type") or "1"
        if kind not in ("1", "2"):
            return f"Umami event type {kind[:10]}"
        name = "pageview" if kind == "1" else get(row, "event_name")
        if not name:
            return Malformed("custom event without event_name")
        path = get(row, "url_path") or "/"
        if path[0] != "/":
            return Malformed("url_path does not start with /")
        domain = get(row, "referrer_domain")
        referrer = ""
        if domain:
            query = get(row, "referrer_query")
            referrer = f"https://{domain}{get(row, 'referrer_path') or '/'}" + (f"?{query}" if query else "")
        browser = get(row, "browser").lower()
        columns = {
            "browser": BROWSERS.get(browser, browser.title())[:64],
            "os": get(row, "os")[:64],
            "device_type": DEVICES.get(get(row, "device").lower(), ""),
            "country": get(row, "country").upper() if len(get(row, "country")) == 2 else "",
            "language": get(row, "language")[:35],
            "screen": get(row, "screen")[:20],
        }
        return Hit(
            ts_ms=ts,
            host=host_of(get(row, "hostname")),
            path=path,
            query=get(row, "url_query").lstrip("?"),
            referrer=referrer,
            event_name=name[:100],
            title=get(row, "page_title"),
            visitor_key=get(row, "session_id"),
            session_key=get(row, "visit_id"),
            columns={k: v for k, v in columns.items() if v},
        )


def _header(path: Path) -> list[str]:
    for _number, _offset, _end, text in read_lines(path):
        if text.strip():
            try:
                return next(csv.reader([text.lstrip("\ufeff")]))
            except (csv.Error, StopIteration):
                return []
    return []


def check(path: Path) -> None:
    check_kind(path)
    names = {name.strip().lower() for name in _header(path)}
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise WrongKind(
            f"{path.name} is not an Umami CSV export (its header has no {', '.join(missing)} column)"
        )


def parser(path: Path) -> Parser:
    header = [name.strip().lower() for name in _header(path)]
    return UmamiParser(header)


SOURCE = Source("umami", "an Umami CSV export or website_event dump (gzip too)", check, parser)
