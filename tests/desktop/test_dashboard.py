"""The dashboard page against a real `pixel serve` with generated traffic: what is plotted equals the
API's numbers; filters, metric, range and site switching; screenshots for docs/screenshots/."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from pixel.app.client import ApiClient, ReportCache, ReportSource
from pixel.app.desktop.charts import bucket_x
from pixel.app.desktop.dashboard import DashboardPage, previous_params
from pixel.app.desktop.widgets import format_change, format_value
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import save_screenshot


@pytest.fixture
def page(qtbot, live_api, tmp_path: Path):
    runner = Runner()
    source = ReportSource(
        ApiClient(live_api.url, live_api.username, live_api.password),
        ReportCache(tmp_path / "cache.sqlite3"),
        "test",
    )
    page = DashboardPage(runner, source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1400, 1100)
    page.show()
    page.load_sites()
    settle(qtbot, page)
    yield page
    runner.shutdown()
    source.client.close()


def settle(qtbot, page: DashboardPage) -> None:
    """Wait until every worker finished and the page says it is live."""
    qtbot.waitUntil(lambda: page.runner.busy == 0 and page.status.text().startswith("Live"), timeout=60_000)


def api_get(live_api, site: int, report: str, **params):
    with closing(live_api.http()) as client:
        r = client.get(f"/api/sites/{site}/reports/{report}", params=params)
        assert r.status_code == 200, r.text
        return r.json()


def test_plotted_values_equal_the_api(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    assert [page.site_combo.itemText(i) for i in range(3)] == ["shop.example", "blog.example", "docs.example"]
    assert page.site["id"] == shop

    summary = api_get(live_api, shop, "summary", period="30d")
    for metric, tile in page.tiles.tiles.items():
        item = summary["metrics"][metric]
        assert tile.value.text() == format_value(metric, float(item["value"]))
        assert tile.change.text() == format_change(metric, item["change"])[0]
    assert summary["metrics"]["visitors"]["value"] > 50

    series = api_get(
        live_api,
        shop,
        "timeseries",
        period="30d",
        metrics="visitors,pageviews,sessions,views_per_session,bounce_rate,visit_duration",
    )
    x, y = page.chart.current.getData()
    assert list(y) == [p["visitors"] for p in series["points"]]
    assert list(x) == [bucket_x(p["bucket"]) for p in series["points"]]
    before = previous_params(series)
    previous = api_get(live_api, shop, "timeseries", **before, interval="day", metrics="visitors,pageviews")
    assert len(previous["points"]) == 30
    _, y_prev = page.chart.previous.getData()
    assert list(y_prev) == [p["visitors"] for p in previous["points"]]
    assert sum(y_prev) > 0  # traffic spans 40 days: the previous period has some

    # the hover crosshair shows the bucket's values
    i = int(np.argmax(y))
    # (the day's annotations follow these lines when the shared test server has some for that day)
    assert page.chart.hover_at(i).split("\n")[:3] == [
        series["points"][i]["bucket"],
        f"visitors: {y[i]:g}",
        f"previous period: {y_prev[i]:g}",
    ]

    # pageviews tile -> the chart shows pageviews
    page.tiles.tiles["pageviews"].clicked.emit("pageviews")
    assert list(page.chart.current.getData()[1]) == [p["pageviews"] for p in series["points"]]

    # breakdowns: bars and table rows are the API's rows
    pages = api_get(live_api, shop, "breakdown/page", period="30d", limit=10)
    box = page.boxes[1]
    assert box.dimension == "page"
    assert [box.table.item(r, 0).text() for r in range(box.table.rowCount())] == [
        r["value"] for r in pages["rows"]
    ]
    assert [box.table.item(r, 1).text() for r in range(box.table.rowCount())] == [
        f"{r['visitors']:,}" for r in pages["rows"]
    ]
    assert list(box.chart.values) == [r["visitors"] for r in pages["rows"]]
    countries = api_get(live_api, shop, "breakdown/country", period="30d", limit=10)
    assert list(page.boxes[2].chart.values) == [r["visitors"] for r in countries["rows"]]

    # The realtime counter is the API's answer when it loaded. The server counts the last 30 minutes of its
    # wall clock, so a demo visitor can leave that window between two reads (no events arrive any more: the
    # count only falls); the counter is loaded again between two reads of the API and lies between them.
    before = api_get(live_api, shop, "realtime")["visitors"]
    page._load_realtime()
    qtbot.waitUntil(lambda: page.runner.busy == 0, timeout=60_000)
    after = api_get(live_api, shop, "realtime")["visitors"]
    assert before >= page.realtime.visitors >= after

    # tiles, chart and boxes came in one request to the dashboard endpoint (one cached answer)
    assert page.parts["summary"] is page.parts["overview"] is page.parts["breakdown:page"]
    paths = [json.loads(key)[1] for (key,) in page.source.cache._db.execute("SELECT key FROM answers")]
    assert f"/api/sites/{shop}/reports/dashboard" in paths
    assert not any(
        p.endswith(("/reports/summary", "/reports/timeseries", "/reports/breakdown/page")) for p in paths
    )
    save_screenshot(page, "dashboard")


def test_click_a_row_to_filter_and_remove_it(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    devices = page.boxes[3]
    assert devices.dimension == "device"
    top = devices.rows[0]["value"]
    devices.table.cellClicked.emit(0, 0)
    assert page.filters == [["device", "is", top]]
    assert page.filter_bar.chips[0].text() == f"device is {top}  ✕"
    settle(qtbot, page)
    filtered = api_get(live_api, shop, "summary", period="30d", filters=f'[["device","is","{top}"]]')
    assert page.tiles.tiles["visitors"].value.text() == format_value(
        "visitors", filtered["metrics"]["visitors"]["value"]
    )
    assert [r["value"] for r in devices.rows] == [top]
    save_screenshot(page, "dashboard-filtered")

    page.boxes[0].chart.clicked.emit(page.boxes[0].rows[0]["value"])  # a bar click adds a second filter
    assert len(page.filters) == 2
    settle(qtbot, page)
    page.filter_bar.chips[0].click()  # remove the device filter
    assert page.filters == [["source", "is", page.filters[0][2]]]
    page.filter_bar.chips[0].click()
    assert page.filters == []
    settle(qtbot, page)
    unfiltered = api_get(live_api, shop, "summary", period="30d")
    assert page.tiles.tiles["visitors"].value.text() == format_value(
        "visitors", unfiltered["metrics"]["visitors"]["value"]
    )


def test_site_switch_and_hourly_axis_in_the_site_zone(qtbot, live_api, page: DashboardPage) -> None:
    blog = live_api.sites["blog.example"]
    page.site_combo.setCurrentIndex(1)
    settle(qtbot, page)
    assert page.site["domain"] == "blog.example"
    assert page.zone_note.text() == "Times in the site's time zone, Asia/Tokyo"
    page.range.set_period("7d")
    page.range.changed.emit()
    settle(qtbot, page)
    series = api_get(live_api, blog, "timeseries", period="7d", metrics="visitors")
    assert list(page.chart.current.getData()[1]) == [p["visitors"] for p in series["points"]]
    assert page.chart.axis_text(6) == series["points"][6]["bucket"][8:10]  # day of month in Tokyo

    page.range.set_period("yesterday")
    page.range.changed.emit()
    settle(qtbot, page)
    hourly = api_get(live_api, blog, "timeseries", period="yesterday", metrics="visitors")
    assert hourly["interval"] == "hour" and len(hourly["points"]) == 24
    assert list(page.chart.current.getData()[1]) == [p["visitors"] for p in hourly["points"]]
    # the first bucket is local midnight in Tokyo, and the axis prints it as 00:00
    assert hourly["points"][0]["bucket"].endswith(" 00:00:00")
    assert page.chart.axis_text(0) == "00:00"
    assert page.chart.axis_text(13) == "13:00"

    page.range.set_period("custom")
    page.range.date_from.setDate(page.range.date_from.date().addDays(-20))
    settle(qtbot, page)
    params = page.range.params()
    custom = api_get(live_api, blog, "summary", **params)
    assert page.tiles.tiles["pageviews"].value.text() == format_value(
        "pageviews", custom["metrics"]["pageviews"]["value"]
    )
