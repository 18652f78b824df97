"""Insight reports for one site, under /api/sites/{id}/reports/: engagement, content events (outbound links,
downloads, forms, 404 pages), performance (web vitals), errors and revenue.

They take the common report parameters of `routers/reports.py` (`period`, `from`/`to`, `filters`,
`include_bots`) and answer with the models of `insight_models.py`; ranked tables take `limit`, `page`, `sort`
and `order`. The definitions of every figure are in the query modules' docstrings (`query/engagement.py`,
`content.py`, `performance.py`, `errors.py`, `revenue.py`). Bad parameters are a 400 with the reason
(`invalid_sort`, `invalid_pagination`, `invalid_dimension`, `invalid_interval`, `invalid_currency`,
`currency_mix`); a site or range without such events answers empty rows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pixel.server.api import insight_models as m
from pixel.server.api.deps import Auth, PathId, State, site_for
from pixel.server.api.query import content, engagement, errors, performance, revenue
from pixel.server.api.query.periods import INTERVALS
from pixel.server.api.query.reports import MAX_LIMIT
from pixel.server.api.query.scope import Scope
from pixel.server.api.routers.reports import ScopeDep

router = APIRouter(prefix="/sites/{site_id}/reports", tags=["insights"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Order = Annotated[str, Query(pattern="^(asc|desc)$")]
Interval = Annotated[str | None, Query(description="one of " + ", ".join(INTERVALS))]


def _sort(default: str, names: dict[str, str]) -> Any:
    return Query(default, max_length=40, description="one of " + ", ".join(names))


def _range(s: Scope) -> dict[str, Any]:
    return {
        "site": s.site,
        "period": s.range.period,
        "timezone": s.range.tz,
        "from": s.range.start.isoformat(),
        "to": s.range.end.isoformat(),
    }


@router.get("/engagement", response_model=m.EngagementReport)
def engagement_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("visitors", engagement.SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """Per page: visitors, pageviews, median and p75 engaged time (the time the tab was visible and active),
    the share of page visits reaching 25/50/75/100 % scroll depth, bounce rate (of the sessions entering
    there) and exit rate (of its pageviews)."""
    return {**_range(s), **engagement.engagement(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/outbound", response_model=m.OutboundReport)
def outbound_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("clicks", content.LINK_SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """Clicks on links to other hosts, per URL."""
    return {**_range(s), **content.outbound(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/downloads", response_model=m.DownloadsReport)
def downloads_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("downloads", content.DOWNLOAD_SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """File downloads, per file URL."""
    return {**_range(s), **content.downloads(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/forms", response_model=m.FormsReport)
def forms_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("submissions", content.FORM_SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """Form submissions per form (id, action), with the pages they were on."""
    return {**_range(s), **content.forms(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/not-found", response_model=m.NotFoundReport)
def not_found_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("pageviews", content.NOT_FOUND_SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """404 pages (pageviews the tracker marked not found), with the referrers that led there."""
    return {**_range(s), **content.not_found(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/performance", response_model=m.PerformanceOverview)
def performance_report(s: ScopeDep) -> dict[str, Any]:
    """p75 of LCP, INP, CLS, FCP and TTFB with the share rated good / needs improvement / poor, overall and
    per device type."""
    return {**_range(s), **performance.overview(s)}


@router.get("/performance/pages", response_model=m.PerformancePages)
def performance_pages(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("samples", performance.PAGE_SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """The web vitals per page."""
    return {**_range(s), **performance.pages(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/performance/timeseries", response_model=m.PerformanceSeries)
def performance_series(s: ScopeDep, interval: Interval = None) -> dict[str, Any]:
    """Each web vital's p75 per time bucket."""
    return {**_range(s), **performance.series(s, interval or s.range.default_interval())}


@router.get("/errors", response_model=m.ErrorsReport)
def errors_report(
    s: ScopeDep,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("count", errors.SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """Error groups (message, source, line) with their count, visitors, pages, browsers, first and last seen."""
    return {**_range(s), **errors.groups(s, limit=limit, page=page, sort=sort, order=order)}


@router.get("/errors/timeseries", response_model=m.ErrorsSeries)
def errors_series(s: ScopeDep, interval: Interval = None) -> dict[str, Any]:
    """Error events and visitors with an error, per time bucket."""
    return {**_range(s), **errors.series(s, interval or s.range.default_interval())}


@router.get("/revenue/{dimension}", response_model=m.RevenueReport)
def revenue_report(
    s: ScopeDep,
    site_id: PathId,
    principal: Auth,
    state: State,
    dimension: str,
    currency: Annotated[
        str | None, Query(max_length=8, description="ISO 4217; default: the site's reporting currency")
    ] = None,
    limit: Limit = 10,
    page: PageNo = 1,
    sort: str = _sort("revenue", revenue.SORTS),
    order: Order = "desc",
) -> dict[str, Any]:
    """Revenue, orders and average order value per value of a dimension (source, channel, utm_campaign,
    page, ...), in one currency: `currency`, else the site's reporting currency, else the only one present
    (several and none chosen: 400 `currency_mix`). Other currencies are listed apart, never added."""
    site = site_for(state, principal, site_id)
    body = revenue.revenue(
        s,
        dimension,
        currency=currency,
        reporting_currency=site.get("currency") or None,
        limit=limit,
        page=page,
        sort=sort,
        order=order,
    )
    return {**_range(s), **body}
