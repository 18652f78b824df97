# ruff: noqa: F811  (owner_api is a fixture imported from owner_server)
"""The saved-dashboards editor and the dashboard page's saved-dashboards view driven by clicks and keys
against a real `pixel serve`: each change read back through the API, a change made through the API shown
after F5, refusals in the API's words with nothing changed, a delete confirmation naming the dashboard;
charts following the palette (exact colours, light and dark); Ctrl+C copies a table's selection as TSV;
screenshots (light and dark) of the dashboard's saved view and of the editor for docs/screenshots/."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from pixel.app.client import ApiClient, ReportCache, ReportSource
from pixel.app.client.dashboards_admin import DashboardsAdmin, describe_widget, widget_body
from pixel.app.desktop.charts import (
    DARK_SERIES,
    LIGHT_SERIES,
    BarChart,
    Sparkline,
    TimeSeriesChart,
    contrast,
)
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.dashboard_editor import DashboardEditor
from pixel.app.desktop.widgets import format_value
from pixel.app.desktop.workers import Runner
from tests.desktop.owner_server import SHOP, owner_api, owner_client, ref  # noqa: F401 (fixtures)
from tests.desktop.test_owner_pages import dark, idle, screenshots


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """Collect the previous tests' Qt objects here, on the GUI thread: a collection that happens to run on a
    worker thread (where the Runner's tasks allocate) and frees a widget there crashes the process."""
    gc.collect()
    yield
    gc.collect()


@pytest.fixture
def admin(owner_client: ApiClient) -> DashboardsAdmin:
    return DashboardsAdmin(owner_client)


@pytest.fixture
def editor(qtbot, admin: DashboardsAdmin, ref: httpx.Client, owner_api) -> Iterator[DashboardEditor]:
    site_id = owner_api.sites[SHOP]
    for d in ref.get(f"/api/sites/{site_id}/dashboards").json()["items"]:  # each test starts with none
        assert ref.delete(f"/api/dashboards/{d['id']}").status_code == 204
    runner = Runner()
    page = DashboardEditor(runner)
    qtbot.addWidget(page)
    page.resize(1300, 900)
    page.show()
    page.set_admin(admin)
    idle(qtbot, runner)
    yield page
    runner.shutdown()


def api_dashboards(ref: httpx.Client, site_id: int) -> list[dict[str, Any]]:
    items = ref.get(f"/api/sites/{site_id}/dashboards").json()["items"]
    return [ref.get(f"/api/dashboards/{d['id']}").json() for d in items]


def rows(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [view.item(i).text() for i in range(view.count())]


def lightest(widget) -> float:  # type: ignore[no-untyped-def]
    """The lightness of the lightest pixel `widget` draws (its text on a dark theme)."""
    image = widget.grab().toImage()
    return max(
        image.pixelColor(x, y).lightnessF() for x in range(0, image.width(), 2) for y in range(image.height())
    )


def choose(combo, text: str) -> None:  # type: ignore[no-untyped-def]
    index = combo.findText(text)
    assert index >= 0, text
    combo.setCurrentIndex(index)


def test_editor_by_clicks_and_keys(qtbot, editor: DashboardEditor, ref: httpx.Client, owner_api) -> None:
    site_id = owner_api.sites[SHOP]
    page = editor
    assert page.site_combo.currentText() == SHOP
    assert rows(page.list) == []

    # create: type a name, Ctrl+N
    page.name.setFocus()
    qtbot.keyClicks(page.name, "Weekly")
    qtbot.keyClick(page.name, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    [stored] = api_dashboards(ref, site_id)
    assert (stored["name"], stored["widgets"]) == ("Weekly", [])
    assert rows(page.list) == ["Weekly (0 widgets)"]
    assert page.message.text() == "Created the dashboard Weekly."

    # add three widgets through the form (keyboard and clicks)
    qtbot.keyClicks(page.title, "Visitors")
    choose(page.report, "summary")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    page.title.clear()
    qtbot.keyClicks(page.title, "Sources")
    choose(page.report, "breakdown")
    assert [page.chart.itemText(i) for i in range(page.chart.count())] == ["bar", "table"]
    choose(page.chart, "table")
    page.dimension.setCurrentText("country")
    page.add_button.setFocus()
    qtbot.keyClick(page.add_button, Qt.Key.Key_Space)
    idle(qtbot, page.runner)
    page.title.clear()
    qtbot.keyClicks(page.title, "Pricing")
    choose(page.report, "funnel")
    page.steps.clear()
    qtbot.keyClicks(page.steps, "/, /pricing, event:signup")
    page.window_minutes.setValue(30)
    choose(page.period, "Last 7 days")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)

    [stored] = api_dashboards(ref, site_id)
    widgets = stored["widgets"]
    assert [(w["title"], w["report"], w["chart"]) for w in widgets] == [
        ("Visitors", "summary", "number"),
        ("Sources", "breakdown", "table"),
        ("Pricing", "funnel", "funnel"),
    ]
    assert widgets[0]["params"] == {"metric": "visitors"}
    assert widgets[1]["params"] == {"dimension": "country", "limit": 10}
    assert widgets[2]["params"] == {
        "steps": json.dumps(
            [
                {"kind": "page", "page_pattern": "/"},
                {"kind": "page", "page_pattern": "/pricing"},
                {"kind": "event", "event_name": "signup"},
            ],
            separators=(",", ":"),
        ),
        "window": 1800,
        "period": "7d",
    }
    assert rows(page.widget_list) == [describe_widget(w) for w in widgets]
    assert page.widget_list.currentRow() == 2  # the widget just added
    ids = [w["id"] for w in widgets]

    # reorder: Alt+Up in the list, then the Move down button
    page.widget_list.setFocus()
    qtbot.keyClick(page.widget_list, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    idle(qtbot, page.runner)
    assert [w["id"] for w in api_dashboards(ref, site_id)[0]["widgets"]] == [ids[0], ids[2], ids[1]]
    assert page.widget_list.currentRow() == 1  # the moved widget stays selected
    qtbot.keyClick(page.widget_list, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    idle(qtbot, page.runner)
    assert [w["id"] for w in api_dashboards(ref, site_id)[0]["widgets"]] == [ids[2], ids[0], ids[1]]
    qtbot.mouseClick(page.down_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    order = [w["id"] for w in api_dashboards(ref, site_id)[0]["widgets"]]
    assert order == [ids[0], ids[2], ids[1]]
    assert [w["position"]["y"] for w in api_dashboards(ref, site_id)[0]["widgets"]] == [0, 1, 2]
    # Alt+Down at the bottom writes nothing
    page.widget_list.setCurrentRow(2)
    before = api_dashboards(ref, site_id)[0]["updated_at"]
    qtbot.keyClick(page.widget_list, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    idle(qtbot, page.runner)
    assert api_dashboards(ref, site_id)[0]["updated_at"] == before

    # remove with the Delete key (the selected widget: Sources)
    qtbot.keyClick(page.widget_list, Qt.Key.Key_Delete)
    idle(qtbot, page.runner)
    assert [w["id"] for w in api_dashboards(ref, site_id)[0]["widgets"]] == [ids[0], ids[2]]
    assert page.message.text() == f"Removed {describe_widget(widgets[1])}."
    assert rows(page.list) == ["Weekly (2 widgets)"]

    # rename by the button
    page.name.clear()
    qtbot.keyClicks(page.name, "Monday review")
    qtbot.mouseClick(page.rename_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    assert api_dashboards(ref, site_id)[0]["name"] == "Monday review"
    assert rows(page.list) == ["Monday review (2 widgets)"]

    # delete: the confirmation names it; "no" keeps it, "yes" (Delete key in the list) removes it
    asked: list[str] = []
    page.confirm = lambda text: asked.append(text) or False
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    assert asked == [
        "Delete the saved dashboard Monday review?\n\nIts 2 widgets go with it. The data they show stay."
    ]
    assert len(api_dashboards(ref, site_id)) == 1
    page.confirm = lambda text: asked.append(text) or True
    page.list.setFocus()
    qtbot.keyClick(page.list, Qt.Key.Key_Delete)
    idle(qtbot, page.runner)
    assert api_dashboards(ref, site_id) == []
    assert rows(page.list) == [] and rows(page.widget_list) == []
    assert page.message.text() == "Deleted the dashboard Monday review."


def test_refusals_in_the_apis_words_change_nothing(
    qtbot, editor: DashboardEditor, ref: httpx.Client, owner_api
) -> None:
    site_id = owner_api.sites[SHOP]
    created = ref.post(f"/api/sites/{site_id}/dashboards", json={"name": "Kept", "widgets": []}).json()
    qtbot.keyClick(editor, Qt.Key.Key_F5)
    idle(qtbot, editor.runner)
    assert rows(editor.list) == ["Kept (0 widgets)"]
    before = api_dashboards(ref, site_id)

    long_name = "n" * 201
    editor.name.setText(long_name)
    qtbot.mouseClick(editor.rename_button, Qt.MouseButton.LeftButton)
    idle(qtbot, editor.runner)
    api = ref.put(f"/api/dashboards/{created['id']}", json={"name": long_name, "widgets": []})
    assert api.status_code == 422
    assert editor.message.text() == api.json()["detail"]
    assert api_dashboards(ref, site_id) == before

    editor.title.setText("t" * 201)
    choose(editor.report, "goals")
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    idle(qtbot, editor.runner)
    body = {**widget_body("goals", title="t" * 201), "position": {"x": 0, "y": 0, "w": 2, "h": 1}}
    api = ref.put(f"/api/dashboards/{created['id']}", json={"name": "Kept", "widgets": [body]})
    assert api.status_code == 422
    assert editor.message.text() == api.json()["detail"]
    assert api_dashboards(ref, site_id) == before

    editor.name.setText("   ")
    qtbot.mouseClick(editor.create_button, Qt.MouseButton.LeftButton)
    idle(qtbot, editor.runner)
    assert editor.message.text() == "a dashboard needs a name"
    assert api_dashboards(ref, site_id) == before

    # a dashboard deleted elsewhere: the API's not-found text, then F5 shows the list as stored
    assert ref.delete(f"/api/dashboards/{created['id']}").status_code == 204
    editor.name.setText("Renamed")
    qtbot.mouseClick(editor.rename_button, Qt.MouseButton.LeftButton)
    idle(qtbot, editor.runner)
    assert editor.message.text() == ref.get(f"/api/dashboards/{created['id']}").json()["detail"]
    qtbot.keyClick(editor.list, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, editor.runner)
    assert rows(editor.list) == []


@pytest.fixture
def dashboard_page(qtbot, owner_api, tmp_path: Path) -> Iterator[DashboardPage]:
    runner = Runner()
    client = ApiClient(owner_api.url, owner_api.username, owner_api.password)
    source = ReportSource(client, ReportCache(tmp_path / "cache.sqlite3"), "test")
    page = DashboardPage(runner, source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1300, 1000)
    page.show()
    page.load_sites()
    idle(qtbot, runner)
    yield page
    runner.shutdown()
    client.close()


def test_dashboard_shows_api_changes_after_f5_and_copies_tables(
    qtbot, dashboard_page: DashboardPage, ref: httpx.Client, owner_api
) -> None:
    site_id = owner_api.sites[SHOP]
    for d in ref.get(f"/api/sites/{site_id}/dashboards").json()["items"]:
        ref.delete(f"/api/dashboards/{d['id']}")
    page = dashboard_page
    page.tabs.setCurrentWidget(page.saved)
    qtbot.keyClick(page, Qt.Key.Key_F5)
    idle(qtbot, page.runner)
    assert page.saved.message.text() == "No saved dashboards for this site."

    widgets = [
        {**widget_body("summary", title="Visitors"), "position": {"x": 0, "y": 0, "w": 2, "h": 1}},
        {
            **widget_body("breakdown", "table", title="Pages", dimension="page"),
            "position": {"x": 0, "y": 1, "w": 2, "h": 1},
        },
    ]
    created = ref.post(f"/api/sites/{site_id}/dashboards", json={"name": "Team", "widgets": widgets}).json()
    qtbot.keyClick(page, Qt.Key.Key_F5)
    idle(qtbot, page.runner)
    assert page.saved.combo.currentText() == "Team"
    assert [c.widget["title"] for c in page.saved.cards] == ["Visitors", "Pages"]
    summary = ref.get(f"/api/sites/{site_id}/reports/summary", params={"period": "30d"}).json()
    number = page.saved.cards[0].body
    value = float(summary["metrics"]["visitors"]["value"])
    assert isinstance(number, QLabel) and number.text() == format_value("visitors", value)

    # a rename and a reorder through the API (same ids): shown after Ctrl+R
    renamed = {"name": "Team weekly", "widgets": [created["widgets"][1], created["widgets"][0]]}
    assert ref.put(f"/api/dashboards/{created['id']}", json=renamed).status_code == 200
    qtbot.keyClick(page, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    assert page.saved.combo.currentText() == "Team weekly"
    assert [c.widget["title"] for c in page.saved.cards] == ["Pages", "Visitors"]

    # Ctrl+C in the widget's table copies the selection as TSV (the API's rows)
    table = page.saved.cards[0].body
    assert isinstance(table, CopyTable)
    pages = ref.get(f"/api/sites/{site_id}/reports/breakdown/page", params={"period": "30d"}).json()["rows"]
    assert table.rowCount() == len(pages) >= 2
    table.setFocus()
    table.selectAll()
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    expected = "\n".join(f"{r['value']}\t{r['visitors']:,}" for r in pages)
    assert QGuiApplication.clipboard().text().rstrip("\n") == expected

    # the summary tiles answer the keyboard: Tab to a tile, Enter picks its metric
    page.tabs.setCurrentIndex(0)
    tile = page.tiles.tiles["pageviews"]
    tile.setFocus()
    qtbot.keyClick(tile, Qt.Key.Key_Return)
    assert page.metric_name == "pageviews"
    assert page.chart.current.opts["name"] == "pageviews"
    ref.delete(f"/api/dashboards/{created['id']}")


def test_charts_follow_the_palette_light_and_dark(qtbot) -> None:
    charts = [TimeSeriesChart(), BarChart(), Sparkline()]
    for chart in charts:
        qtbot.addWidget(chart)
        chart.show()
    charts[0].set_series(["2026-03-01", "2026-03-02"], [3, 5], "visitors", [1, 2])
    charts[1].set_bars(["/", "/pricing"], [6, 4])

    def check(base: QColor, text: QColor, series: tuple[str, ...]) -> None:
        for chart in charts:
            assert chart.backgroundBrush().color() == base
            axis = chart.getPlotItem().getAxis("left")
            assert axis.textPen().color() == text and axis.pen().color() == text
        ts = charts[0]
        assert ts.current.opts["pen"].color() == QColor(series[0])
        assert ts.previous.opts["pen"].color() == QColor(series[1])
        assert ts.hover_text.color == text
        assert charts[1].bars is not None and pg.mkBrush(charts[1].bars.opts["brush"]).color() == QColor(
            series[2]
        )
        assert charts[2].curve.opts["pen"].color() == QColor(series[3])
        for colour in series:
            assert contrast(QColor(colour), base) >= 3.0, colour
        assert contrast(text, base) >= 4.5
        legend = ts.getPlotItem().legend
        assert legend is not None and legend.opts["labelTextColor"] == text
        assert [pg.mkColor(label.opts["color"]) for _s, label in legend.items] == [text, text]

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    light = app.palette()
    check(light.color(QPalette.ColorRole.Base), light.color(QPalette.ColorRole.Text), LIGHT_SERIES)
    with dark():
        qtbot.wait(20)
        check(QColor("#111827"), QColor("#e5e7eb"), DARK_SERIES)
    qtbot.wait(20)
    check(light.color(QPalette.ColorRole.Base), light.color(QPalette.ColorRole.Text), LIGHT_SERIES)


def test_screenshots_light_and_dark(
    qtbot, admin: DashboardsAdmin, ref: httpx.Client, owner_api, tmp_path
) -> None:
    site_id = owner_api.sites[SHOP]
    for d in ref.get(f"/api/sites/{site_id}/dashboards").json()["items"]:
        ref.delete(f"/api/dashboards/{d['id']}")
    created = admin.create(site_id, "Weekly review")
    steps = [{"kind": "page", "page_pattern": "/"}, {"kind": "page", "page_pattern": "/pricing"}]
    for body in (
        widget_body("summary", title="Unique visitors"),
        widget_body("timeseries", title="Visitors per day"),
        widget_body("breakdown", title="Top pages", dimension="page"),
        widget_body("funnel", title="Home to pricing", steps=steps),
    ):
        admin.add_widget(created["id"], body)

    runner = Runner()
    client = ApiClient(owner_api.url, owner_api.username, owner_api.password)
    source = ReportSource(client, ReportCache(tmp_path / "cache.sqlite3"), "test")
    page = DashboardPage(runner, source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1300, 1100)
    page.show()
    page.load_sites()
    page.tabs.setCurrentWidget(page.saved)
    idle(qtbot, runner)
    assert [c.widget["title"] for c in page.saved.cards] == [
        "Unique visitors",
        "Visitors per day",
        "Top pages",
        "Home to pricing",
    ]
    screenshots(qtbot, page, "saved-dashboard")
    with dark():  # the widgets' titles and numbers follow a palette changed while the app runs
        qtbot.wait(20)
        for card in page.saved.cards:
            title = card.findChildren(QLabel)[0]
            assert title.text() == card.widget["title"]
            assert title.palette().color(QPalette.ColorRole.WindowText) == QColor("#e5e7eb")
            assert lightest(title) > 0.8  # drawn in the light text colour (a style sheet froze it black)
        page.tabs.setCurrentIndex(0)
        qtbot.wait(20)
        assert lightest(page.tiles.tiles["visitors"].value) > 0.8
    page.tabs.setCurrentWidget(page.saved)
    page.tabs.setCurrentIndex(0)
    idle(qtbot, runner)
    screenshots(qtbot, page, "dashboard-overview-theme")

    editor = DashboardEditor(runner, admin)
    qtbot.addWidget(editor)
    editor.resize(1300, 800)
    editor.show()
    editor.refresh()
    idle(qtbot, runner)
    assert rows(editor.list) == ["Weekly review (4 widgets)"]
    screenshots(qtbot, editor, "dashboard-editor")
    runner.shutdown()
    client.close()
    admin.delete(created["id"])
