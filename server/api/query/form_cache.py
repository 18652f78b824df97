"""The forms report's per-day cache: per (site, zone, local day, form id, form action, page) the submissions
and visitors of `content.forms`, built from the raw `form_submit` events and valid while the day's
inserted-row count is unchanged.

It is the engagement cache's machinery (`engagement_cache.EngagementCache`: builds recorded with the day's
`event_counts`, a changed day rebuilt before it is read, rate-limited by the report cache's
`rebuild_min_seconds` unless `ReportCache.changed` was told; a long first build in the worker thread while
the report reads the raw events; days past the retention empty and purged) over its own tables (schema
migration 18): `form_submits` holds, per day, form and page, the submissions (each event once: copies of an
event, one `event_id` on one day, collapse as on the raw path) and the visitors as a `uniqCombined(14)`
state, whose merge over the days and pages of a range is the raw path's sketch of the same visitors
(`cache_sql.UNIQ_TOTAL`); a form's pages over a range are the distinct pages of its rows, so `page_count`
and the first `content.MAX_LISTED` pages are the raw ones: the cached answer equals the raw one exactly
(tests compare both). A submission is one event, so no day depends on another.

Used when the report has no filters, leaves bots out and covers whole days in the site's zone (today
included); everything else reads the raw events. Nothing here puts user text in SQL: dates and build ids
made here; the site and zone as parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixel.server.api.query import cache_sql, engagement_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import EngagementCache

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

TABLES = ("form_submits", "form_submits_builds")

# The day's submissions, each once (grouped by the events table's key), per local day, form and page.
_ROWS = """SELECT d, form_id, action, path, count() AS submissions, uniqCombinedState(14)(v) AS visitors
    FROM (
        SELECT toDate(any(timestamp), {tz:String}) AS d, any(props['id']) AS form_id,
            any(props['action']) AS action, any(path) AS path, any(visitor_id) AS v
        FROM events
        WHERE site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)}
            AND is_bot = 0 AND event_name = 'form_submit'
        GROUP BY toDate(timestamp), event_id)
    WHERE has({days:Array(Date)}, d)
    GROUP BY d, form_id, action, path"""
assert cache_sql.UNIQ_TOTAL == "uniqCombined(14)", "form_submits.visitors holds the raw path's sketch state"


def forms_sql(days: Days, max_listed: int) -> str:
    """One row per form over the range of `days` (with builds), named as `content.forms` names them:
    `form_id`, `action`, `submissions`, `visitors`, `page_count` and `pages` (the first `max_listed` pages
    alphabetically)."""
    return f"""SELECT form_id, action, sum(submissions) AS submissions,
            uniqCombinedMerge(14)(visitors) AS visitors, uniqExact(path) AS page_count,
            arraySlice(arraySort(groupUniqArray(path)), 1, {int(max_listed)}) AS pages
        FROM form_submits
        WHERE {days.rows_where()}
        GROUP BY form_id, action"""


class FormCache(EngagementCache):
    """The forms report's cache beside one report cache (its runner, clock and settings)."""

    worker_name = "form-cache"
    data_tables = TABLES[:1]
    builds_table = TABLES[1]

    def _insert_rows(self, params: dict[str, Any]) -> None:
        self.cache.runner.command(
            f"""INSERT INTO form_submits (site, tz, day, build, form_id, action, path, submissions, visitors)
            SELECT {{site:String}}, {{tz:String}}, d, {{build:UInt64}}, form_id, action, path, submissions, visitors
            FROM ({_ROWS})""",
            params,
        )


def for_cache(cache: ReportCache) -> FormCache:
    """The forms cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "forms", FormCache)
