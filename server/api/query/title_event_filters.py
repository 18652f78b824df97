"""Filters on the event name and on the title, answered from the per-day caches of the engagement report and of
the outbound-link and download reports.

Each of those reports reads fixed event names (engagement: the page events `pageview`, `engagement`, `scroll`;
the link reports: their `outbound` or `download` events), and filters apply to events. So:

- Filters on the event name keep a fixed subset of those names, whatever the events hold: the filters' own
  SQL condition is evaluated once over the names (`kept_events`), so every operator means there what it means
  on the events. A link report keeps its clicks or none. The engagement report without `pageview` has no page
  visit left (empty); without `engagement` no visit reports engaged time, without `scroll` none a scroll depth
  (`without_events`); every other figure (visitors, pageviews, entries, bounces, exits) comes from the
  pageviews and is the same as without the filter.
- Filters on the title keep the events of a set of paths when, over the range, each path's titles all pass them
  or all fail them: then they are a filter on those paths (`title_paths`), which the caches answer as a filter
  on the page. Each cache keeps the distinct titles of a day's events it reads per path (`engagement_cache.
  TITLES`, `content_cache.TITLES`; bots left out, copies of an event carrying the same title): a path whose
  titles the filters split, or with more titles than the cache keeps, leaves the report to the raw events, and
  so does a title filter beside filters on other dimensions (but the page, for the engagement report).

Nothing here puts user text in SQL: filter values and names are parameters.
"""

from __future__ import annotations

from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import PAGE_EVENTS, TITLES
from pixel.server.api.query.filters import Filter, SqlParams, filter_sql
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import TITLES_KEPT

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


def title_paths(scope: Scope, days: Days, filters: list[Filter], table: str = TITLES) -> list[str] | None:
    """The paths whose events pass every one of `filters` (each on the title) over `days` (the valid builds
    of the cache whose titles `table` holds), sorted; None when a path has titles that pass and titles that
    fail, or more titles than the cache keeps (the filters are not a filter on the paths)."""
    params = SqlParams()
    keep = " AND ".join(filter_sql(f, params) for f in filters)  # on a column `title`
    rows = scope.run_cached(
        f"""SELECT path, min(keep) AS every, max(keep) AS some, min(known) AS known FROM (
            SELECT path, {keep} AS keep, known FROM (
                SELECT path, groupUniqArrayArray({TITLES_KEPT + 1})(titles) AS all_titles,
                    length(all_titles) <= {TITLES_KEPT} AS known
                FROM {table} WHERE {days.rows_where()}
                GROUP BY path)
            ARRAY JOIN all_titles AS title)
        GROUP BY path""",
        params,
    )
    if any(not r["known"] or r["every"] != r["some"] for r in rows):
        return None
    return sorted(str(r["path"]) for r in rows if r["every"])
