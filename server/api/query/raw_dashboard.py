"""The dashboard over the raw events in one query: what the endpoint answers when the report cache cannot
(filters, bots, hourly buckets, a range that is not whole days, a cache still being built).

Before, the endpoint called the ten individual reports here: about fourteen scans of `events FINAL`
(the summary alone read each period twice, every breakdown once), and every session was grouped by its
string id. Now one query of `UNION ALL` branches, run side by side:

- per period, one scan for the event numbers: visitors (`cache_sql.UNIQ_TOTAL`), pageviews and events,
  per bucket and for the whole range (`GROUPING SETS`);
- per period, one scan for the sessions (grouped by the stored `session_hash`, `cityHash64(session_id)`,
  as the report cache's `sid`): count, pageviews, bounces, durations, per bucket of the session's first
  event and for the range;
- one scan for every event-level breakdown at once (`GROUPING SETS`, one set per dimension, each
  dimension about the rows whose condition they meet: pageviews only for `page`, other events only for
  `event`, rows holding the key for `prop:<key>`), ranked per dimension by a window like the cached
  dashboard's;
- one scan of the sessions' first / last pageview for `entry_page` / `exit_page`.

No branch reads `events FINAL` (which merges every row of the range's parts, and keeps ClickHouse from
moving the filters to PREWHERE): each reads only the rows its WHERE matches. Where a copy of an event
would change a number (counts of events, pageviews, a session's pageviews) the copies of one event (one
`event_id` on one day, the table's key) are grouped into one row by the 64-bit hash of that key, among
the rows inside the time windows where two parts of a month could hold copies only (`copy_windows`: the
parts are read before the query and again after it; the rows outside are read as they are); the
entry / exit pages (first / last pageview, `any` visitor) come out the same with or without a copy and
read the matching rows as they are. Copies of an event are client retries of one tracker request, so
they carry the same values and whichever is kept shows what `FINAL` shows (tests insert copies in parts
of their own and compare with the reports over `events FINAL` and with a Python computation).

Same definitions and aggregate functions as `reports` (tests compare every part with the individual
endpoints, on both engines), so the same numbers, with two stated exceptions of the same kind, one
shared with the report cache: sessions are told apart by the 64-bit hash of their id, and events by
that of (day, `event_id`) (two of a range's sessions, or events, share one with a chance of about
n² / 2^65). Nothing here puts user text into SQL: filter values and property keys are `{name:Type}`
parameters (`filters.SqlParams`), dimension names come from allow-lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from pixel.server.api.query import cache_sql, copy_windows, filter_cache, session_dashboard
from pixel.server.api.query.cache_sql import BREAKDOWN_TAG_PREFIX, Days, Tag
from pixel.server.api.query.filters import (
    PROP_PREFIX,
    SESSION_DIMENSIONS,
    SqlParams,
    base_where,
    dimension_sql,
)
from pixel.server.api.query.periods import bucket_sql
from pixel.server.api.query.scope import Scope
from pixel.server.store import Store
from pixel.server.store.schema import EVENTS

# Columns of every branch (as `cache_sql.COLUMNS`), zero where a branch has nothing to say.
_ZERO = "toUInt64(0)"
BRANCH_JOIN = "\nUNION ALL\n"
# From this many rows grouped by their key (copies dropped), the branches run one after another (`_query`) on a
# store without a spill budget; on one with a budget they always do.
SPLIT_ROWS = 10_000_000


def period_where(scope: Scope, params: SqlParams) -> str:
    """The scope's WHERE with its range bound to parameters of its own (two periods in one query)."""
    start = params.add(scope.range.params["start"], "DateTime64(3)")
    end = params.add(scope.range.params["end"], "DateTime64(3)")
    return base_where(scope.filters, params, include_bots=scope.include_bots, start=start, end=end)


def matching(
    where: str, columns: dict[str, str], final: bool, *, copies_matter: bool = True, copies: str | None = None
) -> str:
    """The rows matching `where` with `columns` (alias -> expression) and `timestamp`, each event once.

    `final`: `events FINAL` filtered (the read before). Else the plain table's matching rows, copies of one
    event (one `event_id` on one day: the table's key) grouped into one row by the 64-bit hash of that key;
    `copies_matter=False` (every aggregate over the rows gives the same answer with a copy or without:
    first / last pageview, `any`, `uniq`) reads the matching rows as they are. `copies`: a condition true
    on every row that may have a copy (`copy_windows`); the others are read as they are, the copies are
    grouped among the rows it holds for (None: everywhere)."""
    if final:
        cols = ", ".join(f"{expr} AS {alias}" for alias, expr in columns.items())
        return f"(SELECT {cols}, timestamp FROM {EVENTS} WHERE {where})"
    if not copies_matter:
        cols = ", ".join(f"{expr} AS {alias}" for alias, expr in columns.items())
        return f"(SELECT {cols}, timestamp FROM events WHERE {where})"
    every = {**columns, "timestamp": "timestamp"}
    # inner names of their own: an alias named as a column would stand for the aggregate in the WHERE
    inner = ", ".join(f"any({expr}) AS one_{alias}" for alias, expr in every.items())
    outer = ", ".join(f"one_{alias} AS {alias}" for alias in every)
    if copies is None:
        return f"""(SELECT {outer} FROM (SELECT {inner} FROM events WHERE {where}
        GROUP BY cityHash64(toDate(timestamp), event_id)))"""
    cols = ", ".join(f"{expr} AS {alias}" for alias, expr in every.items())
    return f"""(SELECT {cols} FROM events WHERE ({where}) AND NOT {copies}
        UNION ALL
        SELECT {outer} FROM (SELECT {inner} FROM events WHERE ({where}) AND {copies}
            GROUP BY cityHash64(toDate(timestamp), event_id)))"""


@dataclass(frozen=True)
class _Read:
    """A table's parts read before the query (None: unknown), their windows and the SQL condition true on the
    table's rows that may have a copy (the flag or one of the windows)."""

    parts: tuple[copy_windows.Part, ...] | None
    windows: copy_windows.Windows
    condition: str


class DashboardParams(SqlParams):
    """The raw dashboard's parameters and, when copies are dropped only inside `copy_windows`' windows,
    the parts of `events` (`copies`) and of the sessions table (`session_copies`) read before the query, their
    windows, and the name of the flag that drops copies everywhere in both."""

    def __init__(self) -> None:
        super().__init__()
        self.everywhere: str | None = None
        self._reads: dict[str, _Read] = {}  # per table whose windows the query uses
        self.branches: tuple[str, ...] = ()  # the query's `UNION ALL` branches (set by its builder)
        self.spans: list[tuple[int, int]] = []  # the periods read, unix seconds, half-open

    def joined(self, branches: list[str], periods: list[Scope]) -> str:
        """The one query of `branches`, which `run` may run one by one instead (`grouped_rows`)."""
        self.branches = tuple(branches)
        self.spans = [(int(p.range.start.timestamp()), int(p.range.end.timestamp())) for p in periods]
        return BRANCH_JOIN.join(branches)

    def grouped_rows(self) -> int:
        """About how many rows the query groups by their key to drop copies: each table's rows inside its
        windows and the periods read (with the flag set, every row of the periods). Parts unknown (a
        Distributed table has none of its own): no estimate, 0."""
        total = 0
        for read in self._reads.values():
            if read.parts is None:
                continue
            wins = read.windows
            if self.dropping_everywhere:
                wins = ((min(p.first for p in read.parts), max(p.last for p in read.parts) + 1),)
            total += copy_windows.rows_within(read.parts, wins, self.spans)
        return total

    def _copies_in(self, store: Store, table: str, column: str) -> str:
        """The condition on `table`'s rows (its time column `column`) that may have a copy; the parts are
        read on the first call, the flag made on the first call for either table (set when they are unknown)."""
        found = self._reads.get(table)
        if found is None:
            if self.everywhere is None:
                flag = self.add(0, "UInt8")
                self.everywhere = flag[1 : flag.index(":")]
            parts = copy_windows.read_parts(store, table)
            if parts is None:  # unknown parts: copies possible everywhere
                self.drop_everywhere()
            windows = copy_windows.windows(parts) if parts is not None else ()
            spans = [
                f"({column} >= {self.add(_utc(a), _UTC)} AND {column} < {self.add(_utc(b), _UTC)})"
                for a, b in windows
            ]
            condition = f"({' OR '.join([f'{{{self.everywhere}:UInt8}}', *spans])})"
            found = self._reads[table] = _Read(parts, windows, condition)
        return found.condition

    def copies(self, store: Store) -> str:
        """The condition true on every row of `events` that may have a copy: the flag (`run` sets it when an
        insert came too close during the query) or one of the windows."""
        return self._copies_in(store, copy_windows.EVENTS, "timestamp")

    def session_copies(self, store: Store) -> str:
        """The condition true on every row of the sessions table that may share an event with another row:
        the same flag, or one of its windows (over `slot`)."""
        return self._copies_in(store, copy_windows.SESSIONS, "slot")

    def _read(self, table: str) -> _Read:
        return self._reads.get(table) or _Read(None, (), "")

    @property
    def parts(self) -> tuple[copy_windows.Part, ...] | None:
        return self._read(copy_windows.EVENTS).parts

    @property
    def windows(self) -> copy_windows.Windows:
        return self._read(copy_windows.EVENTS).windows

    @property
    def session_parts(self) -> tuple[copy_windows.Part, ...] | None:
        return self._read(copy_windows.SESSIONS).parts

    @property
    def session_windows(self) -> copy_windows.Windows:
        return self._read(copy_windows.SESSIONS).windows

    @property
    def dropping_everywhere(self) -> bool:
        """Whether the flag is set: copies dropped among every row."""
        return self.everywhere is not None and self.values[self.everywhere] == 1

    def drop_everywhere(self) -> None:
        """Set the flag: copies dropped among every row (every row of the sessions table merged per key)."""
        if self.everywhere is not None:
            self.values[self.everywhere] = 1

    def held(self, store: Store) -> bool:
        """Whether the windows read before the query still held during it (or none was in use): each table's
        parts are read again; an insert that came too close to its windows means running again with the flag
        set (`drop_everywhere`)."""
        if self.everywhere is None or self.dropping_everywhere:
            return True
        return all(
            read.parts is None
            or copy_windows.still_holds(read.parts, read.windows, copy_windows.read_parts(store, table))
            for table, read in self._reads.items()
        )


_UTC = "DateTime('UTC')"


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _events_branch(
    where: str,
    interval: str,
    total: Tag | None,
    series: Tag | None,
    final: bool = False,
    copies: str | None = None,
) -> str:
    tag, bucket, group = cache_sql.tag_grouping(total, series, bucket_sql(interval))
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, toUInt64({cache_sql.UNIQ_TOTAL}(visitor_id)) AS visitors,
            toUInt64(countIf(event_name = 'pageview')) AS pageviews, toUInt64(count()) AS events,
            {_ZERO} AS sessions, {_ZERO} AS session_pageviews, {_ZERO} AS bounces, {_ZERO} AS duration_ms,
            toUInt64(count()) AS total_rows, {_ZERO} AS session_rows, {_ZERO} AS first_rank
        FROM {matching(where, {"visitor_id": "visitor_id", "event_name": "event_name"}, final, copies=copies)}
        GROUP BY {group}"""


def _sessions_branch(
    where: str,
    interval: str,
    total: Tag | None,
    series: Tag | None,
    final: bool = False,
    copies: str | None = None,
) -> str:
    """Session numbers, tagged with the parts' `edges` tags (`cache_sql.summary_numbers` adds those)."""
    tag, bucket, group = cache_sql.tag_grouping(
        total.edges if total else None, series.edges if series else None, bucket_sql(interval, "first_seen")
    )
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, {_ZERO} AS visitors, {_ZERO} AS pageviews,
            {_ZERO} AS events, toUInt64(count()) AS sessions, toUInt64(sum(pv)) AS session_pageviews,
            toUInt64(countIf(pv <= 1)) AS bounces, toUInt64(sum(dur)) AS duration_ms, {_ZERO} AS total_rows,
            toUInt64(count()) AS session_rows, {_ZERO} AS first_rank
        FROM (SELECT sid, countIf(event_name = 'pageview') AS pv,
                  dateDiff('millisecond', min(timestamp), max(timestamp)) AS dur, min(timestamp) AS first_seen
              FROM {matching(where, {"sid": "session_hash", "event_name": "event_name"}, final, copies=copies)}
              GROUP BY sid)
        GROUP BY {group}"""


def _ranked(per_value: str, limit: int) -> str:
    """Each dimension's first `limit` values by visitors (ties by value) and an "other" row merging the
    later values' states, from rows `dimension, value, st, pageviews, events, sessions`."""
    return f"""SELECT concat('{BREAKDOWN_TAG_PREFIX}', dimension) AS tag, if(rank <= {int(limit)}, value, NULL) AS bucket,
            toUInt64({cache_sql.UNIQ_VALUE_MERGE}(st)) AS visitors, toUInt64(sum(pageviews)) AS pageviews,
            toUInt64(sum(events)) AS events, toUInt64(sum(sessions)) AS sessions, {_ZERO} AS session_pageviews,
            {_ZERO} AS bounces, {_ZERO} AS duration_ms, toUInt64(any(total)) AS total_rows, {_ZERO} AS session_rows,
            toUInt64(min(rank)) AS first_rank
        FROM (SELECT *, row_number() OVER (PARTITION BY dimension ORDER BY visitors DESC, value ASC) AS rank,
                  count() OVER (PARTITION BY dimension) AS total
              FROM (SELECT *, finalizeAggregation(st) AS visitors FROM ({per_value})))
        GROUP BY dimension, bucket"""


def _breakdown_condition(dimension: str, params: SqlParams) -> str | None:
    """Which events a breakdown by `dimension` is about (None: every matching event): pageviews only for
    `page`, other events only for `event`, events holding the key for `prop:<key>`."""
    if dimension == "page":
        return "event_name = 'pageview'"
    if dimension == "event":
        return "event_name != 'pageview'"
    if dimension.startswith(PROP_PREFIX):
        return f"mapContains(props, {params.add(dimension[len(PROP_PREFIX) :])})"
    return None


def _event_breakdowns(
    where: str,
    params: SqlParams,
    dimensions: list[str],
    limit: int,
    final: bool = False,
    copies: str | None = None,
) -> str:
    """Every event-level breakdown in one aggregation of the matching events: `GROUPING SETS`, one set per
    dimension over its own column (LowCardinality columns stay so, no row copied per dimension), a
    dimension's key NULL on the events it is not about (that group is dropped). Same rows as
    `_event_breakdowns_array_join` (each value's visitors' sketch, pageviews and events), ranked alike."""
    keys = {}
    for i, d in enumerate(dimensions):
        expr, condition = dimension_sql(d, params), _breakdown_condition(d, params)
        keys[f"k{i}"] = (d, expr if condition is None else f"if({condition}, {expr}, NULL)")
    # the keys are computed on the matching rows, before the copies are dropped
    columns = {"visitor_id": "visitor_id", "event_name": "event_name", **{k: e for k, (_, e) in keys.items()}}
    # validated names, never user text
    dimension = ", ".join(f"grouping({k}) = 0, '{d}'" for k, (d, _) in keys.items())
    value = ", ".join(f"grouping({k}) = 0, CAST({k} AS Nullable(String))" for k in keys)
    # (`key`, not `value`: an alias of the outer SELECT stands for its expression in the WHERE)
    per_value = f"""SELECT dimension, assumeNotNull(key) AS value, st, pageviews, events, sessions
        FROM (SELECT multiIf({dimension}, '') AS dimension, multiIf({value}, NULL) AS key,
                  {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st, countIf(event_name = 'pageview') AS pageviews,
                  count() AS events, toUInt64(0) AS sessions
              FROM {matching(where, columns, final, copies=copies)}
              GROUP BY GROUPING SETS ({", ".join(f"({k})" for k in keys)}))
        WHERE key IS NOT NULL"""
    return _ranked(per_value, limit)


def _event_breakdowns_array_join(
    where: str, params: SqlParams, dimensions: list[str], limit: int, final: bool = False
) -> str:
    """The event-level breakdowns as before `GROUPING SETS` (kept for bench_api's old-vs-new comparison): every
    matching row copied once per dimension (`ARRAY JOIN` of the values cast to String), one aggregation by
    (dimension, value)."""
    names, values, conditions = [], [], []
    for d in dimensions:
        names.append(f"'{d}'")  # validated names, never user text
        values.append(f"CAST({dimension_sql(d, params)} AS String)")
        conditions.append(_breakdown_condition(d, params) or "1")
    # the values and conditions are computed on the matching rows, before the copies are dropped
    columns = {
        "visitor_id": "visitor_id",
        "event_name": "event_name",
        "vals": f"[{', '.join(values)}]",
        "oks": f"[{', '.join(f'toUInt8({c})' for c in conditions)}]",
    }
    per_value = f"""SELECT dimension, value, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st,
            countIf(event_name = 'pageview') AS pageviews, count() AS events, toUInt64(0) AS sessions
        FROM (SELECT visitor_id, event_name, dimension, value, ok FROM {matching(where, columns, final)}
              ARRAY JOIN [{", ".join(names)}] AS dimension, vals AS value, oks AS ok)
        WHERE ok GROUP BY dimension, value"""
    return _ranked(per_value, limit)


def _session_breakdowns(where: str, dimensions: list[str], limit: int, final: bool = False) -> str:
    pageviews = f"{where} AND event_name = 'pageview'"
    kinds = ", ".join(f"'{d}'" for d in dimensions)
    columns = ", ".join("entry" if d == "entry_page" else "exit" for d in dimensions)
    per_value = f"""SELECT dimension, value, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st,
            toUInt64(0) AS pageviews, toUInt64(0) AS events, count() AS sessions
        FROM (SELECT sid, any(visitor_id) AS visitor_id,
                  {SESSION_DIMENSIONS["entry_page"]} AS entry, {SESSION_DIMENSIONS["exit_page"]} AS exit
              FROM {matching(pageviews, {"sid": "session_hash", "visitor_id": "visitor_id", "path": "path"}, final, copies_matter=False)}
              GROUP BY sid)
        ARRAY JOIN [{kinds}] AS dimension, [{columns}] AS value
        GROUP BY dimension, value"""
    return _ranked(per_value, limit)


def dashboard_sql(
    scope: Scope,
    before: Scope | None,
    *,
    compare: bool,
    previous_series: bool,
    interval: str,
    dimensions: list[str],
    limit: int,
    final: bool = False,
    sessions: bool = True,
    grouping_sets: bool = True,
    copies_where_possible: bool = True,
    cached: tuple[Days, Days | None] | None = None,
) -> tuple[str, DashboardParams]:
    """The one query (and its parameters) of the raw dashboard; `final`: read `events FINAL` (the way before
    copies were dropped among the matching rows only; kept for bench_api's old-vs-new comparison).
    `sessions`: read the summary, series, session-level breakdowns and entry / exit pages from the sessions
    table where `session_dashboard.usable` says it answers the same (False: the events only, as before).
    `grouping_sets`: the event-level breakdowns in one `GROUPING SETS` aggregation (False: one `ARRAY JOIN` of
    every row per dimension, as before; kept for bench_api's comparison, same rows).
    `copies_where_possible`: copies are dropped only among the rows in `copy_windows`' windows (the parts
    are read here; `run` checks them again after the query), and only the rows of the sessions table in its
    own windows are merged per key; False: among every matching row, as before.
    `cached`: the periods' days in `filter_cache` (from `filter_cache.days`, the previous period's None when
    not read): every number comes from that cache but the breakdowns it does not keep (`_from_filter_cache`)."""
    params = DashboardParams()
    with_before = before is not None and (compare or previous_series)
    if cached is not None:
        return _from_filter_cache(
            scope,
            before if with_before else None,
            cached,
            params,
            compare=compare,
            previous_series=previous_series,
            interval=interval,
            dimensions=dimensions,
            limit=limit,
            copies_where_possible=copies_where_possible,
        )
    periods = [scope, before] if with_before and before is not None else [scope]
    from_sessions = sessions and not final and session_dashboard.usable(periods, interval)
    event_level = [d for d in dimensions if d not in SESSION_DIMENSIONS]
    session_level = [d for d in dimensions if d in SESSION_DIMENSIONS]
    if from_sessions:
        kept = [d for d in event_level if d in session_dashboard.SESSION_FILTERS]
        event_level = [d for d in event_level if d not in session_dashboard.SESSION_FILTERS]
    reads_events = not from_sessions or bool(event_level)
    copies = (
        params.copies(scope.runner.store) if copies_where_possible and not final and reads_events else None
    )
    # rows of the sessions table that may share an event with another row (the others are read as they are)
    session_copies = (
        params.session_copies(scope.runner.store) if from_sessions and copies_where_possible else None
    )
    if from_sessions:
        events_branch = partial(session_dashboard.events_branch, copies=session_copies)
        sessions_branch = partial(session_dashboard.sessions_branch, copies=session_copies)
        where = session_dashboard.where(scope, params)
    else:
        events_branch = partial(_events_branch, final=final, copies=copies)
        sessions_branch = partial(_sessions_branch, final=final, copies=copies)
        where = period_where(scope, params)
    branches = [
        events_branch(where, interval, Tag.SUMMARY, Tag.SERIES),
        sessions_branch(where, interval, Tag.SUMMARY, Tag.SERIES),
    ]
    if with_before and before is not None:
        where_before = (
            session_dashboard.where(before, params) if from_sessions else period_where(before, params)
        )
        total = Tag.PREVIOUS_SUMMARY if compare else None
        series = Tag.PREVIOUS_SERIES if previous_series else None
        branches.append(events_branch(where_before, interval, total, series))
        branches.append(sessions_branch(where_before, interval, total, series))
    if from_sessions:
        if kept:
            branches.append(session_dashboard.breakdowns(where, kept, limit, _ranked, session_copies))
        if session_level:
            branches.append(session_dashboard.entry_exit(where, session_level, limit, _ranked))
        session_level = []
        if event_level:
            where = period_where(scope, params)
    if event_level:
        if grouping_sets:
            branches.append(_event_breakdowns(where, params, event_level, limit, final, copies))
        else:
            branches.append(_event_breakdowns_array_join(where, params, event_level, limit, final))
    if session_level:
        branches.append(_session_breakdowns(where, session_level, limit, final))
    return params.joined(branches, periods), params


def _from_filter_cache(
    scope: Scope,
    before: Scope | None,
    cached: tuple[Days, Days | None],
    params: DashboardParams,
    *,
    compare: bool,
    previous_series: bool,
    interval: str,
    dimensions: list[str],
    limit: int,
    copies_where_possible: bool,
) -> tuple[str, DashboardParams]:
    """The dashboard's query when `filter_cache` answers the filters: each period's event numbers and
    sessions, the breakdowns it keeps and the entry / exit pages from its rows; the other event-level
    breakdowns from the matching events, as without it."""
    days, days_before = cached
    branches = [
        filter_cache.totals_sql(days, scope.filters, params, interval, Tag.SUMMARY, Tag.SERIES),
        filter_cache.sessions_sql(days, scope.filters, params, interval, Tag.SUMMARY, Tag.SERIES),
    ]
    if before is not None:
        if days_before is None:
            raise ValueError("the previous period's days in the filter cache are missing")
        total = Tag.PREVIOUS_SUMMARY if compare else None
        series = Tag.PREVIOUS_SERIES if previous_series else None
        branches.append(filter_cache.totals_sql(days_before, before.filters, params, interval, total, series))
        branches.append(
            filter_cache.sessions_sql(days_before, before.filters, params, interval, total, series)
        )
    kept = [d for d in dimensions if d in filter_cache.DIMENSIONS]
    if kept:
        branches.append(_ranked(filter_cache.breakdowns_per_value(days, scope.filters, params, kept), limit))
    kinds = [d for d in dimensions if d in SESSION_DIMENSIONS]
    if kinds:
        branches.append(_ranked(filter_cache.entry_exit_per_value(days, scope.filters, params, kinds), limit))
    others = [d for d in dimensions if d not in SESSION_DIMENSIONS and d not in filter_cache.DIMENSIONS]
    if others:
        copies = params.copies(scope.runner.store) if copies_where_possible else None
        branches.append(_event_breakdowns(period_where(scope, params), params, others, limit, copies=copies))
    return BRANCH_JOIN.join(branches), params  # one query: its branches read the cache's rows, few copies


def run(scope: Scope, sql: str, params: SqlParams) -> list[dict[str, Any]]:
    """The query over the raw events with the site parameter (the ranges are in `params`). When `params`
    drop copies only inside `copy_windows`' windows, the parts are read again after the query, and if an
    insert came close enough to those windows to hide a copy from them, the query runs again with copies
    dropped everywhere. Its branches run one after another when they group many rows by their key
    (`_query`)."""
    fixed = {"site": scope.site, "tz": scope.range.tz}
    rows = _query(scope, sql, params.with_fixed(**fixed), params)
    if not isinstance(params, DashboardParams) or params.held(scope.runner.store):
        return rows
    params.drop_everywhere()
    return _query(scope, sql, params.with_fixed(**fixed), params)


def _query(scope: Scope, sql: str, values: dict[str, Any], params: SqlParams) -> list[dict[str, Any]]:
    """`sql` as one query, or its branches (`DashboardParams.branches`) as statements one after another: on a
    store with a spill budget (`store/memory.py`), and elsewhere when they group at least `SPLIT_ROWS` rows by
    their key (`grouped_rows`). Run side by side, the branches' aggregations hold their states at the same time and
    the spill threshold is the statement's: on a budgeted store they spill to disk where each branch alone does
    not, and take longer than one after another; and past the threshold their sum was not kept near it. One
    after another, the peak is about the largest branch's (bench/README.md)."""
    if (
        not isinstance(params, DashboardParams)
        or not params.branches
        or (scope.runner.store.spill_budget_mb == 0 and params.grouped_rows() < SPLIT_ROWS)
    ):
        return scope.runner.query(sql, values).dicts()
    if sql != BRANCH_JOIN.join(params.branches):
        raise ValueError("the query is not the one its parameters were built for")
    return [row for branch in params.branches for row in scope.runner.query(branch, values).dicts()]
