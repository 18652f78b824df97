# ruff: noqa: F811  (page is a fixture imported from test_dashboard)
"""The retention tab: the weekly cohorts of a real `pixel serve` as a heatmap whose cells are exactly the
API's shares, coloured by share (light and dark, recoloured when the palette changes), with counts in the
tooltips; an empty period says so; screenshots (light and dark)."""

from __future__ import annotations

from PySide6.QtGui import QColor

from pixel.app.desktop.charts import contrast
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.retention_view import DARK_ACCENT, LIGHT_ACCENT, RetentionView, heat
from pixel.app.desktop.worldmap import mix
from tests.desktop.conftest import save_screenshot
from tests.desktop.test_dashboard import api_get, page, settle  # noqa: F401
from tests.desktop.test_owner_pages import dark


def test_heat_scale() -> None:
    white, black = QColor("#ffffff"), QColor("#111827")
    assert heat(white, 0).name() == "#ffffff"
    assert heat(white, 100).name() == LIGHT_ACCENT.name()
    assert heat(white, 50).name() == mix(white, LIGHT_ACCENT, 0.5).name()
    assert heat(white, 250).name() == LIGHT_ACCENT.name()  # clamped
    assert heat(black, 100).name() == DARK_ACCENT.name()


def test_cells_equal_the_api_and_follow_the_palette(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    page.tabs.setCurrentWidget(page.retention)
    qtbot.waitUntil(lambda: page.runner.busy == 0 and "retention" in page.parts, timeout=60_000)
    answer = api_get(live_api, shop, "retention", period="30d")
    view = page.retention
    assert view.cells == [c["percent"] for c in answer["cohorts"]]
    assert len(view.cells) >= 4 and all(row[0] == 100.0 for row in view.cells)
    table = view.table
    assert table.rowCount() == len(answer["cohorts"])
    assert [table.horizontalHeaderItem(c).text() for c in range(4)] == [
        "Cohort",
        "Visitors",
        "Week 0",
        "Week 1",
    ]
    for r, cohort in enumerate(answer["cohorts"]):
        assert table.item(r, 0).text() == cohort["cohort"]
        assert table.item(r, 1).text() == f"{cohort['visitors']:,}"
        for k, share in enumerate(cohort["percent"]):
            item = table.item(r, 2 + k)
            assert item.text() == f"{share:g}%"
            assert item.toolTip() == (
                f"Cohort of {cohort['cohort']}: {cohort['weeks'][k]:,} of {cohort['visitors']:,} visitors "
                f"active in week {k} ({share:g}%)"
            )
            base = table.palette().color(table.palette().ColorRole.Base)
            assert view.fill_of(r, k).name() == heat(base, share).name()
            assert contrast(item.foreground().color(), view.fill_of(r, k)) >= 4.5
    save_screenshot(page, "dashboard-retention")
    with dark():
        qtbot.wait(50)
        assert view.fill_of(0, 0).name() == heat(QColor("#111827"), view.cells[0][0]).name()
        save_screenshot(page, "dashboard-retention-dark")


def test_fills_grow_with_the_share(qtbot) -> None:
    view = RetentionView()
    qtbot.addWidget(view)
    cohort = {
        "cohort": "2026-03-02",
        "visitors": 8,
        "weeks": [8, 4, 1, 0],
        "percent": [100.0, 50.0, 12.5, 0.0],
    }
    view.set_data({"cohorts": [cohort]})
    base = view.table.palette().color(view.table.palette().ColorRole.Base)
    assert [view.fill_of(0, k).name() for k in range(4)] == [heat(base, p).name() for p in cohort["percent"]]
    assert len({view.fill_of(0, k).name() for k in range(4)}) == 4
    assert view.table.item(0, 3).toolTip() == "Cohort of 2026-03-02: 4 of 8 visitors active in week 1 (50%)"
    for k in range(4):
        assert contrast(view.table.item(0, 2 + k).foreground().color(), view.fill_of(0, k)) >= 4.5


def test_an_empty_period(qtbot) -> None:
    view = RetentionView()
    qtbot.addWidget(view)
    view.set_data({"cohorts": []})
    assert view.cells == [] and view.table.rowCount() == 0
    assert view.message.text() == "No visitors in this period."
