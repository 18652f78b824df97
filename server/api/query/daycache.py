"""The report cache: per-site, per-local-day aggregates built from `events FINAL`, valid while unchanged.

Why a cache and not materialized views alone: a view sees each insert block on its own, so it would count
a client-retry copy of an event (same `event_id`, a later request) twice, and it cannot tell where a
session starts, ends or bounces. A day built here is *the raw query restricted to that day*, so it is
exact by construction (duplicates collapsed by FINAL, bots left out, the site's own time zone).

Validity: a materialized view counts the rows inserted per site and UTC hour (`event_counts`). A day's
build records that count over the hours overlapping the day widened by `EDGE_SECONDS` on both sides;
the day is valid while the count is the same. Any insert touching the day (a late event, a retried copy)
changes it and the day is rebuilt before it is read, unless its last build is younger than
`REBUILD_MIN_SECONDS` (then that build is used: with events streaming in, today's numbers may lag up to
that long; the realtime report reads the raw events). A replayed batch that ClickHouse drops by its
insert token changes neither.

How reports combine days (the same definitions as the raw queries in `reports`):
- events, pageviews: sums of the days; visitors: the merge of the days' sketch states, which equals the
  sketch of the raw rows (see UNIQ_TOTAL);
- sessions: a session is counted by the events it has *inside the range*. A build looks `EDGE_SECONDS`
  past both ends of the day: sessions end after 30 minutes without an event (the tracker's and the
  shipper's rule), so a session with events on another day has one within that margin. Sessions seen
  only inside the day are kept as sums (count, bounces, durations, entry / exit pages); the others,
  one row per session and day, are merged by session over the days of the range at read time, so a
  session across midnight counts once with its whole in-range duration. (A session whose events are
  more than `EDGE_SECONDS` apart across a midnight, possible only with a longer tracker timeout, would
  count once per day.)

Used when a report has no filters, leaves bots out, covers whole days in the site's zone and asks for
day, week or month buckets; everything else reads the raw events.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pixel.server.api.query.filters import DIMENSIONS
from pixel.server.api.query.periods import Range, _local_midnight
from pixel.server.store.schema import EVENTS

if TYPE_CHECKING:
    from pixel.server.api.query.reports import Scope

EDGE_SECONDS = 30 * 60  # sessions end after this long without an event (tracker and shipper)
REBUILD_MIN_SECONDS = 30.0  # a changed day is rebuilt at most this often: reports may lag by that much
DROP_AFTER_REBUILDS = 20  # superseded builds are deleted after this many rebuilds (~10 minutes of today)

# Breakdown dimensions kept per day: the event-level ones of filters.py but page and event (added
# by event kind). Titles and cities are left to the raw events: many values, rarely on a dashboard.
CACHED_DIMENSIONS: dict[str, str] = {
    name: expression
    for name, expression in DIMENSIONS.items()
    if name not in ("page", "title", "city", "event")
}
SESSION_KINDS = ("entry_page", "exit_page")
# Visitor counts are sketches that merge exactly (the merge of two days' states is the state of both days'
# visitors), so cached and raw answers agree at any size. Totals (summary, timeseries) use 2^14 cells
# (about 0.7 % error once past the exact small-set range), breakdown rows 2^12 (about 1.6 %): merging
# a month of daily states per value stays cheap. The raw queries use the same functions.
UNIQ_TOTAL = "uniqCombined(14)"
UNIQ_VALUE = "uniqCombined(12)"
UNIQ_VALUE_STATE = "uniqCombinedState(12)"
UNIQ_VALUE_MERGE = "uniqCombinedMerge(12)"
TOTAL = ""
SESSIONS = "#sessions"

_DAY = "toDate(timestamp, {tz:String})"
_WINDOW = (
    "site = {site:String} AND timestamp >= {lo:DateTime64(3)} AND timestamp < {hi:DateTime64(3)}"
    f" AND is_bot = 0 AND has({{days:Array(Date)}}, {_DAY})"
)


def _dims_select() -> str:
    names = ", ".join(f"'{n}'" for n in CACHED_DIMENSIONS)
    exprs = ", ".join(f"CAST({e} AS String)" for e in CACHED_DIMENSIONS.values())
    return f"""SELECT {_DAY} AS d, dim, val, uniqCombinedState(12)(visitor_id) AS v,
        countIf(event_name = 'pageview') AS pv, count() AS ev
    FROM {EVENTS}
    ARRAY JOIN arrayConcat([if(event_name = 'pageview', 'page', 'event'), {names}]) AS dim,
        arrayConcat([if(event_name = 'pageview', path, CAST(event_name AS String)), {exprs}]) AS val
    WHERE {_WINDOW}
    GROUP BY d, dim, val"""


def _totals_select() -> str:
    return f"""SELECT {_DAY} AS d, uniqCombinedState(14)(visitor_id) AS vt, countIf(event_name = 'pageview') AS pv,
        count() AS ev
    FROM {EVENTS} WHERE {_WINDOW} GROUP BY d"""


# One row per session and local day: its part of the day, and whether the session also has events in
# another day (`edge`). The window reaches EDGE past the days built, so a session going on across
# midnight is seen on both sides; the rows outside the days built are only looked at, not kept.
_FRAGMENTS = f"""SELECT * FROM (
    SELECT d, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts,
        count() OVER (PARTITION BY sid) > 1 AS edge
    FROM (
        SELECT {_DAY} AS d, cityHash64(session_id) AS sid, min(timestamp) AS first_ts, max(timestamp) AS last_ts,
            countIf(event_name = 'pageview') AS pv, anyIf(visitor_id, event_name = 'pageview') AS pv_visitor,
            argMinIf(path, timestamp, event_name = 'pageview') AS entry,
            minIf(timestamp, event_name = 'pageview') AS entry_ts,
            argMaxIf(path, timestamp, event_name = 'pageview') AS exit,
            maxIf(timestamp, event_name = 'pageview') AS exit_ts
        FROM {EVENTS}
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0
        GROUP BY d, sid))
    WHERE has({{days:Array(Date)}}, d)"""


def _sessions_select() -> str:
    return f"""SELECT d, dim, val, uniqCombinedState(12)(pv_visitor) AS v, sum(pv) AS spv, count() AS sessions,
        countIf(pv <= 1) AS bounces, sum(toUInt64(dateDiff('millisecond', first_ts, last_ts))) AS duration_ms
    FROM ({_FRAGMENTS}) AS f
    ARRAY JOIN if(pv > 0, ['{SESSIONS}', 'entry_page', 'exit_page'], ['{SESSIONS}']) AS dim,
        if(pv > 0, ['', entry, exit], ['']) AS val
    WHERE NOT edge
    GROUP BY d, dim, val"""


def _edges_select() -> str:
    return f"""SELECT d, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
    FROM ({_FRAGMENTS}) AS f WHERE edge"""


@dataclass(frozen=True, slots=True)
class Days:
    """Whole local days of a range and the valid build of each (filled by `ensure`)."""

    first: date
    last: date
    builds: tuple[tuple[date, int], ...] = ()  # (day, its valid build)
    range_key: int = 0  # the merged rows of days first .. open_from - 1: day 0, build = this key (0: none)
    open_from: date | None = None  # the first day read from day_dimensions (None: first)

    def build_filter(self, since: date | None = None) -> str:
        """Each day's rows (from `since`) of its own valid build (a build may cover several days, later
        rebuilt one by one): the builds as an array indexed by the day's offset (cheaper than a tuple IN)."""
        # Dates and integers made here, never user input: safe to put in the SQL text.
        start = since or self.first
        by_day = dict(self.builds)
        ids = [int(by_day.get(start + timedelta(days=i), 0)) for i in range((self.last - start).days + 1)]
        if len(ids) == 1:
            return f"build = {ids[0]}"
        return f"build = [{', '.join(map(str, ids))}][toUInt32(day - toDate('{start.isoformat()}')) + 1]"


def whole_days(rng: Range) -> Days | None:
    """The range as whole days in its zone, or None (realtime, or not midnight to midnight)."""
    if rng.period == "realtime":
        return None
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(rng.tz)
    first = rng.start.astimezone(zone).date()
    last = (rng.end - timedelta(microseconds=1)).astimezone(zone).date()
    if (
        _local_midnight(first, zone) != rng.start
        or _local_midnight(last + timedelta(days=1), zone) != rng.end
    ):
        return None
    return Days(first, last)


def usable(scope: Scope) -> Days | None:
    if scope.filters or scope.include_bots:
        return None
    return whole_days(scope.range)


_locks: dict[tuple[int, str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(scope: Scope) -> threading.Lock:
    key = (id(scope.store), scope.site, scope.range.tz)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@dataclass
class _Known:
    """What this process already read or built for one (site, zone): saves a query per report. A day's build
    stays valid exactly while its recorded row count matches `event_counts`, whoever else builds too."""

    builds: dict[str, tuple[int, int]] = field(default_factory=dict)  # day -> (build, source_rows)
    ranges: dict[int, float] = field(default_factory=dict)  # range key -> trusted until (epoch s)
    # chDB only (the process is the folder's only writer): event counts per window, read at write count
    rebuilds: int = 0  # days rebuilt since superseded builds were last deleted
    counts_at: int = -1
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


_known: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], _Known]] = weakref.WeakKeyDictionary()
RANGE_TTL_SECONDS = 2 * 86400  # the merged ranges' TTL in day_dimensions (schema migration 4)


def _known_for(scope: Scope) -> _Known:
    with _locks_guard:
        return _known.setdefault(scope.store, {}).setdefault((scope.site, scope.range.tz), _Known())


def ensure(scope: Scope, days: Days) -> Days:
    """Build every day of `days` that has no valid build; return `days` with the valid builds."""
    from pixel.server.api.query import runner

    tz, site = scope.range.tz, scope.site
    fixed = {
        "site": site,
        "tz": tz,
        "first": days.first.isoformat(),
        "last": days.last.isoformat(),
        "lo": _ch_hour(scope.range.start - timedelta(hours=2, seconds=EDGE_SECONDS)),
        "hi": _ch_hour(scope.range.end + timedelta(hours=2, seconds=EDGE_SECONDS)),
        "edge": EDGE_SECONDS,
    }
    with _lock(scope):
        known = _known_for(scope)
        writes = getattr(scope.store, "writes", None)  # set by the embedded engine only
        if writes != known.counts_at:
            known.counts.clear()
        window = (days.first.isoformat(), days.last.isoformat())
        if writes is not None and window in known.counts:
            counts = known.counts[window]
        else:
            counts = _counts(scope, fixed)
            if writes is not None:
                known.counts_at, known.counts[window] = writes, counts
        every_day = [
            (days.first + timedelta(days=i)).isoformat() for i in range((days.last - days.first).days + 1)
        ]
        # Days wholly past the events' retention read as empty, whatever was built for them (see `expired_before`).
        cutoff = expired_before(scope)
        all_days = [d for d in every_day if cutoff is None or d >= cutoff.isoformat()]

        def stale(d: str) -> bool:
            return d not in known.builds or known.builds[d][1] != counts.get(d, 0)

        if any(stale(d) for d in all_days):  # maybe built by another process (or before a restart)
            for day, build, rows in runner.query(
                scope.store,
                """
                    SELECT day, max(build), argMax(source_rows, build) FROM day_builds
                    WHERE site = {site:String} AND tz = {tz:String} AND day >= {first:Date} AND day <= {last:Date}
                    GROUP BY day""",
                fixed,
            ).rows:
                if stale(str(day)):
                    known.builds[str(day)] = (int(build), int(rows))
        # A day rebuilt less than REBUILD_MIN_SECONDS ago keeps that build: while events stream in, today
        # would otherwise be rebuilt for every report (the realtime report reads raw events, exact).
        recent = time.time_ns() - int(REBUILD_MIN_SECONDS * 1e9)
        dirty = [d for d in all_days if stale(d) and (d not in known.builds or known.builds[d][0] < recent)]
        if dirty:
            previous = [known.builds[d][0] for d in dirty if d in known.builds]
            build = _build(scope, dirty, counts)
            known.builds.update({d: (build, counts.get(d, 0)) for d in dirty})
            known.rebuilds += len(previous)
            if previous and known.rebuilds >= DROP_AFTER_REBUILDS:  # a delete is a mutation: not every time
                known.rebuilds = 0
                _drop_older(scope, dirty, min(previous))
        out = Days(
            days.first,
            days.last,
            tuple((date.fromisoformat(d), known.builds[d][0] if d in all_days else 0) for d in every_day),
        )
        return _ensure_range(scope, out, known)


# -- retention -------------------------------------------------------------------------------------
# Old events go two ways: the events' TTL (the store's retention setting, all sites) drops them when
# ClickHouse merges parts, and a site's own shorter retention (set through the API) is applied by the
# store process with a DELETE every hour (server/retention.py). Neither changes the inserted-row counts a
# cached day is checked against, so the cache must not keep showing such days: a local day wholly older
# than the retention that applies (the shorter of the two) reads as empty (build 0 matches no row), is
# never rebuilt, and its cached rows (which hold visitor ids in day_session_edges) are deleted once a
# day. The TTL is read from the events table itself, so the API follows whatever retention the store
# was migrated with. The day the retention boundary falls in keeps its build until it is wholly
# expired: the events of that day also go at no fixed moment (a TTL merge, the hourly DELETE).
RETENTION_CHECK_SECONDS = 60.0  # a changed retention setting shows in reports within this long
_TTL_DAYS = re.compile(r"\bTTL toDateTime\(timestamp\) \+ toIntervalDay\((\d+)\)")
_retention: weakref.WeakKeyDictionary[Any, tuple[float, int]] = weakref.WeakKeyDictionary()
_purged: weakref.WeakKeyDictionary[Any, dict[str, date]] = weakref.WeakKeyDictionary()


def retention_days(store: Any) -> int:
    """The events table's TTL in days (0: kept forever), re-read at most every RETENTION_CHECK_SECONDS."""
    from pixel.server.api.query import runner

    with _locks_guard:
        found = _retention.get(store)
    if found is not None and found[0] > time.monotonic():
        return found[1]
    # events_local: on a cluster the TTL is on the shards' tables (server/store/cluster.py)
    engines = runner.query(
        store,
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ('events', 'events_local')",
    ).rows
    match = _TTL_DAYS.search(" ".join(str(row[0]) for row in engines))
    days = int(match.group(1)) if match else 0
    with _locks_guard:
        _retention[store] = (time.monotonic() + RETENTION_CHECK_SECONDS, days)
    return days


def expired_before(scope: Scope) -> date | None:
    """The first local day (in the scope's zone) not wholly past the retention that applies to the site,
    or None (kept forever). Also deletes the cache rows of days past it, once per day."""
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    store_days, site_days = retention_days(scope.store), int(getattr(scope, "retention_days", 0) or 0)
    if store_days > 0:  # every site: rows of days past it in every zone
        _purge_once(scope.store, "", (now - timedelta(days=store_days)).date())
    if site_days > 0 and (store_days <= 0 or site_days < store_days):  # this site only
        _purge_once(scope.store, scope.site, (now - timedelta(days=site_days)).date())
    keep = min((d for d in (store_days, site_days) if d > 0), default=0)
    if keep <= 0:
        return None
    # events before this moment are (or are about to be) gone
    return (now - timedelta(days=keep)).astimezone(ZoneInfo(scope.range.tz)).date()


def _purge_once(store: Any, site: str, moment_day: date) -> None:
    """Delete the cache rows (all sites when `site` is '') of days that ended before `moment_day` (a UTC
    date) in every zone, at most once per day. A local day ends by 12:00 UTC of the next UTC day at the
    latest (UTC-12), so days two UTC days before the moment's are past it everywhere."""
    from pixel.server.api.query import runner

    below = moment_day - timedelta(days=1)
    with _locks_guard:
        done = _purged.setdefault(store, {})
        if done.get(site) == below:
            return
        done[site] = below
    where = "day < {below:Date} AND day != toDate(0)"
    params: dict[str, Any] = {"below": below}
    if site:
        where, params = where + " AND site = {site:String}", {**params, "site": site}
    for table in ("day_dimensions", "day_session_edges", "day_builds"):
        runner.command(store, f"DELETE FROM {table} WHERE {where}", params)


def _counts(scope: Scope, fixed: dict[str, Any]) -> dict[str, int]:
    """Rows inserted so far per local day of the window (each hour counted for the days it is near)."""
    from pixel.server.api.query import runner

    return {
        str(day): int(rows)
        for day, rows in runner.query(
            scope.store,
            """
                SELECT day, sum(rows) FROM event_counts
                ARRAY JOIN arrayDistinct([toDate(hour - {edge:UInt32}, {tz:String}),
                                          toDate(hour + 3599 + {edge:UInt32}, {tz:String})]) AS day
                WHERE site = {site:String} AND hour >= {lo:DateTime} AND hour < {hi:DateTime}
                    AND day >= {first:Date} AND day <= {last:Date}
                GROUP BY day""",
            fixed,
        ).rows
    }


def _ensure_range(scope: Scope, days: Days, known: _Known) -> Days:
    """Merge the range's days before today once per set of builds (rows of day 0 in day_dimensions)."""
    from zoneinfo import ZoneInfo

    from pixel.server.api.query import runner

    today = datetime.now(UTC).astimezone(ZoneInfo(scope.range.tz)).date()
    closed = [(d, b) for d, b in days.builds if d < today]
    if len(closed) < 2:
        return days
    digest = hashlib.blake2b(repr((scope.site, scope.range.tz, closed)).encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big") >> 1
    merged = replace(days, range_key=key, open_from=closed[-1][0] + timedelta(days=1))
    if known.ranges.get(key, 0) > time.time():
        return merged
    fixed = {"site": scope.site, "tz": scope.range.tz, "key": key}
    rows, created = runner.query(
        scope.store,
        """SELECT count(), toUnixTimestamp(min(created)) FROM day_dimensions
            WHERE site = {site:String} AND tz = {tz:String} AND dimension = '' AND day = toDate(0)
                AND build = {key:UInt64}""",
        fixed,
    ).rows[0]
    # Trusted until an hour before the TTL may drop the rows.
    known.ranges[key] = (int(created) if rows else time.time()) + RANGE_TTL_SECONDS - 3600
    if not rows:
        closed_days = replace(days, builds=tuple(closed), last=closed[-1][0])
        runner.command(
            scope.store,
            f"""INSERT INTO day_dimensions (site, tz, day, build, created, dimension, value,
                visitors, visitors_total, pageviews, events, sessions, bounces, duration_ms)
            SELECT {{site:String}}, {{tz:String}}, toDate(0), {{key:UInt64}}, now(), dimension, value,
                uniqCombinedMergeState(12)(visitors), uniqCombinedMergeState(14)(visitors_total), sum(pageviews),
                sum(events), sum(sessions), sum(bounces), sum(duration_ms)
            FROM day_dimensions
            WHERE site = {{site:String}} AND tz = {{tz:String}} AND day >= {{first:Date}} AND day <= {{last:Date}}
                AND {closed_days.build_filter()}
            GROUP BY dimension, value""",
            {**fixed, "first": days.first.isoformat(), "last": closed[-1][0].isoformat()},
        )
    return merged


def _ch_hour(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:00:00")


def _drop_older(scope: Scope, days: list[str], keep_from: int) -> None:
    """Delete the rebuilt days' rows of builds before the previous one (today is rebuilt every
    REBUILD_MIN_SECONDS while events arrive, so they would pile up). The previous build stays: a report
    that picked it just before this rebuild may still be reading it."""
    from pixel.server.api.query import runner

    params = {
        "site": scope.site,
        "tz": scope.range.tz,
        "days": [date.fromisoformat(d) for d in days],
        "keep": keep_from,
    }
    for table in ("day_dimensions", "day_session_edges"):
        runner.command(
            scope.store,
            f"""DELETE FROM {table} WHERE site = {{site:String}} AND tz = {{tz:String}}
            AND has({{days:Array(Date)}}, day) AND build < {{keep:UInt64}}""",
            params,
        )


def _build(scope: Scope, dirty: list[str], counts: dict[str, int]) -> int:
    from pixel.server.api.query import runner
    from pixel.server.api.query.periods import _ch

    zone_days = [date.fromisoformat(d) for d in dirty]
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(scope.range.tz)
    build = time.time_ns()
    lo, hi = _local_midnight(min(zone_days), zone), _local_midnight(max(zone_days) + timedelta(days=1), zone)
    edge = timedelta(seconds=EDGE_SECONDS)
    params = {
        "site": scope.site,
        "tz": scope.range.tz,
        "days": zone_days,
        "build": build,
        "lo": _ch(lo),
        "hi": _ch(hi),
        "elo": _ch(lo - edge),
        "ehi": _ch(hi + edge),
    }
    head = "{site:String}, {tz:String}, d, {build:UInt64}"
    runner.command(
        scope.store,
        f"""INSERT INTO day_dimensions
        (site, tz, day, build, dimension, value, visitors_total, pageviews, events)
        SELECT {head}, '{TOTAL}', '', vt, pv, ev FROM ({_totals_select()})""",
        params,
    )
    runner.command(
        scope.store,
        f"""INSERT INTO day_dimensions
        (site, tz, day, build, dimension, value, visitors, pageviews, events)
        SELECT {head}, dim, val, v, pv, ev FROM ({_dims_select()})""",
        params,
    )
    runner.command(
        scope.store,
        f"""INSERT INTO day_dimensions
        (site, tz, day, build, dimension, value, visitors, pageviews, sessions, bounces, duration_ms)
        SELECT {head}, dim, val, v, spv, sessions, bounces, duration_ms FROM ({_sessions_select()})""",
        params,
    )
    runner.command(
        scope.store,
        f"""INSERT INTO day_session_edges
        (site, tz, day, build, sid, first_ts, last_ts, pageviews, pv_visitor, entry, entry_ts, exit, exit_ts)
        SELECT {head}, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
        FROM ({_edges_select()})""",
        params,
    )
    # Recorded last: a build cut short leaves rows no reader selects.
    scope.store.insert_rows(
        "day_builds",
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


# -- reading ----------------------------------------------------------------------------------------


def _date(day: date) -> str:
    # A date made here, never user input: safe in the SQL text (so one query can hold two ranges).
    return f"toDate('{day.isoformat()}')"


def _where(days: Days, dimension: str) -> str:
    return (
        f"site = {{site:String}} AND tz = {{tz:String}} AND dimension = '{dimension}' "
        f"AND day >= {_date(days.first)} AND day <= {_date(days.last)} AND {days.build_filter()}"
    )


def range_condition(days: Days) -> str:
    """The rows (any dimension) that make up the range: the merged days before today, then the rest."""
    since = days.open_from or days.first
    day_part = f"day >= {_date(since)} AND day <= {_date(days.last)} AND {days.build_filter(since)}"
    if since > days.last:  # every day is in the merged range
        return f"(day = toDate(0) AND build = {int(days.range_key)})"
    if not days.range_key:
        return f"({day_part})"
    return f"((day = toDate(0) AND build = {int(days.range_key)}) OR ({day_part}))"


def days_condition(days: Days) -> str:
    """The rows of each day of the range (its own build), for per-day reads such as timeseries."""
    return f"(day >= {_date(days.first)} AND day <= {_date(days.last)} AND {days.build_filter()})"


def _rows(days: Days, dimension: str, columns: str) -> str:
    """A subquery of one dimension's rows over the range: the merged days before today, then the rest."""
    return (
        f"(SELECT {columns} FROM day_dimensions WHERE site = {{site:String}} AND tz = {{tz:String}} "
        f"AND dimension = '{dimension}' AND {range_condition(days)})"
    )


def params(scope: Scope, days: Days) -> dict[str, Any]:
    return {"site": scope.site, "tz": scope.range.tz}


def edges_sql(days: Days) -> str:
    """The range's sessions that touch a day's end, merged over the days of the range (one row each)."""
    return f"""SELECT sid, min(first_ts) AS first_ts, max(last_ts) AS last_ts, sum(pageviews) AS pv,
            argMinIf(pv_visitor, entry_ts, pageviews > 0) AS pv_visitor,
            argMinIf(entry, entry_ts, pageviews > 0) AS entry, argMaxIf(exit, exit_ts, pageviews > 0) AS exit
        FROM day_session_edges
        WHERE site = {{site:String}} AND tz = {{tz:String}} AND day >= {_date(days.first)} AND day <= {_date(days.last)}
            AND {days.build_filter()}
        GROUP BY sid"""


# Tagged totals: every branch gives these columns (the dashboard adds breakdown rows of the same shape).
NUMBERS = ("visitors", "pageviews", "events", "sessions", "session_pageviews", "bounces", "duration_ms")
COLUMNS = ("tag", "bucket", *NUMBERS, "total_rows", "session_rows", "first_rank")
ZERO = dict.fromkeys(COLUMNS[2:], 0)
Tagged = dict[str, dict[str | None, dict[str, int]]]


def totals_sql(parts: dict[str, tuple[str, str | None]]) -> str:
    """The whole-day and session rows, tagged by use: `parts` maps a tag to its row condition and its
    bucket expression (None: one row). A row may serve several tags (today: summary and series)."""
    conditions = ", ".join(f"if({cond}, '{tag}', '')" for tag, (cond, _) in parts.items())
    per_tag = ", ".join(f"tag = '{tag}', {expr}" for tag, (_, expr) in parts.items() if expr)
    bucket = f"multiIf({per_tag}, '')" if per_tag else "''"
    any_row = " OR ".join(cond for cond, _ in parts.values())
    return f"""SELECT tag, {bucket} AS bucket, uniqCombinedMergeIf(14)(vt, dimension = '{TOTAL}') AS visitors,
            sumIf(pv, dimension = '{TOTAL}') AS pageviews, sumIf(ev, dimension = '{TOTAL}') AS events,
            sumIf(se, dimension = '{SESSIONS}') AS sessions, sumIf(pv, dimension = '{SESSIONS}') AS session_pageviews,
            sumIf(bo, dimension = '{SESSIONS}') AS bounces, sumIf(du, dimension = '{SESSIONS}') AS duration_ms,
            countIf(dimension = '{TOTAL}') AS total_rows, countIf(dimension = '{SESSIONS}') AS session_rows,
            toUInt64(0) AS first_rank
        FROM (SELECT tag, dimension, day, visitors_total AS vt, pageviews AS pv, events AS ev, sessions AS se,
                  bounces AS bo, duration_ms AS du
              FROM day_dimensions
              ARRAY JOIN arrayFilter(x -> x != '', [{conditions}]) AS tag
              WHERE site = {{site:String}} AND tz = {{tz:String}} AND dimension IN ('{TOTAL}', '{SESSIONS}')
                  AND ({any_row}))
        GROUP BY tag, bucket"""


def edges_totals_sql(days: Days, total_tag: str | None, series_tag: str | None, bucket: str) -> str:
    """The range's sessions across a midnight (as `session_series_sql` adds them): one row for the whole range (`total_tag`) and/or one per bucket (`series_tag`)."""
    if total_tag and series_tag:
        tag, group = (
            f"if(grouping(bucket) = 1, '{total_tag}', '{series_tag}')",
            "GROUPING SETS ((bucket), ())",
        )
    else:
        tag, group = f"'{total_tag or series_tag}'", "bucket"
        bucket = bucket if series_tag else "''"
    return f"""SELECT {tag} AS tag, {bucket} AS bucket, toUInt64(0) AS visitors, toUInt64(0) AS pageviews,
            toUInt64(0) AS events, count() AS sessions, sum(pv) AS session_pageviews, countIf(pv <= 1) AS bounces,
            sum(toUInt64(dateDiff('millisecond', first_ts, last_ts))) AS duration_ms, toUInt64(0) AS total_rows,
            count() AS session_rows, toUInt64(0) AS first_rank
        FROM ({edges_sql(days)}) GROUP BY {group}"""


def tagged(rows: list[dict[str, Any]]) -> Tagged:
    """Rows of `totals_sql` / `edges_totals_sql` by tag and bucket."""
    out: Tagged = {}
    for row in rows:
        out.setdefault(row["tag"], {})[row["bucket"]] = {k: int(row[k] or 0) for k in COLUMNS[2:]}
    return out


def summary_numbers(by_tag: Tagged, tag: str, edge_tag: str) -> dict[str, int]:
    """A range's summary numbers: its whole-day and session rows (`tag`) plus its sessions across a
    midnight (`edge_tag`)."""
    rows, edge = by_tag.get(tag, {}).get("", ZERO), by_tag.get(edge_tag, {}).get("", ZERO)
    return {
        "visitors": rows["visitors"],
        "pageviews": rows["pageviews"],
        **{k: rows[k] + edge[k] for k in ("sessions", "bounces", "duration_ms")},
    }


_DAY_BUCKETS = {
    "day": "toString({d})",
    "week": "toString(toMonday({d}))",
    "month": "toString(toStartOfMonth({d}))",
}


def day_bucket(interval: str, day: str) -> str:
    """The bucket label (day, week or month) of the Date expression `day`, as timeseries print it."""
    return _DAY_BUCKETS[interval].format(d=day)


def event_series_sql(days: Days, interval: str) -> str:
    return f"""SELECT {_DAY_BUCKETS[interval].format(d="day")} AS bucket, uniqCombinedMerge(14)(visitors_total) AS visitors,
        sum(pageviews) AS pageviews, sum(events) AS events
    FROM day_dimensions WHERE {_where(days, TOTAL)} GROUP BY bucket"""


def session_series_sql(days: Days, interval: str) -> str:
    day_bucket = _DAY_BUCKETS[interval].format(d="day")
    edge_bucket = _DAY_BUCKETS[interval].format(d="toDate(first_ts, {tz:String})")
    return f"""SELECT bucket, sum(sessions) AS sessions, sum(pageviews) AS pageviews, sum(bounces) AS bounces,
        sum(duration_ms) AS duration_ms FROM (
        SELECT {day_bucket} AS bucket, sessions, pageviews, bounces, duration_ms
        FROM day_dimensions WHERE {_where(days, SESSIONS)}
        UNION ALL
        SELECT {edge_bucket} AS bucket, 1 AS sessions, pv AS pageviews, toUInt64(pv <= 1) AS bounces,
            toUInt64(dateDiff('millisecond', first_ts, last_ts)) AS duration_ms FROM ({edges_sql(days)}))
    GROUP BY bucket"""


def cached_dimension(dimension: str) -> bool:
    return dimension in CACHED_DIMENSIONS or dimension in ("page", "event", *SESSION_KINDS)


def breakdown_states(days: Days, dimension: str) -> str:
    """One row per value of a cached dimension: `value, st` (visitors state) and the summed metrics."""
    if dimension in SESSION_KINDS:
        column = "entry" if dimension == "entry_page" else "exit"
        return f"""SELECT value, uniqCombinedMergeState(12)(v) AS st, sum(sessions) AS sessions FROM (
            SELECT value, v, sessions FROM {_rows(days, dimension, "value, visitors AS v, sessions")}
            UNION ALL
            SELECT {column} AS value, uniqCombinedState(12)(pv_visitor) AS v, count() AS sessions
            FROM ({edges_sql(days)}) WHERE pv > 0 GROUP BY value)
        GROUP BY value"""
    return f"""SELECT value, uniqCombinedMergeState(12)(v) AS st, sum(pageviews) AS pageviews, sum(events) AS events
        FROM {_rows(days, dimension, "value, visitors AS v, pageviews, events")} GROUP BY value"""
