"""The goals report's numbers: from the report cache's day rows where it answers, else from the events.

What a goal's row holds (the same definitions on both paths, so a range gives the same answer either way):
- `visitors`: the sketch (`cache_sql.UNIQ_VALUE`, 2^12 cells) of the ids of the visitors with a matching event,
  as the dashboard's breakdown rows count them; the range's `total_visitors` is the dashboard's summary
  visitors (`cache_sql.UNIQ_TOTAL`, 2^14 cells). Both are exact on small sets and estimates past them.
- `conversions`: the matching events, each counted once whatever copies of it were stored (exact).

The report cache holds, per local day, the visitors' sketch state and the pageviews of every page, and of every
event name but `pageview` (`cache_sql.dimensions_select`), so a goal on a page pattern (the patterns' pages
merged) and a goal on an event name without a property are answered from those rows, with the days'
imported aggregates added as every cached report adds them (`imported`). A goal on an event with a property
value is answered from the filter cache's rows of that property when it holds them for the range
(`property_counts`: `filter_cache` splits each day's events by the values of its most used property keys). The
other goals (an empty property value, the event name `pageview`, which the caches keep by page, or a key the
filter cache did not split) are answered from the events that match one of them (`events_counts`): read as
stored, not `events FINAL`, each event counted once by the table's key (a copy is the same event stored again:
same day and id) where copies can sit (`copy_windows`), as the dashboard counts them. Imported aggregates hold no
properties: those goals leave them out, as every report reading events does.

Used when the scope's days are the report cache's (`Scope.cached_days`: no filters, bots left out, whole days in
the site's zone); otherwise every goal reads `events FINAL` as before (`raw_sql`). Nothing here puts user text
in SQL: patterns, names, keys and values are parameters.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pixel.server.api.query import cache_sql, filter_cache, raw_dashboard
from pixel.server.api.query.cache_sql import TOTAL, Days
from pixel.server.api.query.filters import PROP_PREFIX, Filter, SqlParams
from pixel.server.api.query.goal_match import condition, glob_regex
from pixel.server.api.query.raw_dashboard import BRANCH_JOIN
from pixel.server.api.query.reports import ratio
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import EVENTS

Goal = dict[str, Any]


def in_report_cache(goal: Goal) -> bool:
    """Whether the report cache's day rows answer `goal`: a page pattern, or an event name without a property
    that the cache keeps as an event (every name but `pageview`)."""
    if goal["kind"] == "page":
        return True
    return not goal.get("prop_key") and goal["event_name"] != "pageview"


def raw_sql(where: str, goals: list[Goal], params: SqlParams) -> str:
    """One row over `events FINAL` matching `where`: `total_visitors`, and `u<i>`, `c<i>` per goal."""
    parts = [f"{cache_sql.UNIQ_TOTAL}(visitor_id) AS total_visitors"]
    for i, goal in enumerate(goals):
        cond = condition(goal, params)
        parts.append(
            f"{_with(cache_sql.UNIQ_VALUE, 'If')}(visitor_id, {cond}) AS u{i}, countIf({cond}) AS c{i}"
        )
    return f"SELECT {', '.join(parts)} FROM {EVENTS} WHERE {where}"


def cached_sql(days: Days, goals: list[Goal], params: SqlParams) -> str:
    """One row over the report cache's rows of `days`: `total_visitors`, and `u<i>`, `c<i>` for each goal at
    index i that `in_report_cache` says the rows answer (run with `Scope.run_cached`: site and zone parameters)."""
    total = f"dimension = '{TOTAL}'"
    parts = [
        f"{_with(cache_sql.UNIQ_TOTAL, 'MergeIf')}(visitors_total, {total}) + sumIf(imported_visitors, {total})"
        " AS total_visitors"
    ]
    for i, goal in enumerate(goals):
        if not in_report_cache(goal):
            continue
        if goal["kind"] == "page":
            rows = f"dimension = 'page' AND match(value, {params.add(glob_regex(goal['page_pattern']))})"
            count = "pageviews"
        else:
            rows = f"dimension = 'event' AND value = {params.add(goal['event_name'])}"
            count = "events"
        parts.append(
            f"toUInt64({_with(cache_sql.UNIQ_VALUE, 'MergeIf')}(visitors, {rows}) + sumIf(imported_visitors, {rows}))"
            f" AS u{i}, toUInt64(sumIf({count}, {rows})) AS c{i}"
        )
    return f"""SELECT {", ".join(parts)} FROM day_dimensions
        WHERE site = {{site:String}} AND tz = {{tz:String}} AND dimension IN ('{TOTAL}', 'page', 'event')
            AND {cache_sql.range_condition(days)}"""


def property_counts(scope: Scope, goals: list[Goal]) -> dict[str, int]:
    """`u<i>`, `c<i>` of each goal on an event (not `pageview`) with a non-empty property value whose key's rows
    the filter cache holds for the scope's days (`filter_cache`: the event's rows for that value), in one read;
    the goals it does not answer (a key it does not split, more values than it keeps, days not built) are left
    out. The days are asked once per key (they do not depend on the value), for at most `PROP_KEYS` keys: no
    day splits more, so a list of goals on ever more keys costs no more lookups than that."""
    days_of: dict[str, Days | None] = {}
    params = SqlParams()
    reads = []
    for i, goal in enumerate(goals):
        # An empty value keeps the events without the key, which only the key's whole split holds: asking for
        # it would queue a background build of that split (`FilterCache.days`) for a report of few events.
        if goal["kind"] != "event" or not goal.get("prop_key") or not goal.get("prop_value"):
            continue
        if goal["event_name"] == "pageview":  # kept by page in the filter cache's rows
            continue
        kept = [Filter(PROP_PREFIX + goal["prop_key"], "is", goal["prop_value"])]
        if goal["prop_key"] not in days_of:
            if len(days_of) >= filter_cache.PROP_KEYS:
                continue
            days_of[goal["prop_key"]] = filter_cache.days(replace(scope, filters=kept), "day")
        days = days_of[goal["prop_key"]]
        if days is not None:
            sql = filter_cache.event_numbers_sql(days, kept, params, goal["event_name"])
            reads.append(f"SELECT {i} AS i, u, c FROM ({sql})")
    if not reads:
        return {}
    rows = scope.run_cached(BRANCH_JOIN.join(reads), params)
    return {f"{name}{row['i']}": int(row[name]) for row in rows for name in ("u", "c")}


def events_counts(scope: Scope, goals: list[Goal], read: set[int]) -> dict[str, Any]:
    """`u<i>`, `c<i>` for each goal at an index in `read`, from the stored events of the scope matching one of
    them ({} when `read` is empty), each event once as the dashboard reads them (`raw_dashboard.matching`: a
    copy, same day and id, grouped by that key among the rows where copies can sit, `copy_windows`; the rows
    elsewhere read as they are, without their ids); `raw_dashboard.run` runs it again with copies dropped
    everywhere if an insert came too close."""
    params = raw_dashboard.DashboardParams()
    conditions = {i: condition(goal, params) for i, goal in enumerate(goals) if i in read}
    if not conditions:
        return {}
    where = f"({raw_dashboard.period_where(scope, params)}) AND ({' OR '.join(conditions.values())})"
    columns = {"visitor_id": "visitor_id", **{f"m{i}": cond for i, cond in conditions.items()}}
    rows = raw_dashboard.matching(where, columns, False, copies=params.copies(scope.runner.store))
    parts = [
        f"{_with(cache_sql.UNIQ_VALUE, 'If')}(visitor_id, m{i}) AS u{i}, toUInt64(countIf(m{i})) AS c{i}"
        for i in conditions
    ]
    return raw_dashboard.run(scope, f"SELECT {', '.join(parts)} FROM {rows}", params)[0]


def _with(function: str, combinator: str) -> str:
    """`function` (`uniqCombined(12)`) with a combinator (`If`: `uniqCombinedIf(12)`; `MergeIf`)."""
    return function.replace("(", f"{combinator}(", 1)


def goals(scope: Scope, goal_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each goal's visitors, conversions and rate over the range's visitors (the module docstring says how each
    number is counted and where it is read)."""
    params = SqlParams()
    days = scope.cached_days()
    if days is None:
        row = scope.run(raw_sql(scope.where(params), goal_rows, params), params)[0]
    else:
        row = scope.run_cached(cached_sql(scope.ensure(days), goal_rows, params), params)[0]
        row.update(property_counts(scope, goal_rows))
        read = {i for i, goal in enumerate(goal_rows) if f"c{i}" not in row}
        row.update(events_counts(scope, goal_rows, read))
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
                "conversion_rate": ratio(visitors, total, 2, 100.0),
            }
        )
    return {"total_visitors": total, "goals": out}
