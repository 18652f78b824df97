"""Answer a parsed Plausible v2 `Query` from the events store, in Plausible's result shape.

Definitions (the tests compute the same numbers independently):
- Rows group the events kept by the filters (event-level: a filter on a visit: property keeps the events
  that carry it) by the dimensions. `visitors` counts distinct visitor ids exactly, `pageviews` and `events`
  the row's pageviews and events. `visits` counts the sessions with an event in the row; `bounce_rate`
  (percent, whole number) and `visit_duration` (seconds, whole number) are of those sessions as a whole
  (within the filters); `views_per_visit` is the row's pageviews per visit (two decimals). Halves round up.
- Time dimensions label buckets in the site's zone: `time:day` "YYYY-MM-DD", `time:hour`
  "YYYY-MM-DD hh:00:00", `time:week` its Monday, `time:month` its first day; `time` picks hour, day or month
  from the range's length. Buckets without events are left out of `results`; `include.time_labels` lists
  every bucket of the range.
- `visit:entry_page` / `visit:exit_page` are the paths of a visit's first and last pageview in the range (ties
  at one instant broken by the path, as Pixel's own entry/exit reports), computed before the filters: a filter
  on them keeps every event of the visits whose entry/exit page matches, and any other filter leaves a visit's
  entry page as it was. A visit without a pageview has none: it is in no row grouped by them.
- `event:goal`: the site's goals by name (a page goal: pageviews whose path matches its glob; an event goal: that
  event, with its property value if it has one — as Pixel's goal reports). Grouped by it, an event counts in
  the row of every goal it completes (none: in no row); a filter keeps the events completing a goal named
  (is) or whose name contains the text (contains). As Plausible's SQL (two decimals, ClickHouse's rounding):
  `conversion_rate` is the row's visitors in percent of all the query's visitors with the top-level goal and
  custom property filters taken away (no dimensions); `group_conversion_rate` in percent of those visitors with
  the row's same other (non-goal) dimension values.
- Page metrics, with Plausible's formulas and ClickHouse's rounding (`ch_round`: halves to even):
  `percentage` is the row's visitors in percent (one decimal) of the visitors of the whole query (the same
  filters, no dimensions; null when none); `time_on_page` the engaged time of the row's `engagement` events
  (`engaged_ms`) in seconds per visitor that reported some (whole seconds, null when none); `scroll_depth` each
  visit's deepest `scroll` event in the row (0-100), averaged over those visits (whole percent, null when
  none); `exit_rate` (with the visit:exit_page dimension alone) the visits that ended on the page in percent
  (one decimal) of the page's pageviews under the same filters but the top-level exit page ones (null when it
  has none). Plausible's rules on when
  each may be asked are `schema.py`'s; none of them takes comparisons.
- `include.comparisons`: the same query over another range — `previous_period` the same number of days just
  before, `year_over_year` the same dates a year earlier (29 February: the 28th), `custom` its date_range; a
  range that ends after today is cut at today first, as Plausible does. Each result row gets `comparison`:
  the row of the same dimension values in that range (zeros when it has none) and `change` per metric:
  bounce_rate in points (null when the compared rate is 0), every other metric in percent rounded half away
  from zero (100 from 0 to more, 0 from 0 to 0). `query.comparison_date_range` gives the compared range.
  `match_day_of_week: true` (previous_period, year_over_year) moves the compared range, as Plausible does, to
  start on the weekday the range starts on: the next such day, or the previous one when the next is the range's
  own first day; its length stays.
  With a time dimension the n-th bucket of the range is compared with the n-th bucket of the compared range
  (its label in `comparison.dimensions`; a bucket past the compared range's end: zeros and a null label).
- Default order: by the time dimension ascending when there is one, else the first metric descending; ties
  by the dimensions ascending, so pages are stable. Bots never count; imported events only with
  `include.imports` (as in Plausible).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pixel.server.api.plausible.schema import (
    EXIT_PAGE,
    GOAL,
    MAX_LIMIT,
    TIME_DIMENSIONS,
    VISIT_EDGES,
    Leaf,
    Node,
    Query,
    QueryError,
    property_sql,
)
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.goal_match import condition as goal_condition
from pixel.server.api.query.periods import (
    MAX_BUCKETS,
    Range,
    bucket_sql,
    buckets,
    ch_datetime,
    local_midnight,
)
from pixel.server.api.query.runner import QueryRunner
from pixel.server.store import StoreError
from pixel.server.store.schema import EVENTS

_ORDER_SQL = {
    "visitors": "visitors",
    "visits": "visits",
    "pageviews": "pageviews",
    "events": "events",
    "views_per_visit": "if(visits = 0, 0, pageviews / visits)",
    "bounce_rate": "if(visits = 0, 0, bounces / visits)",
    "visit_duration": "if(visits = 0, 0, duration_ms / visits)",
    "conversion_rate": "visitors",  # a part of the same total in every row
    "group_conversion_rate": "visitors",  # exact with event:goal alone; else by converted visitors
    "percentage": "visitors",  # a part of the same total in every row
    "time_on_page": "if(engaged_visitors = 0, NULL, engaged_ms / engaged_visitors)",
    "scroll_depth": "if(scroll_visits = 0, NULL, scroll_sum / scroll_visits)",
    "exit_rate": "if(page_views[d0] = 0, NULL, visits / page_views[d0])",  # d0: visit:exit_page, alone
}
Goals = list[dict[str, Any]] | tuple[dict[str, Any], ...]


def half_up(value: float, digits: int = 0) -> float:
    """`value` rounded half up (values here are never negative)."""
    scale = 10**digits
    return int(value * scale + 0.5) / scale


def ch_round(value: float, digits: int = 0) -> float:
    """ClickHouse's `round` of a float, as Plausible's SQL rounds these metrics: value x 10^digits to the nearest
    whole number, halves to the even one, divided back."""
    scale = 10**digits
    return round(value * scale) / scale


def _page_metrics(row: dict[str, Any]) -> dict[str, float | int | None]:
    """percentage, time_on_page, scroll_depth, exit_rate of a row (None where Plausible answers null)."""
    total = int(row.get("total_visitors") or 0)
    engaged = int(row.get("engaged_visitors") or 0)
    scrolled = int(row.get("scroll_visits") or 0)
    page_views = int(row.get("exit_page_views") or 0)
    return {
        "percentage": ch_round(int(row["visitors"]) * 100 / total, 1) if total else None,
        "time_on_page": int(ch_round(int(row.get("engaged_ms") or 0) / 1000 / engaged)) if engaged else None,
        "scroll_depth": int(ch_round(int(row.get("scroll_sum") or 0) / scrolled)) if scrolled else None,
        "exit_rate": ch_round(int(row["visits"]) * 100 / page_views, 1) if page_views else None,
    }


def metric_values(
    row: dict[str, Any], metrics: list[str], total: int = 0, group_total: int = 0
) -> list[float | int | None]:
    """`total`: the visitors conversion_rate is a part of; `group_total` those of group_conversion_rate."""
    visits = int(row["visits"])
    pageviews = int(row["pageviews"])
    values: dict[str, float | int | None] = {
        "visitors": int(row["visitors"]),
        "visits": visits,
        "pageviews": pageviews,
        "events": int(row["events"]),
        "views_per_visit": half_up(pageviews / visits, 2) if visits else 0.0,
        "bounce_rate": int(half_up(int(row["bounces"]) * 100 / visits)) if visits else 0,
        "visit_duration": int(half_up(int(row["duration_ms"]) / 1000 / visits)) if visits else 0,
        "conversion_rate": ch_round(int(row["visitors"]) * 100 / total, 2) if total else 0.0,
        "group_conversion_rate": ch_round(int(row["visitors"]) * 100 / group_total, 2)
        if group_total
        else 0.0,
    }
    if not set(metrics) <= set(values):
        values.update(_page_metrics(row))
    return [values[m] for m in metrics]


# -- date range -----------------------------------------------------------------------------------


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2299, 12, 31)  # the store's DateTime64 range


def _in_store_range(day: date, what: str) -> date:
    """`day` if the store can hold it; a date near year 1 or 9999 would overflow the range arithmetic."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise QueryError(f"Invalid {what}: dates from {FIRST_DAY} to {LAST_DAY}")
    return day


def _parse_bound(text: str, zone: ZoneInfo, end: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"Invalid date_range: {text[:40]!r} is not an ISO 8601 date or datetime") from None
    if len(text) == 10:
        day = _in_store_range(moment.date(), "date_range")
        return local_midnight(day + timedelta(days=1) if end else day, zone)
    if moment.tzinfo is None:
        raise QueryError(f"Invalid date_range: the datetime {text[:40]!r} needs a UTC offset")
    _in_store_range(moment.date(), "date_range")
    moment = moment.astimezone(UTC)
    return moment + timedelta(seconds=1) if end and moment.microsecond == 0 else moment


def resolve_range(q: Query, tz: str, now: datetime, first_event: date | None) -> Range:
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    one = timedelta(days=1)
    if isinstance(q.date_range, tuple):
        start = _parse_bound(q.date_range[0], zone, end=False)
        end = _parse_bound(q.date_range[1], zone, end=True)
        if end <= start:
            raise QueryError("Invalid date_range: the end is before the start")
        if end - start > timedelta(days=3660):
            raise QueryError("Invalid date_range: at most 10 years")
        return Range(start, end, tz, "custom")
    name = q.date_range
    days = {"day": 1, "7d": 7, "28d": 28, "30d": 30, "91d": 91}
    if name in days:
        first, last = today - (days[name] - 1) * one, today
    elif name == "month":
        first, last = _month_start(today), _month_start(today, -1) - one
    elif name in ("6mo", "12mo"):
        first, last = _month_start(today, int(name[:-2]) - 1), _month_start(today, -1) - one
    elif name == "year":
        first, last = date(today.year, 1, 1), date(today.year, 12, 31)
    else:  # all
        first, last = min(first_event or today, today), today
    return Range(local_midnight(first, zone), local_midnight(last + one, zone), tz, name)


def auto_interval(rng: Range) -> str:
    hours = (rng.end - rng.start).total_seconds() / 3600
    return "hour" if hours <= 48 else "day" if hours <= 24 * 40 else "month"


def _iso(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


# -- filters --------------------------------------------------------------------------------------


def wildcard_regex(pattern: str) -> str:
    """Plausible's wildcard: `**` any text, `*` any text without a slash, everything else literal."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            ch = pattern[i]
            out.append("\\" + ch if ch in "\\.+?()|[]{}^$" else ch)
            i += 1
    return "^" + "".join(out) + "$"


def _goals_named(leaf: Leaf, goals: Goals) -> list[dict[str, Any]]:
    def fold(text: str) -> str:
        return text if leaf.case_sensitive else text.lower()

    wanted = [fold(v) for v in leaf.clauses]
    if leaf.operator == "is":
        return [g for g in goals if fold(g["name"]) in wanted]
    return [g for g in goals if any(w in fold(g["name"]) for w in wanted)]


def goal_dimension_sql(goals: Goals, params: SqlParams) -> str:
    """Each event once per goal it completes (the goal's name), no row for an event completing none."""
    if not goals:
        return "arrayJoin(CAST([], 'Array(String)'))"
    items = ", ".join(f"if({goal_condition(g, params)}, {params.add(g['name'])}, '')" for g in goals)
    return f"arrayJoin(arrayFilter(x -> x != '', [{items}]))"


def _leaf_sql(leaf: Leaf, params: SqlParams, goals: Goals = ()) -> str:
    if leaf.dimension == GOAL:
        picked = _goals_named(leaf, goals)
        return "(" + " OR ".join(goal_condition(g, params) for g in picked) + ")" if picked else "(0)"
    expr = property_sql(leaf.dimension, params.add)
    base = leaf.operator.removesuffix("_not")
    negate = leaf.operator.endswith("_not")
    if base == "is":
        if leaf.case_sensitive:
            cond = f"{expr} IN ({', '.join(params.add(v) for v in leaf.clauses)})"
        else:
            cond = f"lowerUTF8({expr}) IN ({', '.join(params.add(v.lower()) for v in leaf.clauses)})"
    elif base == "contains":
        fn = "position" if leaf.case_sensitive else "positionCaseInsensitiveUTF8"
        cond = " OR ".join(f"{fn}({expr}, {params.add(v)}) > 0" for v in leaf.clauses)
    elif base == "matches":
        cond = " OR ".join(f"match({expr}, {params.add(v)})" for v in leaf.clauses)
    else:  # matches_wildcard
        cond = " OR ".join(f"match({expr}, {params.add(wildcard_regex(v))})" for v in leaf.clauses)
    return f"NOT ({cond})" if negate else f"({cond})"


def filter_sql(node: Leaf | Node, params: SqlParams, goals: Goals = ()) -> str:
    if isinstance(node, Leaf):
        return _leaf_sql(node, params, goals)
    if node.kind == "not":
        return f"NOT ({filter_sql(node.children[0], params)})"
    joiner = " AND " if node.kind == "and" else " OR "
    return "(" + joiner.join(filter_sql(c, params) for c in node.children) + ")"


def _regexes(node: Leaf | Node) -> list[str]:
    if isinstance(node, Node):
        return [r for c in node.children for r in _regexes(c)]
    if node.operator.startswith("matches_wildcard"):
        return [wildcard_regex(v) for v in node.clauses]
    if node.operator.startswith("matches"):
        return list(node.clauses)
    return []


def _on(node: Leaf | Node, dimension: str) -> bool:
    """A top-level filter on `dimension`."""
    return isinstance(node, Leaf) and node.dimension == dimension


def _dimensions_of(node: Leaf | Node) -> set[str]:
    if isinstance(node, Leaf):
        return {node.dimension}
    return {d for c in node.children for d in _dimensions_of(c)}


def _source(q: Query, base: list[str]) -> str:
    """The events table, or (when the query names a visit's entry/exit page) its rows in range with them."""
    used = set(q.dimensions).union(*(_dimensions_of(f) for f in q.filters))
    if not used.intersection(VISIT_EDGES):
        return EVENTS
    return f"""(SELECT *,
        argMinIf(path, (timestamp, path), event_name = 'pageview') OVER (PARTITION BY session_id) AS v_entry_page,
        argMaxIf(path, (timestamp, path), event_name = 'pageview') OVER (PARTITION BY session_id) AS v_exit_page
        FROM {EVENTS} WHERE {" AND ".join(base)})"""


def check_regexes(runner: QueryRunner, q: Query) -> None:
    for pattern in {r for f in q.filters for r in _regexes(f)}:
        try:
            runner.query("SELECT match('', {re:String})", {"re": pattern})
        except StoreError as exc:
            detail = str(exc).split("\n")[0][:200]
            raise QueryError(
                f"Invalid filter: the regular expression {pattern[:80]!r} is not valid: {detail}"
            ) from None


# -- the query ------------------------------------------------------------------------------------


def _first_event(runner: QueryRunner, site: str) -> date | None:
    rows = runner.query(
        f"SELECT toString(toDate(min(timestamp))) AS d, count() AS n FROM {EVENTS} "
        "WHERE site = {site:String}",
        {"site": site},
    ).dicts()
    return date.fromisoformat(rows[0]["d"]) if rows and int(rows[0]["n"]) else None


def execute(
    runner: QueryRunner, q: Query, site: dict[str, Any], now: datetime, goals: Goals = ()
) -> dict[str, Any]:
    """The v2 answer for `q` on `site` (a sites row, `goals` its goals rows) at the moment `now`."""
    tz = site["timezone"]
    first = _first_event(runner, site["domain"]) if q.date_range == "all" else None
    rng = resolve_range(q, tz, now, first)
    check_regexes(runner, q)
    params = SqlParams()
    interval = None
    time_dim = q.time_dimension
    if time_dim is not None:
        interval = TIME_DIMENSIONS[time_dim] or auto_interval(rng)
        if (rng.end - rng.start) / timedelta(hours=1 if interval == "hour" else 24) > MAX_BUCKETS:
            raise QueryError(f"Invalid dimensions: too many {interval} buckets for this date_range")
    dim_exprs = []
    for d in q.dimensions:
        dim_exprs.append(
            bucket_sql(interval or "day")
            if d in TIME_DIMENSIONS
            else goal_dimension_sql(goals, params)
            if d == GOAL
            else property_sql(d, params.add)
        )
    where = ["site = {site:String}", "timestamp >= {start:DateTime64(3)}", "timestamp < {end:DateTime64(3)}"]
    where.append("is_bot = 0")
    if not q.include.get("imports"):
        where.append("import_id = ''")
    base_where = list(where)
    source = _source(q, list(where))
    if source != EVENTS:  # a visit without a pageview has no entry/exit page: in no row grouped by one
        where.extend(f"{property_sql(d, params.add)} != ''" for d in q.dimensions if d in VISIT_EDGES)
    filter_conds = [filter_sql(f, params, goals) for f in q.filters]
    where.extend(filter_conds)
    totals_where = " AND ".join([*where[: len(base_where)], *filter_conds])
    pageviews_where = " AND ".join(  # the exit rate's denominator: without the top-level exit page filters
        [
            *base_where,
            *(c for f, c in zip(q.filters, filter_conds, strict=True) if not _on(f, EXIT_PAGE)),
        ]
    )
    withs, extra = [], []
    if "percentage" in q.metrics:  # the visitors of the whole query (no dimensions), as Plausible's total
        withs.append(f"(SELECT uniqExact(visitor_id) FROM {source} WHERE {totals_where}) AS all_visitors")
        extra.append("any(all_visitors) AS total_visitors")
    if "exit_rate" in q.metrics:  # every page's pageviews: the exit rate's denominator
        withs.append(
            "(SELECT CAST(sumMap([path], [toUInt64(event_name = 'pageview')]), 'Map(String, UInt64)') "
            f"FROM {source} WHERE {pageviews_where}) AS page_views"
        )
        extra.append("any(page_views[d0]) AS exit_page_views")
    if "time_on_page" in q.metrics:
        extra.append("sum(e_ms) AS engaged_ms, uniqExactIf(visitor, e_n > 0) AS engaged_visitors")
    if "scroll_depth" in q.metrics:  # each visit's deepest scroll in the row, averaged over those visits
        extra.append("sumIf(s_max, s_n > 0) AS scroll_sum, countIf(s_n > 0) AS scroll_visits")
    aliases = [f"d{i}" for i in range(len(dim_exprs))]
    inner_dims = "".join(f"{e} AS {a}, " for e, a in zip(dim_exprs, aliases, strict=True))
    group_inner = ", ".join([*aliases, "session_id"])
    outer_dims = "".join(f"{a}, " for a in aliases)
    order = _order(q, aliases)
    sql = f"""{"WITH " + ", ".join(withs) if withs else ""}
SELECT {outer_dims}uniqExact(visitor) AS visitors, count() AS visits, sum(pv) AS pageviews, sum(ev) AS events,
       countIf(s_pv <= 1) AS bounces, sum(s_dur) AS duration_ms, {"".join(e + ", " for e in extra)}
       count() OVER () AS total_rows
FROM (
    SELECT {inner_dims}session_id, any(visitor_id) AS visitor, countIf(event_name = 'pageview') AS pv,
           count() AS ev, any(s_pageviews) AS s_pv, any(s_duration) AS s_dur,
           sumIf(engaged_ms, event_name = 'engagement') AS e_ms, countIf(event_name = 'engagement') AS e_n,
           maxIf(scroll_depth, event_name = 'scroll' AND scroll_depth <= 100) AS s_max,
           countIf(event_name = 'scroll' AND scroll_depth <= 100) AS s_n
    FROM (
        SELECT *, countIf(event_name = 'pageview') OVER (PARTITION BY session_id) AS s_pageviews,
               dateDiff('millisecond', min(timestamp) OVER (PARTITION BY session_id),
                        max(timestamp) OVER (PARTITION BY session_id)) AS s_duration
        FROM {source} WHERE {" AND ".join(where)}
    )
    GROUP BY {group_inner}
)
{"GROUP BY " + ", ".join(aliases) if aliases else ""}
{"HAVING visits > 0" if not aliases else ""}
ORDER BY {order}
LIMIT {q.limit} OFFSET {q.offset}"""
    fixed = {"site": site["domain"], "start": ch_datetime(rng.start), "end": ch_datetime(rng.end), "tz": tz}
    rows = runner.query(sql, params.with_fixed(**fixed)).dicts()
    compared: dict[tuple[str, ...], dict[str, Any]] = {}
    other: Range | None = None
    if q.comparisons is not None:
        other = comparison_range(q.comparisons, rng, now)
        head, _, _ = sql.rpartition("LIMIT")
        span = {**fixed, "start": ch_datetime(other.start), "end": ch_datetime(other.end)}
        for row in runner.query(head, params.with_fixed(**span)).dicts():
            compared[tuple(str(row[a]) for a in aliases)] = row
    results: list[dict[str, Any]] = []
    total = 0
    bases = (
        _conversion_bases(runner, q, site, now, goals, by_dimensions=True)
        if "group_conversion_rate" in q.metrics
        else {}
    )
    overall = (
        _conversion_bases(runner, q, site, now, goals, by_dimensions=False).get((), 0)
        if "conversion_rate" in q.metrics
        else 0
    )
    kept = [i for i, d in enumerate(q.dimensions) if d != GOAL]
    for row in rows:
        total = int(row["total_rows"])
        dims = [str(row[a]) for a in aliases]
        base = bases.get(tuple(dims[i] for i in kept), 0)
        results.append({"metrics": metric_values(row, q.metrics, overall, base), "dimensions": dims})
    if not q.dimensions and not results and q.offset == 0:
        results = [{"metrics": metric_values(ZERO, q.metrics), "dimensions": []}]
        total = 1
    if other is not None:
        shift = _bucket_shift(q, rng, other, interval)
        for item in results:
            key = list(item["dimensions"])
            if shift is not None:
                position, mapping = shift
                key[position] = mapping.get(key[position])
            before = metric_values(compared.get(tuple(key), ZERO), q.metrics)
            item["comparison"] = {
                "dimensions": key,
                "metrics": before,
                "change": [
                    change(m, b or 0, n or 0)  # never None: page metrics take no comparisons
                    for m, b, n in zip(q.metrics, before, item["metrics"], strict=True)
                ],
            }
    meta: dict[str, Any] = {}
    if "imports" in q.include:
        meta["imports_included"] = bool(q.include["imports"])
    if q.include.get("time_labels") and interval is not None:
        meta["time_labels"] = buckets(rng, interval)
    if q.include.get("total_rows"):
        meta["total_rows"] = total if rows or not q.dimensions else _count_rows(runner, sql, params, fixed)
    include: dict[str, Any] = {"imports": False, "time_labels": False, "total_rows": False, **q.include}
    if q.comparisons is not None:
        include["comparisons"] = q.comparisons
    query: dict[str, Any] = {
        "site_id": q.site_id,
        "metrics": q.metrics,
        "date_range": [_iso(rng.start, tz), _iso(rng.end - timedelta(seconds=1), tz)],
        "filters": q.raw_filters,
        "dimensions": q.dimensions,
        "order_by": [list(o) for o in q.order_by] or _default_order(q),
        "include": include,
        "pagination": {"limit": q.limit, "offset": q.offset},
    }
    if other is not None:
        query["comparison_date_range"] = [_iso(other.start, tz), _iso(other.end - timedelta(seconds=1), tz)]
    return {"results": results, "meta": meta, "query": query}


def _bucket_shift(
    q: Query, rng: Range, other: Range, interval: str | None
) -> tuple[int, dict[str, str]] | None:
    """The time dimension's position and each bucket label of `rng` -> the label at its index in `other`."""
    if interval is None or q.time_dimension is None:
        return None
    mine, theirs = buckets(rng, interval), buckets(other, interval)
    return q.dimensions.index(q.time_dimension), dict(zip(mine, theirs, strict=False))


def _conversion_bases(
    runner: QueryRunner, q: Query, site: dict[str, Any], now: datetime, goals: Goals, *, by_dimensions: bool
) -> dict[tuple[str, ...], int]:
    """Visitors with the top-level goal and custom property filters taken away (as Plausible's totals): per
    value of the non-goal dimensions (group_conversion_rate), or in all (conversion_rate: the key `()`)."""
    base = replace(
        q,
        metrics=["visitors"],
        dimensions=[d for d in q.dimensions if d != GOAL] if by_dimensions else [],
        filters=[
            f
            for f in q.filters
            if not (isinstance(f, Leaf) and (f.dimension == GOAL or f.dimension.startswith("event:props:")))
        ],
        order_by=[],
        include={"imports": bool(q.include.get("imports"))},
        limit=MAX_LIMIT,
        offset=0,
        comparisons=None,
    )
    answer = execute(runner, base, site, now, goals)
    return {tuple(r["dimensions"]): int(r["metrics"][0]) for r in answer["results"]}


ZERO = {"visitors": 0, "visits": 0, "pageviews": 0, "events": 0, "bounces": 0, "duration_ms": 0}


def change(metric: str, before: float, now: float) -> float | int | None:
    """Plausible's change of a metric: points for bounce_rate, else percent rounded half away from zero."""
    if metric == "bounce_rate":
        return now - before if before > 0 else None
    if before == 0:
        return 100 if now > 0 else 0
    return int(half_up(abs((now - before) / before * 100))) * (1 if now >= before else -1)


def _shift_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _same_weekday(day: date, source_first: date) -> date:
    """Plausible's `match_day_of_week`: `day` when it falls on `source_first`'s weekday, else the next such day,
    or the previous one when the next is `source_first` itself."""
    if day.weekday() == source_first.weekday():
        return day
    ahead = (source_first.weekday() - day.weekday()) % 7
    following = day + timedelta(days=ahead)
    return following if following != source_first else following - timedelta(days=7)


def comparison_range(spec: dict[str, Any], rng: Range, now: datetime) -> Range:
    """The range `spec` compares `rng` with (whole days in the site's zone)."""
    zone = ZoneInfo(rng.tz)
    first = rng.start.astimezone(zone).date()
    last = (rng.end - timedelta(microseconds=1)).astimezone(zone).date()
    last = max(first, min(last, now.astimezone(zone).date()))  # a range ending after today: cut at today
    if spec["mode"] == "custom":
        try:
            c_first, c_last = (date.fromisoformat(x) for x in spec["date_range"])
        except ValueError:
            raise QueryError("Invalid include.comparisons.date_range: not ISO 8601 dates") from None
        for day in (c_first, c_last):
            _in_store_range(day, "include.comparisons.date_range")
        if c_last < c_first:
            raise QueryError("Invalid include.comparisons.date_range: the end is before the start")
    elif spec["mode"] == "previous_period":
        days = (last - first).days + 1
        c_first, c_last = first - timedelta(days=days), first - timedelta(days=1)
    else:  # year_over_year
        c_first, c_last = _shift_year(first), _shift_year(last)
    if spec["mode"] != "custom" and spec.get("match_day_of_week"):
        moved = _same_weekday(c_first, first) - c_first
        c_first, c_last = c_first + moved, c_last + moved
    if (c_last - c_first).days > 3660:
        raise QueryError("Invalid include.comparisons.date_range: at most 10 years")
    return Range(
        local_midnight(c_first, zone), local_midnight(c_last + timedelta(days=1), zone), rng.tz, "custom"
    )


def _count_rows(runner: QueryRunner, sql: str, params: SqlParams, fixed: dict[str, Any]) -> int:
    """The number of rows when the page asked for is past the end (no row carried the window count)."""
    head, _, _ = sql.rpartition("LIMIT")
    rows = runner.query(f"SELECT count() AS n FROM ({head})", params.with_fixed(**fixed)).dicts()
    return int(rows[0]["n"])


def _default_order(q: Query) -> list[list[str]]:
    if q.time_dimension is not None:
        return [[q.time_dimension, "asc"]]
    return [[q.metrics[0], "desc"]]


def _order(q: Query, aliases: list[str]) -> str:
    by_dim = dict(zip(q.dimensions, aliases, strict=True))
    terms = []
    used = set()
    for name, direction in [tuple(o) for o in (q.order_by or _default_order(q))]:
        expr = by_dim.get(name) or _ORDER_SQL[name]
        terms.append(f"{expr} {direction.upper()}")
        used.add(expr)
    terms.extend(f"{a} ASC" for a in aliases if a not in used)
    return ", ".join(terms)
