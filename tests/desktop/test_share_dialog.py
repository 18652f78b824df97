"""The Share… dialog against a real `pixel serve`: a link made through the dialog (the dashboard's filters, two
periods, an expiry, a password, an embed origin) is read back through the API, its shared view's data route
(real HTTP, password form then cookie) answers the API's own numbers for its filters, the copied link and embed
code name its token, and a revoke through the dialog makes the route refuse; the main window's Share… button
(admins only) opens it on the dashboard's site. Screenshot for docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QDateTime, Qt, QTimeZone

from pixel.app import secret_store
from pixel.app.client import ApiClient
from pixel.app.client import share as share_client
from pixel.app.desktop.share_dialog import ShareDialog
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import Profile
from tests.desktop.conftest import LiveApi, save_screenshot
from tests.desktop.test_owner_tasks import open_window

WAIT = 60_000
EDGE = "https://stats.example.com"  # as a stack with an HTTPS edge: links are given at its address
FILTERS = [["device", "is", "desktop"]]
EXPIRY = datetime(2099, 1, 1, 12, 30, tzinfo=UTC).timestamp()
PASSWORD = "client-report-pass"
FIXED_NOW = datetime(2030, 6, 1, tzinfo=UTC).timestamp()  # the dialog's own clock (states shown)


@pytest.fixture
def dialog(qtbot, live_api: LiveApi) -> Iterator[ShareDialog]:  # type: ignore[no-untyped-def]
    runner = Runner()
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    site = {"id": live_api.sites["shop.example"], "domain": "shop.example"}
    dlg = ShareDialog(runner, client, site, EDGE, FILTERS, now=lambda: FIXED_NOW)
    qtbot.addWidget(dlg)
    dlg.resize(900, 640)
    dlg.show()
    qtbot.waitUntil(lambda: runner.busy == 0 and dlg.create_button.isEnabled(), timeout=WAIT)
    yield dlg
    runner.shutdown()
    client.close()


def wait_idle(qtbot, dlg: ShareDialog) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: dlg.runner.busy == 0 and dlg.create_button.isEnabled(), timeout=WAIT)


def api_links(live_api: LiveApi) -> list[dict]:
    with closing(live_api.http()) as api:
        r = api.get(f"/api/sites/{live_api.sites['shop.example']}/shares")
        assert r.status_code == 200, r.text
        return list(r.json())


def summary_of(live_api: LiveApi, period: str) -> dict:
    with closing(live_api.http()) as api:
        r = api.get(
            f"/api/sites/{live_api.sites['shop.example']}/reports/summary",
            params={"period": period, "filters": '[["device","is","desktop"]]'},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_create_read_back_open_and_revoke(qtbot, live_api: LiveApi, dialog: ShareDialog) -> None:  # type: ignore[no-untyped-def]
    before = {link["id"] for link in api_links(live_api)}
    copied: list[str] = []
    dialog.copy_text = copied.append
    dialog.confirm_revoke = lambda link: True

    assert dialog.scope.count() >= 2 and dialog.scope.itemText(1) == "The dashboard's filters (1)"
    dialog.name.setText("Client report")
    dialog.scope.setCurrentIndex(1)
    dialog.periods["7d"].setChecked(True)
    dialog.periods["30d"].setChecked(True)
    dialog.periods["month"].setChecked(True)
    dialog.expires.setChecked(True)
    dialog.expiry.setDateTime(QDateTime.fromSecsSinceEpoch(int(EXPIRY), QTimeZone.utc()))
    dialog.password.setText(PASSWORD)
    dialog.origins.setText("https://status.example.com, https://intranet.example.org:8443")
    with qtbot.waitSignal(dialog.created, timeout=WAIT) as made:
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, dialog)
    answer = made.args[0]
    token = answer["token"]

    # read back through the API (the token itself is never listed)
    new = [link for link in api_links(live_api) if link["id"] not in before]
    assert len(new) == 1
    link = new[0]
    assert link["id"] == answer["id"] and "token" not in link
    assert link["name"] == "Client report" and link["filters"] == FILTERS
    assert link["periods"] == ["7d", "30d", "month"]
    assert link["expires_at"] == EXPIRY and link["has_password"] is True and link["revoked_at"] is None
    assert link["embed_origins"] == ["https://status.example.com", "https://intranet.example.org:8443"]
    assert token.startswith(link["prefix"])
    assert dialog.link.text() == f"{EDGE}/share/{token}"
    assert dialog.password.text() == ""  # not kept in the form
    row = dialog.table.currentRow()
    assert dialog.links[row]["id"] == link["id"]
    assert dialog.table.item(row, 6).text() == "active"
    assert dialog.table.item(row, 5).text() == "2099-01-01 12:30 UTC"
    assert dialog.table.item(row, 3).text() == "device is desktop"

    # copy the link and the embed code
    dialog.copy_link.click()
    dialog.copy_embed.click()
    assert copied[0] == f"{EDGE}/share/{token}"
    assert copied[1] == share_client.embed_snippet(copied[0], "Client report")
    assert f'src="{EDGE}/share/{token}"' in copied[1] and copied[1].startswith("<iframe ")
    assert "https://status.example.com" in dialog.status.text()
    dialog.status.setText("Link copied.")
    save_screenshot(dialog, "share-dialog")

    # the shared view's data route, over real HTTP, at the link's path (the edge forwards /share/* as it is)
    path = copied[0].removeprefix(EDGE)
    with httpx.Client(base_url=live_api.url, timeout=60) as viewer:
        locked = viewer.get(f"{path}/data", params={"period": "30d"})
        assert locked.status_code == 401 and locked.json()["error"] == "password_required"
        unlocked = viewer.post(path, data={"password": PASSWORD})
        assert unlocked.status_code == 303
        for _attempt in range(2):  # a day boundary crossed between the two requests: ask both again
            shown = viewer.get(f"{path}/data", params={"period": "30d"})
            assert shown.status_code == 200, shown.text
            body = shown.json()
            want = summary_of(live_api, "30d")
            if (body["from"], body["to"]) == (want["from"], want["to"]):
                break
        assert body["filters"] == FILTERS and body["period"] == "30d"
        for metric in ("visitors", "pageviews", "sessions"):
            assert body["summary"]["metrics"][metric]["value"] == want["metrics"][metric]["value"], metric
        assert body["summary"]["metrics"]["visitors"]["value"] > 0
        refused = viewer.get(f"{path}/data", params={"period": "12mo"})
        assert refused.status_code == 400 and refused.json()["error"] == "period_not_allowed"

        # revoke through the dialog: the route refuses, the API lists it revoked, the row says so
        dialog.select_id(link["id"])
        with qtbot.waitSignal(dialog.revoked, timeout=WAIT):
            dialog.revoke_button.click()
        wait_idle(qtbot, dialog)
        gone = viewer.get(f"{path}/data", params={"period": "30d"})
        assert gone.status_code == 404 and gone.json()["error"] == "gone"
        assert viewer.get(path).status_code == 404
    again = [x for x in api_links(live_api) if x["id"] == link["id"]][0]
    assert again["revoked_at"] is not None
    row = dialog.table.currentRow()
    assert dialog.table.item(row, 6).text() == "revoked"
    assert not dialog.revoke_button.isEnabled() and not dialog.copy_link.isEnabled()
    assert "revoked" in dialog.status.text()


def test_refusals_and_older_links(qtbot, live_api: LiveApi, dialog: ShareDialog) -> None:  # type: ignore[no-untyped-def]
    copied: list[str] = []
    dialog.copy_text = copied.append
    before = len(api_links(live_api))
    # the API's own words for a bad origin; nothing made
    dialog.name.setText("Status page")
    dialog.origins.setText("status.example.com")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, dialog)
    assert "'status.example.com' is not an origin like https://status.example.com" in dialog.status.text()
    assert len(api_links(live_api)) == before
    # no period ticked: said before any request
    dialog.origins.setText("")
    for box in dialog.periods.values():
        box.setChecked(False)
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "Tick at least one period the viewers may pick."
    assert dialog.runner.busy == 0 and len(api_links(live_api)) == before

    # a link made elsewhere (its token unknown here): listed, copying says why not
    with closing(live_api.http()) as api:
        r = api.post(
            f"/api/sites/{live_api.sites['shop.example']}/shares",
            json={"name": "Made by the API", "periods": ["7d"]},
        )
        assert r.status_code == 201, r.text
        other = r.json()
        seg = api.post(
            f"/api/sites/{live_api.sites['shop.example']}/segments",
            json={
                "name": "Mobile from Google",
                "filters": [["device", "is", "mobile"], ["source", "is", "Google"]],
            },
        )
        assert seg.status_code == 201, seg.text
    dialog.reload()
    wait_idle(qtbot, dialog)
    # a saved segment is a choice of fixed filters (its filters copied into the link)
    index = dialog.scope.findText("Segment: Mobile from Google")
    assert index > 0 and dialog.scope.itemData(index) == [
        ["device", "is", "mobile"],
        ["source", "is", "Google"],
    ]
    dialog.select_id(other["id"])
    assert dialog.copy_link.isEnabled()
    dialog.copy_link.click()
    assert copied == [] and "shown only when it was made" in dialog.status.text()
    with closing(live_api.http()) as api:
        api.delete(f"/api/sites/{live_api.sites['shop.example']}/shares/{other['id']}")
        api.delete(f"/api/segments/{seg.json()['id']}")


@pytest.mark.parametrize(
    ("api_url", "collector_url", "base"),
    [
        ("http://127.0.0.1:8082", "http://127.0.0.1:8081", "http://127.0.0.1:8082"),
        ("http://127.0.0.1:8082/", "", "http://127.0.0.1:8082"),
        ("http://127.0.0.1:41234", "https://stats.example.com", "https://stats.example.com"),
        (
            "http://127.0.0.1:41234",
            "https://stats.example.com:8443/telemetry",
            "https://stats.example.com:8443",
        ),
    ],
)
def test_public_base(api_url: str, collector_url: str, base: str) -> None:
    assert share_client.public_base(api_url, collector_url) == base


def test_embed_snippet_escapes() -> None:
    assert share_client.embed_snippet("https://s.example/share/pxs_a", 'Q"1 <b>') == (
        '<iframe src="https://s.example/share/pxs_a" title="Q&quot;1 &lt;b&gt;" width="800" height="600" '
        'style="border:0" loading="lazy" referrerpolicy="no-referrer"></iframe>'
    )
    assert share_client.parse_origins(" https://a.example,https://b.example\nhttps://c.example ") == [
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]


def test_window_button_for_admins(qtbot, secret_service: Path, live_api: LiveApi) -> None:  # type: ignore[no-untyped-def]
    window = open_window(
        qtbot,
        Profile("share-home", api_url=live_api.url, username=live_api.username),
        live_api.password,
    )
    try:
        qtbot.waitUntil(lambda: window.owner.share.isVisible(), timeout=WAIT)
        qtbot.waitUntil(lambda: window.dashboard.site is not None, timeout=WAIT)
        window.dashboard.add_filter("browser", "Firefox")
        qtbot.mouseClick(window.owner.share, Qt.MouseButton.LeftButton)
        dlg = window.share_dialog
        assert isinstance(dlg, ShareDialog) and dlg.isVisible()
        assert dlg.site["id"] == window.dashboard.site["id"]
        assert dlg.base == live_api.url  # no HTTPS edge: the API's own address
        qtbot.waitUntil(lambda: window.runner.busy == 0 and dlg.create_button.isEnabled(), timeout=WAIT)
        assert dlg.scope.itemData(1) == [["browser", "is", "Firefox"]]
        dlg.close()
    finally:
        window.close()
        secret_store.delete_profile("share-home")


def test_window_button_hidden_for_viewers(qtbot, secret_service: Path, live_api: LiveApi) -> None:  # type: ignore[no-untyped-def]
    with closing(live_api.http()) as api:
        made = api.post("/api/users", json={"username": "sharon", "role": "viewer"}).json()
    try:
        window = open_window(
            qtbot, Profile("sharon", api_url=live_api.url, username="sharon"), made["password"]
        )
        qtbot.waitUntil(lambda: window.owner.role == "viewer", timeout=WAIT)
        assert not window.owner.share.isVisible()
        window.close()
        secret_store.delete_profile("sharon")
    finally:
        with closing(live_api.http()) as api:
            api.delete(f"/api/users/{made['id']}")
