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
  of that dimension on each of the report's event names all pass them or all fail them (`value_paths`): the
  paths whose visits' or clicks' events (pageviews; outbound or download events) pass, which the caches answer
  as a filter on the page; of the engagement report's other events there (engagement, scroll), each name kept
  or dropped as one, as by a filter on the event name. So a page's title (usually one per path), a property
  on the pageviews of some pages (their engagement and scroll events have none: dropped), and a property the
  report's events never carry ('' everywhere: every path or none) are answered. Each cache keeps the distinct
  values of the title and of each property key per day, path and event name of the events it reads
  (`engagement_cache.VALUES`, `content_cache.VALUES`; bots left out; '' for an event without a key another
  event on that path has; copies of an event carrying the same values): values a filter splits on one path
  and event name, more values than the cache keeps, an event name kept on some paths and dropped on others,
  or such a filter beside filters on other dimensions (but the page) leave the report to the raw events.

Nothing here puts user text in SQL: filter values, keys and names are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ValuePaths:
    """What filters on values (`on_values`) keep of a report's events: the events of `paths` (sorted), but
    for the kinds `dropped` (a kind after the first of the report's, whose events on those paths all fail)."""

    paths: list[str]
    dropped: frozenset[str]


def value_paths(
    scope: Scope, days: Days, filters: list[Filter], kinds: tuple[str, ...] = PAGE_EVENTS, table: str = VALUES
) -> ValuePaths | None:
    """What `filters` (each `on_values`) keep of the events `kinds` over `days` (the valid builds of the cache
    whose values `table` holds), or None when they are not a filter on the paths: the paths whose `kinds[0]`
    events (the report's visits or clicks) pass them, each of the other kinds kept or dropped as one on all of
    those paths. None when a path's values of a kind pass and fail, when a path has more values than the
    cache keeps, or when one of the other kinds passes on some kept paths and fails on others. A (day, path,
    kind) without a row for a property has that property '' on each of its events."""
    verdicts: dict[tuple[str, str], bool] = {}  # (path, kind) -> all of its events pass every filter
    for dimension in sorted({f.dimension for f in filters}):
        params = SqlParams()
        name = params.add(dimension)
        keep = " AND ".join(
            compare_sql("value", f.operator, params.add(f.value)) for f in filters if f.dimension == dimension
        )
        rows = scope.run_cached(
            f"""SELECT path, event_name, min(keep) AS every, max(keep) AS some, min(known) AS known FROM (
                SELECT path, event_name, {keep} AS keep, known FROM (
                    SELECT path, event_name, groupUniqArrayArray({VALUES_KEPT + 1})(day_values) AS all_values,
                        length(all_values) <= {VALUES_KEPT} AS known
                    FROM (
                        SELECT day, path, event_name, if(countIf(dimension = {name}) > 0,
                            groupArrayArrayIf(values, dimension = {name}), ['']) AS day_values
                        FROM {table}
                        WHERE {days.rows_where()} AND dimension IN ('title', {name})
                            AND has({params.add(list(kinds), "Array(String)")}, event_name)
                        GROUP BY day, path, event_name)
                    GROUP BY path, event_name)
                ARRAY JOIN all_values AS value)
            GROUP BY path, event_name""",
            params,
        )
        for r in rows:
            if not r["known"] or r["every"] != r["some"]:
                return None
            key = (str(r["path"]), str(r["event_name"]))
            verdicts[key] = verdicts.get(key, True) and bool(r["every"])
    paths = sorted(path for (path, kind), passes in verdicts.items() if kind == kinds[0] and passes)
    kept = set(paths)
    dropped = set()
    for kind in kinds[1:]:
        seen = {passes for (path, k), passes in verdicts.items() if k == kind and path in kept}
        if len(seen) > 1:
            return None
        if seen == {False}:
            dropped.add(kind)
    return ValuePaths(paths, frozenset(dropped))
