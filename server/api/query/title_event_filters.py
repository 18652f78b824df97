"""Filters on the event name and on the title, answered from the engagement report's per-day caches.

The engagement report reads the page events only (`pageview`, `engagement`, `scroll`; see `engagement`), and
filters apply to events. So:

- Filters on the event name keep a fixed subset of those three names, whatever the events hold: the
  filters' own SQL condition is evaluated once over the three names (`kept_page_events`), so every operator
  means on the cache what it means on the events. Without `pageview` no page visit is left: the report is
  empty. Without `engagement` no visit reports engaged time, without `scroll` none a scroll depth
  (`without_events`); every other figure (visitors, pageviews, entries, bounces, exits) comes from the
  pageviews and is the same as without the filter.
- Filters on the title keep the page events of a set of paths when, over the range, each path's titles all
  pass them or all fail them: then they are a filter on those paths (`title_paths`), which the caches answer
  as any filter on the page. The titles of each path are read from the engagement cache's `page_titles`
  (the distinct titles of a day's page events per path, bots left out, copies of an event carrying the same
  title): a path whose titles the filters split, or with more titles than the cache keeps, leaves the report
  to the raw events, and so does a title filter beside filters on other dimensions (the plain cache's
  paths, not the cache by dimension's).

Nothing here puts user text in SQL: filter values are parameters.
"""

from __future__ import annotations

from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.engagement_cache import TITLES
from pixel.server.api.query.filters import Filter, SqlParams, filter_sql
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import TITLES_KEPT

PAGE_EVENTS = ("pageview", "engagement", "scroll")
# What a page visit shows of each page event but the pageview, when the filters drop that event
_NONE_OF = {
    "engagement": ("engaged_visits",),
    "scroll": ("scroll_visits", "s25", "s50", "s75", "s100"),
}


def kept_page_events(scope: Scope, filters: list[Filter]) -> frozenset[str]:
    """The page events whose name passes every one of `filters` (each on the event name)."""
    params = SqlParams()
    where = " AND ".join(filter_sql(f, params) for f in filters)
    names = ", ".join(f"'{name}'" for name in PAGE_EVENTS)  # constants of this module
    rows = scope.runner.query(
        f"SELECT groupArray(event_name) FROM (SELECT arrayJoin([{names}]) AS event_name) WHERE {where}",
        params.values,
    ).rows
    return frozenset(rows[0][0]) if rows else frozenset()


def without_events(inner: str, dropped: frozenset[str]) -> str:
    """`inner` (the report's rows from a cache) as they are when its page events `dropped` are filtered out
    (never the pageview): no visit with engaged time, or with a scroll depth."""
    zeroed = [column for event in sorted(dropped) for column in _NONE_OF[event]]
    return f"SELECT * REPLACE ({', '.join(f'toUInt64(0) AS {c}' for c in zeroed)}) FROM ({inner})"


def title_paths(scope: Scope, days: Days, filters: list[Filter]) -> list[str] | None:
    """The paths whose page events pass every one of `filters` (each on the title) over `days` (the
    engagement cache's valid builds), sorted; None when a path has titles that pass and titles that fail, or
    more titles than the cache keeps (the filters are not a filter on the paths)."""
    params = SqlParams()
    keep = " AND ".join(filter_sql(f, params) for f in filters)  # on a column `title`
    rows = scope.run_cached(
        f"""SELECT path, min(keep) AS every, max(keep) AS some, min(known) AS known FROM (
            SELECT path, {keep} AS keep, known FROM (
                SELECT path, groupUniqArrayArray({TITLES_KEPT + 1})(titles) AS all_titles,
                    length(all_titles) <= {TITLES_KEPT} AS known
                FROM {TITLES} WHERE {days.rows_where()}
                GROUP BY path)
            ARRAY JOIN all_titles AS title)
        GROUP BY path""",
        params,
    )
    if any(not r["known"] or r["every"] != r["some"] for r in rows):
        return None
    return sorted(str(r["path"]) for r in rows if r["every"])
