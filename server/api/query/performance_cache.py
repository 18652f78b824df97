"""The performance reports' per-day cache: per (site, zone, local day, page, device type) the figures of
`performance.overview`, `pages` and the day/week/month `series`, built from the raw `web_vitals` events and
valid while the day's inserted-row count is unchanged.

It is the engagement cache's machinery (`engagement_cache.EngagementCache`: builds recorded with the day's
`event_counts`, a changed day rebuilt before it is read, rate-limited by the report cache's
`rebuild_min_seconds` unless `ReportCache.changed` was told; a long first build in the worker thread while
the report reads the raw events; days past the retention empty and purged) over its own tables (schema
migration 15): `page_vitals` holds, per day, page and device type, the events (each once: copies of an
event, one `event_id` on one day, collapse as on the raw path, `listing.deduped`) and per metric the events that measured it,
its p75 as an exact `quantileExactIf(0.75)` state (the merge of the days' states is the raw
`quantileExact`: the cached p75 is exact, no tolerance) and its good / needs-improvement / poor counts.
An event is one page view, so no day depends on another.

Used when the report has no filters, leaves bots out and covers whole days in the site's zone (today
included; the series by day, week or month); everything else reads the raw events. Nothing here puts user
text in SQL: dates, build ids and metric names made here; the site and zone as parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixel.server.api.query import engagement_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import EngagementCache
from pixel.server.api.query.listing import deduped
from pixel.server.typedfields import GOOD, NEEDS_IMPROVEMENT, POOR, VITALS, VITALS_EVENT

VITAL_COLUMNS = (
    "path, device_type, visitor_id, ttfb_ms, fcp_ms, lcp_ms, cls, inp_ms, ttfb_rating, fcp_rating, lcp_rating, "
    "cls_rating, inp_rating"
)  # as `performance` reads them

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache

TABLES = ("page_vitals", "page_vitals_builds")
# The cached series' buckets (also the errors cache's), from the local day (the same labels as `periods.BUCKET_SQL` gives).
SERIES_BUCKETS = {
    "day": "toString(day)",
    "week": "toString(toMonday(day))",
    "month": "toString(toStartOfMonth(day))",
}

_PER_METRIC = ("n", "q", "good", "ni", "poor")
_COLUMNS = "samples, " + ", ".join(f"{v.param}_{k}" for v in VITALS for k in _PER_METRIC)


def _states() -> str:
    """Per metric, from the deduplicated events: the cached columns."""
    parts = ["count() AS samples"]
    for v in VITALS:
        rating = f"{v.param}_rating"
        parts.append(
            f"countIf({v.column} IS NOT NULL) AS {v.param}_n, "
            f"quantileExactIfState(0.75)(assumeNotNull({v.column}), {v.column} IS NOT NULL) AS {v.param}_q, "
            f"countIf({rating} = '{GOOD}') AS {v.param}_good, "
            f"countIf({rating} = '{NEEDS_IMPROVEMENT}') AS {v.param}_ni, countIf({rating} = '{POOR}') AS {v.param}_poor"
        )
    return ", ".join(parts)


def _p75(metric: str) -> str:
    """The merged p75, NULL where nothing measured it (as the raw `quantileExact` of only NULLs)."""
    return f"if(sum(c_{metric}_n) > 0, quantileExactIfMerge(0.75)(c_{metric}_q), NULL)"


def merged(p75_only: bool = False) -> str:
    """The raw query's columns (`performance._columns`: `samples`, per metric `_n`, `_p75`, `_good`, `_ni`,
    `_poor`; with `p75_only`, `samples` and the p75 named after the metric) over the cached rows."""
    if p75_only:
        return "sum(c_samples) AS samples, " + ", ".join(f"{_p75(v.param)} AS {v.param}" for v in VITALS)
    parts = ["sum(c_samples) AS samples"]
    for v in VITALS:
        m = v.param
        parts.append(
            f"sum(c_{m}_n) AS {m}_n, {_p75(m)} AS {m}_p75, sum(c_{m}_good) AS {m}_good, "
            f"sum(c_{m}_ni) AS {m}_ni, sum(c_{m}_poor) AS {m}_poor"
        )
    return ", ".join(parts)


def rows_sql(days: Days) -> str:
    """The cached rows of the range of `days` (with builds; the figures' columns prefixed `c_`, so `merged()`
    can name its sums as the raw query does): `FROM` this, `GROUP BY` path / device_type / a
    `SERIES_BUCKETS` expression, select `merged()`."""
    renamed = ", ".join(f"{c} AS c_{c}" for c in _COLUMNS.split(", "))
    return f"""(SELECT day, path, device_type, {renamed} FROM page_vitals
        WHERE {days.rows_where()})"""


_ROWS = f"""SELECT toDate(timestamp, {{tz:String}}) AS d, path, device_type, {_states()}
    FROM {
    deduped(
        "site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)} "
        f"AND is_bot = 0 AND event_name = '{VITALS_EVENT}'",
        VITAL_COLUMNS,
    )
}
    WHERE has({{days:Array(Date)}}, d)
    GROUP BY d, path, device_type"""


class PerformanceCache(EngagementCache):
    """The performance reports' cache beside one report cache (its runner, clock and settings)."""

    worker_name = "performance-cache"
    data_tables = TABLES[:1]
    builds_table = TABLES[1]

    def _insert_rows(self, params: dict[str, Any]) -> None:
        self.cache.runner.command(
            f"""INSERT INTO page_vitals (site, tz, day, build, path, device_type, {_COLUMNS})
            SELECT {{site:String}}, {{tz:String}}, d, {{build:UInt64}}, path, device_type, {_COLUMNS}
            FROM ({_ROWS})""",
            params,
        )


def for_cache(cache: ReportCache) -> PerformanceCache:
    """The performance cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "performance", PerformanceCache)
