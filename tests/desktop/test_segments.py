# ruff: noqa: F811  (page is a fixture imported from test_dashboard)
"""Saved segments in the desktop against a real `pixel serve`: the current filters saved as a segment (read back
through the API), a segment picked from the bar applies its filters, two segments compared side by side (each
figure and each point equal to the API's), screenshots (light and dark)."""

from __future__ import annotations

from contextlib import closing

from PySide6.QtCore import Qt

from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.segments_bar import COMPARED, EVERYONE
from pixel.app.desktop.widgets import format_value
from tests.desktop.conftest import save_screenshot
from tests.desktop.test_dashboard import api_get, page, settle  # noqa: F401
from tests.desktop.test_owner_pages import dark


def test_save_pick_and_compare_segments(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    bar = page.explore.bar
    countries = api_get(live_api, shop, "breakdown/country", period="30d", limit=5)["rows"]
    country = next(r["value"] for r in countries if r["value"])
    devices = api_get(live_api, shop, "breakdown/device", period="30d", limit=5)["rows"]
    device = next(r["value"] for r in devices if r["value"])

    # save the current filters as a segment: it is stored through the API and picked in the bar
    page.add_filter("country", country)
    settle(qtbot, page)
    bar.ask_name = lambda: f"From {country}"
    qtbot.mouseClick(bar.save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.pick.currentText() == f"From {country}", timeout=30_000)
    with closing(live_api.http()) as client:
        stored = client.get(f"/api/sites/{shop}/segments").json()["items"]
    first = next(s for s in stored if s["name"] == f"From {country}")
    assert (first["filters"], first["shared"], first["owner"]) == (
        [["country", "is", country]],
        False,
        "owner",
    )
    page.add_filter("device", device)
    settle(qtbot, page)
    bar.ask_name = lambda: "Country and device"
    bar.shared.setChecked(True)  # the owner is an admin: it may share
    qtbot.mouseClick(bar.save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.pick.currentText() == "Country and device (shared)", timeout=30_000)
    second = next(s for s in bar.segments if s["name"] == "Country and device")
    assert second["filters"] == [["country", "is", country], ["device", "is", device]]

    # picking a segment replaces the filters with its own; "everyone" clears them
    bar.select(None)
    settle(qtbot, page)
    assert page.filters == []
    bar.select(first["id"])
    settle(qtbot, page)
    assert page.filters == [["country", "is", country]]
    summary = api_get(live_api, shop, "summary", period="30d", filters=f'[["country","is","{country}"]]')
    assert page.tiles.tiles["visitors"].value.text() == format_value(
        "visitors", float(summary["metrics"]["visitors"]["value"])
    )

    # compare the first segment with everyone: both summaries and both series are the API's
    bar.other.setCurrentIndex(bar.other.findData(None))
    qtbot.mouseClick(bar.compare, Qt.MouseButton.LeftButton)
    view = page.explore.compare_view
    assert page.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: page.runner.busy == 0 and "compare" in page.parts, timeout=60_000)
    assert view.title.text() == f"From {country}  vs  {EVERYONE}"
    everyone = api_get(live_api, shop, "summary", period="30d")
    for col, answer in enumerate((summary, everyone)):
        for metric in COMPARED:
            assert view.cells[(metric, col)].text() == format_value(
                metric, float(answer["metrics"][metric]["value"])
            ), (metric, col)
    series = [
        api_get(live_api, shop, "timeseries", period="30d", metrics="visitors", filters=f)["points"]
        for f in (f'[["country","is","{country}"]]', "[]")
    ]
    assert list(view.chart.y) == [p["visitors"] for p in series[0]]
    assert view.chart.y_previous is not None and list(view.chart.y_previous) == [
        p["visitors"] for p in series[1]
    ]
    busiest = max(range(len(series[0])), key=lambda i: series[0][i]["visitors"])
    assert view.chart.hover_at(busiest).splitlines()[1:3] == [  # then the annotations of that day, if any
        f"From {country}: {series[0][busiest]['visitors']:g}",
        f"{EVERYONE}: {series[1][busiest]['visitors']:g}",
    ]
    save_screenshot(page, "segments-compare")
    with dark():
        qtbot.wait(50)
        save_screenshot(page, "segments-compare-dark")


def test_rename_share_and_delete_a_segment(qtbot, live_api, page: DashboardPage) -> None:
    """The bar's "Manage" menu renames, shares and unshares, and deletes the segment picked, each read back through
    the API; with no segment picked (everyone) there is nothing to manage."""
    shop = live_api.sites["shop.example"]
    with closing(live_api.http()) as client:
        body = {"name": "Mobile readers", "filters": [["device", "is", "Mobile"]], "shared": False}
        r = client.post(f"/api/sites/{shop}/segments", json=body)
        assert r.status_code == 201, r.text
        made = r.json()

    def stored() -> dict | None:
        with closing(live_api.http()) as client:
            r = client.get(f"/api/segments/{made['id']}")
            return r.json() if r.status_code == 200 else None

    page.refresh()
    settle(qtbot, page)
    bar = page.explore.bar
    bar.select(None)
    settle(qtbot, page)
    assert not bar.manage.isEnabled()
    bar.select(made["id"])
    settle(qtbot, page)
    assert bar.manage.isEnabled() and bar.share_action.text() == "Share with the site's users"

    bar.ask_rename = lambda segment: "  Phone readers "
    bar.rename_action.trigger()
    qtbot.waitUntil(lambda: bar.pick.currentText() == "Phone readers", timeout=30_000)
    now = stored()
    assert now is not None
    assert (now["name"], now["filters"], now["shared"]) == (
        "Phone readers",
        [["device", "is", "Mobile"]],
        False,
    )

    bar.share_action.trigger()
    qtbot.waitUntil(lambda: bar.pick.currentText() == "Phone readers (shared)", timeout=30_000)
    assert (stored() or {}).get("shared") is True
    assert bar.share_action.text() == "Make personal (unshare)"
    bar.share_action.trigger()
    qtbot.waitUntil(lambda: bar.pick.currentText() == "Phone readers", timeout=30_000)
    assert (stored() or {}).get("shared") is False

    asked: list[str] = []
    bar.confirm_delete = lambda segment: asked.append(segment["name"]) or False
    bar.delete_action.trigger()  # declined: kept
    settle(qtbot, page)
    assert asked == ["Phone readers"] and stored() is not None
    bar.confirm_delete = lambda segment: True
    bar.delete_action.trigger()
    qtbot.waitUntil(lambda: bar.segment(made["id"]) is None, timeout=30_000)
    assert stored() is None
    assert bar.pick.currentText() == EVERYONE and not bar.manage.isEnabled()
