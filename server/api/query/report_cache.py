"""The report cache: per-site, per-local-day aggregates built from `events FINAL`, valid while unchanged.

One `ReportCache` per store, made by `create_app` beside the metadata DB and reached by the routers
through the request (`deps.report_cache`); everything it knows lives in the object, so two apps in one
process (or a new app over a new store) never see each other's builds, locks or settings. The SQL it
runs, and how reports read what it builds, is in `cache_sql`.

Why a cache and not materialized views alone: a view sees each insert block on its own, so it would count
a client-retry copy of an event (same `event_id`, a later request) twice, and it cannot tell where a
session starts, ends or bounces. A day built here is *the raw query restricted to that day*, so it is
exact by construction (duplicates collapsed by FINAL, bots left out, the site's own time zone).

Validity: a materialized view counts the rows inserted per site and UTC hour (`event_counts`). A day's
build records that count over the hours overlapping the day widened by `EDGE_SECONDS` on both sides;
the day is valid while the count is the same. Any insert touching the day (a late event, a retried copy)
changes it and the day is rebuilt before it is read, unless its last build is younger than
`rebuild_min_seconds` or than `REBUILD_COST_FACTOR` times that build's duration (then that build is
used: with events streaming in, today's numbers lag by at most that long; the realtime report reads the raw
events). The day the live events arrive in is built in two pieces, before and after a cut an hour or two back,
so that a new event rebuilds only the second (`_ensure_split`). A replayed batch that ClickHouse drops by its
insert token changes neither. Where the store is its tables' only writer (`Store.sole_writer`, the
embedded engine), the counts are re-read only after `Store.writes` moved.

Used when a report has no filters, leaves bots out, covers whole days in the site's zone and asks for
day, week or month buckets (`Scope.cached_days`); everything else reads the raw events.

No multi-second build on a click: when the days of a range that were never built (a new data folder,
a restore, an upgrade that dropped the cache) hold more than `background_min_rows` events, `ready` says
no, the report reads the raw events (the same numbers: tests compare both paths), and a worker thread
builds those days one at a time, each build one statement, so reports and inserts run between them.
Days built before but changed since are rebuilt on the request as before (a few days at most).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pixel.server.api.query import cache_sql
from pixel.server.api.query.background_days import BackgroundDays
from pixel.server.api.query.cache_sql import EDGE_SECONDS, TOTAL, Days
from pixel.server.api.query.imported import IMPORTED_INSERT
from pixel.server.api.query.periods import ch_datetime, local_midnight
from pixel.server.api.query.runner import QueryRunner
from pixel.server.store import Store

if TYPE_CHECKING:
    from pixel.server.api.query.scope import Scope

BACKGROUND_MIN_ROWS = 300_000  # days not built yet holding more events than this are built in the background
# A changed day is rebuilt at most this often, and at most once per REBUILD_COST_FACTOR times its last build
# (so rebuilding today takes at most about a tenth of the store's time while events stream in): reports
# may lag by that much.
REBUILD_MIN_SECONDS = 4.0
REBUILD_COST_FACTOR = 10.0
DROP_AFTER_REBUILDS = 20  # superseded builds are deleted after this many rebuilds (~10 minutes of today)
# The day the live events arrive in is built in two pieces, cut at the start of the UTC hour before the present
# one, that many seconds ago: the last events of the hour before reach the store first (`_split_point`).
CUT_SETTLE_SECONDS = 600
RANGE_TTL_SECONDS = 2 * 86400  # the merged ranges' TTL in day_dimensions (schema migration 4)
RETENTION_CHECK_SECONDS = 60.0  # a changed retention setting shows in reports within this long
log = logging.getLogger(__name__)
_TTL_DAYS = re.compile(r"\bTTL toDateTime\(timestamp\) \+ toIntervalDay\((\d+)\)")


@dataclass
class _Known:
    """What this cache already read or built for one (site, zone): saves a query per report. A day's build
    stays valid exactly while its recorded row count matches `event_counts`, whoever else builds too."""

    builds: dict[str, tuple[int, int]] = field(default_factory=dict)  # day -> (build, source_rows)
    ranges: dict[int, float] = field(default_factory=dict)  # range key -> trusted until (epoch s)
    rebuilds: int = 0  # days rebuilt since superseded builds were last deleted
    build_seconds: float = 0.0  # how long the last build of changed days took
    # sole writer only: event counts per window, valid while the store's write count is `counts_at`
    counts_at: int = -1
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one build at a time per (site, zone)
    rebuild_now: bool = False  # `changed`: the next report rebuilds changed days without the wait
    split: dict[str, _Split] = field(default_factory=dict)  # day -> its two pieces (see `_ensure_split`)
    head_seconds: float = 0.0  # how long the last build of a day's first piece took


@dataclass(frozen=True, slots=True)
class _Split:
    """A day built in two pieces: its events before `cut` (build `head`) and from `cut` on (build `tail`), each
    valid while the inserted-row count of its window (`_piece_counts`) is the one recorded."""

    cut: datetime
    head: tuple[int, int]  # (build, source_rows)
    tail: tuple[int, int]


class ReportCache(BackgroundDays):
    """The per-day report cache of one store, run through `runner`.

    `rebuild_min_seconds`, `drop_after_rebuilds` and `retention_check_seconds` are this cache's own
    settings (see the module docstring and `expired_before`); tests and benchmarks set them per app.
    `clock` (epoch seconds, default `time.time`) is the app's wall clock: the routers resolve periods
    against `now()` too, so a test that pins it sees no day change between two requests."""

    worker_name = "report-cache"

    def __init__(
        self,
        runner: QueryRunner,
        *,
        rebuild_min_seconds: float = REBUILD_MIN_SECONDS,
        drop_after_rebuilds: int = DROP_AFTER_REBUILDS,
        retention_check_seconds: float = RETENTION_CHECK_SECONDS,
        background_min_rows: int = BACKGROUND_MIN_ROWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.clock = clock  # the wall clock of `now()`; tests pin it
        self.rebuild_min_seconds = rebuild_min_seconds
        self.drop_after_rebuilds = drop_after_rebuilds
        self.retention_check_seconds = retention_check_seconds
        self.background_min_rows = background_min_rows  # 0: every build on the request
        self.init_background()  # _guard (guards the dicts below), the worker's queue
        self.listeners: list[Callable[[str], None]] = []  # told `changed(site)` (the engagement cache's)
        self.engagement: Any = (
            None  # the engagement cache beside this one, made by `engagement_cache.for_cache`
        )
        self.filtered: Any = None  # the filtered dashboard's cache by filter value (`filter_cache.for_cache`)
        self.paths: Any = None  # the journeys' cache of session paths (`path_cache.for_cache`)
        self._known: dict[tuple[str, str], _Known] = {}
        self._retention: tuple[float, int] | None = None  # (re-read after, monotonic s; TTL days)
        self._purged: dict[str, date] = {}  # site ('' = all) -> days before this one deleted

    def now(self) -> datetime:
        """The moment reports are about (which day is today, what the periods and retention mean): from
        `clock`, so one pinned instant holds for every request. Build ids and rebuild ages stay on
        the real clock (they order writes)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    @property
    def store(self) -> Store:
        return self.runner.store

    def _known_for(self, scope: Scope) -> _Known:
        with self._guard:
            return self._known.setdefault((scope.site, scope.range.tz), _Known())

    # -- building -----------------------------------------------------------------------------------

    def ready(self, scope: Scope, days: Days) -> bool:
        """Whether `ensure(days)` is cheap enough for a request: False when the days never built hold more
        than `background_min_rows` events; those days are then queued for the worker (`build_pending`)."""
        known = self._known_for(scope)
        every_day = [days.first + timedelta(days=i) for i in range((days.last - days.first).days + 1)]
        missing = [
            d for d in every_day if d.isoformat() not in known.builds and d.isoformat() not in known.split
        ]
        if not missing or self.background_min_rows <= 0:
            return True
        fixed = {
            "site": scope.site,
            "tz": scope.range.tz,
            "first": min(missing).isoformat(),
            "last": max(missing).isoformat(),
        }
        built = {
            date.fromisoformat(str(day))
            for (day,) in self.runner.query(
                """SELECT DISTINCT day FROM day_builds WHERE site = {site:String} AND tz = {tz:String}
                    AND day >= {first:Date} AND day <= {last:Date}""",
                fixed,
            ).rows
        }
        missing = [d for d in missing if d not in built]
        if not missing:
            return True
        zone = ZoneInfo(scope.range.tz)
        lo, hi = local_midnight(min(missing), zone), local_midnight(max(missing) + timedelta(days=1), zone)
        counts = self._counts(
            {
                **fixed,
                "lo": _ch_hour(lo - timedelta(hours=2, seconds=EDGE_SECONDS)),
                "hi": _ch_hour(hi + timedelta(hours=2, seconds=EDGE_SECONDS)),
                "edge": EDGE_SECONDS,
            }
        )
        if sum(counts.get(d.isoformat(), 0) for d in missing) <= self.background_min_rows:
            return True
        self.queue_days(scope, missing)
        return False

    def changed(self, site: str) -> None:
        """Rows of `site` were written or deleted outside the live stream (an import, its undo): the next report
        rebuilds its changed days at once, without the wait that spares today's builds while events stream in
        (the change itself is seen, as always, in `event_counts`). Told to every listener too (the engagement
        cache beside this one)."""
        with self._guard:
            for (known_site, _tz), known in self._known.items():
                if known_site == site:
                    known.rebuild_now = True
            listeners = list(self.listeners)
        for listener in listeners:
            listener(site)

    def ensure(self, scope: Scope, days: Days) -> Days:
        """Build every day of `days` that has no valid build; return `days` with the valid builds."""
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
        known = self._known_for(scope)
        with known.lock:
            writes = self.store.writes if self.store.sole_writer else None
            if writes != known.counts_at:
                known.counts.clear()
            window = (days.first.isoformat(), days.last.isoformat())
            if writes is not None and window in known.counts:
                counts = known.counts[window]
            else:
                counts = self._counts(fixed)
                if writes is not None:
                    known.counts_at, known.counts[window] = writes, counts
            every_day = [
                (days.first + timedelta(days=i)).isoformat() for i in range((days.last - days.first).days + 1)
            ]
            # Days wholly past the events' retention read as empty, whatever was built for them.
            cutoff = self.expired_before(scope)
            all_days = [d for d in every_day if cutoff is None or d >= cutoff.isoformat()]
            cut_day, cut = self._split_point(scope)
            split_day = cut_day if cut_day in all_days else None
            whole = [d for d in all_days if d != split_day]
            for d in [d for d in known.split if d in whole or (cut_day is not None and d < cut_day)]:
                del known.split[d]  # built whole now, or never split again (the cut has moved past it)

            def stale(d: str) -> bool:
                return d not in known.builds or known.builds[d][1] != counts.get(d, 0)

            if any(stale(d) for d in whole):  # maybe built by another process (or before a restart)
                for day, build, rows in self.runner.query(
                    """
                        SELECT day, max(build), argMax(source_rows, build) FROM day_builds
                        WHERE site = {site:String} AND tz = {tz:String} AND day >= {first:Date} AND day <= {last:Date}
                        GROUP BY day""",
                    fixed,
                ).rows:
                    if stale(str(day)):
                        known.builds[str(day)] = (int(build), int(rows))
            # A day rebuilt less than rebuild_min_seconds ago keeps that build: while events stream in, today
            # would otherwise be rebuilt for every report (the realtime report reads raw events, exact).
            recent, recent_head = self._recent(known.build_seconds), self._recent(known.head_seconds)
            if known.rebuild_now:  # rows written or deleted outside the live stream (`changed`)
                known.rebuild_now, recent = False, time.time_ns()
                recent_head = recent
            dirty = [d for d in whole if stale(d) and (d not in known.builds or known.builds[d][0] < recent)]
            if dirty:
                previous = [known.builds[d][0] for d in dirty if d in known.builds]
                started = time.perf_counter()
                build = self._build(scope, dirty, counts)
                if previous:
                    known.build_seconds = time.perf_counter() - started
                known.builds.update({d: (build, counts.get(d, 0)) for d in dirty})
                self._rebuilt(scope, known, dirty, previous)
            split = None
            if split_day is not None and cut is not None:  # (`_split_point` gives both or neither)
                split = self._ensure_split(scope, known, split_day, cut, (recent, recent_head), writes)
            out = Days(
                days.first,
                days.last,
                tuple(
                    (date.fromisoformat(d), self._build_of(known, d) if d in all_days else 0)
                    for d in every_day
                ),
                tail=(date.fromisoformat(split_day), split.tail[0])
                if split is not None and split_day
                else None,
            )
            return self._ensure_range(scope, out, known)

    def _recent(self, build_seconds: float) -> int:
        """Builds from this moment on (the clock's nanoseconds, as build ids) are kept though changed: the wait
        `rebuild_min_seconds`, at least `REBUILD_COST_FACTOR` times the last such build's duration."""
        wait = self.rebuild_min_seconds
        if wait > 0:
            wait = max(wait, REBUILD_COST_FACTOR * build_seconds)
        return time.time_ns() - int(wait * 1e9)

    def _rebuilt(
        self, scope: Scope, known: _Known, days: list[str], previous: list[int], spare: int = 0
    ) -> None:
        """Days `days` were rebuilt (`previous`: the builds they replace): every `drop_after_rebuilds` rebuilds,
        delete their rows of builds older than those (a delete is a mutation: not every time), but `spare`."""
        known.rebuilds += len(previous)
        if previous and known.rebuilds >= self.drop_after_rebuilds:
            known.rebuilds = 0
            self._drop_older(scope, days, min(previous), spare)

    @staticmethod
    def _build_of(known: _Known, day: str) -> int:
        """The day's valid build (of a split day: its first piece's; `Days.tail` holds the second's)."""
        split = known.split.get(day)
        return split.head[0] if split is not None else known.builds[day][0]

    # -- the day the live events arrive in, in two pieces --------------------------------------------------
    # While events stream in, the day they arrive in changes all the time and a whole-day build of it grows
    # through the day (and so does its wait, `REBUILD_COST_FACTOR`). That day is built in two pieces instead:
    # its events before the cut (the start of the UTC hour before the present one, `CUT_SETTLE_SECONDS` ago:
    # the hours the first piece is checked against no longer change, but for late events) and from the cut
    # on. A change after the cut rebuilds the second piece alone, which aggregates at most a few hours of
    # events; the first is rebuilt when a late event changes it (both then, so each sees the other's events
    # as they are) or, once the cut has moved on, with the next rebuild. Both pieces' rows are the day's rows
    # (`Days.tail`); a session across the cut is kept by each piece as a fragment and merged at read time, as
    # a session across midnight is (`cache_sql`). The pieces are this process's own (not recorded in
    # day_builds): after a restart, or in another process, the day is built again.

    def _split_point(self, scope: Scope) -> tuple[str | None, datetime | None]:
        """(the day built in two pieces when a range holds it, the cut), or (None, None) while the cut is the
        start of its day in the scope's zone."""
        settled = self.now() - timedelta(seconds=CUT_SETTLE_SECONDS)
        cut = settled.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        zone = ZoneInfo(scope.range.tz)
        day = cut.astimezone(zone).date()
        if local_midnight(day, zone) >= cut:
            return None, None
        return day.isoformat(), cut

    def _ensure_split(
        self,
        scope: Scope,
        known: _Known,
        day: str,
        cut: datetime,
        recent: tuple[int, int],
        writes: int | None,
    ) -> _Split:
        """The valid pieces of `day`, rebuilt as needed: `recent` (the second piece's, the first's) as in `ensure`."""
        current = known.split.get(day)
        if current is not None:
            head_rows, tail_rows = self._piece_counts(scope, known, day, current.cut, writes)
            if current.head[1] != head_rows:  # a late event: both pieces again (each sees the other's events)
                if current.head[0] >= recent[1]:
                    return current  # within the first piece's wait both lag, as a whole day would
            elif current.tail[1] == tail_rows or current.tail[0] >= recent[0]:
                return current  # unchanged, or changed within the wait
            elif current.cut >= cut:
                return self._new_tail(scope, known, day, current, tail_rows)
            # else changed after a cut that has moved on since: both pieces at the new cut
        head_rows, tail_rows = self._piece_counts(scope, known, day, cut, writes)
        started = time.perf_counter()
        head = self._build(scope, [day], {}, (cut, False))
        middle = time.perf_counter()
        tail = self._build(scope, [day], {}, (cut, True))
        if current is not None:
            known.head_seconds, known.build_seconds = middle - started, time.perf_counter() - middle
            previous = [current.head[0], current.tail[0]]
        else:
            previous = [known.builds[day][0]] if day in known.builds else []
        split = _Split(cut, (head, head_rows), (tail, tail_rows))
        known.split[day] = split
        self._rebuilt(scope, known, [day], previous)
        return split

    def _new_tail(self, scope: Scope, known: _Known, day: str, current: _Split, rows: int) -> _Split:
        started = time.perf_counter()
        tail = self._build(scope, [day], {}, (current.cut, True))
        known.build_seconds = time.perf_counter() - started
        split = replace(current, tail=(tail, rows))
        known.split[day] = split
        self._rebuilt(scope, known, [day], [current.tail[0]], spare=current.head[0])
        return split

    def _piece_counts(
        self, scope: Scope, known: _Known, day: str, cut: datetime, writes: int | None
    ) -> tuple[int, int]:
        """Rows inserted so far in the windows of `day`'s two pieces at `cut`: the hours near the day's events
        before the cut, and near those from the cut on (each widened by `EDGE_SECONDS`, as a day's are)."""
        key = (f"piece {day}", cut.isoformat())
        if writes is not None and writes == known.counts_at and key in known.counts:
            found = known.counts[key]
            return found["head"], found["tail"]
        zone = ZoneInfo(scope.range.tz)
        start = local_midnight(date.fromisoformat(day), zone)
        end = local_midnight(date.fromisoformat(day) + timedelta(days=1), zone)
        edge = timedelta(seconds=EDGE_SECONDS)
        head, tail = self.runner.query(
            """SELECT sumIf(rows, hour + 3600 > {hlo:DateTime} AND hour < {hhi:DateTime}),
                    sumIf(rows, hour + 3600 > {tlo:DateTime} AND hour < {thi:DateTime})
                FROM event_counts
                WHERE site = {site:String} AND hour >= {lo:DateTime} AND hour < {hi:DateTime}""",
            {
                "site": scope.site,
                "hlo": _ch_second(start - edge),
                "hhi": _ch_second(cut + edge),
                "tlo": _ch_second(cut - edge),
                "thi": _ch_second(end + edge),
                "lo": _ch_hour(start - edge),
                "hi": _ch_second(end + edge),
            },
        ).rows[0]
        if writes is not None:
            known.counts_at = writes
            known.counts[key] = {"head": int(head or 0), "tail": int(tail or 0)}
        return int(head or 0), int(tail or 0)

    def _counts(self, fixed: dict[str, Any]) -> dict[str, int]:
        """Rows inserted so far per local day of the window (each hour counted for the days it is near)."""
        return {
            str(day): int(rows)
            for day, rows in self.runner.query(
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

    def _ensure_range(self, scope: Scope, days: Days, known: _Known) -> Days:
        """Merge the range's days before today once per set of builds (rows of day 0 in day_dimensions)."""
        today = self.now().astimezone(ZoneInfo(scope.range.tz)).date()
        split_day = days.tail[0] if days.tail is not None else today
        closed = [(d, b) for d, b in days.builds if d < min(today, split_day)]
        if len(closed) < 2:
            return days
        digest = hashlib.blake2b(repr((scope.site, scope.range.tz, closed)).encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big") >> 1
        merged = replace(days, range_key=key, open_from=closed[-1][0] + timedelta(days=1))
        if known.ranges.get(key, 0) > time.time():
            return merged
        fixed = {"site": scope.site, "tz": scope.range.tz, "key": key}
        rows, created = self.runner.query(
            """SELECT count(), toUnixTimestamp(min(created)) FROM day_dimensions
                WHERE site = {site:String} AND tz = {tz:String} AND dimension = '' AND day = toDate(0)
                    AND build = {key:UInt64}""",
            fixed,
        ).rows[0]
        # Trusted until an hour before the TTL may drop the rows.
        known.ranges[key] = (int(created) if rows else time.time()) + RANGE_TTL_SECONDS - 3600
        if not rows:
            closed_days = replace(days, builds=tuple(closed), last=closed[-1][0], tail=None)
            self.runner.command(
                f"""INSERT INTO day_dimensions (site, tz, day, build, created, dimension, value,
                    visitors, visitors_total, imported_visitors, pageviews, events, sessions, bounces, duration_ms)
                SELECT {{site:String}}, {{tz:String}}, toDate(0), {{key:UInt64}}, now(), dimension, value,
                    uniqCombinedMergeState(12)(visitors), uniqCombinedMergeState(14)(visitors_total),
                    sum(imported_visitors), sum(pageviews), sum(events), sum(sessions), sum(bounces), sum(duration_ms)
                FROM day_dimensions
                WHERE site = {{site:String}} AND tz = {{tz:String}} AND day >= {{first:Date}} AND day <= {{last:Date}}
                    AND {closed_days.build_filter()}
                GROUP BY dimension, value""",
                {**fixed, "first": days.first.isoformat(), "last": closed[-1][0].isoformat()},
            )
        return merged

    def _drop_older(self, scope: Scope, days: list[str], keep_from: int, spare: int = 0) -> None:
        """Delete the rebuilt days' rows of builds before the previous one (today is rebuilt every
        rebuild_min_seconds while events arrive, so they would pile up), but build `spare` (the first piece of
        a day whose second piece was rebuilt). The previous build stays: a report that picked it just before
        this rebuild may still be reading it."""
        params = {
            "site": scope.site,
            "tz": scope.range.tz,
            "days": [date.fromisoformat(d) for d in days],
            "keep": keep_from,
            "spare": spare,
        }
        for table in ("day_dimensions", "day_session_edges"):
            self.runner.command(
                f"""DELETE FROM {table} WHERE site = {{site:String}} AND tz = {{tz:String}}
                AND has({{days:Array(Date)}}, day) AND build < {{keep:UInt64}} AND build != {{spare:UInt64}}""",
                params,
            )

    def _build(
        self,
        scope: Scope,
        dirty: list[str],
        counts: dict[str, int],
        piece: tuple[datetime, bool] | None = None,
    ) -> int:
        """Build the days `dirty` whole and record the build with their `counts`; or, with `piece` (the cut,
        whether the events from it on), that piece of the one day `dirty`, not recorded (`_ensure_split`)."""
        zone_days = [date.fromisoformat(d) for d in dirty]
        zone = ZoneInfo(scope.range.tz)
        build = time.time_ns()
        day_lo = lo = local_midnight(min(zone_days), zone)
        day_hi = hi = local_midnight(max(zone_days) + timedelta(days=1), zone)
        if piece is not None:
            lo, hi = (piece[0], hi) if piece[1] else (lo, piece[0])
        edge = timedelta(seconds=EDGE_SECONDS)
        params: dict[str, Any] = {
            "site": scope.site,
            "tz": scope.range.tz,
            "days": zone_days,
            "build": build,
            "lo": ch_datetime(lo),
            "hi": ch_datetime(hi),
            "elo": ch_datetime(lo - edge),
            "ehi": ch_datetime(hi + edge),
        }
        split = piece is not None
        if piece is not None:
            params |= {"cut": ch_datetime(piece[0]), "late": int(piece[1])}
        head = "{site:String}, {tz:String}, d, {build:UInt64}"
        self.runner.command(
            f"""INSERT INTO day_dimensions
            (site, tz, day, build, dimension, value, visitors_total, pageviews, events)
            SELECT {head}, '{TOTAL}', '', vt, pv, ev FROM ({cache_sql.totals_select()})""",
            params,
        )
        self.runner.command(
            f"""INSERT INTO day_dimensions
            (site, tz, day, build, dimension, value, visitors, pageviews, events)
            SELECT {head}, dim, val, v, pv, ev FROM ({cache_sql.dimensions_select()})""",
            params,
        )
        self.runner.command(
            f"""INSERT INTO day_dimensions
            (site, tz, day, build, dimension, value, visitors, pageviews, sessions, bounces, duration_ms)
            SELECT {head}, dim, val, v, spv, sessions, bounces, duration_ms FROM ({cache_sql.sessions_select(split)})""",
            params,
        )
        self.runner.command(
            f"""INSERT INTO day_session_edges
            (site, tz, day, build, sid, first_ts, last_ts, pageviews, pv_visitor, entry, entry_ts, exit, exit_ts)
            SELECT {head}, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
            FROM ({cache_sql.edges_select(split)})""",
            params,
        )
        if piece is not None and not piece[1]:
            return build  # a day's first piece: its imported rows come with the second (rebuilt with it)
        # imported aggregates of the days without events (imported.py): of the whole days, a piece's too
        self.runner.command(IMPORTED_INSERT, {**params, "lo": ch_datetime(day_lo), "hi": ch_datetime(day_hi)})
        if piece is not None:
            return build
        # Recorded last: a build cut short leaves rows no reader selects.
        self.store.insert_rows(
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

    # -- retention ----------------------------------------------------------------------------------
    # Old events go two ways: the events' TTL (the store's retention setting, all sites) drops them when
    # ClickHouse merges parts, and a site's own shorter retention (set through the API) is applied by the
    # store process with a DELETE every hour (server/retention.py). Neither changes the inserted-row counts a
    # cached day is checked against, so the cache must not keep showing such days: a local day wholly older
    # than the retention that applies (the shorter of the two) reads as empty (build 0 matches no row), is
    # never rebuilt, and its cached rows (which hold visitor ids in day_session_edges) are deleted once a
    # day. The TTL is read from the events table itself, so the API follows whatever retention the store
    # was migrated with. The day the retention boundary falls in keeps its build until it is wholly
    # expired: the events of that day also go at no fixed moment (a TTL merge, the hourly DELETE).

    def retention_days(self) -> int:
        """The events table's TTL in days (0: kept forever), re-read at most every retention_check_seconds."""
        with self._guard:
            found = self._retention
        if found is not None and found[0] > time.monotonic():
            return found[1]
        # events_local: on a cluster the TTL is on the shards' tables (server/store/cluster.py)
        engines = self.runner.query(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
            "AND name IN ('events', 'events_local')",
        ).rows
        match = _TTL_DAYS.search(" ".join(str(row[0]) for row in engines))
        days = int(match.group(1)) if match else 0
        with self._guard:
            self._retention = (time.monotonic() + self.retention_check_seconds, days)
        return days

    def expired_before(self, scope: Scope) -> date | None:
        """The first local day (in the scope's zone) not wholly past the retention that applies to the site,
        or None (kept forever). Also deletes the cache rows of days past it, once per day."""
        now = self.now()
        store_days, site_days = self.retention_days(), scope.retention_days
        if store_days > 0:  # every site: rows of days past it in every zone
            self._purge_once("", (now - timedelta(days=store_days)).date())
        if site_days > 0 and (store_days <= 0 or site_days < store_days):  # this site only
            self._purge_once(scope.site, (now - timedelta(days=site_days)).date())
        keep = min((d for d in (store_days, site_days) if d > 0), default=0)
        if keep <= 0:
            return None
        # events before this moment are (or are about to be) gone
        return (now - timedelta(days=keep)).astimezone(ZoneInfo(scope.range.tz)).date()

    def _purge_once(self, site: str, moment_day: date) -> None:
        """Delete the cache rows (all sites when `site` is '') of days that ended before `moment_day` (a UTC
        date) in every zone, at most once per day. A local day ends by 12:00 UTC of the next UTC day at the
        latest (UTC-12), so days two UTC days before the moment's are past it everywhere."""
        below = moment_day - timedelta(days=1)
        with self._guard:
            if self._purged.get(site) == below:
                return
            self._purged[site] = below
        where = "day < {below:Date} AND day != toDate(0)"
        params: dict[str, Any] = {"below": below}
        if site:
            where, params = where + " AND site = {site:String}", {**params, "site": site}
        for table in ("day_dimensions", "day_session_edges", "day_builds"):
            self.runner.command(f"DELETE FROM {table} WHERE {where}", params)


def _ch_hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:00:00")


def _ch_second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
