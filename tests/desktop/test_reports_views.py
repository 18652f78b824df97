# ruff: noqa: F811  (insights_api is a fixture imported from insights_server)
"""The dashboard's report tabs (engagement, content events, performance, errors, revenue) against a real
`pixel serve` whose traffic holds every kind of event: what each tab plots and lists equals the API's answer;
header sorting; the currency chooser (a mix refused with its reason, then one currency); an empty site; every
tab drawn from the cache offline with "as of"; screenshots (light and dark) of each tab."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from pixel.app.client import ApiClient, ReportCache, ReportSource
from pixel.app.desktop.charts import bucket_x
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.reports_perf import VITALS, vital_text
from pixel.app.desktop.reports_revenue import amount
from pixel.app.desktop.reports_views import count, duration, pages_text, share
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import save_screenshot
from tests.desktop.insights_server import EMPTY, SITE, insights_api  # noqa: F401
from tests.desktop.test_owner_pages import dark

TABS = ("engagement", "content", "performance", "errors", "revenue")


def open_page(qtbot, api, cache: Path, timeout: float = 10) -> DashboardPage:
    source = ReportSource(
        ApiClient(api.url, api.username, api.password, timeout=timeout), ReportCache(cache), "t"
    )
    page = DashboardPage(Runner(), source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1400, 1100)
    page.show()
    return page


def close_page(page: DashboardPage) -> None:
    page.runner.shutdown()
    page.source.client.close()
    page.source.cache.close()


def idle(qtbot, page: DashboardPage) -> None:
    qtbot.waitUntil(lambda: page.runner.busy == 0, timeout=60_000)
    qtbot.wait(20)
    qtbot.waitUntil(lambda: page.runner.busy == 0, timeout=60_000)


def show(qtbot, page: DashboardPage, key: str) -> object:
    view = page.reports.view(key)
    page.tabs.setCurrentWidget(view)
    idle(qtbot, page)
    return view


@pytest.fixture
def report_page(qtbot, insights_api, tmp_path: Path) -> Iterator[DashboardPage]:
    page = open_page(qtbot, insights_api, tmp_path / "cache.sqlite3")
    page.load_sites()
    idle(qtbot, page)
    assert page.site["domain"] == SITE
    yield page
    close_page(page)


def api(insights_api, report: str, **params) -> dict:
    with closing(insights_api.http()) as client:
        r = client.get(
            f"/api/sites/{insights_api.sites[SITE]}/reports/{report}", params={"period": "30d", **params}
        )
        assert r.status_code == 200, r.text
        return r.json()


def column(table, c: int) -> list[str]:
    return [table.item(r, c).text() for r in range(table.rowCount())]


def test_engagement_equals_the_api_and_sorts(qtbot, insights_api, report_page: DashboardPage) -> None:
    view = show(qtbot, report_page, "engagement")
    answer = api(insights_api, "engagement", limit=100)
    rows = answer["rows"]
    assert len(rows) == 5 and view.rows == rows
    assert column(view.table, 0) == [r["page"] for r in rows]
    assert column(view.table, 1) == [count(r["visitors"]) for r in rows]
    assert column(view.table, 3) == [duration(r["median_engaged_ms"]) for r in rows]
    assert column(view.table, 4) == [duration(r["p75_engaged_ms"]) for r in rows]
    assert column(view.table, 5) == [share(r["scroll"]["reached_25"]) for r in rows]
    assert column(view.table, 8) == [share(r["scroll"]["reached_100"]) for r in rows]
    assert column(view.table, 9) == [share(r["bounce_rate"]) for r in rows]
    assert column(view.table, 10) == [share(r["exit_rate"]) for r in rows]
    assert view.chart.names == [r["page"] for r in rows]
    assert list(view.chart.values) == [r["median_engaged_ms"] / 1000 for r in rows]
    # a header click sorts by that column's numbers (not its text)
    view.table.sortByColumn(3, view.table.horizontalHeader().sortIndicatorOrder().AscendingOrder)
    by_median = sorted(rows, key=lambda r: r["median_engaged_ms"])
    assert column(view.table, 0) == [r["page"] for r in by_median]


def test_content_tables_equal_the_api(qtbot, insights_api, report_page: DashboardPage) -> None:
    view = show(qtbot, report_page, "content")
    links = api(insights_api, "outbound", limit=100)["rows"]
    assert links and column(view.links, 0) == [r["url"] for r in links]
    assert column(view.links, 1) == [count(r["clicks"]) for r in links]
    assert list(view.links_chart.values) == [r["clicks"] for r in links]
    files = api(insights_api, "downloads", limit=100)["rows"]
    assert files and column(view.downloads, 0) == [r["file"] for r in files]
    assert column(view.downloads, 1) == [count(r["downloads"]) for r in files]
    forms = api(insights_api, "forms", limit=100)["rows"]
    assert forms and column(view.forms, 0) == [r["form_id"] or "(no id)" for r in forms]
    assert column(view.forms, 2) == [count(r["submissions"]) for r in forms]
    assert column(view.forms, 4) == [pages_text(r["pages"], r["page_count"]) for r in forms]
    missing = api(insights_api, "not-found", limit=100)["rows"]
    assert missing and column(view.not_found, 0) == [r["page"] for r in missing]
    assert column(view.not_found, 1) == [count(r["pageviews"]) for r in missing]


def test_performance_equals_the_api(qtbot, insights_api, report_page: DashboardPage) -> None:
    view = show(qtbot, report_page, "performance")
    overview = api(insights_api, "performance")
    assert overview["overall"]["samples"] > 50
    for metric, tile in view.tiles.items():
        vital = overview["overall"][metric]
        assert tile.value.text() == vital_text(metric, vital["p75"])
        assert tile.bar.shares == (
            vital["good"] or 0.0,
            vital["needs_improvement"] or 0.0,
            vital["poor"] or 0.0,
        )
    assert column(view.devices, 0) == [r["device"] or "(unknown)" for r in overview["by_device"]]
    assert column(view.devices, 2) == [vital_text("lcp", r["lcp"]["p75"]) for r in overview["by_device"]]
    pages = api(insights_api, "performance/pages", limit=100)["rows"]
    assert column(view.pages, 0) == [r["page"] for r in pages]
    assert column(view.pages, 4) == [vital_text("cls", r["cls"]["p75"]) for r in pages]
    series = api(insights_api, "performance/timeseries")
    for index, (metric, _) in enumerate(VITALS):
        view.vital_choice.setCurrentIndex(index)
        points = [p for p in series["points"] if p[metric] is not None]
        x, y = view.chart.current.getData()
        assert list(y) == [p[metric] for p in points]
        assert list(x) == [bucket_x(p["bucket"]) for p in points]


def test_errors_equal_the_api(qtbot, insights_api, report_page: DashboardPage) -> None:
    view = show(qtbot, report_page, "errors")
    groups = api(insights_api, "errors", limit=100)
    assert len(groups["rows"]) == 2
    assert column(view.table, 0) == [r["message"] for r in groups["rows"]]
    assert column(view.table, 1) == [f"{r['source'] or '(inline)'}:{r['line']}" for r in groups["rows"]]
    assert column(view.table, 2) == [count(r["count"]) for r in groups["rows"]]
    assert column(view.table, 6) == [view.local(r["first_seen"]) for r in groups["rows"]]
    series = api(insights_api, "errors/timeseries")
    assert list(view.chart.current.getData()[1]) == [p["errors"] for p in series["points"]]
    assert sum(p["errors"] for p in series["points"]) == sum(r["count"] for r in groups["rows"])


def test_revenue_one_currency_at_a_time(qtbot, insights_api, report_page: DashboardPage) -> None:
    view = show(qtbot, report_page, "revenue")
    # two currencies and no reporting currency: the API's reason, and the chooser offers both
    assert "currencies (EUR, USD)" in view.message.text()
    assert [view.currency.itemData(i) for i in range(view.currency.count())] == [None, "EUR", "USD"]
    view.currency.setCurrentIndex(1)
    idle(qtbot, report_page)
    answer = api(insights_api, "revenue/source", currency="EUR", limit=100)
    assert answer["currency"] == "EUR" and [o["currency"] for o in answer["other_currencies"]] == ["USD"]
    assert view.message.text() == ""
    totals = answer["totals"]
    assert view.totals.text().startswith(
        f"EUR {amount(totals['revenue'])} revenue · {totals['orders']:,} orders"
    )
    assert view.others.text().startswith("Also (never added): USD ")
    assert column(view.table, 1) == [amount(r["revenue"]) for r in answer["rows"]]
    assert list(view.chart.values) == [float(Decimal(r["revenue"])) for r in answer["rows"]]
    view.dimension.setCurrentIndex(3)  # pages
    idle(qtbot, report_page)
    pages = api(insights_api, "revenue/page", currency="EUR", limit=100)
    assert column(view.table, 0) == [r["value"] for r in pages["rows"]]
    assert column(view.table, 2) == [count(r["orders"]) for r in pages["rows"]]


def test_an_empty_site(qtbot, insights_api, report_page: DashboardPage) -> None:
    sites = [report_page.site_combo.itemData(i) for i in range(report_page.site_combo.count())]
    report_page.site_combo.setCurrentIndex(sites.index(insights_api.sites[EMPTY]))
    idle(qtbot, report_page)
    texts = {}
    for key in TABS:
        view = show(qtbot, report_page, key)
        texts[key] = view.message.text() if key != "revenue" else view.totals.text()
    assert texts == {
        "engagement": "No pageviews in this period.",
        "content": "",
        "performance": "No web vitals in this period.",
        "errors": "No errors in this period.",
        "revenue": "No revenue in this period.",
    }
    assert (
        report_page.reports.view("content").notes["outbound"].text() == "No outbound clicks in this period."
    )


def test_every_tab_offline_from_the_cache(qtbot, insights_api, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite3"
    online = open_page(qtbot, insights_api, cache)
    online.load_sites()
    idle(qtbot, online)
    shown = {}
    for key in TABS:
        view = show(qtbot, online, key)
        if key == "revenue":
            view.currency.setCurrentIndex(1)
            idle(qtbot, online)
        shown[key] = view.grab().toImage()
        save_screenshot(view, f"report-{key}")
        with dark():
            qtbot.wait(50)
            save_screenshot(view, f"report-{key}-dark")
    tables = {
        "engagement": column(online.reports.view("engagement").table, 0),
        "errors": column(online.reports.view("errors").table, 0),
        "performance": online.reports.view("performance").tiles["lcp"].value.text(),
    }
    close_page(online)
    insights_api.server.stop()
    try:
        offline = open_page(qtbot, insights_api, cache, timeout=3)
        offline.load_sites()
        idle(qtbot, offline)
        for key in TABS:
            show(qtbot, offline, key)
        assert column(offline.reports.view("engagement").table, 0) == tables["engagement"]
        assert column(offline.reports.view("errors").table, 0) == tables["errors"]
        assert offline.reports.view("performance").tiles["lcp"].value.text() == tables["performance"]
        assert (
            offline.reports.view("revenue").table.rowCount() == 0
        )  # EUR was asked online; the default was not
        assert not offline.parts["engagement"].live and not offline.parts["errors/timeseries"].live
        assert offline.status.text().startswith("Offline — as of ")
        close_page(offline)
    finally:
        insights_api.server.start()


def test_filters_and_period_apply_to_the_report_tabs(qtbot, insights_api, report_page: DashboardPage) -> None:
    show(qtbot, report_page, "engagement")
    report_page.add_filter("page", "/checkout")
    idle(qtbot, report_page)
    filters = '[["page","is","/checkout"]]'
    engagement = api(insights_api, "engagement", limit=100, filters=filters)["rows"]
    assert [r["page"] for r in engagement] == ["/checkout"]
    assert report_page.reports.view("engagement").rows == engagement
    view = show(qtbot, report_page, "errors")  # another tab: loaded when shown, with the same filter
    assert view.rows == api(insights_api, "errors", limit=100, filters=filters)["rows"]
    report_page.remove_filter(0)
    report_page.range.set_period("7d")
    report_page.refresh()
    idle(qtbot, report_page)
    assert view.rows == api(insights_api, "errors", limit=100, period="7d")["rows"]
