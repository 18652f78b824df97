# ruff: noqa: F811  (owner_api and the other fixtures are imported from owner_server)
"""The desktop's insight client (pixel.app.client.insights) against a real `pixel serve`: each method's answer
is the API's own for the same parameters, the engagement figures are the known traffic's, the answers are
read from the cache when the host is gone, and the reporting currency is set and cleared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pixel.app.client import ApiClient, ApiRequestError
from pixel.app.client.cache import ReportCache
from pixel.app.client.insights import Insights, ReportQuery, set_reporting_currency
from pixel.app.client.source import ReportSource
from tests.desktop.conftest import LiveApi
from tests.desktop.owner_server import SHOP, owner_api, owner_client, ref  # noqa: F401 (fixtures)


def direct(ref: httpx.Client, site_id: int, path: str, params: dict[str, Any]) -> Any:
    r = ref.get(f"/api/sites/{site_id}/reports/{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_method_answers_as_the_api(
    owner_api: LiveApi, owner_client: ApiClient, ref: httpx.Client, tmp_path: Path
) -> None:
    site_id = owner_api.sites[SHOP]
    source = ReportSource(owner_client, ReportCache(tmp_path / "cache.sqlite3"), "owner")
    insights = Insights(source, site_id)
    q = ReportQuery(period="30d")
    base = {"period": "30d"}
    table = {**base, "limit": 10, "page": 1, "order": "desc"}
    calls = [
        (insights.engagement(q), "engagement", {**table, "sort": "visitors"}),
        (insights.outbound(q), "outbound", {**table, "sort": "clicks"}),
        (insights.downloads(q), "downloads", {**table, "sort": "downloads"}),
        (insights.forms(q), "forms", {**table, "sort": "submissions"}),
        (insights.not_found(q), "not-found", {**table, "sort": "pageviews"}),
        (insights.performance(q), "performance", base),
        (insights.performance_pages(q), "performance/pages", {**table, "sort": "samples"}),
        (insights.performance_timeseries(q, "day"), "performance/timeseries", {**base, "interval": "day"}),
        (insights.errors(q), "errors", {**table, "sort": "count"}),
        (insights.errors_timeseries(q, "day"), "errors/timeseries", {**base, "interval": "day"}),
        (insights.revenue(q, "channel"), "revenue/channel", {**table, "sort": "revenue"}),
        (insights.retention(q), "retention", base),
    ]
    for fetched, path, params in calls:
        assert fetched.live, path
        assert fetched.data == direct(ref, site_id, path, params), path
    # the known traffic: visitors 1-6 view /, 1-4 then /pricing; 5 and 6 bounce
    rows = {r["page"]: r for r in insights.engagement(q).data["rows"]}
    assert (rows["/"]["visitors"], rows["/"]["pageviews"], rows["/"]["entries"]) == (6, 6, 6)
    assert (rows["/"]["bounce_rate"], rows["/"]["exits"], rows["/"]["exit_rate"]) == (33.3, 2, 33.3)
    assert (rows["/pricing"]["entries"], rows["/pricing"]["bounce_rate"], rows["/pricing"]["exit_rate"]) == (
        0,
        None,
        100.0,
    )
    # with the host gone, the same answers come from the cache, marked as such
    offline = Insights(ReportSource(None, source.cache, "owner"), site_id)
    cached = offline.engagement(q)
    assert not cached.live and cached.data == calls[0][0].data


def test_comparisons_and_reporting_currency(
    owner_api: LiveApi, owner_client: ApiClient, ref: httpx.Client, tmp_path: Path
) -> None:
    site_id = owner_api.sites[SHOP]
    insights = Insights(ReportSource(owner_client, ReportCache(tmp_path / "c.sqlite3"), "owner"), site_id)
    q = ReportQuery(period="7d", compare="year")
    summary = insights.summary(q).data
    assert summary["metrics"]["visitors"] == {"value": 6, "previous": 0, "change": None}
    assert insights.summary(ReportQuery(period="7d")).data["metrics"]["visitors"] == {"value": 6}
    series = insights.timeseries(q, "visitors", "day").data
    assert len(series["compare"]["points"]) == len(series["points"]) == 7
    custom = ReportQuery(period="7d", compare="custom", compare_from="2020-01-01", compare_to="2020-01-07")
    rows = insights.breakdown(custom, "page").data["rows"]
    assert {r["value"]: (r["visitors"], r["previous"]["visitors"]) for r in rows} == {
        "/": (6, 0),
        "/pricing": (4, 0),
    }
    with pytest.raises(ApiRequestError) as bad:
        insights.breakdown(ReportQuery(period="7d", compare="custom"), "page")
    assert bad.value.code == "invalid_compare"
    site = set_reporting_currency(owner_client, site_id, "chf")
    assert site["currency"] == "CHF"
    assert insights.revenue(ReportQuery(period="7d"), "source").data["currency"] == "CHF"
    with pytest.raises(ApiRequestError) as refused:
        set_reporting_currency(owner_client, site_id, "Swiss francs")
    assert refused.value.status == 422
    assert set_reporting_currency(owner_client, site_id, "")["currency"] == ""
    assert ref.get(f"/api/sites/{site_id}").json()["currency"] == ""
