"""The engagement report's per-day cache: per (site, zone, local day, page) the figures of `engagement`,
built from the raw events and valid while the day's inserted-row count is unchanged.

It follows the report cache (`report_cache.ReportCache`, whose settings and clock it shares: one
`EngagementCache` per `ReportCache`, made on first use by `for_cache`): a day's build records the rows
inserted over the day widened by `EDGE_SECONDS` (`event_counts`), and the day is rebuilt before it is read
once that count moved (a late event, a retried copy), unless its last build is younger than the report
cache's `rebuild_min_seconds` (today's figures lag by at most that long while events stream in). Days never
built that hold more than its `background_min_rows` events are built by a worker thread, one day per step,
while the report reads the raw events; days past the retention read as empty (`expired_before`) and their
rows are deleted once a day.

What a day holds (schema migration 8): a *page visit* is a page in a session (see `engagement`). The
visits of the sessions seen only inside the day (looking `EDGE_SECONDS` past both ends, as the report
cache does) are summed per page in `page_engagement`: visitors as a `uniqCombined(12)` state (merges to
the raw sketch), pageviews, the engaged time of each visit that reported one as an exact
`quantilesExactIf(0.5, 0.75)` state (the merge of the days' states is the raw `quantileExact`: the cached
median and p75 are exact, no tolerance), the scroll marks reached, the entries, bounces and exits of
those sessions, and the number of visits and of visits with one pageview (migration 26). The visits of
sessions with page events on more than one day go to `page_engagement_edges`, one row per (day, session,
page), and are merged per session over the range when read, so a session across midnight has one entry and
one exit and one visit per page, as on the raw path.
A session whose events are more than `EDGE_SECONDS` apart across a midnight (possible only with a longer
tracker timeout) would count as two sessions, as in the report cache.

Used when the report has no filters, leaves bots out and covers whole days in the site's zone (today
included); everything else reads the raw events (`engagement.engagement`). Nothing here puts user text in
SQL: dates, build ids and integers made here; the site and zone as parameters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from pixel.server.api.query.background_days import BackgroundDays
from pixel.server.api.query.cache_sql import EDGE_SECONDS, Days, whole_days
from pixel.server.api.query.listing import deduped
from pixel.server.api.query.periods import ch_datetime, local_midnight
from pixel.server.store.schema import KEYS_UNKNOWN, VALUES_KEPT

if TYPE_CHECKING:
    from pixel.server.api.query.filters import Filter
    from pixel.server.api.query.report_cache import ReportCache
    from pixel.server.api.query.scope import Scope

SCROLL_MARKS = (25, 50, 75, 100)
DROP_AFTER_REBUILDS = 20  # superseded builds of rebuilt days are deleted after this many rebuilds
TABLES = ("page_engagement", "page_engagement_edges", "page_engagement_builds")
SESSION_TABLES = ("page_sessions", "page_session_edges")  # each session's pageview paths (migration 29)
VALUES = "page_values"  # each page's titles and property values per day (migration 38, `page_value_filters`)
PAGE_EVENTS = ("pageview", "engagement", "scroll")  # the events of a page visit
log = logging.getLogger(__name__)

_DAY = "toDate(timestamp, {tz:String})"


def _with(dims: tuple[str, ...]) -> str:
    """`dims` as extra columns of a SELECT or GROUP BY (empty, or ", a, b")."""
    return "".join(f", {d}" for d in dims)


def _fragments(dims: tuple[str, ...] = ()) -> str:
    """A page visit's part in one local day (and one value of each of `dims`), from the deduplicated page
    events of the build window; `edge`: its session has parts on more than one day (or value of `dims`)."""
    extra = _with(dims)
    return f"""SELECT d, sid, path{
        extra
    }, visitor_id, pv, first_pv, last_pv, engaged, has_engaged, depth, has_scroll,
        uniqExact(d{extra}) OVER (PARTITION BY sid) > 1 AS edge
    FROM (
        SELECT {_DAY} AS d, cityHash64(session_id) AS sid, path{extra}, any(visitor_id) AS visitor_id,
            countIf(event_name = 'pageview') AS pv,
            minIf(timestamp, event_name = 'pageview') AS first_pv, maxIf(timestamp, event_name = 'pageview') AS last_pv,
            sumIf(toUInt64(engaged_ms), event_name = 'engagement') AS engaged,
            toUInt8(countIf(event_name = 'engagement') > 0) AS has_engaged,
            maxIf(scroll_depth, event_name = 'scroll') AS depth, toUInt8(countIf(event_name = 'scroll') > 0) AS has_scroll
        FROM {
        deduped(
            "site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)} "
            "AND is_bot = 0 AND event_name IN ('pageview', 'engagement', 'scroll')",
            f"session_id, path{extra}, visitor_id, event_name, engaged_ms, scroll_depth",
        )
    }
        GROUP BY d, sid, path{extra})"""


_MARKS = ", ".join(f"countIf(has_scroll AND depth >= {m}) AS s{m}" for m in SCROLL_MARKS)
# Per page, from page visits (one row per session and page, pv > 0): the figures of the visits themselves
# (`_FIGURES`), then the entries, bounces and exits of their sessions and the visit counts.
_FIGURES = f"""uniqCombinedState(12)(visitor_id) AS visitors, sum(pv) AS pageviews,
    countIf(has_engaged) AS engaged_visits, quantilesExactIfState(0.5, 0.75)(engaged, has_engaged) AS engaged_q,
    countIf(has_scroll) AS scroll_visits, {_MARKS}"""
_COUNTS = "count() AS visits, countIf(pv = 1) AS single_visits"
# ... with each visit's session entry / exit placed (`_PLACED`)
_PER_PAGE = f"""{_FIGURES},
    countIf(path = entry_path) AS entries, countIf(path = entry_path AND session_pv <= 1) AS bounces,
    countIf(path = exit_path) AS exits, {_COUNTS}"""
# ... with each visit's flags stored (a cache that keeps its whole-day visits one row each, `per_visit`)
_PER_VISIT_PAGE = f"{_FIGURES}, sum(entry) AS entries, sum(bounce) AS bounces, sum(exit) AS exits, {_COUNTS}"
_PLACED = """argMin(path, (first_pv, path)) OVER (PARTITION BY sid) AS entry_path,
    argMax(path, (last_pv, path)) OVER (PARTITION BY sid) AS exit_path,
    sum(pv) OVER (PARTITION BY sid) AS session_pv"""
_COLUMNS = (
    "visitors, pageviews, engaged_visits, engaged, scroll_visits, s25, s50, s75, s100, entries, bounces, exits, "
    "visits, single_visits"
)
_SELECTED = _COLUMNS.replace(" engaged,", " engaged_q,")  # the same columns as _PER_PAGE names them
_RENAMED = _COLUMNS.replace(" engaged,", " engaged_q AS engaged,")  # _PER_PAGE's columns named as _COLUMNS
_VISIT = "visitor_id, pv, first_pv, last_pv, engaged, has_engaged, depth, has_scroll"
# A whole-day visit's row in a `per_visit` cache: its figures and whether its session entered, bounced or left
_PER_VISIT = "visitor_id, pv, engaged, has_engaged, depth, has_scroll, entry, bounce, exit"


# Each session's pageviews on one local day of the build window as sorted (time, path) pairs, copies collapsed;
# `edge`: its pageviews lie on more than one day (the order a filter on the page cuts, see `page_ends_sql`).
_SESSION_PARTS = f"""SELECT d, sid, pairs, uniqExact(d) OVER (PARTITION BY sid) > 1 AS edge
    FROM (
        SELECT {_DAY} AS d, cityHash64(session_id) AS sid, arraySort(groupArray((timestamp, path))) AS pairs
        FROM {
    deduped(
        "site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)} "
        "AND is_bot = 0 AND event_name = 'pageview'",
        "session_id, path",
    )
}
        GROUP BY d, sid)"""


def page_ends_sql(days: Days, keep: str) -> str:
    """Per page (`page_hash`: the `cityHash64` of its path): the sessions of `days` whose first pageview
    among those `keep` keeps (a condition on `path`) was on it (`entries`), those of them with that one
    pageview kept (`bounces`), and those whose last kept pageview was there (`exits`), from the sessions'
    ordered pages (`SESSION_TABLES`; the parts of a session across a midnight put together in day order). What the
    raw events give: first and last by (time, path), a copy of a pageview collapsed (one `event_id` on one
    day).

    `keep` is evaluated once per distinct path of the range (the paths of the cache's page rows), not per
    pageview: the sessions' pages are matched against the hashes of the kept paths. Two paths of one site
    with one 64-bit hash would be taken for one page here."""
    rows = days.rows_where()
    sessions, edges = SESSION_TABLES
    kept = f"""SELECT cityHash64(path) FROM (
        SELECT path FROM {TABLES[0]} WHERE {rows} AND ({keep})
        UNION ALL
        SELECT path FROM {TABLES[1]} WHERE {rows} AND ({keep}))"""
    return f"""SELECT e.1 AS page_hash, sum(e.2) AS entries, sum(e.3) AS bounces, sum(e.4) AS exits
    FROM (
        SELECT arrayJoin([(k[1], 1, toUInt8(length(k) = 1), 0), (k[-1], 0, 0, 1)]) AS e
        FROM (
            SELECT arrayFilter(h -> h IN ({kept}), pages) AS k FROM {sessions} WHERE {rows}
            UNION ALL
            SELECT arrayFilter(h -> h IN ({kept}), arrayFlatten(arrayMap(x -> x.2, arraySort(groupArray((day, pages))))))
                AS k
            FROM {edges} WHERE {rows} GROUP BY sid)
        WHERE notEmpty(k))
    GROUP BY page_hash"""


def _whole_day_visits(dims: tuple[str, ...]) -> str:
    """The visits of the build's days whose sessions lie in one day (and one value of each of `dims`), each
    with its session's entry / exit placed."""
    return f"""SELECT *, {_PLACED} FROM ({_fragments(dims)})
        WHERE NOT edge AND pv > 0 AND has({{days:Array(Date)}}, d)"""


def _pages_select(dims: tuple[str, ...] = ()) -> str:
    return f"SELECT d, path{_with(dims)}, {_PER_PAGE} FROM ({_whole_day_visits(dims)}) GROUP BY d, path{_with(dims)}"


# A placed visit's (`_PLACED`) flags as a `per_visit` row stores them
_FLAGS = """toUInt8(path = entry_path) AS entry, toUInt8(path = entry_path AND session_pv <= 1) AS bounce,
    toUInt8(path = exit_path) AS exit"""


def _visits_select(dims: tuple[str, ...]) -> str:
    return f"""SELECT d, path{_with(dims)}, visitor_id, pv, engaged, has_engaged, depth, has_scroll, {_FLAGS}
    FROM ({_whole_day_visits(dims)})"""


def _merged_visits(parts: str, keys: tuple[str, ...], taken: tuple[str, ...] = ()) -> str:
    """The page visits of the edge parts in `parts` (a table and its condition, or a subquery: `_VISIT`
    columns), merged per `keys` (a visit: the session and page, and what else tells parts apart): pageviews
    and engaged time summed, first / last pageview, deepest scroll and flags by min / max, the visitor and the
    columns `taken` (the same in every part merged) with `any`; only visits with a pageview, each column under
    its parts' name. What the raw query gets from the same events."""
    keyed = ", ".join(keys)
    takes = "".join(f", any({c}) AS m_{c}" for c in taken)
    named = "".join(f", m_{c} AS {c}" for c in taken)
    return f"""SELECT {keyed}{named}, m_visitor AS visitor_id, m_pv AS pv, m_first AS first_pv, m_last AS last_pv,
        m_engaged AS engaged, m_has_engaged AS has_engaged, m_depth AS depth, m_has_scroll AS has_scroll
    FROM (
        SELECT {keyed}{takes}, any(visitor_id) AS m_visitor, sum(pv) AS m_pv,
            minIf(first_pv, pv > 0) AS m_first, max(last_pv) AS m_last, sum(engaged) AS m_engaged,
            max(has_engaged) AS m_has_engaged, max(depth) AS m_depth, max(has_scroll) AS m_has_scroll
        FROM {parts}
        GROUP BY {keyed} HAVING m_pv > 0)"""


def _edges_select(dims: tuple[str, ...] = (), mixed: bool = False) -> str:
    if not mixed:
        return f"""SELECT d, sid, path{_with(dims)}, {_VISIT}
        FROM ({_fragments(dims)}) WHERE edge AND has({{days:Array(Date)}}, d)"""
    # the masks over all of a session's edge parts, those outside the build's days too (filtered after)
    return f"""SELECT d, sid, path{_with(dims)}, {_VISIT}, mixed, many
    FROM (SELECT *, {_masks(dims)} FROM ({_fragments(dims)}) WHERE edge)
    WHERE has({{days:Array(Date)}}, d)"""


# `mixed` and `many` of a session lying on more than one day: every bit set
ALL_MIXED = 2**64 - 1
# The rows of a cache table written by build `{build}` for the days `{days}`
_BUILD_ROWS = (
    "site = {site:String} AND tz = {tz:String} AND build = {build:UInt64} AND has({days:Array(Date)}, day)"
)


def _masks(dims: tuple[str, ...]) -> str:
    """Over the edge parts of a session: `mixed`, bit i set when they hold more than one value of `dims[i]`, and
    `many`, more than two (every bit of both when they lie on more than one day)."""
    if len(dims) > 63:
        raise ValueError("at most 63 dimensions fit the masks")
    over = "OVER (PARTITION BY sid)"

    def mask(more_than: int) -> str:
        bits = " + ".join(
            f"bitShiftLeft(toUInt64(uniqUpTo(2)({d}) {over} > {more_than}), {i})" for i, d in enumerate(dims)
        )
        return f"if(uniqUpTo(1)(d) {over} > 1, {ALL_MIXED}, {bits or '0'})"

    return f"{mask(1)} AS mixed, {mask(2)} AS many"


def sums_per_value_sql(visits: str, target: str, dims: tuple[str, ...], edges: str | None = None) -> str:
    """INSERT into `target` (`page_engagement`'s columns, keyed by `dimension` and `value` too) the whole-day
    visits of build `{build}` of the days `{days}` in `visits` (a `per_visit` pages table split by `dims`),
    summed per (day, page) for each value of each of `dims`: what `page_engagement` holds, once per value.

    With `edges` (a `mixed` edges table beside `visits`), the visits of its sessions that lie in one day are
    summed too, each visit's parts merged and its session's entry / exit placed over the session, for each
    dimension its session holds one value of (bit i of `mixed` clear). A filter on such a dimension keeps all
    of the session's events or none, so those sums are its whole contribution or nothing, as those of `visits`;
    the session's parts stay in `edges` for the dimensions it mixes."""
    names = ", ".join(f"'{d}'" for d in dims)  # the events' column names, constants here
    bits = ", ".join(str(i) for i in range(len(dims)))
    rows = _BUILD_ROWS
    columns = f"site, tz, day, build, path{_with(dims)}, {_PER_VISIT}"
    source = f"SELECT {columns}, toUInt64(0) AS mixed FROM {visits} WHERE {rows}"
    if edges is not None:
        # a session's parts hold its one value of each dimension whose `mixed` bit is clear: taken with `any`
        merged = _merged_visits(
            f"{edges} WHERE {rows} AND mixed != {ALL_MIXED}",
            ("sid", "path"),
            ("site", "tz", "day", "build", "mixed", *dims),
        )
        source += f"""
        UNION ALL
        SELECT {columns}, mixed FROM (SELECT *, {_FLAGS} FROM (SELECT *, {_PLACED} FROM ({merged})))"""
    return f"""INSERT INTO {target} (site, tz, dimension, value, day, build, path, {_COLUMNS})
    SELECT site, tz, dimension, value, day, build, path, {_SELECTED} FROM (
        SELECT site, tz, dimension, value, day, build, path, {_PER_VISIT_PAGE}
        FROM ({source})
        ARRAY JOIN [{names}] AS dimension, [{", ".join(dims)}] AS value, [{bits}] AS bit
        WHERE NOT bitTest(mixed, bit)
        GROUP BY site, tz, dimension, value, day, build, path)"""


def sums_per_pair_sql(edges: str, target: str, dims: tuple[str, ...]) -> str:
    """INSERT into `target` (`page_engagement_by_pair`'s columns) the visits of build `{build}` of the days
    `{days}` in `edges` (a `mixed` edges table split by `dims`) whose sessions lie in one day and hold two
    values of a dimension (its bit of `mixed` set, of `many` clear), summed per (day, page) for each such
    dimension and its values: per value, the part of each session with that value (`whole` 0: its parts merged
    per visit, the entry and exit placed within that part), and once per pair the whole sessions (`whole` 1).
    What a filter on that dimension alone keeps of such a session is one of these or nothing."""
    names = ", ".join(f"'{d}'" for d in dims)
    bits = ", ".join(str(i) for i in range(len(dims)))
    rows = _BUILD_ROWS
    placed = _PLACED.replace("PARTITION BY sid", "PARTITION BY dimension, whole, value, sid")
    # each part's rows once per dimension it holds two values of, with the session's two values (`lo`, `hi`),
    # then once as that value's part (`whole` 0) and once as the whole session (`whole` 1, keyed by `lo`)
    parts = f"""(
        SELECT *, whole, if(whole, lo, v) AS value, if(whole OR v = lo, hi, lo) AS other
        FROM (
            SELECT site, tz, day, build, sid, path, {_VISIT}, dimension, v,
                min(v) OVER (PARTITION BY dimension, sid) AS lo, max(v) OVER (PARTITION BY dimension, sid) AS hi
            FROM {edges} ARRAY JOIN [{names}] AS dimension, [{", ".join(dims)}] AS v, [{bits}] AS bit
            WHERE {rows} AND mixed != {ALL_MIXED} AND bitTest(mixed, bit) AND NOT bitTest(many, bit))
        ARRAY JOIN [0, 1] AS whole)"""
    merged = _merged_visits(
        parts, ("dimension", "whole", "value", "sid", "path"), ("site", "tz", "day", "build", "other")
    )
    return f"""INSERT INTO {target} (site, tz, dimension, value, other, whole, day, build, path, {_COLUMNS})
    SELECT site, tz, dimension, value, other, whole, day, build, path, {_SELECTED} FROM (
        SELECT site, tz, dimension, value, other, whole, day, build, path, {_PER_VISIT_PAGE}
        FROM (SELECT *, {_FLAGS} FROM (SELECT *, {placed} FROM ({merged})))
        GROUP BY site, tz, dimension, value, other, whole, day, build, path)"""


def pages_sql(
    days: Days,
    tables: tuple[str, str] = TABLES[:2],
    where: str = "",
    per_visit: bool = False,
    pages_where: str | None = None,
    also: tuple[str, str] | None = None,
) -> str:
    """One row per page over the range of `days` (with builds): `page` and the raw query's columns
    (`visitors`, `pageviews`, `engaged_visits`, `median_engaged_ms`, `p75_engaged_ms`, `scroll_visits`,
    `s25` .. `s100`, `entries`, `bounces`, `exits`), ready for `engagement`'s ORDER BY and paging, and the
    page's `visits` and `single_visits` (those with one pageview: what a filter `page is` it makes its
    entries, exits and bounces, see `engagement`).
    `tables`: the pages and edges tables read (`per_visit`: the pages table holds one row per visit, see
    `EngagementCache.per_visit`); `where`: a condition on their rows (the dimension columns of
    `engagement_dims_cache`'s tables), applied before the edges are merged per session; `pages_where`:
    the pages table's own condition when it names the dimensions otherwise (default `where`); `also`: another
    table of page sums (as the pages table holds them, not `per_visit`) and its condition, added to them."""
    rows = days.rows_where() + (f" AND ({where})" if where else "")
    pages_where = where if pages_where is None else pages_where
    page_rows = days.rows_where() + (f" AND ({pages_where})" if pages_where else "")
    pages, edges = tables
    marks = ", ".join(f"sum(s{m}) AS s{m}" for m in SCROLL_MARKS)
    whole_days = (
        f"SELECT path, {_RENAMED} FROM (SELECT path, {_PER_VISIT_PAGE} FROM {pages} WHERE {page_rows} GROUP BY path)"
        if per_visit
        else f"SELECT path, {_COLUMNS} FROM {pages} WHERE {page_rows}"
    )
    if also is not None:
        whole_days += f"\n            UNION ALL\n            SELECT path, {_COLUMNS} FROM {also[0]} WHERE {days.rows_where()} AND ({also[1]})"
    return f"""SELECT page, visitors, pageviews, engaged_visits, q[1] AS median_engaged_ms, q[2] AS p75_engaged_ms,
            scroll_visits, s25, s50, s75, s100, entries, bounces, exits, visits, single_visits,
            count() OVER () AS total_rows
    FROM (
        SELECT path AS page, uniqCombinedMerge(12)(visitors) AS visitors, sum(pageviews) AS pageviews,
            sum(engaged_visits) AS engaged_visits, quantilesExactIfMerge(0.5, 0.75)(engaged) AS q,
            sum(scroll_visits) AS scroll_visits, {marks},
            sum(entries) AS entries, sum(bounces) AS bounces, sum(exits) AS exits,
            sum(visits) AS visits, sum(single_visits) AS single_visits
        FROM (
            {whole_days}
            UNION ALL
            SELECT path, {_PER_PAGE} FROM (
                SELECT *, {_PLACED} FROM ({_merged_visits(f"{edges} WHERE {rows}", ("sid", "path"))}))
            GROUP BY path)
        GROUP BY path)"""


@dataclass
class _Known:
    """The builds this cache read or made for one (site, zone): day -> (build, source rows)."""

    builds: dict[str, tuple[int, int]] = field(default_factory=dict)
    rebuilds: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one build at a time per (site, zone)
    rebuild_now: bool = False  # `changed`: the next report rebuilds changed days without the wait


class EngagementCache(BackgroundDays):
    """The engagement cache beside one report cache (its runner, clock and settings)."""

    worker_name = "engagement-cache"
    # A subclass caching other figures names its own tables; the session tables are written with each build
    # (none: a subclass that needs none).
    data_tables: tuple[str, ...] = (*TABLES[:2], *SESSION_TABLES, VALUES)
    session_tables: tuple[str, ...] = SESSION_TABLES
    # Each page's titles and property values, of the events `values_of`, written with each build by
    # `_insert_values` (None: not)
    values_table: str | None = VALUES
    values_of: tuple[str, ...] = PAGE_EVENTS
    builds_table = TABLES[2]
    dims: tuple[str, ...] = ()  # the event columns the page rows are split by (`engagement_dims_cache`)
    # The filter dimensions (`filters.DIMENSIONS` names) whose filters the cached rows can answer: a report
    # with filters on these only reads the cache (a subclass that carries them says so); none here.
    carried: frozenset[str] = frozenset()
    # The whole-day visits one row each, not summed per (day, page, values): split by many dimensions, nearly
    # every visit has a row of its own anyway, and merging a sketch and a quantiles state per row costs a
    # filtered report far more than reading plain values (`engagement_dims_cache`).
    per_visit: bool = False
    # The edge rows also say on which of `dims` their session holds two values or more (`mixed`, a bit per
    # dimension) and more than two (`many`).
    edge_mixed: bool = False

    def __init__(self, cache: ReportCache) -> None:
        self.cache = cache
        self.content: Any = None  # the content reports' cache beside this one (`content_cache.for_cache`)
        self.performance: Any = None  # the performance reports' (`performance_cache.for_cache`)
        self.forms: Any = None  # the forms report's (`form_cache.for_cache`)
        self.errors: Any = None  # the errors reports' (`error_cache.for_cache`)
        self.by_dimension: Any = (
            None  # the engagement report's by dimension (`engagement_dims_cache.for_cache`)
        )
        self.init_background()  # _guard (guards the dicts below), the worker's queue
        cache.listeners.append(self.changed)
        self._known: dict[tuple[str, str], _Known] = {}
        self._purged: dict[str, date] = {}  # site -> the day before which its rows were deleted

    def changed(self, site: str) -> None:
        """As `ReportCache.changed` (which calls this): the next report rebuilds `site`'s changed days at once."""
        with self._guard:
            for (known_site, _tz), known in self._known.items():
                if known_site == site:
                    known.rebuild_now = True

    def carries(self, filters: list[Filter]) -> bool:
        """Whether the rows can answer `filters` (each on a `carried` dimension)."""
        return all(f.dimension in self.carried for f in filters)

    def days(self, scope: Scope) -> Days | None:
        """The scope's whole days with their valid builds (building the changed ones now), or None: read
        the raw events (a filter on a dimension not `carried`, bots, not whole days, or a first build queued
        for the worker)."""
        if scope.include_bots or not self.carries(scope.filters):
            return None
        days = whole_days(scope.range)
        if days is None or not self._ready(scope, days):
            return None
        return self.ensure(scope, days)

    def _known_for(self, scope: Scope) -> _Known:
        with self._guard:
            return self._known.setdefault((scope.site, scope.range.tz), _Known())

    def _params(self, scope: Scope, first: date, last: date) -> dict[str, Any]:
        zone = ZoneInfo(scope.range.tz)
        lo, hi = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
        edge = timedelta(hours=2, seconds=EDGE_SECONDS)
        return {
            "site": scope.site,
            "tz": scope.range.tz,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "lo": (lo - edge).strftime("%Y-%m-%d %H:00:00"),
            "hi": (hi + edge).strftime("%Y-%m-%d %H:00:00"),
            "edge": EDGE_SECONDS,
        }

    def _counts(self, params: dict[str, Any]) -> dict[str, int]:
        """Rows inserted so far per local day (each hour counted for the days within EDGE_SECONDS of it)."""
        return {
            str(day): int(rows)
            for day, rows in self.cache.runner.query(
                """SELECT day, sum(rows) FROM event_counts
                    ARRAY JOIN arrayDistinct([toDate(hour - {edge:UInt32}, {tz:String}),
                                              toDate(hour + 3599 + {edge:UInt32}, {tz:String})]) AS day
                    WHERE site = {site:String} AND hour >= {lo:DateTime} AND hour < {hi:DateTime}
                        AND day >= {first:Date} AND day <= {last:Date}
                    GROUP BY day""",
                params,
            ).rows
        }

    def _stored(self, params: dict[str, Any]) -> dict[str, tuple[int, int]]:
        """The newest build of each day recorded in the store (by this or another process)."""
        return {
            str(day): (int(build), int(rows))
            for day, build, rows in self.cache.runner.query(
                f"""SELECT day, max(build), argMax(source_rows, build) FROM {self.builds_table}
                    WHERE site = {{site:String}} AND tz = {{tz:String}} AND day >= {{first:Date}}
                        AND day <= {{last:Date}}
                    GROUP BY day""",
                params,
            ).rows
        }

    # -- building -----------------------------------------------------------------------------------

    def _ready(self, scope: Scope, days: Days) -> bool:
        """False (and the days queued for the worker) when the days never built hold more than the report
        cache's `background_min_rows` events."""
        known = self._known_for(scope)
        every = [days.first + timedelta(days=i) for i in range((days.last - days.first).days + 1)]
        missing = [d for d in every if d.isoformat() not in known.builds]
        limit = self.cache.background_min_rows
        if not missing or limit <= 0:
            return True
        params = self._params(scope, min(missing), max(missing))
        stored = self._stored(params)
        missing = [d for d in missing if d.isoformat() not in stored]
        if not missing:
            return True
        counts = self._counts(params)
        if sum(counts.get(d.isoformat(), 0) for d in missing) <= limit:
            return True
        self.queue_days(scope, missing)
        return False

    def ensure(self, scope: Scope, days: Days) -> Days:
        """Build every day of `days` without a valid build; return `days` with the valid builds (build 0,
        which matches no row, for the days past the retention)."""
        params = self._params(scope, days.first, days.last)
        known = self._known_for(scope)
        cutoff = self.cache.expired_before(scope)
        self._purge(scope.site, cutoff)
        every = [
            (days.first + timedelta(days=i)).isoformat() for i in range((days.last - days.first).days + 1)
        ]
        live = [d for d in every if cutoff is None or d >= cutoff.isoformat()]
        with known.lock:
            counts = self._counts(params)

            def stale(d: str) -> bool:
                return d not in known.builds or known.builds[d][1] != counts.get(d, 0)

            if any(stale(d) for d in live):
                for d, found in self._stored(params).items():
                    if stale(d):
                        known.builds[d] = found
            recent = time.time_ns() - int(self.cache.rebuild_min_seconds * 1e9)
            if known.rebuild_now:  # rows written or deleted outside the live stream (`changed`)
                known.rebuild_now, recent = False, time.time_ns()
            dirty = [d for d in live if stale(d) and (d not in known.builds or known.builds[d][0] < recent)]
            if dirty:
                previous = [known.builds[d][0] for d in dirty if d in known.builds]
                build = self._build(scope, dirty, counts)
                known.builds.update({d: (build, counts.get(d, 0)) for d in dirty})
                known.rebuilds += len(previous)
                if (
                    previous and known.rebuilds >= DROP_AFTER_REBUILDS
                ):  # a delete is a mutation: not every time
                    known.rebuilds = 0
                    self._drop_older(scope, dirty, min(previous))
            return Days(
                days.first,
                days.last,
                tuple((date.fromisoformat(d), known.builds[d][0] if d in live else 0) for d in every),
            )

    def _build_params(self, scope: Scope, days: list[date]) -> dict[str, Any]:
        """A new build's parameters (`build`, a new id) for `days`: the events from `elo` to `ehi` (the days
        widened by `EDGE_SECONDS`)."""
        zone = ZoneInfo(scope.range.tz)
        lo = local_midnight(min(days), zone)
        hi = local_midnight(max(days) + timedelta(days=1), zone)
        edge = timedelta(seconds=EDGE_SECONDS)
        return {
            "site": scope.site,
            "tz": scope.range.tz,
            "days": days,
            "build": time.time_ns(),
            "elo": ch_datetime(lo - edge),
            "ehi": ch_datetime(hi + edge),
        }

    def _build(self, scope: Scope, dirty: list[str], counts: dict[str, int]) -> int:
        params = self._build_params(scope, [date.fromisoformat(d) for d in dirty])
        build = int(params["build"])
        self._insert_rows(params)
        # Recorded last: a build cut short leaves rows no reader selects.
        self.cache.runner.store.insert_rows(
            self.builds_table,
            [
                {
                    "site": scope.site,
                    "tz": scope.range.tz,
                    "day": d,
                    "build": build,
                    "source_rows": counts.get(d, 0),
                }
                for d in dirty
            ],
        )
        return build

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """Write the rows of build `build` for the days `days` (the events from `elo` to `ehi`, the days
        widened by `EDGE_SECONDS`; `site`, `tz` as parameters)."""
        head = "{site:String}, {tz:String}, d, {build:UInt64}"
        runner = self.cache.runner
        pages, edges = self.data_tables[:2]
        extra = _with(self.dims)
        columns, selected, select = (
            (_PER_VISIT, _PER_VISIT, _visits_select(self.dims))
            if self.per_visit
            else (_COLUMNS, _SELECTED, _pages_select(self.dims))
        )
        runner.command(
            f"""INSERT INTO {pages} (site, tz, day, build, path{extra}, {columns})
            SELECT {head}, path{extra}, {selected} FROM ({select})""",
            params,
        )
        mixed = ", mixed, many" if self.edge_mixed else ""
        runner.command(
            f"""INSERT INTO {edges} (site, tz, day, build, sid, path{extra}, {_VISIT}{mixed})
            SELECT {head}, sid, path{extra}, {_VISIT}{mixed} FROM ({_edges_select(self.dims, self.edge_mixed)})""",
            params,
        )
        if self.session_tables:
            sessions, session_edges = self.session_tables
            runner.command(
                f"""INSERT INTO {sessions} (site, tz, day, build, pages)
                SELECT {head}, arrayMap(x -> cityHash64(x.2), pairs) FROM ({_SESSION_PARTS})
                WHERE NOT edge AND has({{days:Array(Date)}}, d)""",
                params,
            )
            runner.command(
                f"""INSERT INTO {session_edges} (site, tz, day, build, sid, pages)
                SELECT {head}, sid, arrayMap(x -> cityHash64(x.2), pairs) FROM ({_SESSION_PARTS})
                WHERE edge AND has({{days:Array(Date)}}, d)""",
                params,
            )
        self._insert_values(params)

    def _insert_values(self, params: dict[str, Any]) -> None:
        """Per day of the build, path and event name (of `values_of`), the distinct values of the title and of
        each property key there (bots left out; '' for an event without a key another event on the path that
        day has), at most `VALUES_KEPT` + 1 each; with more than `VALUES_KEPT` keys on the path that day, one
        `KEYS_UNKNOWN` row instead of theirs. Copies of an event carry its values: read as they are."""
        if not self.values_table:
            return
        names = ", ".join(f"'{name}'" for name in self.values_of)  # constants of the class
        self.cache.runner.command(
            f"""INSERT INTO {self.values_table} (site, tz, day, build, dimension, path, event_name, values)
            SELECT {{site:String}}, {{tz:String}}, d, {{build:UInt64}}, pair.1 AS dimension, path, event_name,
                groupUniqArray({VALUES_KEPT + 1})(pair.2)
            FROM (
                SELECT d, path, event_name, title, props,
                    groupUniqArrayArray({VALUES_KEPT + 1})(mapKeys(props)) OVER (PARTITION BY d, path) AS keys
                FROM (
                    SELECT {_DAY} AS d, path, event_name, title, props FROM events
                    WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}}
                        AND timestamp < {{ehi:DateTime64(3)}} AND is_bot = 0 AND event_name IN ({names}))
                WHERE has({{days:Array(Date)}}, d))
            ARRAY JOIN arrayConcat([('title', title)], if(length(keys) > {VALUES_KEPT}, [('{KEYS_UNKNOWN}', '')],
                arrayMap(k -> (concat('prop:', k), props[k]), keys))) AS pair
            GROUP BY d, path, event_name, dimension""",
            params,
        )

    def _drop_older(self, scope: Scope, days: list[str], keep_from: int) -> None:
        """Delete the rebuilt days' rows of builds before the previous one (which a report may still read)."""
        params = {
            "site": scope.site,
            "tz": scope.range.tz,
            "days": [date.fromisoformat(d) for d in days],
            "keep": keep_from,
        }
        for table in self.data_tables:
            self.cache.runner.command(
                f"""DELETE FROM {table} WHERE site = {{site:String}} AND tz = {{tz:String}}
                AND has({{days:Array(Date)}}, day) AND build < {{keep:UInt64}}""",
                params,
            )

    def _purge(self, site: str, cutoff: date | None) -> None:
        """Delete the site's rows of days ending before `cutoff` (a local date of some zone) in every zone:
        days two days before it are past it everywhere. At most once per site and cutoff day."""
        if cutoff is None:
            return
        below = cutoff - timedelta(days=2)
        with self._guard:
            if self._purged.get(site) == below:
                return
            self._purged[site] = below
        for table in (*self.data_tables, self.builds_table):
            self.cache.runner.command(
                f"DELETE FROM {table} WHERE site = {{site:String}} AND day < {{below:Date}}",
                {"site": site, "below": below},
            )


_MAKING = threading.Lock()


def for_cache(cache: ReportCache) -> EngagementCache:
    """The engagement cache of `cache`'s store (one per report cache, so per app), kept on the report cache:
    it lives and goes with it (a weak map keyed by the report cache never let go: the value refers to its key)."""
    with _MAKING:
        found: EngagementCache | None = cache.engagement
        if found is None:
            found = cache.engagement = EngagementCache(cache)
        return found


_Beside = TypeVar("_Beside")


def kept_beside(cache: ReportCache, attr: str, make: Callable[[ReportCache], _Beside]) -> _Beside:
    """The cache kept on `cache`'s engagement cache under `attr` (`content`, `performance`, `forms`, `errors`,
    `by_dimension`), made by `make` on first use: one per report cache, so per app, living and going with it."""
    return _kept(for_cache(cache), attr, lambda: make(cache))


def kept_on(cache: ReportCache, attr: str, make: Callable[[ReportCache], _Beside]) -> _Beside:
    """The cache kept on the report cache `cache` itself under `attr` (`filtered`, `paths`), made by `make` on
    first use: one per report cache, so per app."""
    return _kept(cache, attr, lambda: make(cache))


def _kept(holder: Any, attr: str, make: Callable[[], _Beside]) -> _Beside:
    with _MAKING_KEPT:
        found: _Beside | None = getattr(holder, attr)
        if found is None:
            found = make()
            setattr(holder, attr, found)
        return found


_MAKING_KEPT = threading.RLock()  # (a cache made may make another)
