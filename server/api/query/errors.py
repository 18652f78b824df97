"""Errors from the extended tracker's `error` events (uncaught errors and rejections).

A group is one (message, source, line) as stored (`error_message`, `error_source`, `error_line`; the
shipper has already redacted addresses and cut the texts). Per group: `count` (events), `visitors`, the
pages it happened on (`pages`: the first `MAX_LISTED` paths alphabetically, `page_count`: how many), the
browsers (`browsers`, `browser_count`, the same way), and `first_seen` / `last_seen`: the earliest and
latest event of the group *within the range* (ISO 8601, UTC). Groups are paged and sortable by `count`,
`visitors`, `last_seen`, `first_seen` or `message`. `series`: error events and visitors with an error per
time bucket.

Without filters, bots left out, over whole days of the site's zone (the series by day, week or month), both
come from the per-day cache of `error_cache` (the same figures, exactly: tests compare both paths);
otherwise from the raw events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pixel.server.api.query import cache_sql, error_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.listing import deduped, order_page, paged
from pixel.server.api.query.periods import bucket_sql, buckets
from pixel.server.api.query.scope import Scope
from pixel.server.typedfields import ERROR_EVENT

_COLUMNS = "error_message, error_source, error_line, visitor_id, path, browser"
MAX_LISTED = 10
SORTS = {
    "count": "count",
    "visitors": "visitors",
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "message": "message",
}


def _iso(value: Any) -> str:
    """A ClickHouse DateTime64 value (a datetime, or its text) as ISO 8601 in UTC with milliseconds."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _cached(scope: Scope) -> Days | None:
    """The scope's days with their valid builds in `error_cache`, or None: read the raw events."""
    return error_cache.for_cache(scope.cache).days(scope) if scope.cache is not None else None


def groups(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "count", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, SORTS, "message, source, line", limit, page)
    days = _cached(scope)
    if days is not None:
        inner = error_cache.groups_sql(days, MAX_LISTED)
        rows = scope.run_cached(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}")
    else:
        params = SqlParams()
        sql = f"""SELECT *, count() OVER () AS total_rows FROM (
                SELECT error_message AS message, error_source AS source, error_line AS line, count() AS count,
                    {cache_sql.UNIQ_TOTAL}(visitor_id) AS visitors, uniqExact(path) AS page_count,
                    arraySlice(arraySort(groupUniqArray(path)), 1, {MAX_LISTED}) AS pages,
                    uniqExact(browser) AS browser_count,
                    arraySlice(arraySort(groupUniqArray(browser)), 1, {MAX_LISTED}) AS browsers,
                    min(timestamp) AS first_seen, max(timestamp) AS last_seen
                FROM {deduped(f"{scope.where(params)} AND event_name = '{ERROR_EVENT}'", _COLUMNS)}
                GROUP BY message, source, line)
            {tail}"""
        rows = scope.run(sql, params)
    out = [
        {
            "message": r["message"],
            "source": r["source"],
            "line": int(r["line"]),
            "count": int(r["count"]),
            "visitors": int(r["visitors"]),
            "pages": list(r["pages"]),
            "page_count": int(r["page_count"]),
            "browsers": list(r["browsers"]),
            "browser_count": int(r["browser_count"]),
            "first_seen": _iso(r["first_seen"]),
            "last_seen": _iso(r["last_seen"]),
        }
        for r in rows
    ]
    return {"rows": out, **paged(rows, limit, page, sort, order)}


def series(scope: Scope, interval: str) -> dict[str, Any]:
    labels = buckets(scope.range, interval)
    days = _cached(scope) if interval in error_cache.SERIES_BUCKETS else None
    if days is not None:
        found = {r["bucket"]: r for r in scope.run_cached(error_cache.series_sql(days, interval))}
    else:
        params = SqlParams()
        sql = f"""SELECT {bucket_sql(interval)} AS bucket, count() AS errors,
                {cache_sql.UNIQ_TOTAL}(visitor_id) AS visitors
            FROM {deduped(f"{scope.where(params)} AND event_name = '{ERROR_EVENT}'", "visitor_id")} GROUP BY bucket"""
        found = {r["bucket"]: r for r in scope.run(sql, params)}
    points = [
        {
            "bucket": b,
            "errors": int(found[b]["errors"]) if b in found else 0,
            "visitors": int(found[b]["visitors"]) if b in found else 0,
        }
        for b in labels
    ]
    return {"interval": interval, "points": points}
