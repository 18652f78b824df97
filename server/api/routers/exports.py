"""Exports of one site, streamed: a report as CSV, the standard dashboard as a ZIP of CSVs, raw events as
Parquet.

Every route takes the reports' query parameters (`period`, `from`/`to`, `filters`, `include_bots`) and the
reports' access rules (404 for a site the caller may not see), and works with API tokens (GET). The answer is
an attachment (`Content-Disposition`) named after the site, the export and the range. Parameters are checked
and the first page of each report is asked before the first byte is sent, so a bad query is a plain 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from pixel.server.api.deps import Runner
from pixel.server.api.query import exports
from pixel.server.api.query import reports as report_queries
from pixel.server.api.query.dashboard import STANDARD_BREAKDOWNS
from pixel.server.api.query.periods import INTERVALS
from pixel.server.api.query.scope import Scope
from pixel.server.api.routers.reports import ScopeDep

router = APIRouter(prefix="/sites/{site_id}/exports", tags=["exports"])

CSV = "text/csv; charset=utf-8"


def _name(s: Scope, what: str, ext: str) -> str:
    first = s.range.start.astimezone(ZoneInfo(s.range.tz)).date().isoformat()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{s.site}-{what}")
    return f"{safe}-{first}-{s.range.period}.{ext}"


def _attachment(body: Iterator[bytes], media: str, filename: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    report_queries.check_metrics(names)
    return names


@router.get("/breakdown/{dimension}.csv")
def breakdown_csv(
    s: ScopeDep,
    dimension: str,
    sort: Annotated[str, Query(max_length=40)] = "visitors",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    event: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """Every row of /reports/breakdown/{dimension} (not only the first page): the dimension's value, then
    its metrics."""
    header, rows = exports.breakdown_rows(s, dimension, sort=sort, order=order, event=event)
    return _attachment(exports.csv_lines(header, rows), CSV, _name(s, dimension, "csv"))


@router.get("/timeseries.csv")
def timeseries_csv(
    s: ScopeDep,
    interval: Annotated[str | None, Query(description="one of " + ", ".join(INTERVALS))] = None,
    metrics: Annotated[str, Query(max_length=200)] = "visitors,pageviews",
) -> StreamingResponse:
    header, rows = exports.timeseries_rows(s, interval or s.range.default_interval(), _metrics(metrics))
    return _attachment(exports.csv_lines(header, rows), CSV, _name(s, "timeseries", "csv"))


@router.get("/summary.csv")
def summary_csv(s: ScopeDep) -> StreamingResponse:
    header, rows = exports.summary_rows(s)
    return _attachment(exports.csv_lines(header, rows), CSV, _name(s, "summary", "csv"))


@router.get("/dashboard.zip")
def dashboard_zip(
    s: ScopeDep,
    interval: Annotated[str | None, Query(description="one of " + ", ".join(INTERVALS))] = None,
    metrics: Annotated[str, Query(max_length=200)] = "visitors,pageviews",
    breakdowns: Annotated[str, Query(max_length=2000)] = ",".join(STANDARD_BREAKDOWNS),
) -> StreamingResponse:
    """summary.csv, timeseries.csv and breakdown-<dimension>.csv for each dimension (all rows)."""
    dims = list(dict.fromkeys(d.strip() for d in breakdowns.split(",") if d.strip()))[:30]
    body = exports.dashboard_zip(
        s, interval=interval or s.range.default_interval(), metrics=_metrics(metrics), breakdowns=dims
    )
    return _attachment(body, "application/zip", _name(s, "dashboard", "zip"))


@router.get("/events.parquet")
def events_parquet(s: ScopeDep, runner: Runner) -> StreamingResponse:
    """The raw events of the range (filters and the bots rule applied), ordered by UTC day and event id,
    every column."""
    return _attachment(
        exports.events_parquet(runner, s), "application/vnd.apache.parquet", _name(s, "events", "parquet")
    )
