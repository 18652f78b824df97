"""The standard reports. Each takes a `Scope` (store, site, range, filters) and returns plain data.

Definitions (the tests compute the same numbers independently):
- visitors: distinct `visitor_id`, counted with a mergeable sketch (`cache_sql.UNIQ_TOTAL` for totals,
  `UNIQ_VALUE` for breakdown rows: exact for small sets, about 0.7 % / 1.6 % error past them);
  pageviews: events named `pageview`; sessions: distinct `session_id`.
- A session bounces when it has at most one pageview. Visit duration is the time between a
  session's first and last event (so engagement pings on page leave lengthen it), averaged over
  all sessions, in seconds.
- Session metrics in timeseries belong to the bucket of the session's first event.
- Bots (`is_bot = 1`) are left out unless `include_bots` is set. Everything is read from
  `events FINAL`, so duplicate deliveries never count twice: directly, or through the per-day report
  cache (`report_cache`, built from `events FINAL`) when a report has no filters and covers whole days.

The public surface the dashboard shares: `check_metrics` and `check_limit` (the one validation of those
parameters), `summary_row` / `session_metrics` (numbers to report values) and `summary_body` (the summary's
answer from the two periods' values).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pixel.server.api.errors import bad_request
from pixel.server.api.query import cache_sql, goal_match, session_dashboard
from pixel.server.api.query.cache_sql import Tag
from pixel.server.api.query.filters import PROP_PREFIX, SESSION_DIMENSIONS, Filter, SqlParams, dimension_sql
from pixel.server.api.query.periods import Range, bucket_sql, buckets, ch_datetime
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import EVENTS

EVENT_METRICS = ("visitors", "pageviews", "events")
SESSION_METRICS = ("sessions", "bounce_rate", "visit_duration", "views_per_session")
SUMMARY_METRICS = ("visitors", "pageviews", "sessions", "views_per_session", "bounce_rate", "visit_duration")
MAX_LIMIT = 1000
CACHED_INTERVALS = ("day", "week", "month")  # the buckets the report cache can give


def check_metrics(metrics: list[str]) -> None:
    """A 400 `invalid_metric` unless every name is a timeseries metric."""
    valid = EVENT_METRICS + SESSION_METRICS
    for m in metrics:
        if m not in valid:
            raise bad_request(f"unknown metric {m!r}; valid: {', '.join(valid)}", "invalid_metric")


def check_limit(limit: int) -> None:
    """A 400 `invalid_pagination` unless 1 <= limit <= MAX_LIMIT."""
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}", "invalid_pagination")


def ratio(a: float, b: float, digits: int = 2, scale: float = 1.0) -> float:
    return round(a * scale / b, digits) if b else 0.0


def session_metrics(sessions: int, pageviews: int, bounces: int, duration_ms: int) -> dict[str, float]:
    return {
        "sessions": sessions,
        "views_per_session": ratio(pageviews, sessions),
        "bounce_rate": ratio(bounces, sessions, 1, 100.0),
        "visit_duration": ratio(duration_ms, sessions, 1, 0.001),
    }


_SESSIONS_SQL = """
SELECT session_id, any(visitor_id) AS visitor_id, countIf(event_name = 'pageview') AS pv,
       dateDiff('millisecond', min(timestamp), max(timestamp)) AS dur, min(timestamp) AS first_seen
FROM {events} WHERE {where} GROUP BY session_id"""


# -- summary --------------------------------------------------------------------------------------


def summary_row(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The summary's values from numbers: visitors, pageviews, sessions, bounces, duration_ms."""
    pageviews = int(row[f"{prefix}pageviews"] or 0)
    out: dict[str, float] = {"visitors": int(row[f"{prefix}visitors"]), "pageviews": pageviews}
    out.update(
        session_metrics(
            int(row[f"{prefix}sessions"]),
            pageviews,
            int(row[f"{prefix}bounces"]),
            int(row[f"{prefix}duration_ms"] or 0),
        )
    )
    return out


def _summary_values(scope: Scope) -> dict[str, float]:
    params = SqlParams()
    where = scope.where(params)
    sql = f"""SELECT (SELECT {cache_sql.UNIQ_TOTAL}(visitor_id) FROM {EVENTS} WHERE {where}) AS visitors,
        sum(pv) AS pageviews, count() AS sessions, countIf(pv <= 1) AS bounces, sum(dur) AS duration_ms
        FROM ({_SESSIONS_SQL.format(events=EVENTS, where=where)})"""
    return summary_row(scope.run(sql, params)[0])


def _summaries_cached(
    scope: Scope, before: Scope | None
) -> tuple[dict[str, float], dict[str, float] | None] | None:
    """Both periods from the report cache in one query, or None when either cannot use it."""
    days = scope.cached_days()
    days_before = before.cached_days() if before is not None else None
    if days is None or (before is not None and days_before is None):
        return None
    days = scope.ensure(days)
    days_before = before.ensure(days_before) if before is not None and days_before is not None else None
    # One query: the whole-day and session rows of both periods in one scan, plus their sessions across
    # a midnight (each read of a table costs chDB a few milliseconds, however small).
    parts: dict[Tag, tuple[str, str | None]] = {Tag.SUMMARY: (cache_sql.range_condition(days), None)}
    branches = [cache_sql.edges_totals_sql(days, Tag.SUMMARY, None, "''")]
    if days_before is not None:
        parts[Tag.PREVIOUS_SUMMARY] = (cache_sql.range_condition(days_before), None)
        branches.append(cache_sql.edges_totals_sql(days_before, Tag.PREVIOUS_SUMMARY, None, "''"))
    sql = "\nUNION ALL\n".join([cache_sql.totals_sql(parts), *branches])
    by_tag = cache_sql.tagged(scope.run_cached(sql))
    current = summary_row(cache_sql.summary_numbers(by_tag, Tag.SUMMARY))
    if days_before is None:
        return current, None
    return current, summary_row(cache_sql.summary_numbers(by_tag, Tag.PREVIOUS_SUMMARY))


def change(metric: str, now: float, before: float) -> float | None:
    """Percent change; for bounce rate the difference in percentage points. None without a base."""
    if metric == "bounce_rate":
        return round(now - before, 1)
    if not before:
        return None
    return round((now - before) * 100.0 / before, 1)


def summary_body(current: dict[str, float], previous: dict[str, float] | None) -> dict[str, Any]:
    """The summary report's answer from the values of the range and (when compared) of the previous one."""
    metrics = {}
    for name in SUMMARY_METRICS:
        item: dict[str, Any] = {"value": current[name]}
        if previous is not None:
            item["previous"] = previous[name]
            item["change"] = change(name, current[name], previous[name])
        metrics[name] = item
    return {"metrics": metrics}


def summary(scope: Scope, compare: bool = True, against: Range | None = None) -> dict[str, Any]:
    """The summary, compared (when `compare`) with `against` (default: the previous period)."""
    before = replace(scope, range=against or scope.range.previous()) if compare else None
    cached = _summaries_cached(scope, before)
    if cached is not None:
        current, previous = cached
    else:
        current = _summary_values(scope)
        previous = _summary_values(before) if before is not None else None
    return summary_body(current, previous)


# -- timeseries -----------------------------------------------------------------------------------


def timeseries(scope: Scope, interval: str, metrics: list[str]) -> dict[str, Any]:
    check_metrics(metrics)
    labels = buckets(scope.range, interval)
    points: dict[str, dict[str, float]] = {b: dict.fromkeys(metrics, 0) for b in labels}
    days = scope.cached_days() if interval in CACHED_INTERVALS else None
    if days is not None:
        days = scope.ensure(days)
    if any(m in EVENT_METRICS for m in metrics):
        params = SqlParams()
        if days is not None:
            rows = scope.run_cached(cache_sql.event_series_sql(days, interval))
        else:
            sql = f"""SELECT {bucket_sql(interval)} AS bucket, {cache_sql.UNIQ_TOTAL}(visitor_id) AS visitors,
                countIf(event_name = 'pageview') AS pageviews, count() AS events
                FROM {EVENTS} WHERE {scope.where(params)} GROUP BY bucket"""
            rows = scope.run(sql, params)
        for row in rows:
            if row["bucket"] in points:
                for m in metrics:
                    if m in EVENT_METRICS:
                        points[row["bucket"]][m] = int(row[m])
    if any(m in SESSION_METRICS for m in metrics):
        params = SqlParams()
        if days is not None:
            rows = scope.run_cached(cache_sql.session_series_sql(days, interval))
        else:
            sql = f"""SELECT {bucket_sql(interval, "first_seen")} AS bucket, count() AS sessions,
                sum(pv) AS pageviews, countIf(pv <= 1) AS bounces, sum(dur) AS duration_ms
                FROM ({_SESSIONS_SQL.format(events=EVENTS, where=scope.where(params))}) GROUP BY bucket"""
            rows = scope.run(sql, params)
        for row in rows:
            if row["bucket"] in points:
                values = session_metrics(
                    int(row["sessions"]), int(row["pageviews"]), int(row["bounces"]), int(row["duration_ms"])
                )
                for m in metrics:
                    if m in SESSION_METRICS:
                        points[row["bucket"]][m] = values[m]
    return {"interval": interval, "metrics": metrics, "points": [{"bucket": b, **points[b]} for b in labels]}


# -- breakdowns -----------------------------------------------------------------------------------


def breakdown(
    scope: Scope,
    dimension: str,
    *,
    limit: int = 10,
    page: int = 1,
    sort: str = "visitors",
    order: str = "desc",
    event: str | None = None,
) -> dict[str, Any]:
    """Top values of a dimension, one page of them, plus an `other` row for every value ranked after."""
    check_limit(limit)
    if page < 1 or (page - 1) * limit > 100_000:
        raise bad_request("page must be between 1 and 100000/limit", "invalid_pagination")
    if order not in ("asc", "desc"):
        raise bad_request("order must be asc or desc", "invalid_sort")
    params = SqlParams()
    session_level = dimension in SESSION_DIMENSIONS
    metrics = ("visitors", "sessions") if session_level else EVENT_METRICS
    if sort not in (*metrics, "value"):
        raise bad_request(f"sort must be one of {', '.join((*metrics, 'value'))}", "invalid_sort")
    where = scope.where(params)
    days = scope.cached_days() if cache_sql.cached_dimension(dimension) and not event else None
    if days is not None:
        days = scope.ensure(days)
        per_value = cache_sql.breakdown_states(days, dimension)
    elif session_level:
        inner = f"""SELECT session_id, any(visitor_id) AS visitor_id, {SESSION_DIMENSIONS[dimension]} AS value
            FROM {EVENTS} WHERE {where} AND event_name = 'pageview' GROUP BY session_id"""
        per_value = f"""SELECT value, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st, toUInt64(0) AS iv,
            count() AS sessions FROM ({inner}) GROUP BY value"""
    else:
        value_expr = dimension_sql(dimension, params)
        if dimension == "page":
            where += " AND event_name = 'pageview'"
        elif dimension == "event":
            where += " AND event_name != 'pageview'"
        elif dimension.startswith(PROP_PREFIX):
            where += f" AND mapContains(props, {params.add(dimension[len(PROP_PREFIX) :])})"
        if event:
            where += f" AND event_name = {params.add(event)}"
        per_value = f"""SELECT {value_expr} AS value, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st, toUInt64(0) AS iv,
            countIf(event_name = 'pageview') AS pageviews, count() AS events
            FROM {EVENTS} WHERE {where} GROUP BY value"""
    direction = "DESC" if order == "desc" else "ASC"
    order_by = f"{sort} {direction}, value ASC" if sort != "value" else f"value {direction}"
    top_n = page * limit
    # One query: rank the values, then group the first top_n by value and every later one into `other`
    # (its visitors are the merge of the later values' states, not a sum, plus their imported visitors `iv`,
    # a figure: `imported`).
    sums = ", ".join(f"sum({m}) AS {m}" for m in metrics if m != "visitors")
    sql = f"""SELECT if(rank <= {int(top_n)}, value, NULL) AS label,
            {cache_sql.UNIQ_VALUE_MERGE}(st) + sum(iv) AS visitors,
            {sums}, min(rank) AS first_rank, any(total_rows) AS total_rows
        FROM (SELECT *, row_number() OVER (ORDER BY {order_by}) AS rank, count() OVER () AS total_rows
              FROM (SELECT *, finalizeAggregation(st) + iv AS visitors FROM ({per_value})))
        GROUP BY label ORDER BY first_rank"""
    rows = scope.run_cached(sql, params) if days is not None else scope.run(sql, params)
    total_rows = int(rows[0]["total_rows"]) if rows else 0
    shown = [{"value": r["label"], **{m: int(r[m]) for m in metrics}} for r in rows if r["label"] is not None]
    other = next(
        ({"value": "(other)", **{m: int(r[m]) for m in metrics}} for r in rows if r["label"] is None), None
    )
    return {
        "dimension": dimension,
        "metrics": list(metrics),
        "rows": shown[(page - 1) * limit :],
        "other": other,
        "page": page,
        "limit": limit,
        "total_rows": total_rows,
        "sort": sort,
        "order": order,
    }


# -- realtime -------------------------------------------------------------------------------------


def realtime(
    runner: QueryRunner, site: str, tz: str, filters: list[Filter], now: datetime | None = None
) -> dict[str, Any]:
    """Visitors in the last 5 minutes, pageviews per minute over the last 30, top pages now.

    Read without FINAL (a FINAL over today's rows cost most of the time): pageviews are counted as
    distinct event ids and visitors are distinct anyway, so a client-retry copy still counts once.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=29)
    scope = Scope(runner, site, Range(first_minute, now, tz, "realtime"), filters)
    params = SqlParams()
    since = params.add(ch_datetime(now - timedelta(minutes=5)), "DateTime64(3)")
    where = scope.where(params)
    sql = f"""SELECT {bucket_sql("minute")} AS bucket, uniqExactIf(event_id, event_name = 'pageview') AS pageviews,
            uniqIf(visitor_id, timestamp >= {since}) AS visitors, grouping(bucket) AS total_row
        FROM events WHERE {where} GROUP BY GROUPING SETS ((bucket), ())"""
    per_minute: dict[str, int] = {}
    visitors_now = 0
    for r in scope.run(sql, params):
        if int(r["total_row"]):  # ClickHouse's grouping(): 1 on the row of the empty grouping set
            visitors_now = int(r["visitors"])
        else:
            per_minute[r["bucket"]] = int(r["pageviews"])
    top_sql = f"""SELECT path AS page, uniq(visitor_id) AS visitors, uniqExact(event_id) AS pageviews FROM events
        WHERE {where} AND timestamp >= {since} AND event_name = 'pageview'
        GROUP BY page ORDER BY visitors DESC, pageviews DESC, page ASC LIMIT 10"""
    top = scope.run(top_sql, params)
    return {
        "visitors": visitors_now,
        "pageviews_per_minute": [
            {"bucket": b, "pageviews": per_minute.get(b, 0)} for b in buckets(scope.range, "minute")
        ],
        "top_pages": [
            {"page": r["page"], "visitors": int(r["visitors"]), "pageviews": int(r["pageviews"])} for r in top
        ],
    }


# -- goals ----------------------------------------------------------------------------------------


# -- funnels --------------------------------------------------------------------------------------


STEP_SLOTS = 16  # more than the router's most steps: each instant's sub-instants, one per step


def funnel(scope: Scope, steps: list[dict[str, Any]], window_seconds: int) -> dict[str, Any]:
    """Visitors reaching each step in order within `window_seconds` of their first step.

    A chain is a step-1 event, then a step-2 event strictly later, and so on, each within the window of the
    chain's first event: one event stands for one step, and two events at one instant are not in order.
    ClickHouse's `windowFunnel` alone counts both as steps (an event matching steps 1 and 2, as a journey's
    `/blog/*` then `/blog/*` does, reaches step 2 by itself), so each event is read as one row per step it
    matches, at a sub-instant of its time that puts a later step first (`time * STEP_SLOTS + (STEP_SLOTS - 1 -
    step)`): a step then extends only chains whose previous step came at an earlier instant. The window is
    scaled alike, and since a chain's later steps never sit after its first within an instant, the scaled window
    holds exactly the chains the real one does.

    Read from the events as stored (not `events FINAL`, which merges the whole range first): an event's copy
    repeats the same (sub-instant, step) rows, which change no chain. Visitors are grouped by a 64-bit hash of
    their id, as in `retention`."""
    if len(steps) > STEP_SLOTS:
        raise ValueError(f"a funnel has at most {STEP_SLOTS} steps")
    params = SqlParams()
    conditions = [goal_match.condition(step, params) for step in steps]
    window = params.add(window_seconds * 1000 * STEP_SLOTS, "UInt64")
    mask = " + ".join(f"if({cond}, {1 << i}, 0)" for i, cond in enumerate(conditions))
    sql = f"""SELECT level, count() AS visitors FROM (
        SELECT visitor,
            windowFunnel({window})(toUInt64(at * {STEP_SLOTS} + {STEP_SLOTS - 1} - step),
                {", ".join(f"step = {i}" for i in range(len(steps)))}) AS level
        FROM (
            SELECT cityHash64(visitor_id) AS visitor, toUnixTimestamp64Milli(timestamp) AS at, toUInt16({mask}) AS bits
            FROM events WHERE {scope.where(params)} AND ({" OR ".join(conditions)}))
        ARRAY JOIN arrayFilter(i -> bitTest(bits, i), range({len(steps)})) AS step
        GROUP BY visitor)
        GROUP BY level"""
    by_level = {int(r["level"]): int(r["visitors"]) for r in scope.run(sql, params)}
    out = []
    first = sum(v for lvl, v in by_level.items() if lvl >= 1)
    previous = first
    for i, step in enumerate(steps, start=1):
        reached = sum(v for lvl, v in by_level.items() if lvl >= i)
        out.append(
            {
                "step": i,
                "name": step.get("name") or step.get("page_pattern") or step.get("event_name"),
                "visitors": reached,
                "conversion_rate": ratio(reached, first, 2, 100.0),
                "dropoff": previous - reached,
                "dropoff_rate": ratio(previous - reached, previous, 2, 100.0),
            }
        )
        previous = reached
    return {"window_seconds": window_seconds, "steps": out}


# -- retention ------------------------------------------------------------------------------------


def retention(scope: Scope) -> dict[str, Any]:
    """Weekly cohorts by the week (Monday, site zone) a visitor is first seen in the range.

    One pass: each visitor's set of active weeks (its cohort the least), then a count per (cohort, weeks later).
    Which weeks a visitor was active does not change with an event's copies, so the events are read as stored;
    where the sessions table holds the range exactly (`session_dashboard.usable`: whole slots, every filter on a
    session dimension, backfilled), from its rows (one per session and slot: every zone's Monday midnight starts
    a slot). Visitors are grouped by a 64-bit hash of their id, as the sessions table identifies sessions
    (grouping millions of ids as strings took several times as long)."""
    params = SqlParams()
    if session_dashboard.usable([scope], "week"):
        rows, when, where = "session_rows", "slot", session_dashboard.where(scope, params)
    else:
        rows, when, where = "events", "timestamp", scope.where(params)
    sql = f"""SELECT toString(cohort) AS cohort_week, intDiv(dateDiff('day', cohort, week), 7) AS k, count() AS visitors
        FROM (SELECT arrayMin(weeks) AS cohort, weeks FROM (
            SELECT cityHash64(visitor_id) AS visitor, groupUniqArray(toMonday(toDate({when}, {{tz:String}}))) AS weeks
            FROM {rows} WHERE {where} GROUP BY visitor))
        ARRAY JOIN weeks AS week GROUP BY cohort, k ORDER BY cohort, k"""
    weeks = buckets(scope.range, "week")
    cells: dict[str, dict[int, int]] = {w: {} for w in weeks}
    for row in scope.run(sql, params):
        cells.setdefault(row["cohort_week"], {})[int(row["k"])] = int(row["visitors"])
    out = []
    for i, cohort in enumerate(weeks):
        size = cells[cohort].get(0, 0)
        counts = [cells[cohort].get(k, 0) for k in range(len(weeks) - i)]
        out.append(
            {
                "cohort": cohort,
                "visitors": size,
                "weeks": counts,
                "percent": [ratio(c, size, 1, 100.0) for c in counts],
            }
        )
    return {"cohorts": out}
