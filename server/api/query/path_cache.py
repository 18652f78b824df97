"""Journeys' per-day cache of session paths: per (site, zone, local day) one row per session whose first pageview
falls on the day, holding its whole path, so that a journeys request reads the chosen days' rows instead of
gathering every session's pageviews from the events (`journeys.session_rows_sql`).

Table (schema migration 35): `day_session_paths`, per (site, zone, local day, build) and session (its
`session_hash`, bots left out): `seq`, the session's pageviews' paths in (time, path) order with a page equal to
the one before it folded (a reload, or a copy of an event: it has its original's time and path), as the route
builds it with `collapse_repeats` and no page groups; `first_view`, its first pageview; its session-level
dimensions (`sessions.COLUMNS`), the value its events hold, and `mixed` when they disagree on one of them. A day's
rows are read from the events `SESSION_REACH` either side of it, as the route reads around a range of that one
day: a session crossing local midnight is whole on the day it started. Built, validated, queued for the background
and purged by the engagement cache's machinery (`engagement_cache.EngagementCache`, its own builds table), except
that a day's build is valid while the rows inserted within `SESSION_REACH` of it are unchanged (`_counts`): a
page a session views the next day changes its path.

Used (`rows_sql`) when the request folds repeats, has no page groups, leaves bots out, covers whole days in the
site's zone, and its filters are all on session-level dimensions (`session_dashboard.SESSION_FILTERS`); otherwise
the route reads the events. A filter keeps a session when one of its events matches every filter: for a session
whose events agree (not `mixed`) that is a condition on its columns; the mixed ones are matched against the route's
own set of sessions (`journeys.filter_set_sql`), only when the chosen days hold one.

Known difference from the route: a session with pageviews more than `SESSION_REACH` past the end of the day it
started on is cut there (the route reads up to `SESSION_REACH` past the range's end), and one with events more
than `SESSION_REACH` before that day is taken as starting on it. Nothing here puts user text in SQL: the columns
are allow-listed, days and build ids made here, filter values as parameters.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pixel.server.api.query import journeys
from pixel.server.api.query.engagement_cache import EngagementCache, kept_on
from pixel.server.api.query.filters import SqlParams, filter_sql
from pixel.server.api.query.journeys import SESSION_REACH, JourneyQuery
from pixel.server.api.query.periods import ch_datetime, local_midnight
from pixel.server.api.query.session_dashboard import SESSION_FILTERS
from pixel.server.store.sessions import COLUMNS

if TYPE_CHECKING:
    from pixel.server.api.query.filters import Filter
    from pixel.server.api.query.report_cache import ReportCache
    from pixel.server.api.query.scope import Scope

TABLES = ("day_session_paths", "day_session_path_builds")
_DIMS = tuple(c for c in COLUMNS if c != "is_bot")
# An hour's inserted rows can change the paths of the days within this many seconds of it (a day's window
# reaches `SESSION_REACH` either side; an hour more for a day of 25 hours).
_REACH_SECONDS = int(SESSION_REACH.total_seconds()) + 3600

_BUILD = f"""INSERT INTO {TABLES[0]} (site, tz, day, build, sid, first_view, seq, mixed, {", ".join(_DIMS)})
    SELECT {{site:String}}, {{tz:String}}, {{day:Date}}, {{build:UInt64}}, session_hash, minIf(timestamp, pv) AS first,
        arrayFilter((p, i) -> i = 1 OR p != raw[i - 1],
            arraySort((p, t) -> (t, p), groupArrayIf(path, pv), groupArrayIf(timestamp, pv)) AS raw,
            arrayEnumerate(raw)),
        uniqExact(({", ".join(_DIMS)})) > 1, {", ".join(f"any({c})" for c in _DIMS)}
    FROM (
        SELECT session_hash, timestamp, path, event_name = 'pageview' AS pv, {", ".join(_DIMS)} FROM events
        PREWHERE site = {{site:String}} AND timestamp >= {{lo:DateTime64(3)}} AND timestamp < {{hi:DateTime64(3)}}
            AND is_bot = 0)
    GROUP BY session_hash
    HAVING countIf(pv) > 0 AND first >= {{d0:DateTime64(3)}} AND first < {{d1:DateTime64(3)}}"""


class PathCache(EngagementCache):
    """The journeys' cache of session paths beside one report cache (its runner, clock and settings)."""

    worker_name = "path-cache"
    data_tables = (TABLES[0],)
    session_tables = ()
    builds_table = TABLES[1]

    def carries(self, filters: list[Filter]) -> bool:
        return all(f.dimension in SESSION_FILTERS for f in filters)

    def _counts(self, params: dict[str, Any]) -> dict[str, int]:
        """Rows inserted so far per local day of `first` .. `last`, each hour counted for every day whose
        window (`SESSION_REACH` either side) it touches."""
        first, last = date.fromisoformat(params["first"]), date.fromisoformat(params["last"])
        return {
            str(day): int(rows)
            for day, rows in self.cache.runner.query(
                """SELECT day, sum(rows) FROM event_counts
                    ARRAY JOIN arrayMap(i -> toDate(hour - {reach:UInt32}, {tz:String}) + i,
                        range(toUInt32(toDate(hour + 3599 + {reach:UInt32}, {tz:String})
                            - toDate(hour - {reach:UInt32}, {tz:String})) + 1)) AS day
                    WHERE site = {site:String} AND hour >= {lo:DateTime} AND hour < {hi:DateTime}
                        AND day >= {first:Date} AND day <= {last:Date}
                    GROUP BY day""",
                {
                    **params,
                    "reach": _REACH_SECONDS,
                    "lo": f"{first - timedelta(days=3)} 00:00:00",
                    "hi": f"{last + timedelta(days=4)} 00:00:00",
                },
            ).rows
        }

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """Build `build`'s rows of the days `days`, one statement per day (each reads its own window)."""
        zone = ZoneInfo(params["tz"])
        for day in params["days"]:
            d0, d1 = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
            self.cache.runner.command(
                _BUILD,
                {
                    "site": params["site"],
                    "tz": params["tz"],
                    "day": day,
                    "build": params["build"],
                    "lo": ch_datetime(d0 - SESSION_REACH),
                    "hi": ch_datetime(d1 + SESSION_REACH),
                    "d0": ch_datetime(d0),
                    "d1": ch_datetime(d1),
                },
            )


def rows_sql(scope: Scope, q: JourneyQuery, params: SqlParams) -> str | None:
    """`journeys.session_rows_sql` read from the cache (each chosen session's `seq`, `pages` and `complete`),
    or None when the cache cannot answer (see the module docstring)."""
    if scope.cache is None or scope.include_bots or not q.collapse_repeats or q.all_groups():
        return None
    cache = for_cache(scope.cache)
    days = cache.days(scope)
    if days is None:
        return None
    pages, complete, keep = journeys.shape_sql(q, params)
    rows = days.rows_where()
    where = f"{rows} AND first_view >= {{start:DateTime64(3)}} AND first_view < {{end:DateTime64(3)}}"
    if scope.filters:
        cond = " AND ".join(f"({filter_sql(f, params)})" for f in scope.filters)
        mixed = cache.cache.runner.query(
            f"SELECT count() FROM (SELECT 1 FROM {TABLES[0]} WHERE {rows} AND mixed LIMIT 1)",
            {"site": scope.site, "tz": scope.range.tz},
        ).scalar()
        if mixed:  # the route's set of sessions, for the mixed ones only
            where += f" AND ((NOT mixed AND {cond}) OR (mixed AND sid IN ({journeys.filter_set_sql(scope, params)})))"
        else:
            where += f" AND {cond}"
    return f"""SELECT seq, {pages} AS pages, {complete} AS complete FROM {TABLES[0]}
        PREWHERE {where} WHERE {keep}"""


def for_cache(cache: ReportCache) -> PathCache:
    """The path cache of `cache`'s store (one per report cache, so per app), kept on the report cache."""
    return kept_on(cache, "paths", PathCache)
