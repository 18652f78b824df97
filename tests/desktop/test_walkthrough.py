"""The done-when walkthrough of issue 15 as one test: against a fresh, real `pixel serve` with no sites, the
owner, in the app only, adds two sites, sets their rules, creates a goal and a funnel, invites a viewer and
reads the charts. Each step is checked through the API and saved as a numbered screenshot
(docs/screenshots/walkthrough-NN-*.png); visitors' traffic reaches the real collector between the steps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from PySide6.QtCore import Qt

from pixel.app import secret_store
from pixel.app.desktop.widgets import format_value
from pixel.app.desktop.window import MainWindow
from pixel.app.profiles import Profile
from tests.desktop.conftest import LiveApi, running_api, save_screenshot
from tests.desktop.owner_server import funnel_visits
from tests.desktop.test_owner_tasks import idle, login, open_window

SHOP, BLOG = "shop.walk", "blog.walk"


@pytest.fixture
def empty_api(tmp_path: Path) -> Iterator[LiveApi]:
    with running_api(tmp_path) as api:
        yield api


def shot(window: MainWindow, number: int, name: str) -> None:
    save_screenshot(window, f"walkthrough-{number:02d}-{name}")


def test_walkthrough_two_sites_rules_goal_funnel_viewer_charts(
    qtbot, secret_service: Path, empty_api: LiveApi
) -> None:
    api = empty_api.http()
    window = open_window(qtbot, Profile("pixel", api_url=empty_api.url, username="owner"), empty_api.password)
    window.resize(1400, 950)
    qtbot.waitUntil(
        lambda: window.tabs.isTabVisible(window.tabs.indexOf(window.owner.people)), timeout=30_000
    )
    idle(qtbot, window)
    assert api.get("/api/sites").json()["items"] == []
    shot(window, 1, "signed-in")

    # 1. two sites, added on the Sites page
    sites = window.sites_page
    window.tabs.setCurrentWidget(sites)
    idle(qtbot, window)
    for domain, name, zone in ((SHOP, "The shop", "Europe/Berlin"), (BLOG, "The blog", "UTC")):
        qtbot.keyClicks(sites.new_domain, domain)
        qtbot.keyClicks(sites.new_name, name)
        sites.new_zone.setCurrentText(zone)
        qtbot.mouseClick(sites.add_button, Qt.MouseButton.LeftButton)
        idle(qtbot, window)
    stored = {s["domain"]: s for s in api.get("/api/sites").json()["items"]}
    assert {d: (s["name"], s["timezone"]) for d, s in stored.items()} == {
        SHOP: ("The shop", "Europe/Berlin"),
        BLOG: ("The blog", "UTC"),
    }
    shop, blog = stored[SHOP]["id"], stored[BLOG]["id"]
    shot(window, 2, "two-sites")

    # 2. their rules: the shop excludes its admin pages and an office network and accepts its own origin
    # only; the blog ignores Do Not Track and keeps a year of events
    rules = {
        SHOP: {"paths": "/admin/*", "ips": "203.0.113.0/24", "origins": f"https://{SHOP}", "retention": 400},
        BLOG: {"paths": "", "ips": "", "origins": "", "retention": 365},
    }
    for row in range(sites.list.count()):
        sites.list.setCurrentRow(row)
        idle(qtbot, window)
        assert sites.site is not None
        domain = sites.site["domain"]
        sites.paths.setPlainText(rules[domain]["paths"])  # type: ignore[arg-type]
        sites.ips.setPlainText(rules[domain]["ips"])  # type: ignore[arg-type]
        sites.origins.setPlainText(rules[domain]["origins"])  # type: ignore[arg-type]
        sites.retention.setValue(rules[domain]["retention"])  # type: ignore[arg-type]
        if domain == BLOG:
            sites.dnt.setChecked(False)
        qtbot.keyClick(sites, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
        idle(qtbot, window)
        if domain == SHOP:
            shot(window, 3, "site-rules")
    after = {s["domain"]: s for s in api.get("/api/sites").json()["items"]}
    keys = ("honour_dnt", "honour_gpc", "excluded_paths", "excluded_ips", "allowed_origins", "retention_days")
    assert {d: tuple(after[d][k] for k in keys) for d in (SHOP, BLOG)} == {
        SHOP: (True, True, ["/admin/*"], ["203.0.113.0/24"], [f"https://{SHOP}"], 400),
        BLOG: (False, True, [], [], [], 365),
    }

    # visitors arrive at the shop (six on /, four on /pricing, three sign up), and one on an excluded path
    now_ms = int(time.time() * 1000)
    visits = funnel_visits(SHOP, now_ms)
    admin_hit = dict(visits[0][1][0], event_id="f" * 32, visitor_id="7" * 16, session_id="7" * 16)
    admin_hit["page"] = {
        "url": f"https://{SHOP}/admin/orders",
        "path": "/admin/orders",
        "title": "",
        "referrer": "",
    }
    visits.append(({**visits[0][0], "X-Forwarded-For": "198.51.100.7"}, [admin_hit]))
    sent = 0
    with httpx.Client(base_url=empty_api.server.collector, timeout=10) as http:
        for headers, batch in visits:
            r = http.post(
                "/track", content=orjson.dumps(batch), headers={**headers, "Content-Type": "text/plain"}
            )
            assert r.status_code == 204, r.text
            sent += len(batch)
    empty_api.server.wait_shipped(sent - 1, timeout=120)  # the excluded page view is dropped

    # 3. a goal and a funnel, on the Goals and funnels page
    goals = window.goals_page
    window.tabs.setCurrentWidget(goals)
    idle(qtbot, window)
    assert [goals.site_combo.itemData(i) for i in range(goals.site_combo.count())] == [shop, blog]
    goals.site_combo.setCurrentIndex(0)
    idle(qtbot, window)
    qtbot.keyClick(goals, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(goals.goal_name, "Signed up")
    goals.goal.kind.setCurrentIndex(1)
    qtbot.keyClicks(goals.goal.event_name, "signup")
    qtbot.mouseClick(goals.save_button, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert [
        (g["name"], g["kind"], g["event_name"]) for g in api.get(f"/api/sites/{shop}/goals").json()["items"]
    ] == [("Signed up", "event", "signup")]
    for kind, field, value in ((0, "pattern", "/"), (0, "pattern", "/pricing"), (1, "event_name", "signup")):
        goals.step.clear()
        goals.step.kind.setCurrentIndex(kind)
        qtbot.keyClicks(getattr(goals.step, field), value)
        qtbot.mouseClick(goals.add_step_button, Qt.MouseButton.LeftButton)
        idle(qtbot, window)
    qtbot.waitUntil(lambda: not goals.preview_timer.isActive(), timeout=10_000)
    idle(qtbot, window)
    shown = [[goals.preview.item(r, c).text() for c in range(2)] for r in range(goals.preview.rowCount())]
    assert shown == [["1. /", "6"], ["2. /pricing", "4"], ["3. signup", "3"]]
    steps = [{"kind": "page", "page_pattern": "/"}, {"kind": "page", "page_pattern": "/pricing"}]
    steps.append({"kind": "event", "event_name": "signup"})
    funnel = api.get(
        f"/api/sites/{shop}/reports/funnel", params={"steps": orjson.dumps(steps).decode(), "period": "30d"}
    ).json()
    assert [s["visitors"] for s in funnel["steps"]] == [6, 4, 3]
    shot(window, 4, "goal-and-funnel")

    # 4. a viewer of the shop only, invited on the People page; the password is shown once
    people = window.owner.people
    window.tabs.setCurrentWidget(people)
    idle(qtbot, window)
    site_rows = [
        int(people.site_list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(people.site_list.count())
    ]
    assert site_rows == [shop, blog]  # the sites added in this session are offered for grants
    qtbot.keyClicks(people.username, "vera")
    people.role.setCurrentText("viewer")
    people.all_sites.setChecked(False)
    people.site_list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(people.add_user, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    vera = next(u for u in api.get("/api/users").json()["items"] if u["username"] == "vera")
    assert (vera["role"], vera["sites"], vera["disabled"]) == ("viewer", [shop], False)
    password = people.secret.text()
    assert login(empty_api, "vera", password) == 200
    token = httpx.post(
        f"{empty_api.url}/api/auth/login", json={"username": "vera", "password": password}
    ).json()["access_token"]
    seen = httpx.get(f"{empty_api.url}/api/sites", headers={"Authorization": f"Bearer {token}"}).json()
    assert [s["domain"] for s in seen["items"]] == [SHOP]
    shot(window, 5, "viewer-invited")

    # 5. the charts: the dashboard lists both sites and shows the shop's numbers as the API gives them
    dash = window.dashboard
    window.tabs.setCurrentWidget(dash)
    qtbot.waitUntil(lambda: dash.site_combo.count() == 2, timeout=30_000)
    dash.site_combo.setCurrentIndex([s["id"] for s in dash.sites].index(shop))
    qtbot.waitUntil(lambda: dash.runner.busy == 0 and dash.status.text().startswith("Live"), timeout=60_000)

    def summary_now() -> dict[str, Any]:
        return dict(api.get(f"/api/sites/{shop}/reports/summary", params={"period": "30d"}).json())

    # the dashboard first read the shop when it was added, before any visit: a changed day is rebuilt
    # after the report cache's minimum interval (server/api/query/report_cache.py), then F5 shows it
    qtbot.waitUntil(lambda: summary_now()["metrics"]["visitors"]["value"] > 0, timeout=90_000)
    qtbot.keyClick(dash, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: dash.runner.busy == 0 and dash.status.text().startswith("Live"), timeout=60_000)
    summary = summary_now()
    assert summary["metrics"]["visitors"]["value"] == 6  # the excluded /admin/ visitor is not counted
    assert summary["metrics"]["pageviews"]["value"] == 10
    for metric, tile in dash.tiles.tiles.items():
        assert tile.value.text() == format_value(metric, float(summary["metrics"][metric]["value"])), metric
    series = api.get(
        f"/api/sites/{shop}/reports/timeseries", params={"period": "30d", "metrics": "visitors,pageviews"}
    ).json()
    assert list(dash.chart.current.getData()[1]) == [p["visitors"] for p in series["points"]]
    assert sum(p["pageviews"] for p in series["points"]) == 10
    shot(window, 6, "charts")

    with closing(api):
        for profile in window.store.all():
            secret_store.delete_profile(profile.name)
    window.close()
