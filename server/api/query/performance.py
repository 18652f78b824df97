"""Performance from the extended tracker's `web_vitals` events (one per page view): LCP, INP, CLS, FCP, TTFB.

For each metric and group: `p75` (the 75th percentile as ClickHouse's `quantileExact` takes it: the value
at index floor(0.75 * n) of the sorted measurements; milliseconds, CLS unitless; None without one),
`samples` (the events that measured it) and the percent of those rated `good`, `needs_improvement` and
`poor` (Google's thresholds, as `pixel.server.typedfields.VITALS` rates each value at ingestion). A
`web_vitals` event that did not measure a metric (NULL) counts for none of its figures.

`overview`: all page views of the scope (`overall`) and one row per device type (`by_device`);
`pages`: one row per path, paged, sortable by `samples` (web_vitals events), `page` or a metric's p75;
`series`: each metric's p75 per time bucket (None in a bucket without a measurement).

Without filters, bots left out, over whole days of the site's zone (the series by day, week or month), the
answer comes from the per-day cache of `performance_cache` (the same figures, exactly: tests compare both
paths); otherwise from the raw events.
"""

from __future__ import annotations

from typing import Any

from pixel.server.api.query import performance_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.listing import deduped, order_page, paged, percent
from pixel.server.api.query.periods import bucket_sql, buckets
from pixel.server.api.query.scope import Scope
from pixel.server.typedfields import GOOD, NEEDS_IMPROVEMENT, POOR, VITALS, VITALS_EVENT

_VITAL_COLUMNS = "path, device_type, visitor_id, ttfb_ms, fcp_ms, lcp_ms, cls, inp_ms, ttfb_rating, fcp_rating, lcp_rating, cls_rating, inp_rating"
METRICS = tuple(v.param for v in VITALS)  # ttfb, fcp, lcp, cls, inp
PAGE_SORTS = {"samples": "samples", "page": "value", **{m: f"{m}_p75" for m in METRICS}}


def _columns() -> str:
    parts = ["count() AS samples"]
    for v in VITALS:
        rating = f"{v.param}_rating"
        parts.append(
            f"countIf({v.column} IS NOT NULL) AS {v.param}_n, quantileExact(0.75)({v.column}) AS {v.param}_p75, "
            f"countIf({rating} = '{GOOD}') AS {v.param}_good, "
            f"countIf({rating} = '{NEEDS_IMPROVEMENT}') AS {v.param}_ni, countIf({rating} = '{POOR}') AS {v.param}_poor"
        )
    return ", ".join(parts)


def _vitals(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METRICS:
        n = int(r[f"{m}_n"])
        p75 = r[f"{m}_p75"]
        out[m] = {
            "p75": float(p75) if n and p75 is not None else None,
            "samples": n,
            "good": percent(int(r[f"{m}_good"]), n),
            "needs_improvement": percent(int(r[f"{m}_ni"]), n),
            "poor": percent(int(r[f"{m}_poor"]), n),
        }
    return out


def _source(scope: Scope, params: SqlParams) -> str:
    return deduped(f"{scope.where(params)} AND event_name = '{VITALS_EVENT}'", _VITAL_COLUMNS)


def _cached(scope: Scope) -> Days | None:
    """The scope's days with their valid builds in `performance_cache`, or None: read the raw events."""
    return performance_cache.for_cache(scope.cache).days(scope) if scope.cache is not None else None


def overview(scope: Scope) -> dict[str, Any]:
    params = SqlParams()
    grouped = "GROUP BY GROUPING SETS ((), (device_type))"
    device = "if(grouping(device_type) = 1, NULL, device_type) AS device"
    days = _cached(scope)
    if days is not None:
        rows = scope.run_cached(
            f"SELECT {device}, {performance_cache.merged()} FROM {performance_cache.rows_sql(days)} {grouped}"
        )
    else:
        rows = scope.run(f"SELECT {device}, {_columns()} FROM {_source(scope, params)} {grouped}", params)
    overall = next((r for r in rows if r["device"] is None), None)
    devices = sorted(
        (r for r in rows if r["device"] is not None), key=lambda r: (-int(r["samples"]), r["device"])
    )
    empty = {"samples": 0, **{f"{m}_{k}": 0 for m in METRICS for k in ("n", "good", "ni", "poor")}}
    overall = overall or {**empty, **{f"{m}_p75": None for m in METRICS}}
    return {
        "overall": {"samples": int(overall["samples"]), **_vitals(overall)},
        "by_device": [{"device": r["device"], "samples": int(r["samples"]), **_vitals(r)} for r in devices],
    }


def pages(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "samples", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, PAGE_SORTS, "value", limit, page)
    params = SqlParams()
    days = _cached(scope)
    if days is not None:
        inner = f"SELECT path AS value, {performance_cache.merged()} FROM {performance_cache.rows_sql(days)} GROUP BY path"
        rows = scope.run_cached(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}")
    else:
        inner = f"SELECT path AS value, {_columns()} FROM {_source(scope, params)} GROUP BY path"
        rows = scope.run(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}", params)
    out = [{"page": r["value"], "samples": int(r["samples"]), **_vitals(r)} for r in rows]
    return {"rows": out, **paged(rows, limit, page, sort, order)}


def series(scope: Scope, interval: str) -> dict[str, Any]:
    labels = buckets(scope.range, interval)
    params = SqlParams()
    p75s = ", ".join(f"quantileExact(0.75)({v.column}) AS {v.param}" for v in VITALS)
    days = _cached(scope) if interval in performance_cache.SERIES_BUCKETS else None
    if days is not None:
        bucket = performance_cache.SERIES_BUCKETS[interval]
        rows = scope.run_cached(
            f"""SELECT {bucket} AS bucket, {performance_cache.merged(p75_only=True)}
            FROM {performance_cache.rows_sql(days)} GROUP BY bucket"""
        )
    else:
        sql = f"""SELECT {bucket_sql(interval)} AS bucket, count() AS samples, {p75s}
            FROM {_source(scope, params)} GROUP BY bucket"""
        rows = scope.run(sql, params)
    found = {r["bucket"]: r for r in rows}
    points = []
    for label in labels:
        r = found.get(label)
        values = {m: (float(r[m]) if r is not None and r[m] is not None else None) for m in METRICS}
        points.append({"bucket": label, "samples": int(r["samples"]) if r else 0, **values})
    return {"interval": interval, "metrics": list(METRICS), "points": points}
