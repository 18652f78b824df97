"""Filters on the event name, the title and properties, answered from the per-day caches of the engagement
report and of the outbound-link and download reports.

Each of those reports reads fixed event names (engagement: the page events `pageview`, `engagement`, `scroll`;
the link reports: their `outbound` or `download` events), and filters apply to events. So:

- Filters on the event name keep a fixed subset of those names, whatever the events hold: the filters' own
  SQL condition is evaluated once over the names (`kept_events`), so every operator means there what it means
  on the events. A link report keeps its clicks or none. The engagement report without `pageview` has no page
  visit left (empty); without `engagement` no visit reports engaged time, without `scroll` none a scroll depth
  (`without_events`); every other figure (visitors, pageviews, entries, bounces, exits) comes from the
  pageviews and is the same as without the filter.
- Filters on the title or a property keep the events of a set of paths when, over the range, each path's values
  of that dimension all pass them or all fail them: then they are a filter on those paths (`value_paths`), which
  the caches answer as a filter on the page. A page's title is usually one per path; a property the report's
  events never carry is '' on all of them, so a filter on it keeps every path or none. Each cache keeps the
  distinct values of the title and of each property key on a day's events it reads, per path
  (`engagement_cache.VALUES`, `content_cache.VALUES`; bots left out; '' for an event without a key another
  event on that path has; copies of an event carrying the same values): a path whose values a filter splits,
  or with more values than the cache keeps, leaves the report to the raw events, and so does such a filter
  beside filters on other dimensions (but the page, for the engagement report).

Nothing here puts user text in SQL: filter values, keys and names are parameters.
"""

from __future__ import annotations

from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import PAGE_EVENTS, VALUES
from pixel.server.api.query.filters import PROP_PREFIX, Filter, SqlParams, compare_sql, filter_sql
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import VALUES_KEPT

# What a page visit shows of each page event but the pageview, when the filters drop that event
_NONE_OF = {
    "engagement": ("engaged_visits",),
    "scroll": ("scroll_visits", "s25", "s50", "s75", "s100"),
}


def kept_events(scope: Scope, filters: list[Filter], names: tuple[str, ...] = PAGE_EVENTS) -> frozenset[str]:
    """The event names of `names` (a report's own, never user text) that pass every one of `filters` (each on
    the event name)."""
    params = SqlParams()
    where = " AND ".join(filter_sql(f, params) for f in filters)
    rows = scope.runner.query(
        f"SELECT groupArray(event_name) FROM (SELECT arrayJoin({params.add(list(names), 'Array(String)')})"
        f" AS event_name) WHERE {where}",
        params.values,
    ).rows
    return frozenset(rows[0][0]) if rows else frozenset()


def without_events(inner: str, dropped: frozenset[str]) -> str:
    """`inner` (the report's rows from a cache) as they are when its page events `dropped` are filtered out
    (never the pageview): no visit with engaged time, or with a scroll depth."""
    zeroed = [column for event in sorted(dropped) for column in _NONE_OF[event]]
    return f"SELECT * REPLACE ({', '.join(f'toUInt64(0) AS {c}' for c in zeroed)}) FROM ({inner})"


def on_values(flt: Filter) -> bool:
    """Whether `flt` is on a dimension whose values per path the caches keep (the title, a property)."""
    return flt.dimension == "title" or flt.dimension.startswith(PROP_PREFIX)


def value_paths(scope: Scope, days: Days, filters: list[Filter], table: str = VALUES) -> list[str] | None:
    """The paths whose events pass every one of `filters` (each `on_values`) over `days` (the valid builds of
    the cache whose values `table` holds), sorted; None when a path has values of one filter's dimension that
    pass and values that fail, or more values than the cache keeps (the filters are not a filter on the
    paths). A (day, path) without a row for a property has that property '' on each of its events."""
    kept: set[str] | None = None
    for dimension in sorted({f.dimension for f in filters}):
        params = SqlParams()
        name = params.add(dimension)
        keep = " AND ".join(
            compare_sql("value", f.operator, params.add(f.value)) for f in filters if f.dimension == dimension
        )
        rows = scope.run_cached(
            f"""SELECT path, min(keep) AS every, max(keep) AS some, min(known) AS known FROM (
                SELECT path, {keep} AS keep, known FROM (
                    SELECT path, groupUniqArrayArray({VALUES_KEPT + 1})(day_values) AS all_values,
                        length(all_values) <= {VALUES_KEPT} AS known
                    FROM (
                        SELECT day, path, if(countIf(dimension = {name}) > 0,
                            groupArrayArrayIf(values, dimension = {name}), ['']) AS day_values
                        FROM {table} WHERE {days.rows_where()} AND dimension IN ('title', {name})
                        GROUP BY day, path)
                    GROUP BY path)
                ARRAY JOIN all_values AS value)
            GROUP BY path""",
            params,
        )
        if any(not r["known"] or r["every"] != r["some"] for r in rows):
            return None
        paths = {str(r["path"]) for r in rows if r["every"]}
        kept = paths if kept is None else kept & paths
    return sorted(kept or ())
