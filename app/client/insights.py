"""Typed access to the insight reports for the desktop: engagement, content events, performance, errors,
revenue, retention and comparisons (the API's /api/sites/{id}/reports/..., `server/api/routers/insights.py`).

Contract:
- `Insights(source, site_id)` reads through a `ReportSource`: live when the API answers (and then cached),
  else the cached answer with its "as of" time; each method returns a `Fetched` whose `data` is the API's
  JSON answer as documented by its response model (`server/api/insight_models.py`). API refusals (a bad
  sort, an unknown dimension, a currency mix) raise `ApiRequestError` with the server's reason; an
  unreachable host with nothing cached raises `NoData`.
- `ReportQuery` holds what every report takes: period (`from`/`to` for custom), filters, bots, and a
  comparison (`compare`: previous, year or custom with `compare_from`/`compare_to`) used by `summary`,
  `timeseries`, `breakdown` and `dashboard`.
- The method names are stable (the desktop views call them).
- `set_reporting_currency` (blocking, an admin's `ApiClient`) sets the site's reporting currency ('' clears it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixel.app.client.api import ApiClient
from pixel.app.client.source import Fetched, ReportSource


@dataclass(frozen=True)
class ReportQuery:
    period: str = "30d"
    date_from: str | None = None  # YYYY-MM-DD, period=custom
    date_to: str | None = None
    filters: list[list[str]] = field(default_factory=list)
    include_bots: bool = False
    compare: str | None = None  # previous, year, custom (None: no comparison)
    compare_from: str | None = None  # YYYY-MM-DD, compare=custom
    compare_to: str | None = None

    def params(self, *, with_compare: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"period": self.period, "filters": self.filters or None}
        if self.period == "custom":
            out["from"], out["to"] = self.date_from, self.date_to
        if self.include_bots:
            out["include_bots"] = True
        if with_compare:
            out["compare"] = self.compare or "false"
            if self.compare == "custom":
                out["compare_from"], out["compare_to"] = self.compare_from, self.compare_to
        return out


class Insights:
    """The insight reports of one site."""

    def __init__(self, source: ReportSource, site_id: int) -> None:
        self.source = source
        self.site_id = site_id

    def _get(self, name: str, params: dict[str, Any]) -> Fetched:
        return self.source.report(self.site_id, name, params)

    @staticmethod
    def _table(query: ReportQuery, limit: int, page: int, sort: str | None, order: str) -> dict[str, Any]:
        out = {**query.params(), "limit": limit, "page": page, "order": order}
        if sort:
            out["sort"] = sort
        return out

    # -- engagement and content ---------------------------------------------------------------------
    def engagement(
        self,
        query: ReportQuery,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "visitors",
        order: str = "desc",
    ) -> Fetched:
        return self._get("engagement", self._table(query, limit, page, sort, order))

    def outbound(
        self, query: ReportQuery, *, limit: int = 10, page: int = 1, sort: str = "clicks", order: str = "desc"
    ) -> Fetched:
        return self._get("outbound", self._table(query, limit, page, sort, order))

    def downloads(
        self,
        query: ReportQuery,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "downloads",
        order: str = "desc",
    ) -> Fetched:
        return self._get("downloads", self._table(query, limit, page, sort, order))

    def forms(
        self,
        query: ReportQuery,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "submissions",
        order: str = "desc",
    ) -> Fetched:
        return self._get("forms", self._table(query, limit, page, sort, order))

    def not_found(
        self,
        query: ReportQuery,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "pageviews",
        order: str = "desc",
    ) -> Fetched:
        return self._get("not-found", self._table(query, limit, page, sort, order))

    # -- performance and errors ---------------------------------------------------------------------
    def performance(self, query: ReportQuery) -> Fetched:
        """Overall and per device type: each vital's p75, samples and good/needs-improvement/poor shares."""
        return self._get("performance", query.params())

    def performance_pages(
        self,
        query: ReportQuery,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "samples",
        order: str = "desc",
    ) -> Fetched:
        return self._get("performance/pages", self._table(query, limit, page, sort, order))

    def performance_timeseries(self, query: ReportQuery, interval: str | None = None) -> Fetched:
        return self._get("performance/timeseries", {**query.params(), "interval": interval})

    def errors(
        self, query: ReportQuery, *, limit: int = 10, page: int = 1, sort: str = "count", order: str = "desc"
    ) -> Fetched:
        return self._get("errors", self._table(query, limit, page, sort, order))

    def errors_timeseries(self, query: ReportQuery, interval: str | None = None) -> Fetched:
        return self._get("errors/timeseries", {**query.params(), "interval": interval})

    # -- revenue ------------------------------------------------------------------------------------
    def revenue(
        self,
        query: ReportQuery,
        dimension: str = "source",
        *,
        currency: str | None = None,
        limit: int = 10,
        page: int = 1,
        sort: str = "revenue",
        order: str = "desc",
    ) -> Fetched:
        """Revenue per value of `dimension` in one currency (`currency`, else the site's reporting currency);
        a range with several currencies and none chosen is an ApiRequestError with code `currency_mix`."""
        params = {**self._table(query, limit, page, sort, order), "currency": currency}
        return self._get(f"revenue/{dimension}", params)

    # -- retention and comparisons ------------------------------------------------------------------
    def retention(self, query: ReportQuery) -> Fetched:
        """Weekly cohorts: `cohorts` = [{cohort, visitors, weeks: [counts], percent: [...]}]."""
        return self._get("retention", query.params())

    def summary(self, query: ReportQuery) -> Fetched:
        return self._get("summary", query.params(with_compare=True))

    def timeseries(
        self, query: ReportQuery, metrics: str = "visitors,pageviews", interval: str | None = None
    ) -> Fetched:
        """With `query.compare`, the compared range's points under `compare` (aligned by index)."""
        params = {**query.params(), "metrics": metrics, "interval": interval}
        if query.compare:
            params.update(query.params(with_compare=True))
        return self._get("timeseries", params)

    def breakdown(
        self,
        query: ReportQuery,
        dimension: str,
        *,
        limit: int = 10,
        page: int = 1,
        sort: str = "visitors",
        order: str = "desc",
    ) -> Fetched:
        """With `query.compare`, each row's `previous` metrics and `change` (percent)."""
        params = self._table(query, limit, page, sort, order)
        if query.compare:
            params.update(query.params(with_compare=True))
        return self._get(f"breakdown/{dimension}", params)

    def dashboard(self, query: ReportQuery, **params: Any) -> Fetched:
        return self._get("dashboard", {**query.params(with_compare=True), **params})


def set_reporting_currency(client: ApiClient, site_id: int, code: str) -> dict[str, Any]:
    """The site with its reporting currency set to `code` (ISO 4217; '' for none). Blocking."""
    return dict(client.request("PATCH", f"/api/sites/{site_id}", body={"currency": code}))
