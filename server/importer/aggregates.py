"""Aggregate sources (CSV reports: Plausible's export, GA4's report downloads) into the store's `imported_aggregates` table: preview,
import, undo.

Contract:
- A row of `imported_aggregates` is one (site, import id, local day, dimension, value) with the day's visitors,
  pageviews, visits, bounces and summed visit seconds (`plausible_csv` says what each table becomes); dimension ''
  is the whole day. `with_live` = 1 marks rows imported with `overlap="include"`.
- Overlap rule: with `overlap="skip"` (the default) the days that held live (non-imported) events of the site
  when the import began are not imported (counted as skipped). The reports add the imported rows of a day only
  when the day has no events at all (live or raw-imported), unless the row is `with_live`
  (`pixel.server.api.query.imported`), so later live data of a day takes its place.
- Visitors cannot be deduplicated across imported days (the export holds daily counts, not visitor ids): a
  range's imported visitors are the sum of its days' (as in Plausible), added to the live range's visitors.
- The import is one insert after its record is saved `running`; a resume (the same file and site while its
  record is still `running`) deletes that import's rows and inserts again, so a crash leaves no duplicates.
  The same file and site already imported is refused (undo it first).
- Both the import and its undo add a marker row to `event_counts` for every hour of each UTC day concerned
  (the report cache's change detector, as `run.undo` does), so cached days are rebuilt with or without them.
- Undo deletes the rows (`DELETE ... WHERE import_id`), then its record.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel.server.importer import ga4_reports, plausible_csv, records
from pixel.server.importer.plausible_csv import NUMBERS, Aggregates
from pixel.server.importer.records import ImportRecord
from pixel.server.importer.run import LIVE, ImportFailed, live_days
from pixel.server.settings import Settings
from pixel.server.store import Store

TABLE = "imported_aggregates"
INSERT_ROWS = 50_000


@dataclass(frozen=True)
class AggregateSource:
    name: str
    what: str
    check: Callable[[Path], None]
    read: Callable[[Path], Aggregates]


PLAUSIBLE = AggregateSource(
    "plausible", "Plausible's CSV export (the ZIP of imported_*.csv)", plausible_csv.check, plausible_csv.read
)
GA4_REPORTS = AggregateSource(
    "ga4-reports", "GA4 report CSV downloads (with a Date column)", ga4_reports.check, ga4_reports.read
)
AGGREGATE_SOURCES: dict[str, AggregateSource] = {s.name: s for s in (PLAUSIBLE, GA4_REPORTS)}


@dataclass
class AggregatePreview:
    rows: int = 0  # rows to import (one per day, dimension and value)
    days: Counter[str] = field(default_factory=Counter)  # day -> rows
    tables: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # ("file:line", reason)
    malformed_count: int = 0
    visitors: int = 0  # the whole-day visitors summed over the days imported
    pageviews: int = 0

    @property
    def first(self) -> str:
        return min(self.days, default="")

    @property
    def last(self) -> str:
        return max(self.days, default="")


def _plan(
    found: Aggregates, skip_days: set[str]
) -> tuple[AggregatePreview, list[tuple[str, str, str, list[int]]]]:
    out = AggregatePreview(tables=found.tables, skipped=Counter(found.skipped), malformed=found.malformed)
    out.malformed_count = found.malformed_count
    kept = []
    for (day, dimension, value), numbers in sorted(found.rows.items()):
        if day in skip_days:
            out.skipped[LIVE] += 1
            continue
        kept.append((day, dimension, value, numbers))
        out.rows += 1
        out.days[day] += 1
        if dimension == "":
            out.visitors += numbers[0]
            out.pageviews += numbers[1]
    return out, kept


def preview(
    store: Store | None, path: Path, site: str, overlap: str = "skip", source: AggregateSource = PLAUSIBLE
) -> AggregatePreview:
    """What an import of `path` would write, without writing anything (no store: no overlap check)."""
    skip = set(live_days(store, _site(site))) if store is not None and overlap == "skip" else set()
    return _plan(source.read(path), skip)[0]


def _site(site: str) -> str:
    return site.strip().lower()


def _existing(settings: Settings, path: Path, site: str, source: AggregateSource) -> ImportRecord | None:
    size, head = records.file_identity(path)
    for record in records.all_records(settings.state_dir):
        if (record.file_head, record.file_size, record.site, record.source) != (
            head,
            size,
            site,
            source.name,
        ):
            continue
        if record.status == "running":
            return record
        raise ImportFailed(
            f"{path.name} was already imported for {site} as {record.id}; "
            f"undo it first (pixel import {source.name} --undo {record.id})"
        )
    return None


def _mark_days(store: Store, site: str, days: list[str]) -> None:
    """A row per hour of each UTC day in `event_counts`: every zone's local day of that date is rebuilt. Under a
    token of its own: the same block again (an undo's after its import's) must not be dropped as a replay."""
    if days:
        store.insert_rows(
            "event_counts",
            [{"site": site, "hour": f"{day} {h:02d}:00:00", "rows": 1} for day in days for h in range(24)],
            token=secrets.token_hex(16),
        )


def import_file(
    settings: Settings,
    store: Store,
    path: Path,
    site: str,
    overlap: str = "skip",
    source: AggregateSource = PLAUSIBLE,
) -> ImportRecord:
    """Import `path` for `site` (or finish the unfinished import of the same file); returns its record, done."""
    if overlap not in ("skip", "include"):
        raise ImportFailed(f"--overlap must be skip or include, not {overlap!r}")
    site = _site(site)
    found = source.read(path)  # a file that cannot be read fails before any record or row is written
    record = _existing(settings, path, site, source)
    if record is None:
        size, head = records.file_identity(path)
        record = ImportRecord(
            id=records.new_id(),
            source=source.name,
            site=site,
            file=str(path.resolve()),
            file_size=size,
            file_head=head,
            overlap=overlap,
            live_days=live_days(store, site) if overlap == "skip" else [],
        )
        records.save(settings.state_dir, record)
    else:  # a resume: what an interrupted insert left goes first
        store.command(f"DELETE FROM {TABLE} WHERE import_id = {{id:String}}", {"id": record.id})
    planned, kept = _plan(found, set(record.live_days))
    with_live = 1 if record.overlap == "include" else 0
    rows: list[dict[str, Any]] = []
    for day, dimension, value, numbers in kept:
        row: dict[str, Any] = {"site": site, "import_id": record.id, "date": day, "dimension": dimension}
        row.update(value=value, with_live=with_live, **dict(zip(NUMBERS, numbers, strict=True)))
        rows.append(row)
        if len(rows) >= INSERT_ROWS:
            store.insert_rows(TABLE, rows)
            rows = []
    if rows:
        store.insert_rows(TABLE, rows)
    _mark_days(store, site, sorted(planned.days))
    record.rows, record.days, record.skipped = planned.rows, dict(planned.days), dict(planned.skipped)
    record.malformed = [list(m) for m in planned.malformed]
    record.malformed_count = planned.malformed_count
    record.status = "done"
    record.finished_at = time.time()
    records.save(settings.state_dir, record)
    return record


def is_aggregate(settings: Settings, import_id: str) -> bool:
    """Whether `import_id` is an aggregate source's import (its record says so)."""
    record = records.load(settings.state_dir, import_id)
    return record is not None and record.source in AGGREGATE_SOURCES


def undo(settings: Settings, store: Store, import_id: str) -> int:
    """Delete every row of aggregate import `import_id` and its record; returns the rows deleted."""
    if not records.valid_id(import_id):
        raise ImportFailed(f"unknown import id {import_id!r}")
    record = records.load(settings.state_dir, import_id)
    params = {"id": import_id}
    found = store.query(
        f"SELECT site, toString(date), count() FROM {TABLE} WHERE import_id = {{id:String}} GROUP BY 1, 2",
        params,
    ).rows
    rows = sum(int(n) for _s, _d, n in found)
    if record is None and rows == 0:
        raise ImportFailed(f"unknown import id {import_id!r} (no record and no rows carry it)")
    if record is not None:
        record.status = "undoing"
        records.save(settings.state_dir, record)
    if rows:
        store.command(f"DELETE FROM {TABLE} WHERE import_id = {{id:String}}", params)
    for site in {s for s, _d, _n in found}:
        _mark_days(store, site, sorted({d for s, d, _n in found if s == site}))
    records.delete(settings.state_dir, import_id)
    return rows
