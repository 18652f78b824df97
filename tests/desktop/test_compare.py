# ruff: noqa: F811  (page is a fixture imported from test_dashboard)
"""The overview's comparison selector against a real `pixel serve`: the previous period keeps the one overview
request as it was; the same period last year, a custom range and no comparison change the tiles, the chart's
dashed line (and its name) and, for a year or custom range, each breakdown's change column, all equal to the
API's compared reports."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate

from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.reports_compare import CompareSelector
from pixel.app.desktop.widgets import format_change, format_value
from tests.desktop.conftest import save_screenshot
from tests.desktop.test_dashboard import api_get, page, settle  # noqa: F401

METRICS = "visitors,pageviews,sessions,views_per_session,bounce_rate,visit_duration"


def test_selector_params(qtbot) -> None:
    selector = CompareSelector()
    qtbot.addWidget(selector)
    seen: list[dict[str, str]] = []
    selector.changed.connect(lambda: seen.append(selector.params()))
    assert selector.params() == {} and selector.label() == "previous period"
    selector.set_mode("year")
    selector.set_mode("none")
    selector.set_mode("custom", QDate(2026, 1, 5), QDate(2026, 2, 3))
    assert seen == [
        {"compare": "year"},
        {"compare": "false"},
        {"compare": "custom", "compare_from": "2026-01-05", "compare_to": "2026-02-03"},
    ]
    assert selector.label() == "2026-01-05 – 2026-02-03"
    assert selector.date_from.isVisibleTo(selector) and selector.compares_breakdowns
    selector.set_mode("previous")
    assert not selector.date_from.isVisibleTo(selector) and not selector.compares_breakdowns


def overview_keys(page: DashboardPage) -> list[dict]:
    keys = [json.loads(k) for (k,) in page.source.cache._db.execute("SELECT key FROM answers")]
    return [k[2] for k in keys if k[1].endswith("/reports/dashboard")]


def check(page: DashboardPage, live_api, shop: int, compare: dict[str, str], label: str) -> None:
    summary = api_get(live_api, shop, "summary", period="30d", **compare)
    for metric, tile in page.tiles.tiles.items():
        item = summary["metrics"][metric]
        assert tile.value.text() == format_value(metric, float(item["value"]))
        assert tile.change.text() == format_change(metric, item.get("change"))[0]
    series = api_get(live_api, shop, "timeseries", period="30d", metrics=METRICS, **compare)
    assert list(page.chart.current.getData()[1]) == [p["visitors"] for p in series["points"]]
    assert list(page.chart.previous.getData()[1]) == [p["visitors"] for p in series["compare"]["points"]]
    assert page.chart.previous_name == label
    assert (
        page.chart.hover_at(0).splitlines()[2] == f"{label}: {series['compare']['points'][0]['visitors']:g}"
    )


def test_year_custom_and_none(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    assert overview_keys(page) and all("compare" not in k for k in overview_keys(page))  # the default

    page.compare.set_mode("year")
    settle(qtbot, page)
    check(page, live_api, shop, {"compare": "year"}, "same period last year")
    box = page.boxes[0]
    compared = api_get(live_api, shop, f"breakdown/{box.dimension}", period="30d", limit=10, compare="year")
    assert box.table.horizontalHeaderItem(box.table.columnCount() - 1).text() == "vs same period last year"
    last = box.table.columnCount() - 1
    assert [box.table.item(r, last).text() for r in range(box.table.rowCount())] == [
        format_change("visitors", r["change"]["visitors"])[0] for r in compared["rows"]
    ]

    # custom: the 30 days before the period, as dates in the site's zone
    summary = api_get(live_api, shop, "summary", period="30d")
    zone = ZoneInfo(summary["timezone"])
    first: date = datetime.fromisoformat(summary["from"]).astimezone(zone).date()
    start, end = first - timedelta(days=30), first - timedelta(days=1)
    page.compare.set_mode(
        "custom", QDate(start.year, start.month, start.day), QDate(end.year, end.month, end.day)
    )
    settle(qtbot, page)
    custom = {"compare": "custom", "compare_from": start.isoformat(), "compare_to": end.isoformat()}
    check(page, live_api, shop, custom, f"{start.isoformat()} – {end.isoformat()}")
    assert sum(page.chart.previous.getData()[1]) > 0  # the demo traffic spans 40 days
    compared = api_get(live_api, shop, f"breakdown/{box.dimension}", period="30d", limit=10, **custom)
    last = box.table.columnCount() - 1
    assert [box.table.item(r, last).text() for r in range(box.table.rowCount())] == [
        format_change("visitors", r["change"]["visitors"])[0] for r in compared["rows"]
    ]
    assert {box.table.item(r, 0).text() for r in range(box.table.rowCount())} == {
        r["value"] or "(none)" for r in compared["rows"]
    }
    save_screenshot(page, "dashboard-compare-custom")

    page.compare.set_mode("none")
    settle(qtbot, page)
    assert all(t.change.text() == "—" for t in page.tiles.tiles.values())
    assert page.chart.y_previous is None and not page.chart.previous.isVisible()
    assert page.boxes[0].table.columnCount() == 3  # no change column
    assert any(
        k.get("compare") == "false" and k.get("previous_timeseries") == "false" for k in overview_keys(page)
    )
