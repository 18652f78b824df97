"""The filtered dashboard's per-day cache by filter value: the event numbers of the dashboard (visitors,
pageviews and events per day, and the event-level breakdowns in `DIMENSIONS`) split by the value of one
filter dimension of `FILTERS` (country, device, browser, os, source, channel, page), so that a dashboard whose
filters are all on one of those dimensions reads them from cached rows instead of the matching events.

Table (schema migration 22): `day_filter_dims`, per (site, zone, local day, build, `filter` dimension,
`filter_value`), the whole-day row (`dimension` '': visitors as a `uniqCombined(14)` state, pageviews,
events) and one row per (dimension, value) of `DIMENSIONS` (visitors as a `uniqCombined(12)` state,
pageviews, events), built from `events FINAL` (bots left out, copies collapsed) of that day's events with
that value, exactly as `day_dimensions` holds them for all of the day's events (`cache_sql`). Built,
validated, queued for the background and purged by the engagement cache's machinery
(`engagement_cache.EngagementCache`: its own builds table `day_filter_builds`, valid while the day's
inserted-row count is unchanged; one instance per report cache, `for_cache`).

Why a filter gives exactly the raw answer: every event has one value of each filter dimension, so the
events a filter on that dimension keeps (any operator: `filters.compare_sql` puts the condition
`filters.filter_sql` puts on the events' column on the `filter_value` column) are the union of the rows of
the values it keeps; pageviews and events are sums over those rows, and the visitors' sketch states merge
into the sketch of the union (the same functions as the raw query: `cache_sql.UNIQ_TOTAL`,
`cache_sql.UNIQ_VALUE`). Sessions (count, bounces, durations, entry / exit pages) depend on which of a
session's events a filter keeps: a session whose events of the day all have one value is summed with that
value (`day_filter_sessions`); the parts of the others (one per day and value: a session across a
midnight, or one that changes value, as most do between pages) are kept one row each
(`day_filter_session_edges`) and merged per session over the values the filter keeps when read.

Used (`days`) when the dashboard's filters are all on one dimension of `FILTERS`, leave bots out, cover
whole days in the site's zone and ask for day, week or month buckets, and every day of both periods has a
valid build or is cheap to build now; otherwise (a first long build is queued for the worker) the raw
path. Filters on two dimensions (source and device) read the raw path. Nothing here puts user text in SQL:
dimension names from allow-lists, dates and build ids made here, filter values as parameters.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pixel.server.api.query import cache_sql
from pixel.server.api.query.cache_sql import Days, Tag
from pixel.server.api.query.engagement_cache import EngagementCache
from pixel.server.api.query.filters import DIMENSIONS as EVENT_COLUMNS
from pixel.server.api.query.filters import Filter, SqlParams, compare_sql
from pixel.server.store.schema import EVENTS

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache
    from pixel.server.api.query.scope import Scope

TABLES = ("day_filter_dims", "day_filter_sessions", "day_filter_session_edges", "day_filter_builds")
# The filter dimensions (API names) the rows are split by: one value per event. The first six are constant
# in most sessions; a session's pages mostly are not, so most of its parts by page are edges (merged per
# session when read).
FILTERS = ("country", "device", "browser", "os", "source", "channel", "page")
# The event-level breakdowns kept per filter value: the standard dashboard's, its goals (`event`) and
# channel. `page` rows are the pageviews' paths, `event` rows the other events' names (as `cache_sql`).
DIMENSIONS = ("page", "event", "referrer", "source", "channel", "country", "browser", "os", "device")
_BY_COLUMN = tuple(d for d in DIMENSIONS if d not in ("page", "event"))
_DAY = "toDate(timestamp, {tz:String})"
_WINDOW = (
    "site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)}"
    f" AND is_bot = 0 AND has({{days:Array(Date)}}, {_DAY})"
)
_FILTER_NAMES = ", ".join(f"'{f}'" for f in FILTERS)  # allow-listed names, never user text
_FILTER_VALUES = ", ".join(f"CAST({EVENT_COLUMNS[f]} AS String)" for f in FILTERS)
_FILTER_JOIN = f"ARRAY JOIN [{_FILTER_NAMES}] AS f, [{_FILTER_VALUES}] AS fv"

# One row per (local day, filter dimension, its value, session): the session's part of the day among its
# events of that value, and whether the session has events of that dimension on another day or of another
# value (`edge`: kept per part and merged per session when read, as `cache_sql`'s fragments across
# midnight). The window reaches EDGE_SECONDS past the days built; rows outside them are only looked at.
_FRAGMENTS = f"""SELECT * FROM (
    SELECT d, f, fv, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts,
        count() OVER (PARTITION BY f, sid) > 1 AS edge
    FROM (
        SELECT {_DAY} AS d, f, fv, cityHash64(session_id) AS sid, min(timestamp) AS first_ts,
            max(timestamp) AS last_ts, countIf(event_name = 'pageview') AS pv,
            anyIf(visitor_id, event_name = 'pageview') AS pv_visitor,
            argMinIf(path, (timestamp, path), event_name = 'pageview') AS entry,
            minIf(timestamp, event_name = 'pageview') AS entry_ts,
            argMaxIf(path, (timestamp, path), event_name = 'pageview') AS exit,
            maxIf(timestamp, event_name = 'pageview') AS exit_ts
        FROM {EVENTS} {_FILTER_JOIN}
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0
        GROUP BY d, f, fv, sid))
    WHERE has({{days:Array(Date)}}, d)"""


class FilterCache(EngagementCache):
    """The dashboard's cache by filter value beside one report cache (its runner, clock and settings)."""

    worker_name = "filter-cache"
    data_tables = TABLES[:3]
    builds_table = TABLES[3]
    carried = frozenset(FILTERS)

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """Build `build`'s rows of the days `days`: the whole-day rows, then the breakdown rows."""
        head = "{site:String}, {tz:String}, d, {build:UInt64}, f, fv"
        runner = self.cache.runner
        runner.command(
            f"""INSERT INTO {TABLES[0]}
            (site, tz, day, build, filter, filter_value, dimension, value, visitors_total, pageviews, events)
            SELECT {head}, '', '', vt, pv, ev FROM (
                SELECT {_DAY} AS d, f, fv, {cache_sql.UNIQ_TOTAL.replace("(", "State(", 1)}(visitor_id) AS vt,
                    countIf(event_name = 'pageview') AS pv, count() AS ev
                FROM {EVENTS} {_FILTER_JOIN}
                WHERE {_WINDOW} GROUP BY d, f, fv)""",
            params,
        )
        names = ", ".join(f"'{d}'" for d in _BY_COLUMN)
        values = ", ".join(f"CAST({EVENT_COLUMNS[d]} AS String)" for d in _BY_COLUMN)
        runner.command(
            f"""INSERT INTO {TABLES[0]}
            (site, tz, day, build, filter, filter_value, dimension, value, visitors, pageviews, events)
            SELECT {head}, dim, val, v, pv, ev FROM (
                SELECT {_DAY} AS d, f, fv, dim, val, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS v,
                    countIf(event_name = 'pageview') AS pv, count() AS ev
                FROM {EVENTS} {_FILTER_JOIN}
                ARRAY JOIN arrayConcat([if(event_name = 'pageview', 'page', 'event')], [{names}]) AS dim,
                    arrayConcat([if(event_name = 'pageview', path, CAST(event_name AS String))], [{values}]) AS val
                WHERE {_WINDOW} GROUP BY d, f, fv, dim, val)""",
            params,
        )
        runner.command(
            f"""INSERT INTO {TABLES[1]} (site, tz, day, build, filter, filter_value, dimension, value, visitors,
                pageviews, sessions, bounces, duration_ms)
            SELECT {head}, dim, val, v, spv, sessions, bounces, duration_ms FROM (
                SELECT d, f, fv, dim, val, {cache_sql.UNIQ_VALUE_STATE}(pv_visitor) AS v, sum(pv) AS spv,
                    count() AS sessions, countIf(pv <= 1) AS bounces,
                    sum(toUInt64(dateDiff('millisecond', first_ts, last_ts))) AS duration_ms
                FROM ({_FRAGMENTS})
                ARRAY JOIN if(pv > 0, ['{cache_sql.SESSIONS}', 'entry_page', 'exit_page'], ['{cache_sql.SESSIONS}']) AS dim,
                    if(pv > 0, ['', entry, exit], ['']) AS val
                WHERE NOT edge
                GROUP BY d, f, fv, dim, val)""",
            params,
        )
        runner.command(
            f"""INSERT INTO {TABLES[2]} (site, tz, day, build, filter, filter_value, sid, first_ts, last_ts,
                pageviews, pv_visitor, entry, entry_ts, exit, exit_ts)
            SELECT {head}, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
            FROM ({_FRAGMENTS}) WHERE edge""",
            params,
        )


def one_dimension(filters: list[Filter]) -> str | None:
    """The filter dimension of `FILTERS` every filter is on, or None (no filter, two dimensions, others)."""
    found = {f.dimension for f in filters}
    if len(found) != 1:
        return None
    (name,) = found
    return name if name in FILTERS else None


def days(scope: Scope, interval: str) -> Days | None:
    """The scope's whole days with their valid builds (building the changed ones now), or None: read the
    raw events (see the module docstring for when)."""
    if (
        scope.cache is None
        or interval not in ("day", "week", "month")
        or one_dimension(scope.filters) is None
    ):
        return None
    return for_cache(scope.cache).days(scope)


def _rows(
    days: Days,
    filters: list[Filter],
    params: SqlParams,
    columns: str,
    dimensions: str,
    table: str = TABLES[0],
) -> str:
    """The cached rows of `table` for `days` and the values `filters` keep (their one dimension), `dimensions`
    a condition on the rows, with `columns`."""
    name = one_dimension(filters)
    if name is None:
        raise ValueError(f"the filter cache answers filters on one of {', '.join(FILTERS)}")
    # The condition `filter_sql` puts on the events' column, on the value column (beside the others: read
    # while the rows are read, cheaper where a filter keeps few of many values, as for pages).
    keep = " AND ".join(compare_sql("filter_value", f.operator, params.add(f.value)) for f in filters)
    return f"""(SELECT {columns} FROM {table}
            WHERE {days.rows_where()} AND filter = '{name}' AND {dimensions} AND {keep})"""


def totals_sql(
    days: Days, filters: list[Filter], params: SqlParams, interval: str, total: Tag | None, series: Tag | None
) -> str:
    """`raw_dashboard`'s events branch from the cache: visitors, pageviews, events for the range (`total`)
    and/or per bucket (`series`) of the events `filters` keep."""
    tag, bucket, group = cache_sql.tag_grouping(total, series, cache_sql.day_bucket(interval, "day"))
    rows = _rows(
        days, filters, params, "day, visitors_total AS vt, pageviews AS pv, events AS ev", "dimension = ''"
    )
    return f"""SELECT {tag} AS tag, {bucket} AS bucket,
            toUInt64(uniqCombinedMerge(14)(vt)) AS visitors, toUInt64(sum(pv)) AS pageviews,
            toUInt64(sum(ev)) AS events, toUInt64(0) AS sessions, toUInt64(0) AS session_pageviews,
            toUInt64(0) AS bounces, toUInt64(0) AS duration_ms, toUInt64(sum(ev)) AS total_rows,
            toUInt64(0) AS session_rows, toUInt64(0) AS first_rank
        FROM {rows} GROUP BY {group}"""


def breakdowns_per_value(days: Days, filters: list[Filter], params: SqlParams, dimensions: list[str]) -> str:
    """Rows `dimension, value, st, pageviews, events, sessions` of the breakdowns by `dimensions` (names in
    `DIMENSIONS`) of the events `filters` keep, as `raw_dashboard`'s event branch gives them to `_ranked`."""
    if any(d not in DIMENSIONS for d in dimensions):
        raise ValueError(f"the filter cache keeps the breakdowns by {', '.join(DIMENSIONS)}")
    names = ", ".join(f"'{d}'" for d in dimensions)  # validated names, never user text
    rows = _rows(
        days,
        filters,
        params,
        "dimension, value, visitors AS v, pageviews AS pv, events AS ev",
        f"dimension IN ({names})",
    )
    return f"""SELECT dimension, value, {cache_sql.UNIQ_VALUE_MERGE.replace("Merge", "MergeState", 1)}(v) AS st,
            sum(pv) AS pageviews, sum(ev) AS events, toUInt64(0) AS sessions
        FROM {rows} GROUP BY dimension, value"""


# Digits of an event's epoch milliseconds in the entry / exit keys: enough up to DateTime64(3)'s last year.
# The keys order as times only because no stored time is before 1970 (the shipper takes the receive time for
# an older one; every importer refuses it as malformed), so no key has a minus sign.
_MS_DIGITS = 15


def _edges(days: Days, filters: list[Filter], params: SqlParams) -> str:
    """The kept parts of sessions across a midnight or a change of value, merged per session over the range
    (one row each, as `cache_sql.edges_sql`)."""
    columns = "sid, first_ts, last_ts, pageviews, pv_visitor, entry, entry_ts, exit, exit_ts"
    rows = _rows(days, filters, params, columns, "1", TABLES[2])
    # The entry: the path of the least (time, path), as `filters.SESSION_DIMENSIONS`; compared as one string,
    # the time's epoch milliseconds in fixed-width digits then the path (cheaper than a tuple per row). The
    # exit likewise with the greatest.
    entry, exit_ = (
        f"concat(leftPad(toString(toUnixTimestamp64Milli({ts})), {_MS_DIGITS}, '0'), {path})"
        for ts, path in (("entry_ts", "entry"), ("exit_ts", "exit"))
    )
    return f"""SELECT sid, min(first_ts) AS first_ts, max(last_ts) AS last_ts, sum(pageviews) AS pv,
            argMinIf(pv_visitor, entry_ts, pageviews > 0) AS pv_visitor,
            substring(minIf({entry}, pageviews > 0), {_MS_DIGITS + 1}) AS entry,
            substring(maxIf({exit_}, pageviews > 0), {_MS_DIGITS + 1}) AS exit
        FROM {rows} GROUP BY sid"""


def sessions_sql(
    days: Days, filters: list[Filter], params: SqlParams, interval: str, total: Tag | None, series: Tag | None
) -> str:
    """`raw_dashboard`'s sessions branch from the cache: sessions, their pageviews, bounces and durations of
    the events `filters` keep, for the range and/or per bucket of the session's first kept event, tagged
    with the parts' `edges` tags as that branch."""
    tag, bucket, group = cache_sql.tag_grouping(
        total.edges if total else None, series.edges if series else None, cache_sql.day_bucket(interval, "d")
    )
    sums = _rows(
        days,
        filters,
        params,
        "day AS d, sessions AS n, pageviews AS spv, bounces AS b, duration_ms AS du",
        f"dimension = '{cache_sql.SESSIONS}'",
        TABLES[1],
    )
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, toUInt64(0) AS visitors, toUInt64(0) AS pageviews,
            toUInt64(0) AS events, toUInt64(sum(n)) AS sessions, toUInt64(sum(spv)) AS session_pageviews,
            toUInt64(sum(b)) AS bounces, toUInt64(sum(du)) AS duration_ms, toUInt64(0) AS total_rows,
            toUInt64(sum(n)) AS session_rows, toUInt64(0) AS first_rank
        FROM (SELECT d, n, spv, b, du FROM {sums}
              UNION ALL
              SELECT toDate(first_ts, {{tz:String}}) AS d, toUInt64(1) AS n, pv AS spv, toUInt64(pv <= 1) AS b,
                  toUInt64(dateDiff('millisecond', first_ts, last_ts)) AS du
              FROM ({_edges(days, filters, params)}))
        GROUP BY {group}"""


def entry_exit_per_value(days: Days, filters: list[Filter], params: SqlParams, dimensions: list[str]) -> str:
    """Rows `dimension, value, st, pageviews, events, sessions` of `entry_page` / `exit_page` (`dimensions`)
    over the sessions with a kept pageview, as `raw_dashboard`'s entry / exit branch gives them to `_ranked`."""
    if any(d not in cache_sql.SESSION_KINDS for d in dimensions):
        raise ValueError("entry_exit_per_value takes entry_page and exit_page only")
    kinds = ", ".join(f"'{d}'" for d in dimensions)
    columns = ", ".join("entry" if d == "entry_page" else "exit" for d in dimensions)
    sums = _rows(
        days,
        filters,
        params,
        "dimension, value, visitors AS v, sessions",
        f"dimension IN ({kinds})",
        TABLES[1],
    )
    return f"""SELECT dimension, value, {cache_sql.UNIQ_VALUE_MERGE.replace("Merge", "MergeState", 1)}(v) AS st,
            toUInt64(0) AS pageviews, toUInt64(0) AS events, toUInt64(sum(n)) AS sessions
        FROM (SELECT dimension, value, v, sessions AS n FROM {sums}
              UNION ALL
              SELECT dimension, value, {cache_sql.UNIQ_VALUE_STATE}(pv_visitor) AS v, count() AS n
              FROM ({_edges(days, filters, params)})
              ARRAY JOIN [{kinds}] AS dimension, [{columns}] AS value
              WHERE pv > 0 GROUP BY dimension, value)
        GROUP BY dimension, value"""


_MAKING = threading.Lock()


def for_cache(cache: ReportCache) -> FilterCache:
    """The filter cache of `cache`'s store (one per report cache, so per app), kept on the report cache."""
    with _MAKING:
        found: FilterCache | None = cache.filtered
        if found is None:
            found = cache.filtered = FilterCache(cache)
        return found
