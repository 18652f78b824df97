"""Plausible's CSV export (the ZIP its "Export data" and Community Edition produce) read into daily aggregates.

The ZIP holds one CSV per table, named `imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` (or without `imported_`),
the two dates the range the file covers; its first line names the columns (ClickHouse `CSVWithNames`), which
are matched by name, so their order does not matter. The tables and columns (Plausible's
`Plausible.Imported.CSVImporter` input structures) and what each becomes here (`aggregates.Aggregate`, one row
per local day, dimension and value; `visit_duration` is the day's summed seconds, as Plausible keeps it):

- visitors (date, visitors, pageviews, bounces, visits, visit_duration): the whole day (dimension '');
- sources (source, referrer, utm_source/medium/campaign/content/term + visitors, visits, visit_duration,
  bounces, pageviews): `source`, `referrer` (its host), the five `utm_*` (a row counts in each of them);
- pages (hostname, page, visits, visitors, pageviews, ...): `page` and `hostname`;
- entry_pages (entry_page, visitors, entrances, visit_duration, bounces, pageviews): `entry_page`, its
  sessions the entrances; exit_pages (exit_page, visitors, visit_duration, exits, bounces, pageviews):
  `exit_page`, its sessions the exits;
- locations (country, region, city, ...): `country`, `region` (the city is a GeoNames id: not kept);
- devices (device): `device` (lower case, as Pixel names device types); browsers (browser, browser_version):
  `browser`, `browser_version`; operating_systems (operating_system, operating_system_version): `os`,
  `os_version`.

`imported_custom_events` and files of other names are listed as skipped. A row that cannot be read (a bad date
or number, a missing field) is counted with its file and line (the first `MALFORMED_SHOWN` kept) and the rest
imported; a row dated outside its file's range is skipped (Plausible's importer keeps the same range). A file
that is not a ZIP, a ZIP with no export table, or a table whose header lacks a column raises `ImportFileError`
naming the file (and the columns). The members are read as streams; the aggregates are held per (day,
dimension, value), which is what the import writes.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pixel.server.importer.lines import ImportFileError, WrongKind

MALFORMED_SHOWN = 20
# The largest figure one row may hold (a day's visitors, pageviews, visits, bounces or seconds): far above any
# real site's day, far below the store's UInt64; a larger one is a malformed row, not an overflow at insert.
MAX_COUNT = 10**12
NUMBERS = ("visitors", "pageviews", "visits", "bounces", "visit_duration")
_NAME = re.compile(r"^(?:imported_)?([a-z_]+?)_(\d{8})_(\d{8})\.csv$")

# table -> (its dimension columns -> the dimension they count in, its number columns -> ours)
TABLES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "visitors": (
        {},
        {"visitors": "visitors", "pageviews": "pageviews", "bounces": "bounces", "visits": "visits",
         "visit_duration": "visit_duration"},
    ),
    "sources": (
        {"source": "source", "referrer": "referrer", "utm_source": "utm_source", "utm_medium": "utm_medium",
         "utm_campaign": "utm_campaign", "utm_content": "utm_content", "utm_term": "utm_term"},
        {"visitors": "visitors", "visits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "pages": ({"page": "page", "hostname": "hostname"}, {"visitors": "visitors", "visits": "visits",
                                                         "pageviews": "pageviews"}),
    "entry_pages": (
        {"entry_page": "entry_page"},
        {"visitors": "visitors", "entrances": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "exit_pages": (
        {"exit_page": "exit_page"},
        {"visitors": "visitors", "exits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "locations": (
        {"country": "country", "region": "region"},
        {"visitors": "visitors", "visits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "devices": (
        {"device": "device"},
        {"visitors": "visitors", "visits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "browsers": (
        {"browser": "browser", "browser_version": "browser_version"},
        {"visitors": "visitors", "visits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
    "operating_systems": (
        {"operating_system": "os", "operating_system_version": "os_version"},
        {"visitors": "visitors", "visits": "visits", "visit_duration": "visit_duration", "bounces": "bounces",
         "pageviews": "pageviews"},
    ),
}  # fmt: skip
NOT_IMPORTED = {"custom_events": "custom events (not imported)"}

Key = tuple[str, str, str]  # (day, dimension, value)


@dataclass
class Aggregates:
    """What a file holds: numbers per (day, dimension, value) (`NUMBERS` in that order), and what was not read."""

    rows: dict[Key, list[int]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)  # the export tables found, in file order
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # ("file:line", reason)
    malformed_count: int = 0

    def add(self, key: Key, numbers: dict[str, int]) -> None:
        found = self.rows.setdefault(key, [0] * len(NUMBERS))
        for i, name in enumerate(NUMBERS):
            found[i] += numbers.get(name, 0)

    def bad(self, where: str, reason: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MALFORMED_SHOWN:
            self.malformed.append((where, reason))

    def days(self) -> Counter[str]:
        """Rows per day (every dimension)."""
        return Counter(day for day, _dim, _value in self.rows)


def _date8(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def table_of(member: str) -> tuple[str, date, date] | None:
    """`imported_pages_20240101_20240131.csv` (in any folder) -> ("pages", first day, last day); None: not one."""
    match = _NAME.match(member.rsplit("/", 1)[-1])
    if match is None:
        return None
    try:
        return match.group(1), _date8(match.group(2)), _date8(match.group(3))
    except ValueError:
        return None


def check(path: Path) -> None:
    """Raises `WrongKind` unless `path` is a ZIP holding at least one Plausible export table."""
    if not zipfile.is_zipfile(path):
        raise WrongKind(f"{path.name} is not a ZIP file (Plausible's CSV export is a ZIP of CSV files)")
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
    if not any((t := table_of(n)) is not None and (t[0] in TABLES or t[0] in NOT_IMPORTED) for n in names):
        raise WrongKind(
            f"{path.name} holds no Plausible export table (files named like imported_visitors_20240101_20241231.csv)"
        )


def _value(dimension: str, text: str) -> str:
    if dimension == "referrer":  # Plausible keeps the referrer without its scheme; Pixel's is its host
        return text.split("://", 1)[-1].split("/", 1)[0].lower()
    if dimension == "device":
        return text.lower()
    return text


def _count(column: str, text: str) -> int:
    try:
        value = int(text.strip() or "0")
    except ValueError:
        raise ValueError(f"{column} is {text[:40]!r}, not a whole number") from None
    if value < 0:
        raise ValueError(f"{column} is negative ({value})")
    if value > MAX_COUNT:
        raise ValueError(f"{column} is {value:,}, more than {MAX_COUNT:,}")
    return value


def read(path: Path) -> Aggregates:
    """Every table of the export at `path` (module docstring). Raises `ImportFileError` for a file that cannot
    be read as one."""
    check(path)
    out = Aggregates()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"{path.name}: cannot read the ZIP ({exc})") from None
    with archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            found = table_of(member)
            name = member.rsplit("/", 1)[-1]
            if found is None or found[0] not in TABLES:
                reason = NOT_IMPORTED.get(found[0], "") if found else ""
                out.skipped[f"{name}: {reason or 'not a Plausible export table'}"] += 1
                continue
            table, first, last = found
            out.tables.append(table)
            try:
                with archive.open(member) as raw:
                    _read_table(
                        io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), name, table, first, last, out
                    )
            except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
                raise ImportFileError(f"{name}: the ZIP member is damaged ({exc})") from None
    return out


def _read_table(
    text: io.TextIOWrapper, name: str, table: str, first: date, last: date, out: Aggregates
) -> None:
    dimensions, numbers = TABLES[table]
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise ImportFileError(f"{name}: empty (the first line should name the columns)")
    header = [h.strip() for h in header]
    missing = [c for c in ("date", *dimensions, *numbers) if c not in header]
    if missing:
        raise ImportFileError(f"{name}: line 1 (the header) lacks the column(s) {', '.join(missing)}")
    at = {c: header.index(c) for c in ("date", *dimensions, *numbers)}
    width = len(header)
    for fields in reader:
        line = reader.line_num
        if not fields or fields == [""]:
            continue
        if len(fields) != width:
            out.bad(f"{name}:{line}", f"{len(fields)} fields, the header has {width}")
            continue
        try:
            day = date.fromisoformat(fields[at["date"]].strip())
        except ValueError:
            out.bad(f"{name}:{line}", f"bad date {fields[at['date']][:40]!r}")
            continue
        if not first <= day <= last:
            out.skipped[f"{name}: dated outside the file's range"] += 1
            continue
        try:
            counts = {ours: _count(theirs, fields[at[theirs]]) for theirs, ours in numbers.items()}
        except ValueError as exc:
            out.bad(f"{name}:{line}", str(exc))
            continue
        iso = day.isoformat()
        if not dimensions:
            out.add((iso, "", ""), counts)
        for column, dimension in dimensions.items():
            out.add((iso, dimension, _value(dimension, fields[at[column]].strip())), counts)
