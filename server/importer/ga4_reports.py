"""Google Analytics 4 report CSVs (the "Download file -> Download CSV" of a report: Reports snapshot, Pages and
screens, Traffic acquisition, Tech details...) read into daily aggregates, for owners without the BigQuery export.

The file: comment lines starting with `#` (the report's name, account, property, `# Start date: YYYYMMDD`,
`# End date: YYYYMMDD`), then one or more tables, each a header line and rows, ended by a blank line or the next
comment. Only tables with a day can be imported: a `Date` column (YYYYMMDD, as GA4 writes it, or YYYY-MM-DD: add
the "Date" dimension to the report before downloading) or an `Nth day` column (days after the start date, as the
Reports snapshot's charts have it). A table without either is skipped with that reason (totals over the whole
range cannot be put on days). The first other column names the dimension:

- none (only `Date` and metrics): the whole day (dimension ''); `Page path and screen class` / `Page path`:
  `page`; `Session source` / `First user source`: `source`; `Session medium`: `medium`; `Session source / medium`:
  `source` and `medium`; `Session campaign`: `utm_campaign`; `Session primary channel group (Default Channel
  Group)` / `Session default channel group`: `channel`; `Device category`: `device` (lower case); `Browser`:
  `browser`; `Operating system`: `os`. Others (countries are names in GA4, codes in Pixel; titles; events) are
  skipped, with the header named.
- metrics: visitors <- `Total users` / `Users` / `Active users`; pageviews <- `Views`; visits <- `Sessions`;
  bounces <- `Sessions` - `Engaged sessions` (GA4's bounce: a session not engaged), else `Bounce rate` x
  sessions; visit seconds <- `Average session duration` x sessions, else `Average engagement time per session`
  x sessions (rounded). A table without a visitors column is skipped.

A row that cannot be read is counted with its line (the first `MALFORMED_SHOWN` kept), the rest imported. A
file that does not begin with GA4's comment lines raises `WrongKind`; a file with no importable table
`ImportFileError` saying why. Numbers may carry thousands separators (`1,234` in quotes) or a `%`.
"""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from pathlib import Path

from pixel.server.importer.lines import ImportFileError, WrongKind
from pixel.server.importer.plausible_csv import MAX_COUNT, Aggregates

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "page path and screen class": ("page",),
    "page path": ("page",),
    "session source": ("source",),
    "first user source": ("source",),
    "session medium": ("medium",),
    "session source / medium": ("source", "medium"),
    "session campaign": ("utm_campaign",),
    "session primary channel group (default channel group)": ("channel",),
    "session default channel group": ("channel",),
    "device category": ("device",),
    "browser": ("browser",),
    "operating system": ("os",),
}
VISITORS = ("total users", "users", "active users")
# GA4's metric columns as its report downloads name them (lower case): a table whose first column past the day
# is one of these has no dimension (the whole day)
METRICS = frozenset(
    (*VISITORS, "new users", "returning users", "sessions", "engaged sessions", "views", "event count",
     "engagement rate", "bounce rate", "average session duration", "average engagement time",
     "average engagement time per session", "views per user", "views per session", "sessions per user",
     "events per session", "key events", "conversions", "total revenue", "user engagement")
)  # fmt: skip
HEAD_BYTES = 4096


def check(path: Path) -> None:
    """Raises `WrongKind` unless `path` begins like a GA4 report download (comment lines, a start date)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES).decode("utf-8-sig", "replace")
    except OSError as exc:
        raise WrongKind(f"{path.name}: cannot be read ({exc})") from None
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#") or "# Start date:" not in head:
        raise WrongKind(
            f"{path.name} is not a GA4 report CSV (it begins with # comment lines and a '# Start date: YYYYMMDD')"
        )


def _number(text: str) -> float:
    """A finite figure of at most `MAX_COUNT`: `inf`, `nan` or `1e400` raise ValueError (a malformed row)."""
    cleaned = text.strip().replace(",", "").rstrip("%")
    value = float(cleaned) if cleaned else 0.0
    if not math.isfinite(value) or abs(value) > MAX_COUNT:
        raise ValueError(f"{text[:40]!r} is not a count of at most {MAX_COUNT:,}")
    return value


def _day(text: str) -> date:
    text = text.strip()
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return date.fromisoformat(text)


def read(path: Path) -> Aggregates:
    """Every table with a day in the report CSV at `path` (module docstring)."""
    check(path)
    out = Aggregates()
    start: date | None = None
    table: list[tuple[int, list[str]]] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for number, fields in enumerate(csv.reader(f), start=1):
            first = fields[0].strip() if fields else ""
            if first.startswith("#"):
                _table(path.name, table, start, out)
                table = []
                if first.startswith("# Start date:"):
                    try:
                        start = _day(first.split(":", 1)[1])
                    except ValueError:
                        out.bad(f"{path.name}:{number}", f"bad start date {first[:60]!r}")
                continue
            if not any(cell.strip() for cell in fields):
                _table(path.name, table, start, out)
                table = []
                continue
            table.append((number, fields))
    _table(path.name, table, start, out)
    if not out.rows and not out.malformed_count:
        reasons = "; ".join(sorted(out.skipped)) or "no table"
        raise ImportFileError(f"{path.name}: nothing to import ({reasons})")
    return out


def _table(name: str, table: list[tuple[int, list[str]]], start: date | None, out: Aggregates) -> None:
    if not table:
        return
    line, header = table[0]
    columns = [h.strip().lower() for h in header]
    where = f"{name}:{line}"
    if "date" in columns:
        day_at, nth = columns.index("date"), False
    elif "nth day" in columns:
        day_at, nth = columns.index("nth day"), True
        if start is None:
            out.skipped[f"table at line {line}: 'Nth day' without a '# Start date'"] += 1
            return
    else:
        out.skipped[
            f"table at line {line} ({header[0].strip()}): no Date column (add the Date dimension)"
        ] += 1
        return
    visitors_at = next((columns.index(c) for c in VISITORS if c in columns), None)
    if visitors_at is None:
        out.skipped[f"table at line {line}: no users column"] += 1
        return
    # GA4 puts the dimensions first: the first column that is not the day is the dimension, unless a metric
    first_other = 1 if day_at == 0 else 0
    dimension_at: int | None = first_other
    dimensions: tuple[str, ...] = ("",)
    if first_other >= len(columns) or columns[first_other] in METRICS:
        dimension_at = None
    elif columns[first_other] in DIMENSIONS:
        dimensions = DIMENSIONS[columns[first_other]]
    else:
        out.skipped[f"table at line {line} ({header[first_other].strip()}): not imported"] += 1
        return

    def at(*names: str) -> int | None:
        return next((columns.index(n) for n in names if n in columns), None)

    views, sessions, engaged = at("views"), at("sessions"), at("engaged sessions")
    bounce_rate, duration = at("bounce rate"), at("average session duration")
    engagement = at("average engagement time per session")
    found = Aggregates()
    for number, fields in table[1:]:
        if len(fields) != len(columns):
            found.bad(f"{name}:{number}", f"{len(fields)} fields, the header has {len(columns)}")
            continue
        if fields[0].strip().lower() in ("grand total", "total"):
            continue
        try:
            raw_day = fields[day_at]
            day = start + timedelta(days=int(raw_day)) if nth and start is not None else _day(raw_day)
        except (ValueError, OverflowError):  # OverflowError: an "Nth day" past the calendar
            found.bad(f"{name}:{number}", f"bad day {fields[day_at][:40]!r}")
            continue
        try:
            visits = _number(fields[sessions]) if sessions is not None else 0.0
            bounces = (
                visits - _number(fields[engaged])
                if engaged is not None
                else visits * _number(fields[bounce_rate]) / (100 if "%" in fields[bounce_rate] else 1)
                if bounce_rate is not None
                else 0.0
            )
            seconds_at = duration if duration is not None else engagement
            counts = {
                "visitors": round(_number(fields[visitors_at])),
                "pageviews": round(_number(fields[views])) if views is not None else 0,
                "visits": round(visits),
                "bounces": max(round(bounces), 0),
                "visit_duration": round(visits * _number(fields[seconds_at]))
                if seconds_at is not None
                else 0,
            }
        except ValueError:
            found.bad(f"{name}:{number}", "a number that cannot be read")
            continue
        if min(counts.values()) < 0:
            found.bad(f"{name}:{number}", "a negative number")
            continue
        value = fields[dimension_at].strip() if dimension_at is not None else ""
        parts = [p.strip() for p in value.split(" / ", 1)] if len(dimensions) == 2 else [value]
        for dimension, part in zip(dimensions, parts, strict=False):
            if dimension == "device":
                part = part.lower()
            if dimension in ("source", "medium") and part in ("(direct)", "(none)"):
                part = ""
            found.add((day.isoformat(), dimension, part), counts)
    for where, reason in found.malformed:
        out.bad(where, reason)
    out.malformed_count += found.malformed_count - len(found.malformed)
    given = {(day, dimension) for day, dimension, _value in out.rows}
    if any((day, dimension) in given for day, dimension, _value in found.rows):
        # the same days and dimension in an earlier table (the snapshot's charts repeat the totals): counted once
        out.skipped[f"table at line {line}: days already given by an earlier table"] += 1
        return
    out.tables.append(header[dimension_at].strip() if dimension_at is not None else "Date")
    for key, numbers in found.rows.items():
        out.rows[key] = numbers
