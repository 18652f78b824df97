"""The standard reports. Each takes a `Scope` (store, site, range, filters) and returns plain data.

Definitions (the tests compute the same numbers independently):
- visitors: distinct `visitor_id`, counted with a mergeable sketch (`daycache.UNIQ_TOTAL` for totals,
  `UNIQ_VALUE` for breakdown rows: exact for small sets, about 0.7 % / 1.6 % error past them);
  pageviews: events named `pageview`; sessions: distinct `session_id`.
- A session bounces when it has at most one pageview. Visit duration is the time between a
  session's first and last event (so engagement pings on page leave lengthen it), averaged over
  all sessions, in seconds.
- Session metrics in timeseries belong to the bucket of the session's first event.
- Bots (`is_bot = 1`) are left out unless `include_bots` is set. Everything is read from
  `events FINAL`, so duplicate deliveries never count twice: directly, or through the per-day report
  cache (`daycache`, built from `events FINAL`) when a report has no filters and covers whole days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pixel.server.api.errors import bad_request
from pixel.server.api.query import daycache, runner
from pixel.server.api.query.filters import (
    PROP_PREFIX,
    SESSION_DIMENSIONS,
    Filter,
    SqlParams,
    base_where,
    dimension_sql,
)
from pixel.server.api.query.periods import Range, bucket_sql, buckets
from pixel.server.store import Store
from pixel.server.store.schema import EVENTS

EVENT_METRICS = ("visitors", "pageviews", "events")
SESSION_METRICS = ("sessions", "bounce_rate", "visit_duration", "views_per_session")
SUMMARY_METRICS = ("visitors", "pageviews", "sessions", "views_per_session", "bounce_rate", "visit_duration")
MAX_LIMIT = 1000


@dataclass
class Scope:
    store: Store
    site: str  # domain, as events carry it
    range: Range
    filters: list[Filter] = field(default_factory=list)
    include_bots: bool = False
    retention_days: int = (
        0  # the site's own retention (0: the store's); days past it read as empty when cached
    )

    def where(self, params: SqlParams) -> str:
        return base_where(self.filters, params, include_bots=self.include_bots)

    def run(self, sql: str, params: SqlParams) -> list[dict[str, Any]]:
        fixed = {"site": self.site, **self.range.params}
        return runner.query(self.store, sql, params.with_fixed(**fixed)).dicts()


def _ratio(a: float, b: float, digits: int = 2, scale: float = 1.0) -> float:
    return round(a * scale / b, digits) if b else 0.0


def _session_metrics(sessions: int, pageviews: int, bounces: int, duration_ms: int) -> dict[str, float]:
    return {
        "sessions": sessions,
        "views_per_session": _ratio(pageviews, sessions),
        "bounce_rate": _ratio(bounces, sessions, 1, 100.0),
        "visit_duration": _ratio(duration_ms, sessions, 1, 0.001),
    }


_SESSIONS_SQL = """
SELECT session_id, any(visitor_id) AS visitor_id, countIf(event_name = 'pageview') AS pv,
       dateDiff('millisecond', min(timestamp), max(timestamp)) AS dur, min(timestamp) AS first_seen
FROM {events} WHERE {where} GROUP BY session_id"""


# -- summary --------------------------------------------------------------------------------------


def _summary_row(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    pageviews = int(row[f"{prefix}pageviews"] or 0)
    out: dict[str, float] = {"visitors": int(row[f"{prefix}visitors"]), "pageviews": pageviews}
    out.update(
        _session_metrics(
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
    sql = f"""SELECT (SELECT {daycache.UNIQ_TOTAL}(visitor_id) FROM {EVENTS} WHERE {where}) AS visitors,
        sum(pv) AS pageviews, count() AS sessions, countIf(pv <= 1) AS bounces, sum(dur) AS duration_ms
        FROM ({_SESSIONS_SQL.format(events=EVENTS, where=where)})"""
    return _summary_row(scope.run(sql, params)[0])


def _summaries_cached(
    scope: Scope, before: Scope | None
) -> tuple[dict[str, float], dict[str, float] | None] | None:
    """Both periods from the report cache in one query, or None when either cannot use it."""
    days = daycache.usable(scope)
    days_before = daycache.usable(before) if before is not None else None
    if days is None or (before is not None and days_before is None):
        return None
    days = daycache.ensure(scope, days)
    days_before = (
        daycache.ensure(before, days_before) if before is not None and days_before is not None else None
    )
    # One query: the whole-day and session rows of both periods in one scan, plus their sessions across
    # a midnight (each read of a table costs chDB a few milliseconds, however small).
    parts: dict[str, tuple[str, str | None]] = {"s": (daycache.range_condition(days), None)}
    branches = [daycache.edges_totals_sql(days, "es", None, "''")]
    if days_before is not None:
        parts["ps"] = (daycache.range_condition(days_before), None)
        branches.append(daycache.edges_totals_sql(days_before, "eps", None, "''"))
    sql = "\nUNION ALL\n".join([daycache.totals_sql(parts), *branches])
    by_tag = daycache.tagged(_cached(scope, sql, days))
    current = _summary_row(daycache.summary_numbers(by_tag, "s", "es"))
    if days_before is None:
        return current, None
    return current, _summary_row(daycache.summary_numbers(by_tag, "ps", "eps"))


def _cached(
    scope: Scope, sql: str, days: daycache.Days, params: SqlParams | None = None
) -> list[dict[str, Any]]:
    values = {**daycache.params(scope, days), **(params.values if params else {})}
    return runner.query(scope.store, sql, values).dicts()


def change(metric: str, now: float, before: float) -> float | None:
    """Percent change; for bounce rate the difference in percentage points. None without a base."""
    if metric == "bounce_rate":
        return round(now - before, 1)
    if not before:
        return None
    return round((now - before) * 100.0 / before, 1)


def summary(scope: Scope, compare: bool = True) -> dict[str, Any]:
    before = replace(scope, range=scope.range.previous()) if compare else None
    cached = _summaries_cached(scope, before)
    if cached is not None:
        current, previous = cached
    else:
        current = _summary_values(scope)
        previous = _summary_values(before) if before is not None else None
    metrics = {}
    for name in SUMMARY_METRICS:
        item: dict[str, Any] = {"value": current[name]}
        if previous is not None:
            item["previous"] = previous[name]
            item["change"] = change(name, current[name], previous[name])
        metrics[name] = item
    return {"metrics": metrics}


# -- timeseries -----------------------------------------------------------------------------------


def timeseries(scope: Scope, interval: str, metrics: list[str]) -> dict[str, Any]:
    valid = EVENT_METRICS + SESSION_METRICS
    for m in metrics:
        if m not in valid:
            raise bad_request(f"unknown metric {m!r}; valid: {', '.join(valid)}", "invalid_metric")
    labels = buckets(scope.range, interval)
    points: dict[str, dict[str, float]] = {b: dict.fromkeys(metrics, 0) for b in labels}
    days = daycache.usable(scope) if interval in ("day", "week", "month") else None
    if days is not None:
        days = daycache.ensure(scope, days)
    if any(m in EVENT_METRICS for m in metrics):
        params = SqlParams()
        if days is not None:
            rows = _cached(scope, daycache.event_series_sql(days, interval), days)
        else:
            sql = f"""SELECT {bucket_sql(interval)} AS bucket, {daycache.UNIQ_TOTAL}(visitor_id) AS visitors,
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
            rows = _cached(scope, daycache.session_series_sql(days, interval), days)
        else:
            sql = f"""SELECT {bucket_sql(interval, "first_seen")} AS bucket, count() AS sessions,
                sum(pv) AS pageviews, countIf(pv <= 1) AS bounces, sum(dur) AS duration_ms
                FROM ({_SESSIONS_SQL.format(events=EVENTS, where=scope.where(params))}) GROUP BY bucket"""
            rows = scope.run(sql, params)
        for row in rows:
            if row["bucket"] in points:
                values = _session_metrics(
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
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}", "invalid_pagination")
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
    days = daycache.usable(scope) if daycache.cached_dimension(dimension) and not event else None
    if days is not None:
        days = daycache.ensure(scope, days)
        per_value = daycache.breakdown_states(days, dimension)
    elif session_level:
        inner = f"""SELECT session_id, any(visitor_id) AS visitor_id, {SESSION_DIMENSIONS[dimension]} AS value
            FROM {EVENTS} WHERE {where} AND event_name = 'pageview' GROUP BY session_id"""
        per_value = f"""SELECT value, {daycache.UNIQ_VALUE_STATE}(visitor_id) AS st, count() AS sessions
            FROM ({inner}) GROUP BY value"""
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
        per_value = f"""SELECT {value_expr} AS value, {daycache.UNIQ_VALUE_STATE}(visitor_id) AS st,
            countIf(event_name = 'pageview') AS pageviews, count() AS events
            FROM {EVENTS} WHERE {where} GROUP BY value"""
    direction = "DESC" if order == "desc" else "ASC"
    order_by = f"{sort} {direction}, value ASC" if sort != "value" else f"value {direction}"
    top_n = page * limit
    # One query: rank the values, then group the first top_n by value and every later one into `other`
    # (its visitors are the merge of the later values' states, not a sum).
    sums = ", ".join(f"sum({m}) AS {m}" for m in metrics if m != "visitors")
    sql = f"""SELECT if(rank <= {int(top_n)}, value, NULL) AS label, {daycache.UNIQ_VALUE_MERGE}(st) AS visitors,
            {sums}, min(rank) AS first_rank, any(total_rows) AS total_rows
        FROM (SELECT *, row_number() OVER (ORDER BY {order_by}) AS rank, count() OVER () AS total_rows
              FROM (SELECT *, finalizeAggregation(st) AS visitors FROM ({per_value})))
        GROUP BY label ORDER BY first_rank"""
    rows = _cached(scope, sql, days, params) if days is not None else scope.run(sql, params)
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
    store: Store, site: str, tz: str, filters: list[Filter], now: datetime | None = None
) -> dict[str, Any]:
    """Visitors in the last 5 minutes, pageviews per minute over the last 30, top pages now.

    Read without FINAL (a FINAL over today's rows cost most of the time): pageviews are counted as
    distinct event ids and visitors are distinct anyway, so a client-retry copy still counts once.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=29)
    scope = Scope(store, site, Range(first_minute, now, tz, "realtime"), filters)
    params = SqlParams()
    since = params.add(_ch(now - timedelta(minutes=5)), "DateTime64(3)")
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


def _ch(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# -- goals ----------------------------------------------------------------------------------------


def glob_regex(pattern: str) -> str:
    """A page-path glob (`*` = any characters) as an anchored RE2 pattern."""
    return "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def goal_condition(goal: dict[str, Any], params: SqlParams) -> str:
    if goal["kind"] == "page":
        return f"(event_name = 'pageview' AND match(path, {params.add(glob_regex(goal['page_pattern']))}))"
    cond = f"event_name = {params.add(goal['event_name'])}"
    if goal.get("prop_key"):
        cond += f" AND props[{params.add(goal['prop_key'])}] = {params.add(goal.get('prop_value') or '')}"
    return f"({cond})"


def goals(scope: Scope, goal_rows: list[dict[str, Any]]) -> dict[str, Any]:
    params = SqlParams()
    parts = ["uniq(visitor_id) AS total_visitors"]
    for i, goal in enumerate(goal_rows):
        cond = goal_condition(goal, params)
        parts.append(f"uniqIf(visitor_id, {cond}) AS u{i}, countIf({cond}) AS c{i}")
    row = scope.run(f"SELECT {', '.join(parts)} FROM {EVENTS} WHERE {scope.where(params)}", params)[0]
    total = int(row["total_visitors"])
    out = []
    for i, goal in enumerate(goal_rows):
        visitors = int(row[f"u{i}"])
        out.append(
            {
                "goal_id": goal["id"],
                "name": goal["name"],
                "visitors": visitors,
                "conversions": int(row[f"c{i}"]),
                "conversion_rate": _ratio(visitors, total, 2, 100.0),
            }
        )
    return {"total_visitors": total, "goals": out}


# -- funnels --------------------------------------------------------------------------------------


def funnel(scope: Scope, steps: list[dict[str, Any]], window_seconds: int) -> dict[str, Any]:
    """Visitors reaching each step in order within `window_seconds` of their first step (windowFunnel)."""
    params = SqlParams()
    conditions = [goal_condition(step, params) for step in steps]
    window = params.add(window_seconds * 1000, "UInt64")
    sql = f"""SELECT level, count() AS visitors FROM (
        SELECT visitor_id, windowFunnel({window})(toUInt64(toUnixTimestamp64Milli(timestamp)), {", ".join(conditions)}) AS level
        FROM {EVENTS} WHERE {scope.where(params)} AND ({" OR ".join(conditions)}) GROUP BY visitor_id)
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
                "conversion_rate": _ratio(reached, first, 2, 100.0),
                "dropoff": previous - reached,
                "dropoff_rate": _ratio(previous - reached, previous, 2, 100.0),
            }
        )
        previous = reached
    return {"window_seconds": window_seconds, "steps": out}


# -- retention ------------------------------------------------------------------------------------


def retention(scope: Scope) -> dict[str, Any]:
    """Weekly cohorts by the week (Monday, site zone) a visitor is first seen in the range."""
    params = SqlParams()
    sql = f"""WITH activity AS (
            SELECT DISTINCT visitor_id, toMonday(toDate(timestamp, {{tz:String}})) AS week
            FROM {EVENTS} WHERE {scope.where(params)}),
        cohorts AS (SELECT visitor_id, min(week) AS cohort FROM activity GROUP BY visitor_id)
        SELECT toString(cohort) AS cohort_week, intDiv(dateDiff('day', cohort, week), 7) AS k, count() AS visitors
        FROM activity INNER JOIN cohorts USING visitor_id GROUP BY cohort, k ORDER BY cohort, k"""
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
                "percent": [_ratio(c, size, 1, 100.0) for c in counts],
            }
        )
    return {"cohorts": out}
