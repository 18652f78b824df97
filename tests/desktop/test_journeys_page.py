"""The Journeys page driven by pytest-qt against a real `pixel serve` (the shared demo traffic): the Sankey's
drawn figures equal the API's answer, hover figures, click to re-centre and Back, "make a funnel from this
path" into the real funnel editor, offline from the cache, dark mode; screenshots light and dark."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette

from pixel.app.client import ApiClient, ReportCache, ReportSource
from pixel.app.client.api import report_params
from pixel.app.client.journeys import api_params, funnel_steps
from pixel.app.client.site_admin import SiteAdmin
from pixel.app.desktop.goals_page import GoalsPage
from pixel.app.desktop.journeys_page import JourneysPage
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import LiveApi
from tests.desktop.test_owner_pages import dark, idle, screenshots

SITE = "shop.example"


@pytest.fixture
def page(qtbot, live_api: LiveApi, tmp_path: Path) -> Iterator[tuple[JourneysPage, ReportSource, Runner]]:
    runner = Runner()
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    source = ReportSource(client, ReportCache(tmp_path / "cache.sqlite3"), "test")
    view = JourneysPage(runner)
    qtbot.addWidget(view)
    view.resize(1300, 900)
    view.show()
    view.set_source(source)
    idle(qtbot, runner)
    view.site_combo.setCurrentIndex(view.site_combo.findData(live_api.sites[SITE]))
    view.steps.setValue(3)
    idle(qtbot, runner)
    yield view, source, runner
    runner.shutdown()
    client.close()


def api_answer(live_api: LiveApi, params: dict[str, Any]) -> dict[str, Any]:
    with closing(live_api.http()) as http:
        r = http.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/journeys", params=report_params(api_params(params))
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


def drawn(view: JourneysPage) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    nodes = [(n.step, n.page, n.sessions, n.dropoff) for n in view.sankey.nodes]
    links = [(x.step, x.page, x.target, x.sessions) for x in view.sankey.links]
    return nodes, links


def expected(body: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    nodes = [(c["step"], n["page"], n["sessions"], n["dropoff"]) for c in body["columns"] for n in c["nodes"]]
    links = [(x["step"], x["source"], x["target"], x["sessions"]) for x in body["links"]]
    return nodes, links


def test_sankey_draws_the_apis_figures_and_hover_shows_them(qtbot, page, live_api: LiveApi) -> None:
    view, _source, _runner = page
    body = api_answer(live_api, view.params())
    assert body["sessions"] > 20 and len(body["links"]) >= 3
    assert drawn(view) == expected(body)
    assert view.table.rowCount() == len(body["paths"])
    assert view.table.item(0, 0).text() == " → ".join(body["paths"][0]["pages"])
    # every node has a visible bar at its place; hovering its centre names its figures
    node = max(view.sankey.nodes, key=lambda n: n.sessions)
    assert node.rect.height() >= 2
    qtbot.mouseMove(view.sankey, node.rect.center().toPoint())
    qtbot.waitUntil(lambda: view.sankey.hover_text != "", timeout=5000)
    assert f"step {node.step}: {node.sessions:,} sessions" in view.sankey.hover_text
    assert node.label in view.sankey.hover_text
    link = max(view.sankey.links, key=lambda x: x.sessions)
    assert view.sankey.describe(link).endswith(
        f"{link.sessions:,} sessions (step {link.step} to {link.step + 1})"
    )


def test_click_a_node_recentres_and_back_returns(qtbot, page, live_api: LiveApi) -> None:
    view, _source, runner = page
    node = next(n for n in view.sankey.nodes if n.step == 2 and n.page is not None)
    qtbot.mouseClick(view.sankey, Qt.MouseButton.LeftButton, pos=node.rect.center().toPoint())
    idle(qtbot, runner)
    assert view.start.text() == node.page
    assert view.data is not None and view.data["mode"] == "start" and view.data["start"] == node.page
    assert drawn(view) == expected(api_answer(live_api, view.params()))
    view.back_button.click()
    idle(qtbot, runner)
    assert view.start.text() == "" and view.data is not None and view.data["mode"] == "all"
    assert not view.back_button.isEnabled()


def test_make_a_funnel_from_a_path_opens_the_funnel_editor(qtbot, page, live_api: LiveApi) -> None:
    view, _source, runner = page
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    goals = GoalsPage(runner)
    qtbot.addWidget(goals)
    goals.set_admin(SiteAdmin(client))
    idle(qtbot, runner)
    view.open_funnel = goals.open_funnel
    assert view.data is not None
    row = next(i for i, p in enumerate(view.data["paths"]) if len(p["pages"]) >= 2)
    pages = view.data["paths"][row]["pages"]
    view.table.selectRow(row)
    assert view.funnel_button.isEnabled()
    view.funnel_button.click()
    qtbot.waitUntil(lambda: bool(goals.result), timeout=30_000)
    idle(qtbot, runner)
    assert goals.site_id() == live_api.sites[SITE]
    assert goals.steps == funnel_steps(pages)
    assert [goals.step_list.item(i).text() for i in range(goals.step_list.count())][0].startswith("1. ")
    assert len(goals.result) == len(pages) and goals.result[0]["visitors"] >= 1
    client.close()


def test_offline_draws_the_cached_journey(qtbot, page) -> None:
    view, source, runner = page
    before = drawn(view)
    source.client = None  # not connected: the cache answers
    view.refresh()
    idle(qtbot, runner)
    assert drawn(view) == before
    assert "offline" in view.status.text() and "as of" in view.status.text()
    view.steps.setValue(5)  # never asked while online: nothing cached
    idle(qtbot, runner)
    assert "nothing cached" in view.status.text()


def test_dark_mode_and_screenshots(qtbot, page) -> None:
    view, _source, _runner = page
    base, text, *_ = view.sankey.colours()
    assert base == view.sankey.palette().color(QPalette.ColorRole.Base)
    screenshots(qtbot, view, "journeys")
    with dark():
        qtbot.wait(50)
        base, text, bar, _band, drop = view.sankey.colours()
        assert base == QColor("#111827") and text == QColor("#e5e7eb")
        image = view.sankey.grab().toImage()
        assert QColor(image.pixel(QPoint(2, 2))) == QColor("#111827")
        node = view.sankey.nodes[0]
        centre = node.rect.center().toPoint()
        assert QColor(image.pixel(centre)) == bar
        assert drop == QColor("#f87171")


def test_main_window_journeys_tab_opens_the_funnel_editor(qtbot) -> None:
    from pixel.app.desktop.window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    texts = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert window.tabs.widget(texts.index("Journeys")) is window.journeys_page
    assert window.journeys_page.open_funnel == window.open_funnel
    steps = funnel_steps(["/", "/blog/*", "/signup"])
    window.open_funnel(1, steps)
    assert window.tabs.currentWidget() is window.goals_page
    assert window.goals_page.steps == steps
    assert [window.goals_page.step_list.item(i).text() for i in range(3)] == [
        "1. visits a page matching /",
        "2. visits a page matching /blog/*",
        "3. visits a page matching /signup",
    ]
    window.runner.shutdown()


def top_value(live_api: LiveApi, dimension: str) -> str:
    """The site's most common value of `dimension` over the page's period (a filter that keeps some sessions)."""
    with closing(live_api.http()) as http:
        r = http.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/breakdown/{dimension}",
            params={"period": "30d", "limit": 5},
        )
        assert r.status_code == 200, r.text
        rows = r.json()["rows"]
    assert rows, f"no {dimension} in the demo traffic"
    return str(rows[0]["value"])


def test_a_filter_changes_the_sankey_to_the_apis_filtered_answer(qtbot, page, live_api: LiveApi) -> None:
    view, _source, runner = page
    unfiltered = api_answer(live_api, view.params())
    assert drawn(view) == expected(unfiltered)
    browser = top_value(live_api, "browser")
    view.filter_row.dimension.setCurrentText("browser")
    view.filter_row.operator.setCurrentIndex(view.filter_row.operator.findData("is"))
    qtbot.keyClicks(view.filter_row.value, browser)
    qtbot.keyClick(view.filter_row.value, Qt.Key.Key_Return)
    idle(qtbot, runner)
    assert view.params()["filters"] == [["browser", "is", browser]]
    assert [c.text() for c in view.filter_row.bar.chips] == [f"browser is {browser}  ✕"]
    filtered = api_answer(live_api, {**view.params()})
    assert 0 < filtered["sessions"] < unfiltered["sessions"]
    assert view.data is not None and view.data["sessions"] == filtered["sessions"]
    assert drawn(view) == expected(filtered) != expected(unfiltered)
    assert f"browser is {browser}" in view.status.text()
    screenshots(qtbot, view, "journeys-filtered")
    view.filter_row.bar.chips[0].click()  # the chip's ✕: back to every session
    idle(qtbot, runner)
    assert "filters" not in view.params() and drawn(view) == expected(unfiltered)


def test_a_saved_segment_filters_the_journey_and_another_site_drops_it(
    qtbot, page, live_api: LiveApi
) -> None:
    view, _source, runner = page
    country = top_value(live_api, "country")
    name = f"journeys-{uuid.uuid4().hex[:8]}"
    with closing(live_api.http()) as http:
        r = http.post(
            f"/api/sites/{live_api.sites[SITE]}/segments",
            json={"name": name, "filters": [["country", "is", country]]},
        )
        assert r.status_code == 201, r.text
        segment = r.json()
    try:
        view.load_segments()
        idle(qtbot, runner)
        index = view.filter_row.segment.findData(segment["id"])
        assert index > 0 and view.filter_row.segment.itemText(index) == name
        view.filter_row.segment.setCurrentIndex(index)
        view.filter_row.segment.activated.emit(index)
        idle(qtbot, runner)
        assert view.params()["filters"] == [["country", "is", country]]
        assert drawn(view) == expected(api_answer(live_api, view.params()))
        # another site: the filters and segments of this one are not carried over
        view.site_combo.setCurrentIndex(view.site_combo.findData(live_api.sites["docs.example"]))
        idle(qtbot, runner)
        assert "filters" not in view.params() and view.filter_row.bar.chips == []
        assert view.filter_row.segment.findData(segment["id"]) == -1
    finally:
        with closing(live_api.http()) as http:
            assert http.delete(f"/api/segments/{segment['id']}").status_code == 204
