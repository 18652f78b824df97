"""The filtered dashboard's per-day cache by filter value: the event numbers of the dashboard (visitors,
pageviews and events per day, and the event-level breakdowns in `DIMENSIONS`) split by the value of one
filter dimension of `FILTERS` (country, device, browser, os, source, channel, page, the UTM fields, the event
name: a goal) or custom property (`prop:<key>`, see `PROP_KEYS`), so that a dashboard whose filters are all on
one of those reads them from cached rows instead of the matching events.

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
session's events a filter keeps, so `day_filter_sessions` sums them per filter dimension in three kinds of rows
(`pair`, store migration 34): a session whose events of the day all have one value, with that value; a session
on one day with exactly two values (a session navigating internally: its landing page's channel and source,
then `Internal` and none; or two pages), its part with each value (`filter_value`, the other in `other`: what
a filter keeping that value and not the other keeps, its entry and exit within the part) and, once, the whole
session (what a filter keeping both keeps). A filter keeps exactly one of those three for such a session, or
nothing. The parts of the others (one per day and value: a session across a midnight, or one with more than
two values, as most are for the page) are kept one row each (`day_filter_session_edges`) and merged per
session over the values the filter keeps when read.

Filters on two dimensions of `FILTERS` (source and device) read rows split by the pair of values (a joint, see
`JOINT`), and a property filter keeping the empty value reads the key's whole split (`WHOLE`): both built only
once a site's owners asked for them.

Used (`days`) when the dashboard's filters are all on one dimension of `FILTERS` or a property, or on two of
`FILTERS`, leave bots out, cover whole days in the site's zone and ask for day, week or month buckets, and
every day of both periods has a valid build (with the joint) or is cheap to build now; otherwise (a first
long build is queued for a worker) the raw path. Nothing here puts user text in SQL: dimension names from
allow-lists, dates and build ids made here, filter values as parameters.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from pixel.server.api.query import cache_sql
from pixel.server.api.query.background_days import BackgroundDays
from pixel.server.api.query.cache_sql import Days, Tag
from pixel.server.api.query.engagement_cache import EngagementCache, kept_on
from pixel.server.api.query.filters import DIMENSIONS as EVENT_COLUMNS
from pixel.server.api.query.filters import PROP_PREFIX, Filter, SqlParams, compare_sql
from pixel.server.store.schema import EVENTS

if TYPE_CHECKING:
    from pixel.server.api.query.report_cache import ReportCache
    from pixel.server.api.query.scope import Scope

TABLES = ("day_filter_dims", "day_filter_sessions", "day_filter_session_edges", "day_filter_builds")
# The filter dimensions (API names) the rows are split by: one value per event. Most are constant in most
# sessions, or take two values (the channel and source of a session navigating internally, the UTM fields of a
# landing page); a session's pages and event names mostly are not, so most of its parts by those are edges
# (merged per session when read: for a goal, `event is ...`, the few sessions with that event).
FILTERS = (
    "country",
    "device",
    "browser",
    "os",
    "source",
    "channel",
    "page",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "event",
)
# The event-level breakdowns kept per filter value: the standard dashboard's, its goals (`event`) and
# channel. `page` rows are the pageviews' paths, `event` rows the other events' names (as `cache_sql`).
DIMENSIONS = ("page", "event", "referrer", "source", "channel", "country", "browser", "os", "device")
_BY_COLUMN = tuple(d for d in DIMENSIONS if d not in ("page", "event"))
_DAY = "toDate(timestamp, {tz:String})"
_WINDOW = (
    "site = {site:String} AND timestamp >= {elo:DateTime64(3)} AND timestamp < {ehi:DateTime64(3)}"
    f" AND is_bot = 0 AND has({{days:Array(Date)}}, {_DAY})"
)
# Custom properties split the rows too: an event's value of each property key it carries, under the filter name
# `prop:<key>`, for at most PROP_KEYS keys of a build's window (the most used) with at most PROP_VALUES distinct
# values each (a key holding an id per event would make a row per event). Each day of a build gets a marker row
# (a whole-day row of dimension KEY_CACHED) per key it split, and one (filter '', KEYS_LEFT_OUT) when it left a
# key out: a filter on a key one such day did not split reads the raw events. At most PROP_KEYS + 1 markers a
# day, however many keys the events carry. An event without the key has none of its rows, so a filter keeping
# the empty value (which such an event has) reads the raw events too.
PROP_KEYS = 20
PROP_VALUES = 100
KEY_CACHED = "#key"
KEYS_LEFT_OUT = "#keys-left-out"
# Two filter dimensions of `FILTERS` (a joint filter, named `a&b` in sorted order) split the rows too, once an
# owner asked for them: the pair of an event's two values as one value (`_joint_value`: the first value's
# length in JOINT_DIGITS digits, then both), so a joint filter keeps exactly the events both its conditions
# keep. At most MAX_JOINTS of a site's most recently asked joints are built with each day; a joint asked for
# the first time is added to the days already built (its own build id, written last beside a JOINT_CACHED
# marker under the day's build naming it), in the request when the days are few, else by a worker while the
# dashboard reads the raw events. Custom properties are never part of a joint.
# A property filter keeping the empty value (`is_not`, `not_contains`, a pattern matching '') keeps every event
# without the key, which the rows by value do not hold: asked for, a key split by the builds is split whole too
# (WHOLE + `prop:<key>`: every event of the day, its value of the key or '' without it), in the same way and
# within the same MAX_JOINTS as the joints.
JOINT = "&"
WHOLE = "#whole:"
MAX_JOINTS = 3
JOINT_CACHED = "#joint"
JOINT_DIGITS = 10
# Once a site has MAX_JOINTS, a new one takes the place of the least recently asked at most this often: each
# costs a background build of its days, which a client asking for ever new pairs would otherwise keep running.
# Asked for sooner, it reads the raw events.
ASK_SECONDS = 600.0


def joint_name(dimensions: set[str]) -> str:
    """The joint filter name of two dimensions of `FILTERS` (sorted: one name however the filters are ordered)."""
    return JOINT.join(sorted(dimensions))


def _joint_value(name: str) -> str:
    """An event's value of joint `name` (SQL): the first dimension's value's length, then both values."""
    first, second = (f"CAST({EVENT_COLUMNS[d]} AS String)" for d in name.split(JOINT))
    return f"concat(leftPad(toString(length({first})), {JOINT_DIGITS}, '0'), {first}, {second})"


def _joint_part(column: str, index: int) -> str:
    """The value of the first (`index` 0) or second dimension in a joint value `column` (SQL)."""
    length = f"toUInt64OrZero(substring({column}, 1, {JOINT_DIGITS}))"
    if index == 0:
        return f"substring({column}, {JOINT_DIGITS + 1}, {length})"
    return f"substring({column}, {JOINT_DIGITS + 1} + {length})"


def _filter_join(base: bool, joints: tuple[str, ...] = ()) -> str:
    """The ARRAY JOIN giving each event one row per filter name `f` and its value `fv`: the dimensions of
    `FILTERS` and the build's property keys (`base`), the joints `joints` (allow-listed names only) and the
    whole splits of the keys `{whole_keys}` (hex-encoded, a parameter: no key's text is spelled in SQL)."""
    names = [f"'{f}'" for f in FILTERS] if base else []
    values = [f"CAST({EVENT_COLUMNS[f]} AS String)" for f in FILTERS] if base else []
    for joint in joints:
        if not is_joint(joint):
            raise ValueError(f"not a joint of two filter dimensions: {joint!r}")
        names.append(f"'{joint}'")
        values.append(_joint_value(joint))
    name_list = f"arrayConcat([{', '.join(names)}], arrayMap(k -> concat('{WHOLE}{PROP_PREFIX}', unhex(k)), {_WHOLE_KEYS}))"
    value_list = f"arrayConcat([{', '.join(values)}], arrayMap(k -> props[unhex(k)], {_WHOLE_KEYS}))"
    if base:
        name_list = f"arrayConcat({name_list}, arrayMap(k -> concat('{PROP_PREFIX}', k), {_KEYS}))"
        value_list = f"arrayConcat({value_list}, arrayMap(k -> props[k], {_KEYS}))"
    return f"ARRAY JOIN {name_list} AS f, {value_list} AS fv"


def is_joint(name: str) -> bool:
    parts = name.split(JOINT)
    return len(parts) == 2 and parts[0] < parts[1] and all(p in FILTERS for p in parts)


def is_asked(name: str) -> bool:
    """A name of rows built only once asked for: a joint or a property's whole split."""
    return is_joint(name) or (name.startswith(WHOLE + PROP_PREFIX) and len(name) > len(WHOLE + PROP_PREFIX))


def _split_keys(names: list[str] | tuple[str, ...]) -> list[str]:
    """The hex-encoded keys of the whole splits among `names` (`{whole_keys}`)."""
    return [_hex(n.removeprefix(WHOLE + PROP_PREFIX)) for n in names if n.startswith(WHOLE)]


# the build's property keys, passed hex-encoded (`{prop_keys}`): no key's text is ever spelled in SQL
_KEYS = "arrayFilter(k -> has({prop_keys:Array(String)}, hex(k)), mapKeys(props))"
_WHOLE_KEYS = "{whole_keys:Array(String)}"

# An event's epoch milliseconds in fixed-width digits then a path: compared as one string, the least is the
# path of the least (time, path), as `filters.SESSION_DIMENSIONS`'s entry page (cheaper than a tuple per row).
# The keys order as times only because no stored time is before 1970 (the shipper takes the receive time for
# an older one; every importer refuses it as malformed), so no key has a minus sign. Digits: enough up to
# DateTime64(3)'s last year.
_MS_DIGITS = 15


def _timed(ts: str, path: str) -> str:
    return f"concat(leftPad(toString(toUnixTimestamp64Milli({ts})), {_MS_DIGITS}, '0'), {path})"


def _whole_session(pv: str, over: str = "") -> tuple[str, str, str, str, str, str]:
    """A session's first and last event times, pageviews, visitor, entry and exit paths over its parts (rows of
    `first_ts`, `last_ts`, `pv` pageviews, `pv_visitor`, `entry`, `entry_ts`, `exit`, `exit_ts`), as aggregates
    of a GROUP BY or, with `over`, of a window: the numbers the raw query gives the session's kept events."""
    entry, exit_ = _timed("entry_ts", "entry"), _timed("exit_ts", "exit")
    return (
        f"min(first_ts){over}",
        f"max(last_ts){over}",
        f"sum({pv}){over}",
        f"argMinIf(pv_visitor, entry_ts, {pv} > 0){over}",
        f"substring(minIf({entry}, {pv} > 0){over}, {_MS_DIGITS + 1})",
        f"substring(maxIf({exit_}, {pv} > 0){over}, {_MS_DIGITS + 1})",
    )


def _fragments(whole: bool, join: str) -> str:
    """One row per (local day, filter dimension, its value, session): the session's part of the day among its
    events of that value, with `parts`, how many such parts the session has for that dimension (more than one:
    it changes value or crosses a midnight), and `paired`, it has two, on one day (two values). With `whole`,
    each row also carries its session's numbers over both parts when paired (`w_*`) and the other value
    (`other`). `join` is the `_filter_join` of the filter names built. The window reaches EDGE_SECONDS past the
    days built; rows outside them are only looked at."""
    over_both = ""
    if whole:
        numbers = _whole_session("pv", " OVER w")
        names = ("w_first", "w_last", "w_pv", "w_visitor", "w_entry", "w_exit")
        over_both = (
            ",\n        if(fv = min(fv) OVER w, max(fv) OVER w, min(fv) OVER w) AS other, "
            + ", ".join(f"{number} AS {name}" for number, name in zip(numbers, names, strict=True))
        )
    return f"""SELECT * FROM (
    SELECT d, f, fv, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts,
        count() OVER w AS parts, parts = 2 AND min(d) OVER w = max(d) OVER w AS paired{over_both}
    FROM (
        SELECT {_DAY} AS d, f, fv, cityHash64(session_id) AS sid, min(timestamp) AS first_ts,
            max(timestamp) AS last_ts, countIf(event_name = 'pageview') AS pv,
            anyIf(visitor_id, event_name = 'pageview') AS pv_visitor,
            argMinIf(path, (timestamp, path), event_name = 'pageview') AS entry,
            minIf(timestamp, event_name = 'pageview') AS entry_ts,
            argMaxIf(path, (timestamp, path), event_name = 'pageview') AS exit,
            maxIf(timestamp, event_name = 'pageview') AS exit_ts
        FROM {EVENTS} {join}
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0
        GROUP BY d, f, fv, sid)
    WINDOW w AS (PARTITION BY f, sid))
    WHERE has({{days:Array(Date)}}, d)"""


# The kinds of `day_filter_sessions` rows (`pair`): the sessions with one value of the filter dimension on the
# day; the part with `filter_value` of each session with two (`other` the second); the whole of each session
# with two (`filter_value` < `other`). A filter keeps the first when it keeps the value, the second when it keeps
# the value and not the other, the third when it keeps both.
ONE_VALUE, PART_OF_PAIR, WHOLE_PAIR = 0, 1, 2


class FilterCache(EngagementCache):
    """The dashboard's cache by filter value beside one report cache (its runner, clock and settings)."""

    worker_name = "filter-cache"
    data_tables = TABLES[:3]
    builds_table = TABLES[3]

    def __init__(self, cache: ReportCache) -> None:
        super().__init__(cache)
        # site -> its joints to build with each day, the most recently asked first (`want`)
        self._joints: dict[str, list[str]] = {}
        self._replaced: dict[str, float] = {}  # site -> when a new joint last took another's place (`want`)
        self.joint_adder = _JointAdder(self)

    def carries(self, filters: list[Filter]) -> bool:
        return cached_filter(filters) is not None

    def days(self, scope: Scope) -> Days | None:
        """As `EngagementCache.days`; for a filter on a custom property, None also when a day left the key out
        (or, for a filter keeping the empty value, did not split it though it had events), and the days with the
        key's whole split when a filter keeps the empty value; for a joint filter, the days with the joint's
        builds. None while a worker adds a joint or whole split to many days."""
        name = cached_filter(scope.filters)
        if name is not None and is_joint(name):
            return self._joint_days(scope, name)
        if name is None or not name.startswith(PROP_PREFIX):
            return super().days(scope)
        params = SqlParams()
        runner = self.cache.runner
        keeps_empty = bool(
            runner.query(f"SELECT {_keeps_empty(scope.filters, params)}", params.values).scalar()
        )
        found = super().days(scope)
        if found is None:
            return None
        # the days that left a key out and did not split this one; for a filter keeping '', the days with events
        # that did not split it (its events without the key are in no row but a whole split's)
        left_out = runner.query(
            f"""SELECT count() FROM (
                SELECT day FROM {TABLES[0]}
                WHERE {found.rows_where()} AND (filter IN ('', {{name:String}})
                    AND dimension IN ('{KEY_CACHED}', '{KEYS_LEFT_OUT}')
                    OR {int(keeps_empty)} AND filter = 'event' AND dimension = '')
                GROUP BY day HAVING NOT max(dimension = '{KEY_CACHED}'))""",
            {"site": scope.site, "tz": scope.range.tz, "name": name},
        ).scalar()
        if left_out:
            return None
        return self._joint_days(scope, WHOLE + name, found) if keeps_empty else found

    # -- joints -------------------------------------------------------------------------------------

    def wanted(self, site: str) -> list[str]:
        """`site`'s joints built with each day, the most recently asked first; on first use, those the store's
        builds hold (the most recently added first)."""
        with self._guard:
            found = self._joints.get(site)
        if found is not None:
            return list(found)
        stored = [
            name
            for (name,) in self.cache.runner.query(
                f"""SELECT filter FROM {TABLES[0]} WHERE site = {{site:String}} AND dimension = '{JOINT_CACHED}'
                GROUP BY filter ORDER BY max(toUInt64(value)) DESC, filter LIMIT {MAX_JOINTS}""",
                {"site": site},
            ).rows
            if is_asked(name)
        ]
        with self._guard:
            return list(self._joints.setdefault(site, stored))

    def want(self, site: str, name: str) -> bool:
        """Build joint `name` with `site`'s days from now on, the least recently asked past MAX_JOINTS no longer;
        False (nothing changed) when it would take another's place within ASK_SECONDS of the last time one did."""
        wanted = self.wanted(site)
        now = self.cache.clock()
        with self._guard:
            if name not in wanted and len(wanted) >= MAX_JOINTS:
                if now - self._replaced.get(site, now - ASK_SECONDS) < ASK_SECONDS:
                    return False
                self._replaced[site] = now
            self._joints[site] = [name, *(j for j in wanted if j != name)][:MAX_JOINTS]
        return True

    def _joint_days(self, scope: Scope, name: str, found: Days | None = None) -> Days | None:
        """The days of the joint or whole split `name` (asked for now), or None while a worker adds it or it may
        not be taken yet (`want`); `found`: the scope's days with their valid builds, if known already."""
        if not self.want(scope.site, name):
            return None
        found = found or super().days(scope)  # the days built now build it too
        if found is None:
            return None
        builds = self._marked(scope, found, name)
        needed = self._needing(scope, found, name)
        missing = [d for d in needed if d not in builds]
        if missing:
            limit = self.cache.background_min_rows
            counts = self._counts(self._params(scope, min(missing), max(missing)))
            if limit > 0 and sum(counts.get(d.isoformat(), 0) for d in missing) > limit:
                self.joint_adder.queue_days(scope, missing)
                return None
            self.add_joints(scope, Days(min(missing), max(missing)), (name,))
            builds = self._marked(scope, found, name)
            if any(d not in builds for d in needed):
                return None  # (a day rebuilt meanwhile without it)
        return Days(found.first, found.last, tuple((d, builds.get(d, 0)) for d, _ in found.builds))

    def _needing(self, scope: Scope, days: Days, name: str) -> list[date]:
        """The days of `days` (their valid builds; none past the retention) that hold, or should hold, the rows of
        the joint or whole split `name`: for a whole split, the days whose build split the key (the others have
        no event with the key: `FilterCache.days` reads the raw events when one of them has events)."""
        needed = [d for d, build in days.builds if build]
        if is_joint(name):
            return needed
        split = self._marked(scope, days, name.removeprefix(WHOLE), KEY_CACHED)
        return [d for d in needed if d in split]

    def _marked(self, scope: Scope, days: Days, name: str, marker: str = JOINT_CACHED) -> dict[date, int]:
        """Day -> the build a `marker` row of `name` names, for the days of `days` (their valid builds) that hold
        one: for JOINT_CACHED, the build holding the joint or whole split `name` (the newest, should two
        processes have added it); for KEY_CACHED, the days whose build split property `name` (build 0)."""
        return {
            date.fromisoformat(str(day)): int(build)
            for day, build in self.cache.runner.query(
                f"""SELECT day, max(toUInt64OrZero(value)) FROM {TABLES[0]}
                WHERE {days.rows_where()} AND filter = {{name:String}} AND dimension = '{_marker(marker)}'
                GROUP BY day""",
                {"site": scope.site, "tz": scope.range.tz, "name": name},
            ).rows
        }

    def add_joints(self, scope: Scope, days: Days, names: tuple[str, ...] | None = None) -> None:
        """Add the joints `names` (default: the site's wanted ones) to the valid builds of `days` that lack
        them (the days built first if they have none), each under a build of its own, its markers last."""
        found = self.ensure(scope, days)
        names = tuple(self.wanted(scope.site)) if names is None else names
        with self._known_for(scope).lock:  # no two adds of one joint to one build by this process
            for name in names:
                have = self._marked(scope, found, name)
                needed = set(self._needing(scope, found, name))
                missing = [(d, build) for d, build in found.builds if d in needed and d not in have]
                if not missing:
                    continue
                params = self._build_params(scope, [d for d, _ in missing])
                joints = (name,) if is_joint(name) else ()
                params["whole_keys"] = _split_keys([name])
                self._write(params, _filter_join(base=False, joints=joints))
                self._mark_joints(params, [(d, build) for d, build in missing], (name,))

    def _mark(self, params: dict[str, Any], marks: list[tuple[date, int, str, str, str]]) -> None:
        """Marker rows of `day_filter_dims`: (day, build, filter name hex-encoded, marker dimension, value)."""
        if not marks:
            return
        self.cache.runner.command(
            f"""INSERT INTO {TABLES[0]} (site, tz, day, build, filter, filter_value, dimension, value,
                pageviews, events)
            SELECT {{site:String}}, {{tz:String}}, m.1, m.2, unhex(m.3), '', m.4, m.5, 0, 0
            FROM system.one ARRAY JOIN {{marks:Array(Tuple(Date, UInt64, String, String, String))}} AS m""",
            {**params, "marks": marks},
        )

    def _mark_joints(
        self, params: dict[str, Any], days: list[tuple[date, int]], names: tuple[str, ...]
    ) -> None:
        """The markers saying build `{build}` holds the joints `names` of `days` (each under its day's build)."""
        held = str(params["build"])
        self._mark(params, [(d, build, _hex(n), JOINT_CACHED, held) for d, build in days for n in names])

    # -- building -----------------------------------------------------------------------------------

    def _insert_rows(self, params: dict[str, Any]) -> None:
        """Build `build`'s rows of the days `days`: the split property keys' markers, the rows of every filter
        dimension, property key and wanted joint, then the joints' markers."""
        runner = self.cache.runner
        # the keys to split: the fitting ones first, then the most used; one row past them says a key is left out
        found = runner.query(
            f"""SELECT key, uniqUpTo({PROP_VALUES})(value) <= {PROP_VALUES} AS fits FROM {EVENTS}
                ARRAY JOIN mapKeys(props) AS key, mapValues(props) AS value
            WHERE {_WINDOW} GROUP BY key ORDER BY fits DESC, count() DESC, key LIMIT {PROP_KEYS + 1}""",
            params,
        ).rows
        kept = [key for key, fits in found[:PROP_KEYS] if fits]
        params = {**params, "prop_keys": [_hex(key) for key in kept]}
        markers = [(_hex(PROP_PREFIX + key), KEY_CACHED) for key in kept]
        markers += [("", KEYS_LEFT_OUT)] if len(found) > len(kept) else []
        build = params["build"]
        self._mark(params, [(d, build, name, mark, "") for d in params["days"] for name, mark in markers])
        asked = self.wanted(params["site"])
        joints = tuple(name for name in asked if is_joint(name))
        # the whole splits of the asked keys this build splits (a key with too many values never is)
        wholes = tuple(
            n for n in asked if n.startswith(WHOLE) and n.removeprefix(WHOLE + PROP_PREFIX) in kept
        )
        params["whole_keys"] = _split_keys(wholes)
        self._write(params, _filter_join(base=True, joints=joints))
        self._mark_joints(params, [(d, build) for d in params["days"]], joints + wholes)

    def _write(self, params: dict[str, Any], join: str) -> None:
        """Write build `build`'s rows of the days `days` for the filter names of `join` (`_filter_join`)."""
        head = "{site:String}, {tz:String}, d, {build:UInt64}, f, fv"
        runner = self.cache.runner
        runner.command(
            f"""INSERT INTO {TABLES[0]}
            (site, tz, day, build, filter, filter_value, dimension, value, visitors_total, pageviews, events)
            SELECT {head}, '', '', vt, pv, ev FROM (
                SELECT {_DAY} AS d, f, fv, {cache_sql.UNIQ_TOTAL.replace("(", "State(", 1)}(visitor_id) AS vt,
                    countIf(event_name = 'pageview') AS pv, count() AS ev
                FROM {EVENTS} {join}
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
                FROM {EVENTS} {join}
                ARRAY JOIN arrayConcat([if(event_name = 'pageview', 'page', 'event')], [{names}]) AS dim,
                    arrayConcat([if(event_name = 'pageview', path, CAST(event_name AS String))], [{values}]) AS val
                WHERE {_WINDOW} GROUP BY d, f, fv, dim, val)""",
            params,
        )
        runner.command(
            f"""INSERT INTO {TABLES[1]} (site, tz, day, build, filter, filter_value, other, pair, dimension, value,
                visitors, pageviews, sessions, bounces, duration_ms)
            SELECT {head}, second, pair, dim, val, v, spv, sessions, bounces, duration_ms FROM (
                SELECT d, f, fv, second, pair, dim, val, {cache_sql.UNIQ_VALUE_STATE}(visitor) AS v, sum(p) AS spv,
                    count() AS sessions, countIf(p <= 1) AS bounces,
                    sum(toUInt64(dateDiff('millisecond', first, last))) AS duration_ms
                FROM (
                    SELECT d, f, fv, pair, if(pair = {ONE_VALUE}, '', other) AS second, if(pair = {WHOLE_PAIR},
                        (w_visitor, w_pv, w_first, w_last, w_entry, w_exit),
                        (pv_visitor, pv, first_ts, last_ts, entry, exit)) AS numbers,
                        numbers.1 AS visitor, numbers.2 AS p, numbers.3 AS first, numbers.4 AS last,
                        numbers.5 AS en, numbers.6 AS ex
                    FROM ({_fragments(whole=True, join=join)})
                    ARRAY JOIN if(paired, if(fv < other, [{PART_OF_PAIR}, {WHOLE_PAIR}], [{PART_OF_PAIR}]),
                        [{ONE_VALUE}]) AS pair
                    WHERE parts = 1 OR paired)
                ARRAY JOIN if(p > 0, ['{cache_sql.SESSIONS}', 'entry_page', 'exit_page'], ['{cache_sql.SESSIONS}']) AS dim,
                    if(p > 0, ['', en, ex], ['']) AS val
                GROUP BY d, f, fv, second, pair, dim, val)""",
            params,
        )
        runner.command(
            f"""INSERT INTO {TABLES[2]} (site, tz, day, build, filter, filter_value, sid, first_ts, last_ts,
                pageviews, pv_visitor, entry, entry_ts, exit, exit_ts)
            SELECT {head}, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
            FROM ({_fragments(whole=False, join=join)}) WHERE parts > 1 AND NOT paired""",
            params,
        )


def _marker(name: str) -> str:
    """A marker's dimension, checked: spelled in SQL."""
    if name not in (JOINT_CACHED, KEY_CACHED):
        raise ValueError(f"not a marker: {name!r}")
    return name


def _keeps_empty(filters: list[Filter], params: SqlParams) -> str:
    """Whether `filters` keep the empty value (SQL, a constant)."""
    return " AND ".join(compare_sql("''", f.operator, params.add(f.value)) for f in filters)


def _hex(text: str) -> str:
    """`text` as ClickHouse's `hex` spells it: how a property key reaches the SQL (never as text)."""
    return text.encode().hex().upper()


def one_dimension(filters: list[Filter]) -> str | None:
    """The filter dimension of `FILTERS` or the custom property (`prop:<key>`) every filter is on, or None (no
    filter, two dimensions, others)."""
    found = {f.dimension for f in filters}
    if len(found) != 1:
        return None
    (name,) = found
    return name if name in FILTERS or name.startswith(PROP_PREFIX) else None


def cached_filter(filters: list[Filter]) -> str | None:
    """The filter name of the cached rows that answer `filters`: their one dimension (`one_dimension`), the
    joint of their two dimensions of `FILTERS` (`joint_name`), or None."""
    found = {f.dimension for f in filters}
    if len(found) == 2 and found <= set(FILTERS):
        return joint_name(found)
    return one_dimension(filters)


def days(scope: Scope, interval: str) -> Days | None:
    """The scope's whole days with their valid builds (building the changed ones now), or None: read the
    raw events (see the module docstring for when)."""
    if (
        scope.cache is None
        or interval not in ("day", "week", "month")
        or cached_filter(scope.filters) is None
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
    """The cached rows of `table` for `days` and the values `filters` keep (their one dimension or joint),
    `dimensions` a condition on the rows, with `columns`."""
    name = cached_filter(filters)
    if name is None:
        raise ValueError(
            f"the filter cache answers filters on one or two of {', '.join(FILTERS)} or a property"
        )
    parts = name.split(JOINT) if is_joint(name) else [name]
    values = [(parts.index(f.dimension), f.operator, params.add(f.value)) for f in filters]

    def keeps(column: str) -> str:
        """The condition `filter_sql` puts on the events' columns, on a value column (beside the others: read
        while the rows are read, cheaper where a filter keeps few of many values, as for pages)."""
        return " AND ".join(
            compare_sql(_joint_part(column, i) if len(parts) == 2 else column, op, value)
            for i, op, value in values
        )

    keep = keeps("filter_value")
    if table == TABLES[1]:
        # a session's part with the value when the other is dropped, the whole session when both are kept
        keep += f" AND (pair = {ONE_VALUE} OR (pair = {WHOLE_PAIR}) = ({keeps('other')}))"
    read = params.add(name)
    if name.startswith(PROP_PREFIX):  # a filter keeping '' reads the whole split (`FilterCache.days`)
        read = f"if({_keeps_empty(filters, params)}, {params.add(WHOLE + name)}, {read})"
    return f"""(SELECT {columns} FROM {table}
            WHERE {days.rows_where()} AND filter = {read} AND {dimensions} AND {keep})"""


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


def event_numbers_sql(days: Days, filters: list[Filter], params: SqlParams, event_name: str) -> str:
    """One row `u` (visitors), `c` (events) of the events named `event_name` (not `pageview`: pageviews are
    kept by page) that `filters` keep: a goal on an event with a property value (`goal_counts`)."""
    rows = _rows(
        days,
        filters,
        params,
        "visitors AS v, events AS ev",
        f"dimension = 'event' AND value = {params.add(event_name)}",
    )
    return f"SELECT toUInt64({cache_sql.UNIQ_VALUE_MERGE}(v)) AS u, toUInt64(sum(ev)) AS c FROM {rows}"


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


def _edges(days: Days, filters: list[Filter], params: SqlParams) -> str:
    """The kept parts of sessions across a midnight or a change of value, merged per session over the range
    (one row each, as `cache_sql.edges_sql`)."""
    columns = "sid, first_ts, last_ts, pageviews, pv_visitor, entry, entry_ts, exit, exit_ts"
    rows = _rows(days, filters, params, columns, "1", TABLES[2])
    first, last, pv, visitor, entry, exit_ = _whole_session("pageviews")
    return f"""SELECT sid, {first} AS first_ts, {last} AS last_ts, {pv} AS pv, {visitor} AS pv_visitor,
            {entry} AS entry, {exit_} AS exit
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


class _JointAdder(BackgroundDays):
    """The worker adding a site's wanted joints to days already built (`FilterCache.add_joints`), one day per
    step, while a joint filter's dashboard reads the raw events."""

    worker_name = "filter-cache-joints"

    def __init__(self, owner: FilterCache) -> None:
        self.owner = owner
        self.init_background()

    def ensure(self, scope: Scope, days: Days) -> Days:
        self.owner.add_joints(scope, days)
        return days


def for_cache(cache: ReportCache) -> FilterCache:
    """The filter cache of `cache`'s store (one per report cache, so per app), kept on the report cache."""
    return kept_on(cache, "filtered", FilterCache)
