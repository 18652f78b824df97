"""Content events: outbound links, file downloads, form submissions and 404 pages.

What the tracker sends (tracker/src/auto.js, track.js) and how each report reads it:
- `outbound` events (a click on a link to another host), parameter `url`: one row per URL with `clicks`
  (events) and `visitors`.
- `download` events (a click on a link whose extension is in the download list), parameters `url` and
  `ext`: one row per file URL with `downloads` (events) and `visitors`.
- `form_submit` events, parameters `id` and `action` (field names only, never values): one row per form
  (id, action) with `submissions`, `visitors` and the pages it was submitted on (`pages`: the first
  `MAX_LISTED` paths in alphabetical order, `page_count`: how many).
- 404 pages: pageviews marked not found (`not_found` = 1: the tracker's `notFound` config or a
  `data-not-found` element): one row per path with `pageviews`, `visitors` and the referrers that led there
  (`referrers`: the full referrer URL, '' for none, with its count; the `MAX_LISTED` most frequent, ties
  alphabetical).
Every report is paged and sortable (`listing.order_page`) and takes the scope's filters and period.
Outbound links and downloads without filters or with filters only on the dimensions that cache carries
(`content_cache.CARRIED`: country, device, browser, os, source, channel), or with one filter on another
event dimension but the title (`content_cache.BY_VALUE_FILTERS`), with filters on the event name beside
those, or with filters on the title or properties (and the page) when each page's values all pass or all
fail them (`page_value_filters`), bots left out, over whole days of the site's zone, come from the per-day cache of `content_cache`; forms without filters from that of
`form_cache` (the same figures, exactly: tests compare both paths); otherwise, and the 404 report always,
from the raw events (outbound links and downloads each event once as `raw_events` reads them: copies dropped
only where two parts could hold them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pixel.server.api.query import cache_sql, content_cache, form_cache, page_value_filters, raw_events
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.listing import deduped, order_page, paged
from pixel.server.api.query.raw_dashboard import DashboardParams
from pixel.server.api.query.scope import Scope

MAX_LISTED = 10
LINK_SORTS = {"clicks": "clicks", "visitors": "visitors", "url": "url"}
DOWNLOAD_SORTS = {"downloads": "downloads", "visitors": "visitors", "file": "file"}
FORM_SORTS = {"submissions": "submissions", "visitors": "visitors", "form": "form_id"}
NOT_FOUND_SORTS = {"pageviews": "pageviews", "visitors": "visitors", "page": "page"}


def _links(scope: Scope, kind: str, name: str, clicks: str, tail: str) -> list[dict[str, Any]]:
    """The link report over the raw events: the `kind` events matching the scope, each once (`raw_events`:
    copies dropped only where two parts could hold them), counted per `props['url']`."""
    params = DashboardParams()
    where = f"{scope.where(params)} AND event_name = '{kind}'"
    events = raw_events.once(where, {"u": "props['url']", "v": "visitor_id"}, params, scope)
    inner = f"SELECT u AS {name}, count() AS {clicks}, {cache_sql.UNIQ_TOTAL}(v) AS visitors FROM {events} GROUP BY {name}"
    return raw_events.run(scope, f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}", params)


def _ranked(scope: Scope, inner: str, params: SqlParams, tail: str) -> list[dict[str, Any]]:
    return scope.run(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}", params)


def _cached_links(scope: Scope, kind: str, url: str, clicks: str, tail: str) -> list[dict[str, Any]] | None:
    """The link report's rows from `content_cache` (named `url`, `clicks`, `visitors`), or None: read the
    raw events (a filter on a dimension the cache does not carry, bots, not whole days, no cache, or a
    first build running in the background). Filters on the event name keep the report's clicks or none, and
    filters on the title or properties a set of pages where the cache can tell (`page_value_filters`), with
    the page filters beside them."""
    if scope.cache is None:
        return None
    events = [f for f in scope.filters if f.dimension == "event"]
    valued = [f for f in scope.filters if page_value_filters.on_values(f)]
    rest = [f for f in scope.filters if f.dimension != "event" and not page_value_filters.on_values(f)]
    if events and kind not in page_value_filters.kept_events(scope, events, (kind,)):
        return []  # no click left
    if valued and any(f.dimension != "page" for f in rest):
        return None
    # (page filters beside the values' are conditions on the same paths: the cache is asked without them)
    days = content_cache.for_cache(scope.cache).days(replace(scope, filters=[] if valued else rest))
    if days is None:
        return None
    params = SqlParams()
    if valued:
        found = page_value_filters.value_paths(scope, days, valued, params, (kind,), content_cache.VALUES)
        if found is None:
            return None
        if found.empty:
            return []
        inner = content_cache.links_sql(days, kind, url, clicks, rest, params, found.condition("value"))
    else:
        inner = content_cache.links_sql(days, kind, url, clicks, rest, params)
    return scope.run_cached(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}", params)


def outbound(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "clicks", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, LINK_SORTS, "url", limit, page)
    rows = _cached_links(scope, "outbound", "url", "clicks", tail)
    if rows is None:
        rows = _links(scope, "outbound", "url", "clicks", tail)
    out = [{"url": r["url"], "clicks": int(r["clicks"]), "visitors": int(r["visitors"])} for r in rows]
    return {"rows": out, **paged(rows, limit, page, sort, order)}


def downloads(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "downloads", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, DOWNLOAD_SORTS, "file", limit, page)
    rows = _cached_links(scope, "download", "file", "downloads", tail)
    if rows is None:
        rows = _links(scope, "download", "file", "downloads", tail)
    out = [
        {"file": r["file"], "downloads": int(r["downloads"]), "visitors": int(r["visitors"])} for r in rows
    ]
    return {"rows": out, **paged(rows, limit, page, sort, order)}


def forms(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "submissions", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, FORM_SORTS, "form_id, action", limit, page)
    days = form_cache.for_cache(scope.cache).days(scope) if scope.cache is not None else None
    if days is not None:
        inner = form_cache.forms_sql(days, MAX_LISTED)
        rows = scope.run_cached(f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}")
    else:
        params = SqlParams()
        inner = f"""SELECT props['id'] AS form_id, props['action'] AS action, count() AS submissions,
                {cache_sql.UNIQ_TOTAL}(visitor_id) AS visitors, uniqExact(path) AS page_count,
                arraySlice(arraySort(groupUniqArray(path)), 1, {MAX_LISTED}) AS pages
            FROM {deduped(scope.where(params) + " AND event_name = 'form_submit'", "props, visitor_id, path")}
            GROUP BY form_id, action"""
        rows = _ranked(scope, inner, params, tail)
    out = [
        {
            "form_id": r["form_id"],
            "action": r["action"],
            "submissions": int(r["submissions"]),
            "visitors": int(r["visitors"]),
            "pages": list(r["pages"]),
            "page_count": int(r["page_count"]),
        }
        for r in rows
    ]
    return {"rows": out, **paged(rows, limit, page, sort, order)}


def not_found(
    scope: Scope, *, limit: int = 10, page: int = 1, sort: str = "pageviews", order: str = "desc"
) -> dict[str, Any]:
    tail = order_page(sort, order, NOT_FOUND_SORTS, "page", limit, page)
    params = SqlParams()
    inner = f"""SELECT page, sum(c) AS pageviews, {cache_sql.UNIQ_VALUE_MERGE}(st) AS visitors,
            arraySlice(arraySort(x -> (-x.2, x.1), groupArray((referrer, c))), 1, {MAX_LISTED}) AS referrers
        FROM (SELECT path AS page, referrer, count() AS c, {cache_sql.UNIQ_VALUE_STATE}(visitor_id) AS st
              FROM {deduped(scope.where(params) + " AND event_name = 'pageview' AND not_found = 1", "path, referrer, visitor_id")}
              GROUP BY page, referrer)
        GROUP BY page"""
    rows = _ranked(scope, inner, params, tail)
    out = [
        {
            "page": r["page"],
            "pageviews": int(r["pageviews"]),
            "visitors": int(r["visitors"]),
            "referrers": [{"referrer": ref, "pageviews": int(n)} for ref, n in r["referrers"]],
        }
        for r in rows
    ]
    return {"rows": out, **paged(rows, limit, page, sort, order)}
