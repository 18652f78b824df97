"""The filtered dashboard's parts read from the sessions table (`session_rows`, server/store/sessions.py)
instead of the events, where that gives the same numbers as `raw_dashboard`'s reads of the events:

- every filter is on a dimension the table keeps per row (country, source, channel, referrer, medium,
  browser, os, device, UTM: `SESSION_FILTERS`), so a row's events all match a filter or none do;
- both ends of every period fall on a 15-minute UTC slot (every zone's midnight and hour do), so a period
  is a set of whole slots;
- the interval is not `minute` (a slot holds 15 of them);
- the table holds every stored event of the periods: after an upgrade, the events stored before the table
  existed are copied in by a background backfill (server/store/sessions_backfill.py), and until it has
  reached a period's start that period reads the events (the same numbers, slower).

Then the summary and series (visitors, pageviews, events per bucket of the events; sessions, bounces,
durations per bucket of the session's first matching event), the breakdowns by those dimensions and the
entry / exit pages are the same aggregates over the same events as the raw path's, read from a table a few
times smaller (one row per session and slot). Event and pageview counts are `uniqExact` states of the events'
hashes. Two rows hold one event only when copies of it came in two inserts, and then they have the same key
and sit in two parts of one month: inside `copy_windows`' windows of the table's parts
(`DashboardParams.session_copies`). The rows there are merged per key (the table merges its rows lazily), so
a client-retry copy counts once; every other row is read as it is, its states' sizes summed (merging a state
per row cost most of the query). A flag merges every row instead (the parts could not be read, or an insert
came too close to the windows during the query: `raw_dashboard.run` runs it again). Breakdowns by
event-level dimensions (page, event, properties, ...) still read the events (`raw_dashboard`).
"""

from __future__ import annotations

from collections.abc import Callable

from pixel.server.api.query import cache_sql
from pixel.server.api.query.cache_sql import Tag
from pixel.server.api.query.filters import DIMENSIONS, SqlParams, filter_sql
from pixel.server.api.query.periods import Range, bucket_sql
from pixel.server.api.query.scope import Scope
from pixel.server.store import sessions, sessions_backfill
from pixel.server.store.sessions import COLUMNS

_ZERO = "toUInt64(0)"
# API dimension names whose column the sessions table keeps.
SESSION_FILTERS = frozenset(name for name, column in DIMENSIONS.items() if column in COLUMNS)
_SLOT_SECONDS = 900


def _whole_slots(rng: Range) -> bool:
    return all(
        moment.timestamp() % _SLOT_SECONDS == 0 and moment.microsecond == 0 for moment in (rng.start, rng.end)
    )


def usable(scopes: list[Scope], interval: str) -> bool:
    """Whether the sessions table answers these periods' summary, series and session breakdowns exactly."""
    return (
        interval != "minute"
        and all(
            _whole_slots(s.range) and all(f.dimension in SESSION_FILTERS for f in s.filters) for s in scopes
        )
        and all(sessions_backfill.covers(s.runner.store, s.range.start.timestamp()) for s in scopes)
    )


def where(scope: Scope, params: SqlParams) -> str:
    """The scope's rows of session_rows: site, whole slots of its range, bots, filters."""
    start = params.add(scope.range.params["start"], "DateTime64(3)")
    end = params.add(scope.range.params["end"], "DateTime64(3)")
    parts = ["site = {site:String}", f"slot >= {start}", f"slot < {end}"]
    if not scope.include_bots:
        parts.append("is_bot = 0")
    parts.extend(filter_sql(f, params) for f in scope.filters)
    return " AND ".join(parts)


def _per_slot(where_sql: str, extra: str = "", copies: str | None = None) -> str:
    """session_rows as rows of (slot, session, visitor[, extra columns]) with pv, ev: counts of distinct
    events, each event in one row: the rows where `copies` holds (every row that may share an event with
    another, `DashboardParams.session_copies`; None: every row) merged per key, the others as they are
    (their states' sizes)."""
    keys = f"slot, sid, visitor_id{extra}"
    copies = copies or "1"
    return f"""(SELECT {keys}, finalizeAggregation(pageviews) AS pv, finalizeAggregation(events) AS ev,
            first_seen, last_seen
        FROM session_rows WHERE ({where_sql}) AND NOT {copies}
        UNION ALL
        SELECT {keys}, uniqExactMerge(pageviews) AS pv, uniqExactMerge(events) AS ev,
            min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM session_rows WHERE ({where_sql}) AND {copies} GROUP BY {keys})"""


def _per_session(where_sql: str, copies: str | None) -> str:
    """Per session of session_rows: its pageviews (`spv`, distinct events), first and last event; the rows
    merged as in `_per_slot`."""
    copies = copies or "1"
    return f"""SELECT sid, sum(p) AS spv, min(f) AS first, max(l) AS last FROM (
            SELECT sid, finalizeAggregation(pageviews) AS p, first_seen AS f, last_seen AS l
            FROM session_rows WHERE ({where_sql}) AND NOT {copies}
            UNION ALL
            SELECT sid, uniqExactMerge(pageviews) AS p, min(first_seen) AS f, max(last_seen) AS l
            FROM session_rows WHERE ({where_sql}) AND {copies} GROUP BY sid)
        GROUP BY sid"""


def events_branch(
    where_sql: str, interval: str, total: Tag | None, series: Tag | None, copies: str | None = None
) -> str:
    tag, bucket, group = cache_sql.tag_grouping(total, series, bucket_sql(interval, "slot"))
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, toUInt64({cache_sql.UNIQ_TOTAL}(visitor_id)) AS visitors,
            toUInt64(sum(pv)) AS pageviews, toUInt64(sum(ev)) AS events,
            {_ZERO} AS sessions, {_ZERO} AS session_pageviews, {_ZERO} AS bounces, {_ZERO} AS duration_ms,
            toUInt64(sum(ev)) AS total_rows, {_ZERO} AS session_rows, {_ZERO} AS first_rank
        FROM {_per_slot(where_sql, copies=copies)} GROUP BY {group}"""


def sessions_branch(
    where_sql: str, interval: str, total: Tag | None, series: Tag | None, copies: str | None = None
) -> str:
    tag, bucket, group = cache_sql.tag_grouping(
        total.edges if total else None, series.edges if series else None, bucket_sql(interval, "first")
    )
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, {_ZERO} AS visitors, {_ZERO} AS pageviews,
            {_ZERO} AS events, toUInt64(count()) AS sessions, toUInt64(sum(spv)) AS session_pageviews,
            toUInt64(countIf(spv <= 1)) AS bounces, toUInt64(sum(dur)) AS duration_ms, {_ZERO} AS total_rows,
            toUInt64(count()) AS session_rows, {_ZERO} AS first_rank
        FROM (SELECT sid, spv, first, dateDiff('millisecond', first, last) AS dur
              FROM ({_per_session(where_sql, copies)}))
        GROUP BY {group}"""


def breakdowns(
    where_sql: str,
    dimensions: list[str],
    limit: int,
    ranked: Callable[[str, int], str],
    copies: str | None = None,
) -> str:
    """Breakdowns by dimensions the table keeps (names in SESSION_FILTERS), as raw_dashboard's event branch:
    per value the visitors' sketch, pageviews and events of the matching events. One aggregation with a
    grouping set per dimension over its own column: each row is counted once per dimension as with an `ARRAY
    JOIN` of the dimensions, without copying the row (its visitor id) once per dimension first."""
    columns = [DIMENSIONS[d] for d in dimensions]
    if len(set(columns)) < len(columns):
        raise ValueError("each dimension of a breakdown is its own column")  # `grouping` tells them apart
    extra = "".join(f", {c}" for c in columns)
    # validated names and the table's columns, never user text
    dimension = ", ".join(f"grouping({c}) = 0, '{d}'" for d, c in zip(dimensions, columns, strict=True))
    value = ", ".join(f"grouping({c}) = 0, CAST({c} AS String)" for c in columns)
    per_value = f"""SELECT multiIf({dimension}, '') AS dimension, multiIf({value}, '') AS value,
            {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st, sum(pv) AS pageviews, sum(ev) AS events,
            toUInt64(0) AS sessions
        FROM {_per_slot(where_sql, extra, copies)}
        GROUP BY GROUPING SETS ({", ".join(f"({c})" for c in columns)})"""
    return ranked(per_value, limit)


def entry_exit(where_sql: str, dimensions: list[str], limit: int, ranked: Callable[[str, int], str]) -> str:
    """entry_page / exit_page: each session's first / last matching pageview (sessions with one: a row whose
    pageviews state is not empty, whatever other rows share)."""
    kinds = ", ".join(f"'{d}'" for d in dimensions)
    columns = ", ".join("entry" if d == "entry_page" else "exit" for d in dimensions)
    per_value = f"""SELECT dimension, value, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st,
            toUInt64(0) AS pageviews, toUInt64(0) AS events, count() AS sessions
        FROM (SELECT sid, any(visitor_id) AS visitor_id, {sessions.ENTRY_SQL} AS entry, {sessions.EXIT_SQL} AS exit
              FROM session_rows WHERE {where_sql} GROUP BY sid HAVING max(finalizeAggregation(pageviews)) > 0)
        ARRAY JOIN [{kinds}] AS dimension, [{columns}] AS value
        GROUP BY dimension, value"""
    return ranked(per_value, limit)
