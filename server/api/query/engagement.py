"""Engagement per page: visitors, pageviews, engaged time, scroll depth, bounce and exit rates.

Definitions (tests/api/insights_dataset.py computes the same numbers independently):
- A *page visit* is a page (`path`) in a session with at least one pageview in the range; its events are
  the session's pageview, `engagement` and `scroll` events on that path.
- Engaged time is what the tracker reports on `engagement` events (`engaged_ms`: the time the tab was
  visible and active on the page), summed per page visit. `median_engaged_ms` and `p75_engaged_ms` are taken
  over the page visits that reported engaged time (`engaged_visits`), as ClickHouse's `quantileExact`
  takes them: the value at index floor(q * n) of the sorted values. None when no visit reported any.
- Scroll depth of a page visit: the greatest `scroll_depth` of its `scroll` events (the tracker sends the
  deepest point reached when the page is left). `scroll.reached_25` .. `reached_100`: the percent of the
  page visits with a scroll report (`scroll.visits`) that reached at least 25/50/75/100 %; None without one.
- `bounce_rate`: of the sessions that entered on the page (their first pageview; pageviews at one instant:
  the least path), the percent with one pageview; None when no session entered there.
- `exit_rate`: the sessions whose last pageview was on the page (pageviews at one instant: the greatest
  path), as a percent of the page's pageviews.
- Visitors as in every breakdown row (`cache_sql.UNIQ_VALUE`, exact for small sets). Filters apply to the events.

Bots left out, over whole days of the site's zone, the answer comes from a per-day cache (the same figures,
exactly: tests compare the paths): filters on the event name become the page events they keep, filters on
the title or a property a set of paths where the cache can tell (`page_value_filters`); then without filters
from `engagement_cache`, with filters only on the dimensions `engagement_dims_cache` carries (every event
dimension but the title and the event's name) from that one; with a filter `page is X` (beside other page
filters, or filters that cache carries) from the same caches, X's entries and exits being its visits kept and its bounces those with one pageview (every
event of a visit is on its page, so a kept session enters and leaves on X); with other filters on the page
only, the page's visit figures from `engagement_cache` and its entries, bounces and exits from the same
cache's ordered session pages cut by the filters (`page_filtered_sql`); otherwise from the raw events
(`raw_sql`), each event once: copies of an event (client retries: one `event_id` on one day) are dropped only
where two parts of `events` could hold them (`copy_windows`, as the raw dashboard does), and the parts are read
again after the query (`raw_events`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pixel.server.api.query import (
    cache_sql,
    engagement_cache,
    engagement_dims_cache,
    page_value_filters,
    raw_dashboard,
    raw_events,
)
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.filters import Filter, SqlParams, filter_sql
from pixel.server.api.query.listing import order_page, paged, percent
from pixel.server.api.query.scope import Scope

SCROLL_MARKS = (25, 50, 75, 100)
SORTS = {
    "visitors": "visitors",
    "pageviews": "pageviews",
    "median_engaged_ms": "if(engaged_visits > 0, median_engaged_ms, NULL)",
    "p75_engaged_ms": "if(engaged_visits > 0, p75_engaged_ms, NULL)",
    "bounce_rate": "if(entries > 0, bounces / entries, NULL)",
    "exit_rate": "if(pageviews > 0, exits / pageviews, NULL)",
    "scroll_75": "if(scroll_visits > 0, s75 / scroll_visits, NULL)",
    "page": "page",
}


def engagement(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "visitors", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, SORTS, "page", limit, page)
    rows = _from_caches(scope, tail)
    if rows is None:
        params = raw_dashboard.DashboardParams()
        rows = raw_events.run(scope, raw_sql(scope, params, tail), params)
    return {"rows": [_row(r) for r in rows], **paged(rows, limit, page, sort, order)}


def raw_sql(scope: Scope, params: raw_dashboard.DashboardParams, tail: str) -> str:
    """The report over the raw events (the filters the caches do not carry, or no cache).

    Each matching event once: the rows outside `copy_windows`' windows as they are (no copy can sit
    there, and the event id is not read), the rows inside grouped by the hash of the table's key (one
    `event_id` on one day). Then one aggregation per page visit (the stored `session_hash`, path) and one
    per session (entry, exit and pageviews of the session, its visits kept in an array), whose visits are
    unfolded and grouped by page: no window functions."""
    where = f"{scope.where(params)} AND event_name IN ('pageview', 'engagement', 'scroll')"
    names = ("path", "visitor_id", "event_name", "timestamp", "engaged_ms", "scroll_depth")
    matching = raw_events.once(where, {"sid": "session_hash", **{c: c for c in names}}, params, scope)
    marks = ", ".join(f"countIf(has_scroll AND depth >= {m}) AS s{m}" for m in SCROLL_MARKS)
    return f"""WITH
        matching AS (SELECT * FROM {matching}),
        visits AS (SELECT sid, path, any(visitor_id) AS visitor_id, countIf(event_name = 'pageview') AS pv,
                minIf(timestamp, event_name = 'pageview') AS first_pv, maxIf(timestamp, event_name = 'pageview') AS last_pv,
                sumIf(toUInt64(engaged_ms), event_name = 'engagement') AS engaged,
                countIf(event_name = 'engagement') > 0 AS has_engaged,
                maxIf(scroll_depth, event_name = 'scroll') AS depth, countIf(event_name = 'scroll') > 0 AS has_scroll
            FROM matching GROUP BY sid, path HAVING pv > 0),
        placed AS (SELECT v.1 AS path, v.2 AS visitor_id, v.3 AS pv, v.4 AS engaged, v.5 AS has_engaged,
                v.6 AS depth, v.7 AS has_scroll, entry_path, exit_path, session_pv
            FROM (SELECT argMin(path, (first_pv, path)) AS entry_path, argMax(path, (last_pv, path)) AS exit_path,
                    sum(pv) AS session_pv,
                    groupArray((path, visitor_id, pv, engaged, has_engaged, depth, has_scroll)) AS visits
                FROM visits GROUP BY sid)
            ARRAY JOIN visits AS v)
    SELECT *, count() OVER () AS total_rows FROM (
        SELECT path AS page, {cache_sql.UNIQ_VALUE}(visitor_id) AS visitors, sum(pv) AS pageviews,
            countIf(has_engaged) AS engaged_visits,
            quantileExactIf(0.5)(engaged, has_engaged) AS median_engaged_ms,
            quantileExactIf(0.75)(engaged, has_engaged) AS p75_engaged_ms,
            countIf(has_scroll) AS scroll_visits, {marks},
            countIf(path = entry_path) AS entries, countIf(path = entry_path AND session_pv <= 1) AS bounces,
            countIf(path = exit_path) AS exits
        FROM placed GROUP BY path)
    {tail}"""


def page_filtered_sql(days: Days, params: SqlParams, filters: list[Filter], tail: str) -> str:
    """The report with filters on the page only, from the engagement cache (`_page_filtered`)."""
    return (
        f"SELECT * FROM ({_page_filtered(days, ' AND '.join(filter_sql(f, params) for f in filters))}) {tail}"
    )


def _page_filtered(days: Days, pages: str) -> str:
    """The report's rows with a condition on the page only (`pages`, on a column `path`), from the engagement
    cache: a page's visits are kept whole or not at all (all of their events share its path), so its
    visitors, pageviews, engaged time and scroll figures are those of the plain cache's row of that page. Its
    entries, bounces and exits are not: they are placed among each session's kept pageviews, from the cache's
    ordered session pages (`engagement_cache.page_ends_sql`, by the hash of the path)."""
    visits = engagement_cache.pages_sql(days, engagement_cache.TABLES[:2], pages)
    return f"""WITH ends AS ({engagement_cache.page_ends_sql(days, pages)})
        SELECT v.page AS page, v.visitors AS visitors, v.pageviews AS pageviews,
            v.engaged_visits AS engaged_visits, v.median_engaged_ms AS median_engaged_ms,
            v.p75_engaged_ms AS p75_engaged_ms, v.scroll_visits AS scroll_visits, v.s25 AS s25, v.s50 AS s50,
            v.s75 AS s75, v.s100 AS s100, ends.entries AS entries, ends.bounces AS bounces, ends.exits AS exits,
            v.total_rows AS total_rows
        FROM ({visits}) AS v LEFT JOIN ends ON ends.page_hash = cityHash64(v.page)"""


def _from_caches(scope: Scope, tail: str) -> list[dict[str, Any]] | None:
    """The report's rows from the per-day caches, or None: read the raw events. Filters on the event name
    become the page events they keep and filters on the title or a property a set of paths and the page
    events they keep there (`page_value_filters`). Without other filters, or with filters on the page only,
    from `engagement_cache` (with a `page is` filter among them from it alone, else with its session pages:
    `_page_filtered`); with filters on the dimensions `engagement_dims_cache` carries (no title or property
    filter: its paths come from the plain cache), and a `page is` filter with page filters beside them, from
    that one."""
    if scope.cache is None:
        return None
    events = [f for f in scope.filters if f.dimension == "event"]
    valued = [f for f in scope.filters if page_value_filters.on_values(f)]
    rest = [f for f in scope.filters if f.dimension != "event" and not page_value_filters.on_values(f)]
    dropped: frozenset[str] = frozenset()
    if events:
        kept = page_value_filters.kept_events(scope, events)
        if "pageview" not in kept:
            return []  # no page visit left
        dropped = frozenset(page_value_filters.PAGE_EVENTS) - kept
    pages = [f for f in rest if f.dimension == "page"]
    others = [f for f in rest if f.dimension != "page"]
    page_is = any(f.operator == "is" for f in pages)
    params = SqlParams()
    if not others:
        days = engagement_cache.for_cache(scope.cache).days(replace(scope, filters=[]))
        if days is None:
            return None
        keep = [filter_sql(f, params) for f in pages]
        if valued:
            found = page_value_filters.value_paths(scope, days, valued, params)
            if found is None:
                return None
            if found.empty:
                return []
            keep.append(found.condition("path"))
            dropped |= found.dropped
        if keep and not page_is:
            inner = _page_filtered(days, " AND ".join(keep))
        else:
            inner = engagement_cache.pages_sql(days, where=" AND ".join(keep))
    else:
        if valued or (pages and not page_is):
            return None
        days = engagement_dims_cache.for_cache(scope.cache).days(replace(scope, filters=others))
        if days is None:
            return None
        inner = engagement_dims_cache.pages_sql(days, rest, params)
    if page_is:  # `page is X`: every kept session enters and leaves on X, and bounces with one pageview there
        inner = (
            f"SELECT * REPLACE (visits AS entries, single_visits AS bounces, visits AS exits) FROM ({inner})"
        )
    if dropped:
        inner = page_value_filters.without_events(inner, dropped)
    return scope.run_cached(f"SELECT * FROM ({inner}) {tail}", params)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    engaged = int(r["engaged_visits"])
    scrolled = int(r["scroll_visits"])
    pageviews = int(r["pageviews"])
    return {
        "page": r["page"],
        "visitors": int(r["visitors"]),
        "pageviews": pageviews,
        "engaged_visits": engaged,
        "median_engaged_ms": int(r["median_engaged_ms"]) if engaged else None,
        "p75_engaged_ms": int(r["p75_engaged_ms"]) if engaged else None,
        "scroll": {
            "visits": scrolled,
            **{f"reached_{m}": percent(int(r[f"s{m}"]), scrolled) for m in SCROLL_MARKS},
        },
        "entries": int(r["entries"]),
        "bounce_rate": percent(int(r["bounces"]), int(r["entries"])),
        "exits": int(r["exits"]),
        "exit_rate": percent(int(r["exits"]), pageviews),
    }
