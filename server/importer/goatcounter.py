"""GoatCounter's CSV export (version 2): one row per pageview, as its "Export" (Settings -> Export, with
"individual pageviews" enabled) writes it; gzip too. GoatCounter's export is raw pageviews, not aggregates,
so it becomes events like the other raw sources.

Header (its first cell carries the format version): `2Path, Title, Event, UserAgent, Browser, System,
Session, Bot, Referrer, Referrer scheme, Screen size, Location, FirstVisit, Date`. Columns are found by
these names; a header of another version is refused (the format changes between versions).
- `Date`: RFC 3339 (`2024-03-05T10:00:00Z`, or with an offset); a day is a UTC day here.
- `Path` is the page (its query after `?`), or the event's name when `Event` is `true` (a custom event).
- `Bot` other than `0`: skipped as a bot (GoatCounter's own verdict; there is no user agent to judge).
- `Referrer` with scheme `h` is a URL (`https://` assumed without one); `c` (a campaign) becomes the page's
  `utm_source` (source and channel follow from it as live); `g` (a generated name such as "Hacker News") and
  `o` (other, without a URL) are stored as the source name itself, channel Referral.
- `Session` is the visitor (keyed with the import's daily salt; never stored as is); `Browser`/`System` are
  "name version" (the name is kept), `Screen size` is `x,y,scale`, `Location` an ISO 3166 code (`US-TX`).
A GoatCounter export is one site: every row belongs to `--site`. A quoted field over several lines is malformed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import quote

from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit, Parser, Source
from pixel.server.importer.lines import WrongKind, check_kind, read_lines
from pixel.server.importer.umami import parse_time

VERSION = "2"
COLUMNS = (
    "path",
    "title",
    "event",
    "useragent",
    "browser",
    "system",
    "session",
    "bot",
    "referrer",
    "referrer scheme",
    "screen size",
    "location",
    "firstvisit",
    "date",
)
BOT = "bot (GoatCounter)"


def _name(version_and_name: str) -> str:
    """`Browser 120` -> `Browser` (GoatCounter writes name and version in one field)."""
    name, _, version = version_and_name.strip().rpartition(" ")
    return name if name and version[:1].isdigit() else version_and_name.strip()


class GoatCounterParser:
    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.at = {name: i for i, name in enumerate(header)}

    def __call__(self, text: str) -> Hit | Malformed | str | None:
        if not text.strip():
            return None
        try:
            row = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration):
            return Malformed("not a CSV line")
        if row and row[0].lstrip("\ufeff").strip().lower() == VERSION + "path":
            return None  # the header
        if len(row) != len(self.header):
            return Malformed(f"{len(row)} fields, the header has {len(self.header)}")

        def get(name: str) -> str:
            return row[self.at[name]].strip()

        try:
            ts = parse_time(get("date"))
        except ValueError:
            return Malformed(f"bad Date {get('date')[:40]!r}")
        if get("bot") not in ("", "0"):
            return BOT
        event = get("event").lower() in ("true", "1", "t")
        path, _, query = get("path").partition("?")
        if not path:
            return Malformed("no Path")
        if not event and path[0] != "/":
            path = "/" + path
        referrer, scheme = get("referrer"), get("referrer scheme").lower()
        columns = {
            "browser": _name(get("browser"))[:64],
            "os": _name(get("system"))[:64],
            "country": get("location")[:2].upper() if get("location")[:2].isalpha() else "",
            "screen": "x".join(get("screen size").split(",")[:2])[:20],
        }
        if referrer and scheme == "c":  # a campaign: as the URL's utm_source, so source and channel follow
            query = (query + "&" if query else "") + "utm_source=" + quote(referrer[:200], safe="")
            referrer = ""
        elif referrer and scheme in ("g", "o") and "://" not in referrer:
            columns["source"], columns["channel"] = referrer[:200], "Referral"
            referrer = ""
        elif referrer and "://" not in referrer:
            referrer = "https://" + referrer
        return Hit(
            ts_ms=ts,
            host="",
            path="" if event else path,
            query=query,
            referrer=referrer,
            event_name=path[:100] if event else "pageview",
            title=get("title"),
            visitor_key=get("session"),
            columns={k: v for k, v in columns.items() if v},
        )


def _header(path: Path) -> list[str]:
    for _number, _offset, _end, text in read_lines(path):
        if text.strip():
            try:
                cells = next(csv.reader([text.lstrip("\ufeff")]))
                return [c.strip().lower().replace("-", "") for c in cells]
            except (csv.Error, StopIteration):
                return []
    return []


def check(path: Path) -> None:
    check_kind(path)
    header = _header(path)
    first = header[0] if header else ""
    if first.endswith("path") and first[:-4].isdigit() and first[:-4] != VERSION:
        raise WrongKind(
            f"{path.name} is a GoatCounter export of version {first[:-4]}; only version 2 is read"
        )
    if [first[len(VERSION) :] if first.startswith(VERSION) else first, *header[1:]] != list(COLUMNS):
        raise WrongKind(f"{path.name} is not a GoatCounter CSV export (version 2 header)")


def parser(path: Path) -> Parser:
    header = _header(path)
    return GoatCounterParser(["path", *header[1:]])


SOURCE = Source("goatcounter", "a GoatCounter CSV export of pageviews (version 2; gzip too)", check, parser)
