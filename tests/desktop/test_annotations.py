# ruff: noqa: F811  (page is a fixture imported from test_dashboard)
"""Annotations on the dashboard's time series against a real `pixel serve`: manual and automatic markers drawn
where their dates are in the site's zone, in two distinct looks, with their text on hover; a right-click on the
chart adds a note on that day (read back through the API); screenshots (light and dark)."""

from __future__ import annotations

from contextlib import closing
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from PySide6.QtCore import QPointF, Qt

from pixel.app.desktop.annotations import LIGHT_MARKERS, AnnotationLayer
from pixel.app.desktop.charts import bucket_x
from pixel.app.desktop.dashboard import DashboardPage
from pixel.server.annotations import add_auto
from pixel.server.api.meta import MetaDB
from tests.desktop.conftest import SITES, save_screenshot
from tests.desktop.test_dashboard import page, settle  # noqa: F401
from tests.desktop.test_owner_pages import dark


def test_markers_hover_and_right_click(qtbot, live_api, page: DashboardPage) -> None:
    shop = live_api.sites["shop.example"]
    points = page.timeseries["points"] if page.timeseries else []
    assert len(points) >= 20
    noted, ranged, auto = points[6]["bucket"], points[12]["bucket"], points[18]["bucket"]
    with closing(live_api.http()) as client:
        r = client.post(f"/api/sites/{shop}/annotations", json={"text": "Newsletter sent", "date": noted})
        assert r.status_code == 201, r.text
        span = {"text": "Spring sale", "date": ranged, "end_date": points[14]["bucket"]}
        assert client.post(f"/api/sites/{shop}/annotations", json=span).status_code == 201
    # an automatic annotation written by Pixel itself into the server's metadata DB, at the site's midnight
    zone = ZoneInfo(SITES["shop.example"])
    starts = datetime.combine(date.fromisoformat(auto), time(), zone).timestamp()
    meta = MetaDB(live_api.server.data_dir / "state" / "meta.sqlite3")
    add_auto(
        meta,
        kind="geoip",
        key=f"desktop-test:{starts!r}",
        text="GeoIP database updated",
        starts_at=starts,
        now=starts,
    )
    page.refresh()
    settle(qtbot, page)
    layer = page.explore.notes
    drawn = {m.text: (m, start, end, item) for m, start, end, item in layer.items}
    assert {"Newsletter sent", "Spring sale", "GeoIP database updated"} <= set(drawn)
    # where: the bucket of the note's date in the site's zone (a range covers its days, to the next midnight)
    assert drawn["Newsletter sent"][1] == bucket_x(noted)
    assert (drawn["Spring sale"][1], drawn["Spring sale"][2]) == (
        bucket_x(ranged),
        bucket_x(points[15]["bucket"]),
    )
    assert drawn["GeoIP database updated"][1] == bucket_x(auto)
    # two looks: manual solid amber, automatic dashed teal, labelled with its kind
    manual_pen, auto_pen = drawn["Newsletter sent"][3].pen, drawn["GeoIP database updated"][3].pen
    assert (manual_pen.color().name(), manual_pen.style()) == (LIGHT_MARKERS[0], Qt.PenStyle.SolidLine)
    assert (auto_pen.color().name(), auto_pen.style()) == (LIGHT_MARKERS[1], Qt.PenStyle.DashLine)
    assert layer.short(drawn["GeoIP database updated"][0]) == "geoip"
    # hover: the crosshair's text carries the note, its author and the moment
    text = page.chart.hover_at(6)
    assert f"Newsletter sent\n— owner, {noted}" in text
    assert f"GeoIP database updated\n— Pixel (automatic), {auto} 00:00" in page.chart.hover_at(18)
    assert f"Spring sale\n— owner, {ranged} – {points[14]['bucket']}" in page.chart.hover_at(13)
    assert "Spring sale" in page.chart.hover_at(13) and "Spring sale" not in page.chart.hover_at(16)
    assert drawn["Newsletter sent"][3].toolTip() == drawn["Newsletter sent"][0].label(zone)
    page.chart.hover_at(6)
    save_screenshot(page.chart, "annotations")
    with dark():
        qtbot.wait(50)
        page.refresh()
        settle(qtbot, page)
        page.chart.hover_at(6)
        save_screenshot(page.chart, "annotations-dark")
    page.refresh()
    settle(qtbot, page)

    # a right-click on the chart at a day adds a note on that day, by the signed-in user
    target = points[9]["bucket"]
    asked: list[date] = []
    layer.ask = lambda day: asked.append(day) or "Price change"
    plot = page.chart.getPlotItem()
    scene_pos = plot.vb.mapViewToScene(QPointF(bucket_x(target) + 3600, 1.0))
    qtbot.mouseClick(
        page.chart.viewport(), Qt.MouseButton.RightButton, pos=page.chart.mapFromScene(scene_pos)
    )
    assert asked == [date.fromisoformat(target)]
    qtbot.waitUntil(lambda: any(m.text == "Price change" for m in layer.markers), timeout=30_000)
    with closing(live_api.http()) as client:
        items = client.get(f"/api/sites/{shop}/annotations", params={"limit": 1000}).json()["items"]
    made = next(a for a in items if a["text"] == "Price change")
    assert (made["date"], made["end_date"], made["author"], made["automatic"]) == (
        target,
        target,
        "owner",
        False,
    )


def test_labels_and_positions_in_the_sites_zone() -> None:
    from pixel.app.client.annotations import markers
    from pixel.app.desktop.annotations import chart_x, day_at

    zone = ZoneInfo("Europe/Berlin")
    midnight = datetime(2026, 3, 28, tzinfo=zone).timestamp()  # the night before the clocks go forward
    three_days = datetime(2026, 3, 31, tzinfo=zone).timestamp()
    items = [
        {"id": 2, "starts_at": midnight, "ends_at": three_days, "text": "Sale", "automatic": False, "kind": "manual",
         "author": "ann"},
        {"id": 1, "starts_at": midnight + 3 * 3600 + 1800, "ends_at": None, "text": "Pixel upgraded", "automatic": True,
         "kind": "upgrade", "author": "pixel"},
        {"id": 3, "starts_at": midnight, "ends_at": midnight + 86400, "text": "One day", "automatic": False,
         "kind": "manual", "author": "bob"},
    ]  # fmt: skip
    sale, one_day, upgrade = markers(items)  # by start, then id
    assert sale.label(zone) == "Sale\n— ann, 2026-03-28 – 2026-03-30"
    assert one_day.label(zone) == "One day\n— bob, 2026-03-28"
    assert upgrade.label(zone) == "Pixel upgraded\n— Pixel (automatic), 2026-03-28 03:30"
    assert upgrade.label() == "Pixel upgraded\n— Pixel (automatic), 2026-03-28 02:30"  # UTC without a zone
    assert chart_x(three_days, zone) == bucket_x("2026-03-31")  # after the change: still the local midnight
    assert chart_x(upgrade.starts_at, zone) == bucket_x("2026-03-28 03:30:00")
    assert day_at(bucket_x("2026-03-30") + 23 * 3600) == date(2026, 3, 30)


def test_markers_on_every_time_series_and_right_click_on_a_widget(
    qtbot, live_api, page: DashboardPage, request
) -> None:
    """The saved dashboards' line widgets, the compare chart, the performance and errors charts show the same
    markers as the overview (one layer each, same positions and hover text); a right-click on a widget adds a note."""
    from pixel.app.client.dashboards_admin import widget_body
    from pixel.app.desktop.charts import TimeSeriesChart

    shop = live_api.sites["shop.example"]
    points = page.timeseries["points"] if page.timeseries else []
    assert len(points) >= 20
    noted = points[5]["bucket"]
    with closing(live_api.http()) as client:
        r = client.post(f"/api/sites/{shop}/annotations", json={"text": "Campaign launched", "date": noted})
        assert r.status_code == 201, r.text
        line = {
            **widget_body("timeseries", "line", title="Trend"),
            "position": {"x": 0, "y": 0, "w": 2, "h": 1},
        }
        r = client.post(f"/api/sites/{shop}/dashboards", json={"name": "Everywhere", "widgets": [line]})
        assert r.status_code == 201, r.text
    board = r.json()["id"]

    def remove_board() -> None:  # the test server is shared: later tests must not find this dashboard
        with closing(live_api.http()) as client:
            client.delete(f"/api/dashboards/{board}")

    request.addfinalizer(remove_board)
    page.refresh()
    settle(qtbot, page)
    page.tabs.setCurrentWidget(page.saved)
    page.saved.combo.setCurrentIndex(page.saved.combo.findText("Everywhere"))
    settle(qtbot, page)
    card = page.saved.cards[0].body
    assert isinstance(card, TimeSeriesChart)
    qtbot.waitUntil(lambda: len(card.labels) == len(points), timeout=30_000)
    page.explore.compare(None, None)
    settle(qtbot, page)
    for key in ("performance", "errors"):
        page.tabs.setCurrentWidget(page.reports.view(key))
        settle(qtbot, page)

    compare = page.explore.compare_view.chart
    perf, errors = page.reports.view("performance").chart, page.reports.view("errors").chart
    charts = {id(c) for c in page.findChildren(TimeSeriesChart)}
    assert {id(page.chart), id(card), id(compare), id(perf), id(errors)} <= charts
    zone = ZoneInfo(SITES["shop.example"])
    for chart in (page.chart, card, compare, perf, errors):
        layers = chart.findChildren(AnnotationLayer)  # drawn by the page itself, one per chart
        assert len(layers) == 1
        layer = layers[0]
        drawn = [(m.text, start, item.toolTip()) for m, start, _end, item in layer.items]
        made = next(m for m in layer.markers if m.text == "Campaign launched")
        assert ("Campaign launched", bucket_x(noted), made.label(zone)) in drawn
        assert chart.hover_notes is not None
        assert chart.hover_notes(bucket_x(noted), 1.0) == made.label(zone)
    label = f"Campaign launched\n— owner, {noted}"
    assert label in card.hover_at(5)
    assert label in compare.hover_at(5)
    assert label not in card.hover_at(10)
    page.tabs.setCurrentWidget(page.saved)
    card.hover_at(5)
    save_screenshot(page.saved, "annotations-saved-dashboard")
    with dark():
        qtbot.wait(50)
        page.refresh()
        settle(qtbot, page)
        card = page.saved.cards[0].body
        assert isinstance(card, TimeSeriesChart)
        qtbot.waitUntil(lambda: len(card.labels) == len(points), timeout=30_000)
        card.hover_at(5)
        save_screenshot(page.saved, "annotations-saved-dashboard-dark")
    page.refresh()
    settle(qtbot, page)
    card = page.saved.cards[0].body
    assert isinstance(card, TimeSeriesChart)
    qtbot.waitUntil(lambda: len(card.labels) == len(points), timeout=30_000)

    # a right-click on the widget's chart at a day adds a note on that day, shown on every chart
    target = points[11]["bucket"]
    (layer,) = card.findChildren(AnnotationLayer)
    asked: list[date] = []
    layer.ask = lambda day: asked.append(day) or "Widget note"
    scene_pos = card.getPlotItem().vb.mapViewToScene(
        QPointF(bucket_x(target) + 3600, float(card.y.max()) / 2)
    )
    qtbot.mouseClick(card.viewport(), Qt.MouseButton.RightButton, pos=card.mapFromScene(scene_pos))
    assert asked == [date.fromisoformat(target)]
    qtbot.waitUntil(
        lambda: any(m.text == "Widget note" for m in errors.findChildren(AnnotationLayer)[0].markers),
        timeout=30_000,
    )
    with closing(live_api.http()) as client:
        items = client.get(f"/api/sites/{shop}/annotations", params={"limit": 1000}).json()["items"]
    made_by_click = next(a for a in items if a["text"] == "Widget note")
    assert (made_by_click["date"], made_by_click["author"]) == (target, "owner")


def test_edit_and_delete_notes_from_the_chart(qtbot, live_api, page: DashboardPage) -> None:
    """A right-click on a manual marker offers to edit or delete it (the change read back through the API); an
    automatic one is read-only: neither edited nor deleted from the chart; off the markers, a right-click adds."""
    shop = live_api.sites["shop.example"]
    points = page.timeseries["points"] if page.timeseries else []
    assert len(points) >= 25
    kept, gone, auto = points[2]["bucket"], points[20]["bucket"], points[22]["bucket"]
    ids: dict[str, int] = {}
    with closing(live_api.http()) as client:
        for text, day in (("Typo in the note", kept), ("Wrong day", gone)):
            r = client.post(f"/api/sites/{shop}/annotations", json={"text": text, "date": day})
            assert r.status_code == 201, r.text
            ids[text] = r.json()["id"]
        original = client.get(f"/api/annotations/{ids['Typo in the note']}").json()
    zone = ZoneInfo(SITES["shop.example"])
    starts = datetime.combine(date.fromisoformat(auto), time(), zone).timestamp()
    meta = MetaDB(live_api.server.data_dir / "state" / "meta.sqlite3")
    add_auto(
        meta,
        kind="tracker",
        key=f"edit-test:{starts!r}",
        text="Tracker build changed",
        starts_at=starts,
        now=starts,
    )
    page.refresh()
    settle(qtbot, page)
    layer = page.explore.notes
    offered: list[tuple[date, list[str]]] = []
    answers: list[tuple[str, str]] = []
    added: list[date] = []
    layer.ask = lambda day: added.append(day) and None
    layer.ask_edit = lambda marker: "Fixed the note"
    layer.confirm = lambda marker: True

    def choose(day: date, near):
        offered.append((day, [m.text for m in near]))
        action = answers.pop(0)[0]
        return action, next(m for m in near if m.text == answers_for[action])

    answers_for: dict[str, str] = {}
    layer.choose = choose

    def right_click(bucket: str) -> None:
        plot = page.chart.getPlotItem()
        scene_pos = plot.vb.mapViewToScene(QPointF(bucket_x(bucket) + 3600, 1.0))
        qtbot.mouseClick(
            page.chart.viewport(), Qt.MouseButton.RightButton, pos=page.chart.mapFromScene(scene_pos)
        )

    def listed() -> dict[str, dict]:
        with closing(live_api.http()) as client:
            items = client.get(f"/api/sites/{shop}/annotations", params={"limit": 1000}).json()["items"]
        return {a["text"]: a for a in items}

    answers_for.update(edit="Typo in the note")
    answers.append(("edit", ""))
    right_click(kept)
    assert offered[-1] == (date.fromisoformat(kept), ["Typo in the note"])
    qtbot.waitUntil(lambda: "Fixed the note" in listed(), timeout=30_000)
    fixed = listed()["Fixed the note"]
    assert (fixed["id"], fixed["date"], fixed["end_date"], fixed["starts_at"], fixed["ends_at"]) == (
        original["id"],
        original["date"],
        original["end_date"],
        original["starts_at"],
        original["ends_at"],
    )
    assert "Typo in the note" not in listed()
    qtbot.waitUntil(lambda: any(m.text == "Fixed the note" for m in layer.markers), timeout=30_000)

    answers_for.update(delete="Wrong day")
    answers.append(("delete", ""))
    right_click(gone)
    assert offered[-1] == (date.fromisoformat(gone), ["Wrong day"])
    qtbot.waitUntil(lambda: "Wrong day" not in listed(), timeout=30_000)
    qtbot.waitUntil(lambda: all(m.text != "Wrong day" for m in layer.markers), timeout=30_000)

    # an automatic note: offered (read-only), but an edit or a delete asked for it does nothing
    for action in ("edit", "delete"):
        answers_for[action] = "Tracker build changed"
        answers.append((action, ""))
        right_click(auto)
        assert offered[-1] == (date.fromisoformat(auto), ["Tracker build changed"])
    settle(qtbot, page)
    assert listed()["Tracker build changed"]["automatic"] is True
    assert not added
    # off the markers: straight to "add a note"
    right_click(points[24]["bucket"])
    assert added == [date.fromisoformat(points[24]["bucket"])]
    assert len(offered) == 4
