"""The outbound-link and download reports' per-day cache: per (site, zone, local day, kind, link URL) the
clicks and visitors of `content.outbound` / `content.downloads`, built from the raw events and valid while
the day's inserted-row count is unchanged.

It is the engagement cache's machinery (`engagement_cache.EngagementCache`: builds recorded with the
day's `event_counts`, a changed day rebuilt before it is read, rate-limited by the report cache's
`rebuild_min_seconds` unless `ReportCache.changed` was told; a long first build in the worker thread while
the report reads the raw events; days past the retention empty and purged) over its own tables (schema
migration 13): `content_links` holds, per day, kind (`outbound` or `download`) and URL, the clicks (each
event once: copies of an event, one `event_id` on one day, collapse as on the raw path) and the visitors
as a `uniqCombined(14)` state, whose merge over the days of a range is the raw path's sketch of the same
visitors (`cache_sql.UNIQ_TOTAL`): the cached answer equals the raw one exactly (tests compare both).
A click is one event, so no day depends on another (no session edges as in the engagement cache).

Each row also carries the event dimensions in `CARRIED` (schema migration 20: country, device type, browser,
OS, source, channel), under the events' column names: a click is one event, so an event-level filter on
them (any operator: `filters.filter_sql` gives the same condition on the cache's columns as on the events')
selects exactly the rows of the clicks it keeps, and the sums and sketch merges of those rows are the raw
answer. Copies of an event carry the same values (client retries of one request), so they fall in one row.

`content_links_by_value` (schema migration 30) holds the same clicks and visitors per (day, kind, URL) for each
value of each of the events' columns in `BY_VALUE` (the page's path and the five UTM fields; since migration 32
also hostname, referrer, medium, region, city, browser and OS versions, screen, language): a report with one
filter on one of those (`BY_VALUE_FILTERS`, any operator) merges the rows of the values it keeps, which are
exactly the clicks it keeps (a click is one event with one value of each).

Used when the report leaves bots out, covers whole days in the site's zone (today included) and has no filter,
only filters on `CARRIED` dimensions, or one filter on a `BY_VALUE_FILTERS` dimension; everything else reads
the raw events. Nothing here puts user text
in SQL: dates, build ids and kinds made here; the site, zone and filter values as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pixel.server.api.query import cache_sql, engagement_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import EngagementCache
from pixel.server.api.query.filters import (
    DIMENSIONS,
    Filter,
    SqlParams,
    compare_sql,
    filter_sql,
    keyed_value_sql,
)
from pixel.server.store.schema import CONTENT_LINKS_BY_VALUE, CONTENT_LINKS_DIMENSIONS

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache
    from pixel.server.api.query.scope import Scope

KINDS = ("outbound", "download")  # the event names cached, each its own rows (`kind`)
TABLES = ("content_links", "content_links_builds")
# The API's filter dimensions the rows carry (`filters.DIMENSIONS` names; the columns are the events').
CARRIED = frozenset({"country", "device", "browser", "os", "source", "channel"})
BY_VALUE = "content_links_by_value"
VALUES = "content_values"  # each page's titles and property values per day, of the clicks (migration 39)
# The filter dimensions whose values `BY_VALUE` keys (a filter's dimension -> the events' column).
BY_VALUE_FILTERS = {d: c for d, c in DIMENSIONS.items() if c in CONTENT_LINKS_BY_VALUE}
assert len(BY_VALUE_FILTERS) == len(CONTENT_LINKS_BY_VALUE), (
    "every column keyed by value is a filter's dimension"
)
_DIMS = ", ".join(CONTENT_LINKS_DIMENSIONS)


def _clicks(columns: tuple[str, ...]) -> str:
    """The build window's link events, each once (grouped by the events table's key, as `raw_events.once` does
    inside its windows), with their local day `d`, `kind`, `url`, visitor `v` and `one_<column>` of `columns`
    (inner names of their own: an alias named as a column would stand for the aggregate in the WHERE)."""
    return f"""SELECT toDate(any(timestamp), {{tz:String}}) AS d, event_name AS kind, any(props['url']) AS url,
            any(visitor_id) AS v, {", ".join(f"any({c}) AS one_{c}" for c in columns)}
        FROM events
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0 AND event_name IN {KINDS!r}
        GROUP BY toDate(timestamp), event_id, event_name"""


# The day's clicks and visitors per local day, kind, URL and values of the carried dimensions.
_ROWS = f"""SELECT d, kind, url, {", ".join(f"one_{c} AS {c}" for c in CONTENT_LINKS_DIMENSIONS)}, count() AS clicks, uniqCombinedState(14)(v) AS visitors
    FROM ({_clicks(CONTENT_LINKS_DIMENSIONS)})
    WHERE has({{days:Array(Date)}}, d)
    GROUP BY d, kind, url, {_DIMS}"""
assert cache_sql.UNIQ_TOTAL == "uniqCombined(14)", "content_links.visitors holds the raw path's sketch state"

# The same per local day, kind and URL, for each value of each column of `CONTENT_LINKS_BY_VALUE`.
_BY_VALUE_ROWS = f"""SELECT d, kind, url, dimension, value, count() AS clicks, uniqCombinedState(14)(v) AS visitors
    FROM ({_clicks(CONTENT_LINKS_BY_VALUE)})
    ARRAY JOIN [{", ".join(f"'{c}'" for c in CONTENT_LINKS_BY_VALUE)}] AS dimension,
        [{", ".join(f"one_{c}" for c in CONTENT_LINKS_BY_VALUE)}] AS value
    WHERE has({{days:Array(Date)}}, d)
    GROUP BY d, kind, url, dimension, value"""


def links_sql(
    days: Days,
    kind: str,
    url: str,
    clicks: str,
    filters: Sequence[Filter] = (),
    params: SqlParams | None = None,
    paths: str | None = None,
) -> str:
    """One row per URL of `kind` over the range of `days` (with builds), named as the report names them:
    `url` (the link column's name), `clicks` (the count's name) and `visitors`; of the clicks that pass
    `filters` (each on a `CARRIED` dimension, else a ValueError), whose values go to `params`; with `paths` (a
    condition on a column `value` holding a path), of the clicks on those pages that pass `filters` (each on the
    page, else a ValueError)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    conditions = [days.rows_where(), f"kind = '{kind}'"]
    table = "content_links"
    if paths is not None:
        if any(f.dimension != "page" for f in filters) or params is None:
            raise ValueError("the link cache answers a set of pages with page filters only (with params)")
        table = BY_VALUE
        conditions.append(f"dimension = 'path' AND {paths}")
        conditions.extend(compare_sql("value", f.operator, params.add(f.value)) for f in filters)
        filters = ()
    if any(f.dimension in BY_VALUE_FILTERS for f in filters):
        if len(filters) != 1 or params is None:
            raise ValueError("the link cache answers one filter on a by-value dimension alone (with params)")
        (flt,) = filters
        table = BY_VALUE
        conditions.append(keyed_value_sql(flt, params))
        filters = ()
    for flt in filters:
        if flt.dimension not in CARRIED or params is None:
            raise ValueError(f"the link cache does not carry {flt.dimension!r} (or no params were given)")
        conditions.append(filter_sql(flt, params))
    return f"""SELECT url AS {url}, sum(clicks) AS {clicks}, uniqCombinedMerge(14)(visitors) AS visitors
        FROM {table}
        WHERE {" AND ".join(conditions)}
        GROUP BY url"""


class ContentCache(EngagementCache):
    """The link reports' cache beside one report cache (its runner, clock and settings)."""

    worker_name = "content-cache"
    carried = CARRIED | frozenset(BY_VALUE_FILTERS)
    data_tables = (TABLES[0], BY_VALUE, VALUES)
    builds_table = TABLES[1]
    values_table = VALUES
    values_of = KINDS

    def days(self, scope: Scope) -> Days | None:
        """As `EngagementCache.days`; None also for a filter on a `BY_VALUE_FILTERS` dimension beside another."""
        if len(scope.filters) > 1 and any(f.dimension in BY_VALUE_FILTERS for f in scope.filters):
            return None
        return super().days(scope)

    def _insert_rows(self, params: dict[str, Any]) -> None:
        self.cache.runner.command(
            f"""INSERT INTO content_links (site, tz, day, build, kind, url, {_DIMS}, clicks, visitors)
            SELECT {{site:String}}, {{tz:String}}, d, {{build:UInt64}}, kind, url, {_DIMS}, clicks, visitors
            FROM ({_ROWS})""",
            params,
        )
        self.cache.runner.command(
            f"""INSERT INTO {BY_VALUE} (site, tz, dimension, value, day, build, kind, url, clicks, visitors)
            SELECT {{site:String}}, {{tz:String}}, dimension, value, d, {{build:UInt64}}, kind, url, clicks, visitors
            FROM ({_BY_VALUE_ROWS})""",
            params,
        )
        self._insert_values(params)


def for_cache(cache: ReportCache) -> ContentCache:
    """The content cache of `cache`'s store, kept beside its engagement cache (`engagement_cache.kept_beside`)."""
    return engagement_cache.kept_beside(cache, "content", ContentCache)
