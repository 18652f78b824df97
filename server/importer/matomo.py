"""Matomo's raw data: its actions joined with their visits, as a CSV (or `mysql -B` tab-separated) file with a
header line; gzip too. Matomo's reports are not read: the raw tables are (issue 20).

The file is the result of this query on Matomo's database (its documented log tables: `log_link_visit_action`
one row per action, `log_visit` one per visit, `log_action` the URLs and titles; prefix `matomo_` as installed):

    SELECT v.idvisit, v.idsite, HEX(v.idvisitor) AS idvisitor, v.visit_first_action_time, a.server_time,
           la.type, la.url_prefix, la.name AS url, lt.name AS page_title,
           v.referer_type, v.referer_url, v.location_country, v.location_browser_lang,
           v.config_browser_name, v.config_device_type, v.config_os, v.config_resolution
    FROM matomo_log_link_visit_action a
    JOIN matomo_log_visit v ON v.idvisit = a.idvisit
    LEFT JOIN matomo_log_action la ON la.idaction = a.idaction_url
    LEFT JOIN matomo_log_action lt ON lt.idaction = a.idaction_name
    ORDER BY a.server_time

Columns are found by the header's names; `server_time` and `url` (or `name`) are required, all others optional:
- `server_time`: the action's time; Matomo stores UTC (`2024-03-05 10:00:00`). A zone (`+01:00`, `Z`) is
  honoured when an export adds one.
- `type` (log_action's): 1 (or absent) is a page URL, a pageview; an outlink (2), a download (3) and every other
  action type are skipped and counted by type. An action without a URL (`NULL`, `\\N` or empty) is skipped.
- `url` (log_action.name) with `url_prefix` (0 `http://`, 1 `http://www.`, 2 `https://`, 3 `https://www.`;
  none: the name holds its own scheme, or none). The URL's host is the site: one file may hold several of
  Matomo's sites (`idsite`), the other hosts are skipped (the preview lists them).
- the visit's referrer (`referer_url`, unless `referer_type` is 1, direct) is the visit's entry's: given to
  the action at `visit_first_action_time` only (without that column, to every action of the visit).
- `idvisitor` is the visitor and `idvisit` the visit (keyed with the import's daily salt, never stored as is);
  `config_browser_name` / `config_os` (Matomo's codes: CH, FF, SF, WIN, MAC, AND, IOS, ...; other codes kept as
  they are), `config_device_type` (0 desktop, 1 and 10 mobile, 2 tablet), `location_country` (ISO code, `xx`
  unknown), `location_browser_lang` (its first language, as `en-US`), `config_resolution`.
Matomo has already left bots out, so no bot rule applies. A quoted field over several lines is malformed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urlsplit

from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit, Parser, Source, host_of
from pixel.server.importer.lines import WrongKind, check_kind, read_lines
from pixel.server.importer.umami import parse_time

REQUIRED = ("server_time", "url")
ALIASES = {"name": "url", "action_url": "url"}
NULLS = frozenset({"", "NULL", "\\N"})
PREFIXES = {"0": "http://", "1": "http://www.", "2": "https://", "3": "https://www."}
ACTION_TYPES = {
    "2": "outlink",
    "3": "download",
    "4": "page title",
    "8": "site search",
    "10": "event category",
}
# Matomo's browser and OS codes (its DeviceDetector's) to the names the live enrichment gives
BROWSERS = {
    "CH": "Chrome",
    "CM": "Chrome",
    "CI": "Chrome",
    "CR": "Chromium",
    "FF": "Firefox",
    "FM": "Firefox",
    "SF": "Safari",
    "MF": "Safari",
    "PS": "Edge",
    "EM": "Edge",
    "IE": "IE",
    "OP": "Opera",
    "OM": "Opera",
    "SB": "Samsung Internet",
    "AN": "Android",
    "UNK": "",
}
SYSTEMS = {
    "WIN": "Windows",
    "MAC": "macOS",
    "LIN": "Linux",
    "UBT": "Ubuntu",
    "AND": "Android",
    "IOS": "iOS",
    "COS": "ChromeOS",
    "UNK": "",
}
DEVICES = {"0": "desktop", "1": "mobile", "10": "mobile", "2": "tablet"}


def _name(column: str) -> str:
    name = column.lstrip("\ufeff").strip().lower()
    return ALIASES.get(name, name)


def _split(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter, strict=True))


class MatomoParser:
    def __init__(self, header: list[str], delimiter: str = ",") -> None:
        self.header = header
        self.delimiter = delimiter
        self.at = {name: i for i, name in enumerate(header)}

    def _get(self, row: list[str], name: str) -> str:
        i = self.at.get(name)
        value = row[i].strip() if i is not None and i < len(row) else ""
        return "" if value in NULLS else value

    def __call__(self, text: str) -> Hit | Malformed | str | None:
        if not text.strip():
            return None
        try:
            row = _split(text, self.delimiter)
        except (csv.Error, StopIteration):
            return Malformed("not a CSV line")
        if [_name(c) for c in row] == self.header:
            return None  # the header
        if len(row) != len(self.header):
            return Malformed(f"{len(row)} fields, the header has {len(self.header)}")
        get = self._get
        kind = get(row, "type") or "1"
        if kind != "1":
            return f"Matomo {ACTION_TYPES.get(kind, 'action type ' + kind[:10])}"
        try:
            ts = parse_time(get(row, "server_time"))
        except ValueError:
            return Malformed(f"bad server_time {get(row, 'server_time')[:40]!r}")
        name = get(row, "url")
        if not name:
            return "Matomo action without a URL"
        prefix = get(row, "url_prefix")
        if prefix in PREFIXES:
            url = PREFIXES[prefix] + name
        elif "://" in name:
            url = name
        else:
            url = "https://" + name
        try:
            parts = urlsplit(url)
            host = host_of(parts.netloc.rpartition("@")[2])
        except ValueError:
            return Malformed(f"bad url {name[:40]!r}")
        if not host:
            return Malformed(f"url without a host {name[:40]!r}")
        path = parts.path or "/"
        referrer = ""
        if get(row, "referer_type") != "1":
            first = get(row, "visit_first_action_time")
            try:
                entry = not first or parse_time(first) == ts
            except ValueError:
                entry = False
            referrer = get(row, "referer_url") if entry else ""
        browser = get(row, "config_browser_name")
        system = get(row, "config_os")
        country = get(row, "location_country").upper()
        language = get(row, "location_browser_lang").split(",")[0].split(";")[0].strip()
        tag, _dash, region = language.partition("-")
        language = f"{tag.lower()}-{region.upper()}" if region else tag.lower()
        columns = {
            "browser": BROWSERS.get(browser.upper(), browser)[:64],
            "os": SYSTEMS.get(system.upper(), system)[:64],
            "device_type": DEVICES.get(get(row, "config_device_type"), ""),
            "country": country if len(country) == 2 and country.isalpha() and country != "XX" else "",
            "language": language[:35],
            "screen": get(row, "config_resolution")[:20],
        }
        return Hit(
            ts_ms=ts,
            host=host,
            path=path,
            query=parts.query,
            referrer=referrer,
            title=get(row, "page_title"),
            visitor_key=get(row, "idvisitor"),
            session_key=get(row, "idvisit"),
            columns={k: v for k, v in columns.items() if v},
        )


def _header(path: Path) -> tuple[list[str], str]:
    """The header's column names (lower case, aliases resolved) and the delimiter (a tab for `mysql -B`)."""
    for _number, _offset, _end, text in read_lines(path):
        if text.strip():
            delimiter = "\t" if "\t" in text else ","
            try:
                return [_name(c) for c in _split(text, delimiter)], delimiter
            except (csv.Error, StopIteration):
                return [], delimiter
    return [], ","


def check(path: Path) -> None:
    check_kind(path)
    names = set(_header(path)[0])
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise WrongKind(
            f"{path.name} is not a Matomo raw data export (its header has no {', '.join(missing)} column)"
        )


def parser(path: Path) -> Parser:
    header, delimiter = _header(path)
    return MatomoParser(header, delimiter)


SOURCE = Source("matomo", "a Matomo raw data export (log tables as CSV or TSV, gzip too)", check, parser)
