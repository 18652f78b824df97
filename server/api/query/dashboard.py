"""The standard dashboard in one call: summary (with comparison), timeseries (optionally the previous
period's too) and several breakdowns, with exactly the numbers of the individual reports.

Why a separate path: on the report cache each report is a few small reads, and with chDB every read
of a MergeTree table costs a few milliseconds whatever its size, so ten reports were ten times that
fixed cost (plus ten requests). Here, when the cache can answer (see `Scope.cached_days`), the widgets
take one query of three parts run side by side (UNION ALL): one scan of the cached totals and session
rows for both periods (summary and series together, `cache_sql.totals_sql`), the sessions across
midnight, and one scan of every breakdown dimension's rows, ranked per dimension with a window
partitioned by dimension. Both use the same aggregate functions over the same cached rows as the
individual reports (`reports`, `cache_sql`), and the same validation and summary builder as `reports`,
so the numbers and the errors are the same by construction (tests compare them). Everything else (filters, bots, hourly buckets, dimensions not cached) goes through
the individual report functions on the raw events.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pixel.server.api.errors import bad_request
from pixel.server.api.query import cache_sql, filter_cache, raw_dashboard, reports
from pixel.server.api.query.cache_sql import BREAKDOWN_TAG_PREFIX, Days, Tag
from pixel.server.api.query.filters import SESSION_DIMENSIONS, SqlParams, dimension_sql
from pixel.server.api.query.periods import Range, buckets
from pixel.server.api.query.scope import Scope

STANDARD_BREAKDOWNS = ("page", "entry_page", "referrer", "source", "country", "browser", "os", "device")
MAX_BREAKDOWNS = 30


def check_breakdowns(names: list[str]) -> list[str]:
    """Valid breakdown dimensions, duplicates dropped (order kept), or a 400."""
    out = list(dict.fromkeys(names))
    if len(out) > MAX_BREAKDOWNS:
        raise bad_request(f"at most {MAX_BREAKDOWNS} breakdowns", "invalid_dimension")
    for name in out:
        if name not in SESSION_DIMENSIONS:
            dimension_sql(name, SqlParams())  # raises a 400 naming the valid ones
    return out


def dashboard(
    scope: Scope,
    *,
    compare: bool = True,
    interval: str,
    metrics: list[str],
    breakdowns: list[str],
    limit: int = 10,
    previous_series: bool = False,
    against: Range | None = None,
) -> dict[str, Any]:
    """`against`: the range the summary and previous timeseries compare with (default: the previous period)."""
    breakdowns = check_breakdowns(breakdowns)
    reports.check_limit(limit)
    reports.check_metrics(metrics)
    buckets(scope.range, interval)  # validates the interval (and the number of buckets)
    before = replace(scope, range=against or scope.range.previous())
    out: dict[str, Any] = {}
    needs_before = compare or previous_series  # else the previous period is neither read nor built
    days = scope.cached_days() if interval in reports.CACHED_INTERVALS else None
    days_before = before.cached_days() if days is not None and needs_before else None
    if days is not None and (days_before is not None or not needs_before):
        days = scope.ensure(days)
        days_before = before.ensure(days_before) if days_before is not None else None
        cached = [d for d in breakdowns if cache_sql.cached_dimension(d)]
        out.update(
            _cached(
                scope,
                before,
                days,
                days_before,
                compare=compare,
                interval=interval,
                metrics=metrics,
                previous_series=previous_series,
                dimensions=cached,
                limit=limit,
            )
        )
        found = out.pop("breakdowns")
    else:
        sql, params = raw_dashboard.dashboard_sql(
            scope,
            before if needs_before else None,
            compare=compare,
            previous_series=previous_series,
            interval=interval,
            dimensions=breakdowns,
            limit=limit,
            cached=filtered_days(scope, before, interval, needs_before),
        )
        out.update(
            _answer(
                raw_dashboard.run(scope, sql, params),
                scope,
                before,
                compare=compare,
                interval=interval,
                metrics=metrics,
                previous_series=previous_series,
                dimensions=breakdowns,
                limit=limit,
            )
        )
        found = out.pop("breakdowns")
    out["breakdowns"] = {
        d: found[d] if d in found else reports.breakdown(scope, d, limit=limit) for d in breakdowns
    }
    return out


def filtered_days(
    scope: Scope, before: Scope, interval: str, needs_before: bool
) -> tuple[Days, Days | None] | None:
    """Both periods' days in the filter cache (`filter_cache.days`; the previous period's None when it is not
    read), or None: the raw dashboard reads the events for its event numbers."""
    days = filter_cache.days(scope, interval)
    if days is None:
        return None
    if not needs_before:
        return days, None
    days_before = filter_cache.days(before, interval)
    return (days, days_before) if days_before is not None else None


def _with_range(body: dict[str, Any], scope: Scope) -> dict[str, Any]:
    return {"from": scope.range.start.isoformat(), "to": scope.range.end.isoformat(), **body}


# -- the cached path: one query ---------------------------------------------------------------------


def _breakdowns_sql(days: Days, dimensions: list[str], limit: int) -> str:
    """Every dimension's first `limit` values by visitors and an "other" row, as `reports.breakdown` ranks
    them over the cached rows (the same states merged the same way, plus the imported visitors `iv`), in one
    scan."""
    names = ", ".join(f"'{d}'" for d in dimensions)  # validated names, never user text
    sources = [
        f"""SELECT dimension, value, visitors AS v, imported_visitors AS iv, pageviews, events, sessions
        FROM day_dimensions
        WHERE site = {{site:String}} AND tz = {{tz:String}} AND dimension IN ({names})
            AND {cache_sql.range_condition(days)}"""
    ]
    kinds = [d for d in cache_sql.SESSION_KINDS if d in dimensions]
    if kinds:
        columns = {"entry_page": "entry", "exit_page": "exit"}
        sources.append(f"""SELECT dimension, value, uniqCombinedState(12)(pv_visitor) AS v, toUInt64(0) AS iv,
            toUInt64(0) AS pageviews,
            toUInt64(0) AS events, count() AS sessions
        FROM ({cache_sql.edges_sql(days)})
        ARRAY JOIN [{", ".join(f"'{k}'" for k in kinds)}] AS dimension, [{", ".join(columns[k] for k in kinds)}] AS value
        WHERE pv > 0 GROUP BY dimension, value""")
    per_value = f"""SELECT dimension, value, uniqCombinedMergeState(12)(v) AS st, sum(iv) AS iv,
            sum(pageviews) AS pageviews, sum(events) AS events, sum(sessions) AS sessions
        FROM ({" UNION ALL ".join(sources)}) GROUP BY dimension, value"""
    return f"""SELECT concat('{BREAKDOWN_TAG_PREFIX}', dimension) AS tag, if(rank <= {int(limit)}, value, NULL) AS bucket,
            {cache_sql.UNIQ_VALUE_MERGE}(st) + sum(iv) AS visitors, sum(pageviews) AS pageviews, sum(events) AS events,
            sum(sessions) AS sessions, toUInt64(0) AS session_pageviews, toUInt64(0) AS bounces,
            toUInt64(0) AS duration_ms, any(total) AS total_rows, toUInt64(0) AS session_rows, min(rank) AS first_rank
        FROM (SELECT *, row_number() OVER (PARTITION BY dimension ORDER BY visitors DESC, value ASC) AS rank,
                  count() OVER (PARTITION BY dimension) AS total
              FROM (SELECT *, finalizeAggregation(st) + iv AS visitors FROM ({per_value})))
        GROUP BY dimension, bucket"""


def _cached(
    scope: Scope,
    before: Scope,
    days: Days,
    days_before: Days | None,
    *,
    compare: bool,
    interval: str,
    metrics: list[str],
    previous_series: bool,
    dimensions: list[str],
    limit: int,
) -> dict[str, Any]:
    day_bucket = cache_sql.day_bucket(interval, "day")
    edge_bucket = cache_sql.day_bucket(interval, "toDate(first_ts, {tz:String})")
    parts: dict[Tag, tuple[str, str | None]] = {
        Tag.SUMMARY: (cache_sql.range_condition(days), None),
        Tag.SERIES: (cache_sql.days_condition(days), day_bucket),
    }
    branches = [cache_sql.edges_totals_sql(days, Tag.SUMMARY, Tag.SERIES, edge_bucket)]
    if compare:
        assert days_before is not None, "a comparison needs the previous period"
        parts[Tag.PREVIOUS_SUMMARY] = (cache_sql.range_condition(days_before), None)
    if previous_series:
        assert days_before is not None, "a previous series needs the previous period"
        parts[Tag.PREVIOUS_SERIES] = (cache_sql.days_condition(days_before), day_bucket)
    if days_before is not None and (compare or previous_series):
        branches.append(
            cache_sql.edges_totals_sql(
                days_before,
                Tag.PREVIOUS_SUMMARY if compare else None,
                Tag.PREVIOUS_SERIES if previous_series else None,
                edge_bucket,
            )
        )
    branches.insert(0, cache_sql.totals_sql(parts))
    if dimensions:
        branches.append(_breakdowns_sql(days, dimensions, limit))
    # One query: chDB runs the branches side by side, and pays its fixed cost per query once.
    rows = scope.run_cached("\nUNION ALL\n".join(branches))
    return _answer(
        rows,
        scope,
        before,
        compare=compare,
        interval=interval,
        metrics=metrics,
        previous_series=previous_series,
        dimensions=dimensions,
        limit=limit,
    )


def _answer(
    rows: list[dict[str, Any]],
    scope: Scope,
    before: Scope,
    *,
    compare: bool,
    interval: str,
    metrics: list[str],
    previous_series: bool,
    dimensions: list[str],
    limit: int,
) -> dict[str, Any]:
    """The bodies from the tagged rows of one dashboard query (cached or raw: the same shape)."""
    ranked: dict[str, list[dict[str, Any]]] = {d: [] for d in dimensions}
    totals = []
    for row in rows:
        if row["tag"].startswith(BREAKDOWN_TAG_PREFIX):
            ranked[row["tag"][len(BREAKDOWN_TAG_PREFIX) :]].append(row)
        else:
            totals.append(row)
    by_tag = cache_sql.tagged(totals)
    current = reports.summary_row(cache_sql.summary_numbers(by_tag, Tag.SUMMARY))
    previous = (
        reports.summary_row(cache_sql.summary_numbers(by_tag, Tag.PREVIOUS_SUMMARY)) if compare else None
    )
    return {
        "summary": reports.summary_body(current, previous),
        "timeseries": _series(by_tag, Tag.SERIES, scope, interval, metrics),
        "previous_timeseries": _with_range(
            _series(by_tag, Tag.PREVIOUS_SERIES, before, interval, metrics), before
        )
        if previous_series
        else None,
        "breakdowns": {
            d: _breakdown(d, sorted(rows, key=lambda r: int(r["first_rank"])), limit)
            for d, rows in ranked.items()
        },
    }


def _series(
    by_tag: cache_sql.Tagged, tag: Tag, scope: Scope, interval: str, metrics: list[str]
) -> dict[str, Any]:
    """The points `reports.timeseries` gives: event metrics in buckets with whole-day rows (`tag`), session
    metrics in buckets with session rows or sessions across a midnight (`tag.edges`)."""
    labels = buckets(scope.range, interval)
    points: dict[str, dict[str, float]] = {b: dict.fromkeys(metrics, 0) for b in labels}
    rows, edges = by_tag.get(tag, {}), by_tag.get(tag.edges, {})
    for bucket in set(rows) | set(edges):
        if bucket not in points:
            continue
        row, edge = rows.get(bucket, cache_sql.ZERO), edges.get(bucket, cache_sql.ZERO)
        if row["total_rows"]:
            for m in metrics:
                if m in reports.EVENT_METRICS:
                    points[bucket][m] = row[m]
        if row["session_rows"] or edge["session_rows"]:
            values = reports.session_metrics(
                row["sessions"] + edge["sessions"],
                row["session_pageviews"] + edge["session_pageviews"],
                row["bounces"] + edge["bounces"],
                row["duration_ms"] + edge["duration_ms"],
            )
            for m in metrics:
                if m in reports.SESSION_METRICS:
                    points[bucket][m] = values[m]
    return {"interval": interval, "metrics": metrics, "points": [{"bucket": b, **points[b]} for b in labels]}


def _breakdown(dimension: str, rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The body `reports.breakdown` gives for page 1, sorted by visitors."""
    metrics = ("visitors", "sessions") if dimension in SESSION_DIMENSIONS else reports.EVENT_METRICS
    shown = [
        {"value": r["bucket"], **{m: int(r[m]) for m in metrics}} for r in rows if r["bucket"] is not None
    ]
    other = next(
        ({"value": "(other)", **{m: int(r[m]) for m in metrics}} for r in rows if r["bucket"] is None), None
    )
    return {
        "dimension": dimension,
        "metrics": list(metrics),
        "rows": shown,
        "other": other,
        "page": 1,
        "limit": limit,
        "total_rows": int(rows[0]["total_rows"]) if rows else 0,
        "sort": "visitors",
        "order": "desc",
    }
