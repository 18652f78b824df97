"""Response models of the insight reports (`routers/insights.py`), for the OpenAPI schema and the answers.

Every answer carries the report's range (`site`, `period`, `timezone`, `from`, `to`: ISO 8601 UTC, `to`
exclusive); ranked tables carry their paging (`page`, `limit`, `sort`, `order`, `total_rows`: rows before
paging). Percentages have one decimal and are None without a base; durations are milliseconds; amounts are
exact decimal strings with four decimals.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RangeFields(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    site: str
    period: str
    timezone: str
    from_: str = Field(alias="from", description="start, ISO 8601 UTC, inclusive")
    to: str = Field(description="end, ISO 8601 UTC, exclusive")


class Paging(RangeFields):
    page: int
    limit: int
    sort: str
    order: str
    total_rows: int = Field(description="rows of the whole table before paging")


# -- engagement --------------------------------------------------------------------------------------


class ScrollReach(BaseModel):
    visits: int = Field(description="page visits that reported a scroll depth")
    reached_25: float | None
    reached_50: float | None
    reached_75: float | None
    reached_100: float | None


class EngagementRow(BaseModel):
    page: str
    visitors: int
    pageviews: int
    engaged_visits: int = Field(description="page visits that reported engaged time")
    median_engaged_ms: int | None
    p75_engaged_ms: int | None
    scroll: ScrollReach
    entries: int = Field(description="sessions that entered on this page")
    bounce_rate: float | None = Field(description="% of the entering sessions with one pageview")
    exits: int = Field(description="sessions whose last pageview was this page")
    exit_rate: float | None = Field(description="exits as % of the page's pageviews")


class EngagementReport(Paging):
    rows: list[EngagementRow]


# -- content -----------------------------------------------------------------------------------------


class OutboundRow(BaseModel):
    url: str
    clicks: int
    visitors: int


class OutboundReport(Paging):
    rows: list[OutboundRow]


class DownloadRow(BaseModel):
    file: str
    downloads: int
    visitors: int


class DownloadsReport(Paging):
    rows: list[DownloadRow]


class FormRow(BaseModel):
    form_id: str
    action: str
    submissions: int
    visitors: int
    pages: list[str] = Field(description="the first pages it was submitted on, alphabetically")
    page_count: int


class FormsReport(Paging):
    rows: list[FormRow]


class ReferrerCount(BaseModel):
    referrer: str = Field(description="the full referrer URL, '' for none")
    pageviews: int


class NotFoundRow(BaseModel):
    page: str
    pageviews: int
    visitors: int
    referrers: list[ReferrerCount]


class NotFoundReport(Paging):
    rows: list[NotFoundRow]


# -- performance -------------------------------------------------------------------------------------


class Vital(BaseModel):
    p75: float | None = Field(description="75th percentile: ms (CLS: unitless)")
    samples: int
    good: float | None
    needs_improvement: float | None
    poor: float | None


class Vitals(BaseModel):
    samples: int = Field(description="web_vitals events")
    ttfb: Vital
    fcp: Vital
    lcp: Vital
    cls: Vital
    inp: Vital


class DeviceVitals(Vitals):
    device: str


class PageVitals(Vitals):
    page: str


class PerformanceOverview(RangeFields):
    overall: Vitals
    by_device: list[DeviceVitals]


class PerformancePages(Paging):
    rows: list[PageVitals]


class VitalsPoint(BaseModel):
    bucket: str
    samples: int
    ttfb: float | None
    fcp: float | None
    lcp: float | None
    cls: float | None
    inp: float | None


class PerformanceSeries(RangeFields):
    interval: str
    metrics: list[str]
    points: list[VitalsPoint]


# -- errors ------------------------------------------------------------------------------------------


class ErrorGroup(BaseModel):
    message: str
    source: str
    line: int
    count: int
    visitors: int
    pages: list[str]
    page_count: int
    browsers: list[str]
    browser_count: int
    first_seen: str = Field(description="earliest event of the group in the range, ISO 8601 UTC")
    last_seen: str


class ErrorsReport(Paging):
    rows: list[ErrorGroup]


class ErrorsPoint(BaseModel):
    bucket: str
    errors: int
    visitors: int


class ErrorsSeries(RangeFields):
    interval: str
    points: list[ErrorsPoint]


# -- revenue -----------------------------------------------------------------------------------------


class RevenueFigures(BaseModel):
    revenue: str = Field(description="net amount (refunds subtract), exact, four decimals")
    orders: int = Field(description="events with a positive amount")
    refunds: int = Field(description="events with a negative amount")
    average_order_value: str | None = Field(description="positive amounts / orders")
    visitors: int


class RevenueRow(RevenueFigures):
    value: str


class CurrencyFigures(RevenueFigures):
    currency: str


class RevenueReport(Paging):
    dimension: str
    currency: str | None = Field(description="the currency of totals and rows; None when there is no revenue")
    totals: RevenueFigures
    other_currencies: list[CurrencyFigures] = Field(description="revenue in other currencies, never added")
    rows: list[RevenueRow]
