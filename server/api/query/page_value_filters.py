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
from pixel.server.store.schema import KEYS_UNKNOWN, VALUES_KEPT

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


# The kept paths go to the report's query as a parameter up to this many bytes (one evaluation, the common case);
# more go as the subquery that selects them (evaluated where the query uses them: a parameter that size would
# outgrow a ClickHouse server's URL)
INLINE_BYTES = 65536


@dataclass(frozen=True)
class ValuePaths:
    """What filters on values (`on_values`) keep of a report's events: the events of the kept paths (none when
    `empty`), but for the kinds `dropped` (a kind after the first of the report's, whose events on those paths
    all fail). `listed`: the parameter that holds the kept paths, or None: `paths_sql` selects them."""

    listed: str | None
    paths_sql: str
    empty: bool
    dropped: frozenset[str]

    def condition(self, column: str) -> str:
        """The condition true where `column` (a path) is one of the kept paths."""
        return f"has({self.listed}, {column})" if self.listed else f"{column} IN ({self.paths_sql})"


def _verdicts_sql(
    days: Days, filters: list[Filter], params: SqlParams, kinds: tuple[str, ...], table: str
) -> str:
    """Per path and kind of `kinds` in `table` over `days`: `every` (each of its values of each filter's
    dimension passes that dimension's filters) and `ok` (no value of it fails where another passes, and its
    values are all known: at most `VALUES_KEPT` per dimension, and for a property no day with more keys than
    kept). A (day, path, kind) without a row for a property has that property '' on each of its events."""
    wanted = params.add(list(kinds), "Array(String)")
    per_dimension = []
    for dimension in sorted({f.dimension for f in filters}):
        name = params.add(dimension)
        keep = " AND ".join(
            compare_sql("value", f.operator, params.add(f.value)) for f in filters if f.dimension == dimension
        )
        marker = "" if dimension == "title" else f", '{KEYS_UNKNOWN}'"
        per_dimension.append(
            f"""SELECT path, event_name, min(keep) AS every, min(keep) = max(keep) AND min(known) AS ok FROM (
                SELECT path, event_name, {keep} AS keep, known FROM (
                    SELECT path, event_name, groupUniqArrayArray({VALUES_KEPT + 1})(day_values) AS all_values,
                        length(all_values) <= {VALUES_KEPT} AND min(day_known) AS known
                    FROM (
                        SELECT day, path, event_name, if(countIf(dimension = {name}) > 0,
                            groupArrayArrayIf(values, dimension = {name}), ['']) AS day_values,
                            countIf(dimension = '{KEYS_UNKNOWN}') = 0 AS day_known
                        FROM {table}
                        WHERE {days.rows_where()} AND dimension IN ('title', {name}{marker})
                            AND has({wanted}, event_name)
                        GROUP BY day, path, event_name)
                    GROUP BY path, event_name)
                ARRAY JOIN all_values AS value)
            GROUP BY path, event_name"""
        )
    union = "\n            UNION ALL\n            ".join(per_dimension)
    return f"""SELECT path, event_name, min(every) AS every, min(ok) AS ok FROM (
            {union})
        GROUP BY path, event_name"""


def value_paths(
    scope: Scope,
    days: Days,
    filters: list[Filter],
    params: SqlParams,
    kinds: tuple[str, ...] = PAGE_EVENTS,
    table: str = VALUES,
) -> ValuePaths | None:
    """What `filters` (each `on_values`) keep of the events `kinds` over `days` (the valid builds of the cache
    whose values `table` holds), or None when they are not a filter on the paths: the paths whose `kinds[0]`
    events (the report's visits or clicks) pass them, each of the other kinds kept or dropped as one on all of
    those paths. None when a path's values of a kind pass and fail, when its values are not all known, or when
    one of the other kinds passes on some kept paths and fails on others. The kept paths come back as a
    parameter of `params` up to `INLINE_BYTES`, else stay in the store (a subquery); one row is read here."""
    verdicts = _verdicts_sql(days, filters, params, kinds, table)
    first = params.add(kinds[0])
    paths_sql = f"SELECT path FROM ({verdicts}) WHERE event_name = {first} AND every"
    others = [params.add(kind) for kind in kinds[1:]]
    per_path = "".join(
        f", countIf(event_name = {k}) > 0 AS seen{i}, minIf(every, event_name = {k}) AS every{i}"
        for i, k in enumerate(others)
    )
    (check,) = scope.run_cached(
        f"""SELECT count() = 0 OR min(ok) AS ok, countIf(kept) AS kept_paths,
            sumIf(length(path), kept) <= {INLINE_BYTES} AS small, if(small, groupArrayIf(path, kept), []) AS paths
            {"".join(f", groupUniqArrayIf(every{i}, kept AND seen{i}) AS others{i}" for i in range(len(others)))}
        FROM (
            SELECT path, min(ok) AS ok, maxIf(every, event_name = {first}) AS kept{per_path}
            FROM ({verdicts}) GROUP BY path)""",
        params,
    )
    if not check["ok"]:
        return None
    dropped = set()
    for i, kind in enumerate(kinds[1:]):
        seen = {bool(every) for every in check[f"others{i}"]}
        if len(seen) > 1:
            return None
        if seen == {False}:
            dropped.add(kind)
    listed = params.add(list(check["paths"]), "Array(String)") if check["small"] else None
    return ValuePaths(listed, paths_sql, int(check["kept_paths"]) == 0, frozenset(dropped))
