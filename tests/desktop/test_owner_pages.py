# ruff: noqa: F811  (owner_api is a fixture imported from owner_server)
"""The Sites and Goals-and-funnels pages driven click by click against a real `pixel serve`: each change read
back through the API, a change made through the API shown after a refresh, refusals shown in the API's words
with nothing changed, a delete confirmation naming the site; screenshots (light and dark) for docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from pixel.app.client import ApiClient
from pixel.app.client.site_admin import SiteAdmin, deletion_text
from pixel.app.desktop.goals_page import GoalsPage
from pixel.app.desktop.sites_page import SitesPage
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import save_screenshot
from tests.desktop.owner_server import SHOP, owner_api, owner_client, ref  # noqa: F401 (fixtures)


@pytest.fixture
def admin(owner_client: ApiClient) -> SiteAdmin:
    return SiteAdmin(owner_client)


def idle(qtbot, runner: Runner) -> None:
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    qtbot.wait(20)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)


@contextmanager
def dark() -> Iterator[None]:
    """An OS dark theme as Qt sees it: the Fusion style with a dark palette."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette = app.style().name(), app.palette()
    dark = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#1f2937"),
        (QPalette.ColorRole.WindowText, "#e5e7eb"),
        (QPalette.ColorRole.Base, "#111827"),
        (QPalette.ColorRole.AlternateBase, "#1f2937"),
        (QPalette.ColorRole.Text, "#e5e7eb"),
        (QPalette.ColorRole.Button, "#374151"),
        (QPalette.ColorRole.ButtonText, "#e5e7eb"),
        (QPalette.ColorRole.Highlight, "#2563eb"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.PlaceholderText, "#9ca3af"),
    ):
        dark.setColor(role, QColor(colour))
    app.setStyle("Fusion")
    app.setPalette(dark)
    try:
        yield
    finally:
        app.setStyle(style)
        app.setPalette(palette)


def screenshots(qtbot, page, name: str) -> None:
    save_screenshot(page, name)
    with dark():
        qtbot.wait(50)
        save_screenshot(page, f"{name}-dark")


@pytest.fixture
def sites_page(qtbot, admin: SiteAdmin) -> Iterator[SitesPage]:
    runner = Runner()
    page = SitesPage(runner)
    qtbot.addWidget(page)
    page.resize(1300, 1000)
    page.show()
    page.set_admin(admin)
    idle(qtbot, runner)
    yield page
    runner.shutdown()


def site_by_domain(ref: httpx.Client, domain: str) -> dict[str, Any] | None:
    return next((s for s in ref.get("/api/sites").json()["items"] if s["domain"] == domain), None)


def test_sites_page_add_edit_snippet_delete(qtbot, sites_page: SitesPage, ref: httpx.Client) -> None:
    page = sites_page
    assert [page.list.item(i).text() for i in range(page.list.count())][0] == SHOP

    # add a site
    qtbot.keyClicks(page.new_domain, "Blog.Test")
    qtbot.keyClicks(page.new_name, "The blog")
    page.new_zone.setCurrentText("Asia/Tokyo")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    stored = site_by_domain(ref, "blog.test")
    assert stored is not None
    assert (stored["name"], stored["timezone"]) == ("The blog", "Asia/Tokyo")
    assert page.message.text() == "Added The blog (blog.test). Paste its snippet into the site's pages."
    assert page.site is not None and page.site["id"] == stored["id"]
    assert page.list.currentItem().text() == "The blog (blog.test)"

    # the snippet of both builds, as the API gives them, and the copy buttons
    snippet = ref.get(f"/api/sites/{stored['id']}/snippet").json()
    assert page.html.toPlainText() == snippet["html"]
    assert page.extended_html.toPlainText() == snippet["extended_html"]
    assert page.difference.text() == snippet["difference"]
    qtbot.mouseClick(page.copy_extended, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == snippet["extended_html"]
    qtbot.mouseClick(page.copy_html, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == snippet["html"]
    assert page.message.text() == "The default snippet is copied."

    # rename, time zone and every rule in one save
    page.name.selectAll()
    qtbot.keyClicks(page.name, "Blog")
    page.zone.setCurrentText("Europe/Berlin")
    page.dnt.setFocus()
    qtbot.keyClick(page.dnt, Qt.Key.Key_Space)
    page.paths.setPlainText("/admin/*\n\n  /preview  ")  # keyClicks cannot type a newline
    page.ips.setPlainText("10.9.8.7/24\n2001:db8::1")
    qtbot.keyClicks(page.origins, "https://blog.test")
    page.retention.setValue(400)
    qtbot.keyClick(page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    after = ref.get(f"/api/sites/{stored['id']}").json()
    assert {k: after[k] for k in after if k not in ("id", "created_at")} == {
        "domain": "blog.test",
        "name": "Blog",
        "timezone": "Europe/Berlin",
        "honour_dnt": False,
        "honour_gpc": True,
        "excluded_paths": ["/admin/*", "/preview"],
        "excluded_ips": ["10.9.8.0/24", "2001:db8::1/128"],
        "allowed_origins": ["https://blog.test"],
        "retention_days": 400,
        "currency": "",  # the site's reporting currency (insight reports): not set on this page
    }
    assert page.message.text() == "Saved Blog (blog.test)."
    assert page.ips.toPlainText() == "10.9.8.0/24\n2001:db8::1/128"  # as the API stored them
    screenshots(qtbot, page, "sites")

    # a change through the API shows after F5
    r = ref.patch(f"/api/sites/{stored['id']}", json={"name": "Renamed elsewhere", "honour_gpc": False})
    assert r.status_code == 200
    qtbot.keyClick(page, Qt.Key.Key_F5)
    idle(qtbot, page.runner)
    assert page.name.text() == "Renamed elsewhere" and not page.gpc.isChecked()
    assert page.list.currentItem().text() == "Renamed elsewhere (blog.test)"

    # delete: the confirmation names the site; cancel deletes nothing, yes deletes
    asked: list[str] = []
    page.confirm = lambda text: asked.append(text) or False
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    assert asked == [deletion_text(after | {"name": "Renamed elsewhere"})]
    assert asked[0].startswith("Delete the site Renamed elsewhere (blog.test)?")
    assert site_by_domain(ref, "blog.test") is not None
    assert page.message.text() == "Nothing deleted: Renamed elsewhere (blog.test) stays."
    page.confirm = lambda text: asked.append(text) or True
    page.list.setFocus()
    qtbot.keyClick(page.list, Qt.Key.Key_Delete)
    idle(qtbot, page.runner)
    assert len(asked) == 2
    assert site_by_domain(ref, "blog.test") is None
    assert page.message.text() == "Deleted Renamed elsewhere (blog.test)."
    assert SHOP in [page.list.item(i).text() for i in range(page.list.count())]
    assert "blog.test" not in " ".join(page.list.item(i).text() for i in range(page.list.count()))


@pytest.mark.parametrize(
    ("field", "text", "detail"),
    [
        (
            "ips",
            "10.0.0.0/8\n10.0.0.0/33",
            "body.excluded_ips: Value error, '10.0.0.0/33' is not an IP address or CIDR range",
        ),
        (
            "ips",
            "not-an-ip",
            "body.excluded_ips: Value error, 'not-an-ip' is not an IP address or CIDR range",
        ),
        (
            "paths",
            "admin/*",
            "body.excluded_paths: Value error, 'admin/*' must be a path (glob) starting with /",
        ),
        (
            "origins",
            "blog.test",
            "body.allowed_origins: Value error, 'blog.test' is not an origin like https://example.com",
        ),
        (
            "zone",
            "Mars/Base",
            "body.timezone: Value error, unknown time zone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
        ),
        ("name", "   ", "a site needs a name"),
    ],
)
def test_sites_page_refusals_change_nothing(
    qtbot, sites_page: SitesPage, ref: httpx.Client, field: str, text: str, detail: str
) -> None:
    page = sites_page
    before = ref.get("/api/sites").json()["items"]
    page.dnt.setFocus()
    qtbot.keyClick(page.dnt, Qt.Key.Key_Space)  # a valid change that must not be applied either
    if field == "zone":
        page.zone.setCurrentText(text)
    elif field == "name":
        page.name.setText(text)
    else:
        getattr(page, field).setPlainText(text)
    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    idle(qtbot, page.runner)
    assert page.message.text() == detail
    assert ref.get("/api/sites").json()["items"] == before
    assert page.dnt.isChecked() != before[0]["honour_dnt"]  # the form keeps what was typed


@pytest.mark.parametrize(
    ("domain", "detail"),
    [
        (
            "bad domain!",
            "body.domain: Value error, a host name such as example.com (letters, digits, dots, dashes)",
        ),
        ("", "body.domain: Value error, a host name such as example.com (letters, digits, dots, dashes)"),
        (SHOP, "a site for shop.test exists"),
    ],
)
def test_sites_page_bad_domain(
    qtbot, sites_page: SitesPage, ref: httpx.Client, domain: str, detail: str
) -> None:
    before = ref.get("/api/sites").json()["items"]
    sites_page.new_domain.setText(domain)
    qtbot.keyClick(sites_page.new_domain, Qt.Key.Key_Return)
    idle(qtbot, sites_page.runner)
    assert sites_page.message.text() == detail
    assert sites_page.new_domain.text() == domain
    assert ref.get("/api/sites").json()["items"] == before
    if domain == "bad domain!":
        screenshots(qtbot, sites_page, "sites-refused")


@pytest.fixture
def goals_page(qtbot, admin: SiteAdmin) -> Iterator[GoalsPage]:
    runner = Runner()
    page = GoalsPage(runner, preview_ms=10)
    qtbot.addWidget(page)
    page.resize(1400, 1000)
    page.show()
    page.set_admin(admin)
    idle(qtbot, runner)
    yield page
    runner.shutdown()


def goals_of(ref: httpx.Client, site_id: int) -> list[tuple[Any, ...]]:
    items = ref.get(f"/api/sites/{site_id}/goals").json()["items"]
    return [
        (g["name"], g["kind"], g["page_pattern"], g["event_name"], g["prop_key"], g["prop_value"])
        for g in items
    ]


def test_goals_page_create_edit_delete(qtbot, goals_page: GoalsPage, ref: httpx.Client, owner_api) -> None:
    page, sid = goals_page, owner_api.sites[SHOP]
    assert page.site_id() == sid

    def create(name: str, kind_index: int, **fields: str) -> None:
        qtbot.keyClick(page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(page.goal_name, name)
        page.goal.kind.setCurrentIndex(kind_index)
        for attr, value in fields.items():
            qtbot.keyClicks(getattr(page.goal, attr), value)
        qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
        idle(qtbot, page.runner)

    create("Pricing", 0, pattern="/pricing*")
    create("Signed up", 1, event_name="signup")
    create("Pro plan", 2, event_name="signup", prop_key="plan", prop_value="pro")
    assert goals_of(ref, sid) == [
        ("Pricing", "page", "/pricing*", None, None, None),
        ("Signed up", "event", None, "signup", None, None),
        ("Pro plan", "event", None, "signup", "plan", "pro"),
    ]
    assert [[page.table.item(r, c).text() for c in (0, 1)] for r in range(page.table.rowCount())] == [
        ["Pricing", "visits a page matching /pricing*"],
        ["Signed up", "sends the event signup"],
        ["Pro plan", "sends the event signup with plan = pro"],
    ]
    assert (
        page.goal.prop_key.isVisible() and not page.goal.pattern.isVisible()
    )  # the fields of the kind shown

    # refusals: the API's words, nothing changed
    for name, kind, fields, detail in (
        ("", 1, {"event_name": "x"}, "a goal needs a name"),
        (
            "Bad glob",
            0,
            {"pattern": "pricing"},
            "body: Value error, a page goal needs page_pattern starting with / (* matches anything)",
        ),
        ("No event", 1, {}, "body: Value error, an event goal needs event_name"),
    ):
        before = goals_of(ref, sid)
        create(name, kind, **fields)
        assert page.message.text() == detail
        assert goals_of(ref, sid) == before

    # edit: select, change, save
    page.table.selectRow(0)
    assert (page.goal_name.text(), page.goal.pattern.text()) == ("Pricing", "/pricing*")
    page.goal.pattern.setText("/pri*")
    qtbot.keyClick(page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    ids = [g["id"] for g in ref.get(f"/api/sites/{sid}/goals").json()["items"]]
    assert goals_of(ref, sid)[0] == ("Pricing", "page", "/pri*", None, None, None)  # in place: same id
    assert len(goals_of(ref, sid)) == 3
    # edit a page goal into an event goal: the page pattern goes, the row stays first and selected
    page.goal.kind.setCurrentIndex(1)
    qtbot.keyClicks(page.goal.event_name, "pricing_view")
    qtbot.keyClick(page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    assert goals_of(ref, sid)[0] == ("Pricing", "event", None, "pricing_view", None, None)
    assert [g["id"] for g in ref.get(f"/api/sites/{sid}/goals").json()["items"]] == ids
    assert page.table.item(0, 1).text() == "sends the event pricing_view"
    page.goal.kind.setCurrentIndex(0)
    page.goal.pattern.setText("/pri*")
    qtbot.keyClick(page, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    assert goals_of(ref, sid)[0] == ("Pricing", "page", "/pri*", None, None, None)
    screenshots(qtbot, page, "goals")

    # a goal added through the API shows after a refresh
    r = ref.post(f"/api/sites/{sid}/goals", json={"name": "Home", "kind": "page", "page_pattern": "/"})
    assert r.status_code == 201
    qtbot.keyClick(page, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, page.runner)
    assert page.table.item(3, 0).text() == "Home"

    # delete: cancel keeps it, yes removes it
    asked: list[str] = []
    page.table.selectRow(3)
    page.confirm = lambda text: asked.append(text) or False
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert asked == ["Delete the goal Home (visits a page matching /)?"]
    assert len(goals_of(ref, sid)) == 4
    page.confirm = lambda text: True
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_Delete)
    idle(qtbot, page.runner)
    assert [g[0] for g in goals_of(ref, sid)] == ["Pricing", "Signed up", "Pro plan"]
    for goal in ref.get(f"/api/sites/{sid}/goals").json()["items"]:
        assert ref.delete(f"/api/sites/{sid}/goals/{goal['id']}").status_code == 204


def test_funnel_builder_live_preview(qtbot, goals_page: GoalsPage, owner_api) -> None:
    page = goals_page

    def add(kind_index: int, **fields: str) -> None:
        page.step.clear()
        page.step.kind.setCurrentIndex(kind_index)
        for attr, value in fields.items():
            qtbot.keyClicks(getattr(page.step, attr), value)
        qtbot.mouseClick(page.add_step_button, Qt.MouseButton.LeftButton)
        idle(qtbot, page.runner)

    def shown() -> list[list[str]]:
        qtbot.waitUntil(lambda: not page.preview_timer.isActive(), timeout=10_000)
        idle(qtbot, page.runner)
        return [[page.preview.item(r, c).text() for c in range(4)] for r in range(page.preview.rowCount())]

    add(0, pattern="/")
    assert page.preview_message.text() == "Add two steps or more to see the funnel."
    add(1, event_name="signup")
    assert shown() == [["1. /", "6", "100", "0"], ["2. signup", "3", "50", "3"]]
    add(0, pattern="/pri*")
    assert [row[1] for row in shown()] == ["6", "3", "0"]  # pricing after signup: nobody
    page.step_list.setCurrentRow(2)
    qtbot.mouseClick(page.up_button, Qt.MouseButton.LeftButton)  # /, /pri*, signup
    assert shown() == [
        ["1. /", "6", "100", "0"],
        ["2. /pri*", "4", "66.67", "2"],
        ["3. signup", "3", "50", "1"],
    ]
    assert page.preview_message.text() == "50% of 6 visitors reach the last step"
    assert list(page.chart.values) == [6, 4, 3]
    add(2, event_name="signup", prop_key="plan", prop_value="pro")
    # one signup event is one step: the pro signups are step 3 and nobody sends a second signup for step 4
    assert [row[1] for row in shown()] == ["6", "4", "3", "0"]
    page.step_list.setCurrentRow(2)
    page.step_list.setFocus()
    qtbot.keyClick(page.step_list, Qt.Key.Key_Delete)
    assert [row[1] for row in shown()] == ["6", "4", "2"]
    screenshots(qtbot, page, "funnel-builder")
    assert [page.step_list.item(i).text() for i in range(3)] == [
        "1. visits a page matching /",
        "2. visits a page matching /pri*",
        "3. sends the event signup with plan = pro",
    ]
    page.window_minutes.setValue(1)  # the steps are a minute apart: within 60 s only the first two
    assert [row[1] for row in shown()] == ["6", "4", "0"]
    # an invalid step: the API's words, the last good preview's numbers stay off the screen's message
    page.steps.append({"kind": "page", "page_pattern": "pricing"})
    page.run_preview()
    shown()
    assert page.preview_message.text() == (
        "steps[3]: Value error, a page goal needs page_pattern starting with / (* matches anything)"
    )


def test_main_window_has_the_sites_and_goals_pages(qtbot) -> None:
    from pixel.app.desktop.window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    texts = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert window.tabs.widget(texts.index("Sites")) is window.sites_page
    assert window.tabs.widget(texts.index("Goals and funnels")) is window.goals_page
    window.runner.shutdown()
