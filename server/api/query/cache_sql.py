"""The SQL of the report cache (`report_cache.ReportCache`): what a build writes per local day, and how
reports read and combine the days.

What a day holds (`day_dimensions`, `day_session_edges`, one set of rows per build): the whole-day totals
(visitors as a sketch state, pageviews, events), the breakdown rows of `CACHED_DIMENSIONS` plus page and
event, and the day's sessions. A build looks `EDGE_SECONDS` past both ends of the day: sessions end after
30 minutes without an event (the tracker's and the shipper's rule), so a session with events on another
day has one within that margin. Sessions seen only inside the day are kept as sums (count, bounces,
durations, entry / exit pages); the others, one row per session and day, go to `day_session_edges`.

How reports combine days (the same definitions as the raw queries in `reports`):
- events, pageviews: sums of the days; visitors: the merge of the days' sketch states, which equals the
  sketch of the raw rows (see UNIQ_TOTAL), plus the sum of the rows' `imported_visitors` (imported aggregate
  days' visitors, a figure and not ids: `imported`; 0 on live rows);
- sessions: a session is counted by the events it has *inside the range*: the session sums of the days,
  plus the rows of `day_session_edges` merged by session over the days of the range at read time, so a
  session across midnight counts once with its whole in-range duration. (A session whose events are more
  than `EDGE_SECONDS` apart across a midnight, possible only with a longer tracker timeout, would count
  once per day.)
- entry / exit pages: as `filters.SESSION_DIMENSIONS` (ties at one instant broken by the path), per day
  fragment and again when the fragments of a session across midnight are merged.

The combined totals query (`totals_sql`, `edges_totals_sql`) answers several reports in one scan; each of
its rows carries a `Tag` saying which answer it belongs to. Nothing here puts user text into SQL: dates,
build ids and integers made here, dimension names from allow-lists, values as `{name:Type}` parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pixel.server.api.query.filters import DIMENSIONS
from pixel.server.api.query.periods import Range, local_midnight
from pixel.server.store.schema import EVENTS

EDGE_SECONDS = 30 * 60  # sessions end after this long without an event (tracker and shipper)

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


class Tag(StrEnum):
    """Which answer a row of the combined totals query belongs to (its `tag` column). The whole-day and
    session rows of a part (`totals_sql`) carry the part's tag; its sessions across a midnight
    (`edges_totals_sql`) carry `tag.edges`."""

    SUMMARY = "s"
    SERIES = "t"
    PREVIOUS_SUMMARY = "ps"
    PREVIOUS_SERIES = "pt"
    SUMMARY_EDGES = "es"
    SERIES_EDGES = "et"
    PREVIOUS_SUMMARY_EDGES = "eps"
    PREVIOUS_SERIES_EDGES = "ept"

    @property
    def edges(self) -> Tag:
        """The tag of this part's sessions across a midnight."""
        return Tag(f"e{self.value}")


# Breakdown rows added to the same query (the dashboard's) are tagged with this prefix and their dimension.
BREAKDOWN_TAG_PREFIX = "b:"


def tag_grouping(total: Tag | None, series: Tag | None, bucket: str) -> tuple[str, str, str]:
    """(tag expression, bucket expression, GROUP BY) of a raw query's part that gives a whole-range row tagged
    `total` and/or one row per `bucket` tagged `series` (the raw dashboard over events or session rows)."""
    if total and series:
        return (
            f"if(grouping(bucket) = 1, '{total.value}', '{series.value}')",
            bucket,
            "GROUPING SETS ((bucket), ())",
        )
    part = total or series
    assert part is not None
    return f"'{part.value}'", (bucket if series else "''"), "bucket"


# -- what a build writes -----------------------------------------------------------------------------------

_DAY = "toDate(timestamp, {tz:String})"
_WINDOW = (
    "site = {site:String} AND timestamp >= {lo:DateTime64(3)} AND timestamp < {hi:DateTime64(3)}"
    f" AND is_bot = 0 AND has({{days:Array(Date)}}, {_DAY})"
)


def dimensions_select() -> str:
    """Per day: one row per (dimension, value) of the cached dimensions, page and event."""
    names = ", ".join(f"'{n}'" for n in CACHED_DIMENSIONS)
    exprs = ", ".join(f"CAST({e} AS String)" for e in CACHED_DIMENSIONS.values())
    return f"""SELECT {_DAY} AS d, dim, val, uniqCombinedState(12)(visitor_id) AS v,
        countIf(event_name = 'pageview') AS pv, count() AS ev
    FROM {EVENTS}
    ARRAY JOIN arrayConcat([if(event_name = 'pageview', 'page', 'event'), {names}]) AS dim,
        arrayConcat([if(event_name = 'pageview', path, CAST(event_name AS String)), {exprs}]) AS val
    WHERE {_WINDOW}
    GROUP BY d, dim, val"""


def totals_select() -> str:
    """Per day: the whole-day totals."""
    return f"""SELECT {_DAY} AS d, uniqCombinedState(14)(visitor_id) AS vt, countIf(event_name = 'pageview') AS pv,
        count() AS ev
    FROM {EVENTS} WHERE {_WINDOW} GROUP BY d"""


# One row per session and local day: its part of the day, and whether the session also has events in
# another day (`edge`). The window reaches EDGE past the days built, so a session going on across
# midnight is seen on both sides; the rows outside the days built are only looked at, not kept.
# A piece of a day (`split`: the events before `{cut}`, or from it on; `ReportCache` splits the day the
# live events arrive in) is built the same way with the cut as one more edge: a session's fragments are
# per day and side of the cut, so a session across the cut is kept whole by neither piece.
def _fragments(split: bool) -> str:
    side = ", timestamp >= {cut:DateTime64(3)} AS late" if split else ""
    keep = " AND late = {late:UInt8}" if split else ""
    return f"""SELECT * FROM (
    SELECT d, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts,
        count() OVER (PARTITION BY sid) > 1 AS edge{", late" if split else ""}
    FROM (
        SELECT {_DAY} AS d{side}, cityHash64(session_id) AS sid, min(timestamp) AS first_ts,
            max(timestamp) AS last_ts,
            countIf(event_name = 'pageview') AS pv, anyIf(visitor_id, event_name = 'pageview') AS pv_visitor,
            argMinIf(path, (timestamp, path), event_name = 'pageview') AS entry,
            minIf(timestamp, event_name = 'pageview') AS entry_ts,
            argMaxIf(path, (timestamp, path), event_name = 'pageview') AS exit,
            maxIf(timestamp, event_name = 'pageview') AS exit_ts
        FROM {EVENTS}
        WHERE site = {{site:String}} AND timestamp >= {{elo:DateTime64(3)}} AND timestamp < {{ehi:DateTime64(3)}}
            AND is_bot = 0
        GROUP BY d, {"late, " if split else ""}sid))
    WHERE has({{days:Array(Date)}}, d){keep}"""


def sessions_select(split: bool = False) -> str:
    """Per day (or piece of a day: `split`): the sums of the sessions seen only inside it, overall and by entry /
    exit page."""
    return f"""SELECT d, dim, val, uniqCombinedState(12)(pv_visitor) AS v, sum(pv) AS spv, count() AS sessions,
        countIf(pv <= 1) AS bounces, sum(toUInt64(dateDiff('millisecond', first_ts, last_ts))) AS duration_ms
    FROM ({_fragments(split)}) AS f
    ARRAY JOIN if(pv > 0, ['{SESSIONS}', 'entry_page', 'exit_page'], ['{SESSIONS}']) AS dim,
        if(pv > 0, ['', entry, exit], ['']) AS val
    WHERE NOT edge
    GROUP BY d, dim, val"""


def edges_select(split: bool = False) -> str:
    """Per day (or piece of a day: `split`): one row per session that also has events on another day (or piece)."""
    return f"""SELECT d, sid, first_ts, last_ts, pv, pv_visitor, entry, entry_ts, exit, exit_ts
    FROM ({_fragments(split)}) AS f WHERE edge"""


@dataclass(frozen=True, slots=True)
class Days:
    """Whole local days of a range and the valid build of each (filled by `ReportCache.ensure`)."""

    first: date
    last: date
    builds: tuple[tuple[date, int], ...] = ()  # (day, its valid build)
    range_key: int = 0  # the merged rows of days first .. open_from - 1: day 0, build = this key (0: none)
    open_from: date | None = None  # the first day read from day_dimensions (None: first)
    # A day built in two pieces (`ReportCache`: the day the live events arrive in): (that day, the build of its
    # events from the cut on); `builds` holds the build of the events before the cut. Its rows are the day's too.
    tail: tuple[date, int] | None = None

    def build_filter(self, since: date | None = None) -> str:
        """Each day's rows (from `since`) of its own valid build (a build may cover several days, later
        rebuilt one by one): the builds as an array indexed by the day's offset (cheaper than a tuple IN),
        and the rows of the second piece of a day built in two (`tail`)."""
        # Dates and integers made here, never user input: safe to put in the SQL text.
        start = since or self.first
        by_day = dict(self.builds)
        ids = [int(by_day.get(start + timedelta(days=i), 0)) for i in range((self.last - start).days + 1)]
        if len(ids) == 1:
            own = f"build = {ids[0]}"
        else:
            own = f"build = [{', '.join(map(str, ids))}][toUInt32(day - toDate('{start.isoformat()}')) + 1]"
        if self.tail is None or not start <= self.tail[0] <= self.last:
            return own
        # a tail's build id is its own (a build's nanosecond clock): only that day's rows carry it
        return f"({own} OR build = {int(self.tail[1])})"

    def rows_where(self) -> str:
        """A per-day cache table's rows of the site and zone (`{site}`, `{tz}` parameters) for these days,
        each day's of its valid build."""
        span = f"day >= toDate('{self.first.isoformat()}') AND day <= toDate('{self.last.isoformat()}')"
        return f"site = {{site:String}} AND tz = {{tz:String}} AND {span} AND {self.build_filter()}"


def whole_days(rng: Range) -> Days | None:
    """The range as whole days in its zone, or None (realtime, or not midnight to midnight)."""
    if rng.period == "realtime":
        return None
    zone = ZoneInfo(rng.tz)
    first = rng.start.astimezone(zone).date()
    last = (rng.end - timedelta(microseconds=1)).astimezone(zone).date()
    if local_midnight(first, zone) != rng.start or local_midnight(last + timedelta(days=1), zone) != rng.end:
        return None
    return Days(first, last)


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


def edges_sql(days: Days) -> str:
    """The range's sessions that touch a day's end, merged over the days of the range (one row each)."""
    return f"""SELECT sid, min(first_ts) AS first_ts, max(last_ts) AS last_ts, sum(pageviews) AS pv,
            argMinIf(pv_visitor, entry_ts, pageviews > 0) AS pv_visitor,
            argMinIf(entry, (entry_ts, entry), pageviews > 0) AS entry,
            argMaxIf(exit, (exit_ts, exit), pageviews > 0) AS exit
        FROM day_session_edges
        WHERE site = {{site:String}} AND tz = {{tz:String}} AND day >= {_date(days.first)} AND day <= {_date(days.last)}
            AND {days.build_filter()}
        GROUP BY sid"""


# Tagged totals: every branch gives these columns (the dashboard adds breakdown rows of the same shape).
NUMBERS = ("visitors", "pageviews", "events", "sessions", "session_pageviews", "bounces", "duration_ms")
COLUMNS = ("tag", "bucket", *NUMBERS, "total_rows", "session_rows", "first_rank")
ZERO = dict.fromkeys(COLUMNS[2:], 0)
Tagged = dict[str, dict[str | None, dict[str, int]]]  # tag -> bucket -> COLUMNS[2:]


def totals_sql(parts: dict[Tag, tuple[str, str | None]]) -> str:
    """The whole-day and session rows, tagged by use: `parts` maps a tag to its row condition and its
    bucket expression (None: one row). A row may serve several tags (today: summary and series)."""
    conditions = ", ".join(f"if({cond}, '{tag}', '')" for tag, (cond, _) in parts.items())
    per_tag = ", ".join(f"tag = '{tag}', {expr}" for tag, (_, expr) in parts.items() if expr)
    bucket = f"multiIf({per_tag}, '')" if per_tag else "''"
    any_row = " OR ".join(cond for cond, _ in parts.values())
    return f"""SELECT tag, {bucket} AS bucket,
            uniqCombinedMergeIf(14)(vt, dimension = '{TOTAL}') + sumIf(iv, dimension = '{TOTAL}') AS visitors,
            sumIf(pv, dimension = '{TOTAL}') AS pageviews, sumIf(ev, dimension = '{TOTAL}') AS events,
            sumIf(se, dimension = '{SESSIONS}') AS sessions, sumIf(pv, dimension = '{SESSIONS}') AS session_pageviews,
            sumIf(bo, dimension = '{SESSIONS}') AS bounces, sumIf(du, dimension = '{SESSIONS}') AS duration_ms,
            countIf(dimension = '{TOTAL}') AS total_rows, countIf(dimension = '{SESSIONS}') AS session_rows,
            toUInt64(0) AS first_rank
        FROM (SELECT tag, dimension, day, visitors_total AS vt, imported_visitors AS iv, pageviews AS pv, events AS ev, sessions AS se,
                  bounces AS bo, duration_ms AS du
              FROM day_dimensions
              ARRAY JOIN arrayFilter(x -> x != '', [{conditions}]) AS tag
              WHERE site = {{site:String}} AND tz = {{tz:String}} AND dimension IN ('{TOTAL}', '{SESSIONS}')
                  AND ({any_row}))
        GROUP BY tag, bucket"""


def edges_totals_sql(days: Days, total: Tag | None, series: Tag | None, bucket: str) -> str:
    """The range's sessions across a midnight (as `session_series_sql` adds them): one row for the whole
    range (tagged `total.edges`) and/or one per bucket (tagged `series.edges`)."""
    if total and series:
        tag, group = (
            f"if(grouping(bucket) = 1, '{total.edges}', '{series.edges}')",
            "GROUPING SETS ((bucket), ())",
        )
    else:
        part = total or series
        if part is None:
            raise ValueError("edges_totals_sql needs a total or a series tag")
        tag, group = f"'{part.edges}'", "bucket"
        bucket = bucket if series else "''"
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


def summary_numbers(by_tag: Tagged, tag: Tag) -> dict[str, int]:
    """A range's summary numbers: its whole-day and session rows (`tag`) plus its sessions across a
    midnight (`tag.edges`), as `reports.summary_row` takes them."""
    rows, edge = by_tag.get(tag, {}).get("", ZERO), by_tag.get(tag.edges, {}).get("", ZERO)
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
    return f"""SELECT {_DAY_BUCKETS[interval].format(d="day")} AS bucket,
        uniqCombinedMerge(14)(visitors_total) + sum(imported_visitors) AS visitors,
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
    """One row per value of a cached dimension: `value, st` (visitors state), `iv` (imported visitors, added to
    the state's count) and the summed metrics."""
    if dimension in SESSION_KINDS:
        column = "entry" if dimension == "entry_page" else "exit"
        return f"""SELECT value, uniqCombinedMergeState(12)(v) AS st, sum(iv) AS iv, sum(sessions) AS sessions FROM (
            SELECT value, v, iv, sessions
            FROM {_rows(days, dimension, "value, visitors AS v, imported_visitors AS iv, sessions")}
            UNION ALL
            SELECT {column} AS value, uniqCombinedState(12)(pv_visitor) AS v, toUInt64(0) AS iv, count() AS sessions
            FROM ({edges_sql(days)}) WHERE pv > 0 GROUP BY value)
        GROUP BY value"""
    return f"""SELECT value, uniqCombinedMergeState(12)(v) AS st, sum(iv) AS iv, sum(pageviews) AS pageviews,
            sum(events) AS events
        FROM {_rows(days, dimension, "value, visitors AS v, imported_visitors AS iv, pageviews, events")}
        GROUP BY value"""
