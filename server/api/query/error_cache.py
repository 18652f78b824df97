"""The errors reports' per-day cache: per (site, zone, local day, error group, page, browser) the figures of
`errors.groups` and the day/week/month `errors.series`, built from the raw `error` events and valid while
the day's inserted-row count is unchanged.

It is the engagement cache's machinery (`engagement_cache.EngagementCache`: builds recorded with the day's
`event_counts`, a changed day rebuilt before it is read, rate-limited by the report cache's
`rebuild_min_seconds` unless `ReportCache.changed` was told; a long first build in the worker thread while
the report reads the raw events; days past the retention empty and purged) over its own tables (schema
migration 18): `error_groups` holds, per day, group (message, source, line), page and browser, the error
events (each once: copies of an event, one `event_id` on one day, collapse as on the raw path), their
visitors as a `uniqCombined(14)` state (whose merge over days, pages and browsers is the raw path's sketch,
`cache_sql.UNIQ_TOTAL`), and the earliest and latest event's time. A group's pages and browsers over a range
are the distinct ones of its rows, its first / last seen the min / max of the days': the cached answer
equals the raw one exactly (tests compare both). An error is one event, so no day depends on another.

Used when the report has no filters, leaves bots out and covers whole days in the site's zone (today
included; the series by day, week or month); everything else reads the raw events. Nothing here puts user
text in SQL: dates and build ids made here; the site and zone as parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixel.server.api.query import cache_sql, engagement_cache, performance_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import EngagementCache
from pixel.server.typedfields import ERROR_EVENT

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

TABLES = ("error_groups", "error_groups_builds")
# The cached series' buckets: the performance cache's (the same labels as `periods.BUCKET_SQL` gives).
SERIES_BUCKETS = performance_cache.SERIES_BUCKETS
_COLUMNS = "message, source, line, path, browser, errors, visitors, first_seen, last_seen"

# The day's error events, each once (grouped by the events table's key), per local day, group, page and browser.
_ROWS = f"""SELECT d, message, source, line, path, browser, count() AS errors,
        uniqCombinedState(14)(v) AS visitors, min(t) AS first_seen, max(t) AS last_seen
    FROM (
        SELECT toDate(any(timestamp), {{tz:String}}) AS d, any(timestamp) AS t, any(error_message) AS message,
            any(error_source) AS source, any(error_line) AS line, any(path) AS path, any(browser) AS browser,
            any(visitor_id) AS v
        FROM events
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0 AND event_name = '{ERROR_EVENT}'
        GROUP BY toDate(timestamp), event_id)
    WHERE has({{days:Array(Date)}}, d)
    GROUP BY d, message, source, line, path, browser"""
assert cache_sql.UNIQ_TOTAL == "uniqCombined(14)", "error_groups.visitors holds the raw path's sketch state"


def groups_sql(days: Days, max_listed: int) -> str:
    """One row per error group over the range of `days` (with builds), named as `errors.groups` names them:
    `message`, `source`, `line`, `count`, `visitors`, `page_count`, `pages`, `browser_count`, `browsers`
    (the first `max_listed` alphabetically), `first_seen`, `last_seen`."""
    listed = int(max_listed)
    return f"""SELECT message, source, line, sum(errors) AS count, uniqCombinedMerge(14)(visitors) AS visitors,
            uniqExact(path) AS page_count, arraySlice(arraySort(groupUniqArray(path)), 1, {listed}) AS pages,
            uniqExact(browser) AS browser_count,
            arraySlice(arraySort(groupUniqArray(browser)), 1, {listed}) AS browsers,
            min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM error_groups WHERE {days.rows_where()}
        GROUP BY message, source, line"""


def series_sql(days: Days, interval: str) -> str:
    """Error events and visitors with an error per bucket of `interval` (a `SERIES_BUCKETS` key) over the
    range of `days`: `bucket`, `errors`, `visitors`."""
    bucket = SERIES_BUCKETS[interval]
    return f"""SELECT {bucket} AS bucket, sum(errors) AS errors, uniqCombinedMerge(14)(visitors) AS visitors
        FROM error_groups WHERE {days.rows_where()} GROUP BY bucket"""


class ErrorCache(EngagementCache):
    """The errors reports' cache beside one report cache (its runner, clock and settings)."""

    worker_name = "error-cache"
    data_tables = TABLES[:1]
    builds_table = TABLES[1]

    def _insert_rows(self, params: dict[str, Any]) -> None:
        self.cache.runner.command(
            f"""INSERT INTO error_groups (site, tz, day, build, {_COLUMNS})
            SELECT {{site:String}}, {{tz:String}}, d, {{build:UInt64}}, {_COLUMNS} FROM ({_ROWS})""",
            params,
        )


def for_cache(cache: ReportCache) -> ErrorCache:
    """The errors cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "errors", ErrorCache)
