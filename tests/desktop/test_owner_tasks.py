"""Owner tasks in the app, driven click by click against a real `pixel serve` and a real Secret Service:
People (users, grants, disable, password reset, API tokens), the SQL console (table, CSV, the guard's
refusals), connect to an existing Pixel (no Docker engine, no stack page), edit and remove a profile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from pixel.app import secret_store
from pixel.app.client import ApiClient, ReportCache, people
from pixel.app.desktop.window import MainWindow
from pixel.app.profiles import NO_ENGINE, Profile, ProfileStore
from tests.desktop.conftest import LiveApi, save_screenshot
from tests.desktop.test_owner_pages import screenshots
from tests.desktop.test_wizard import LoopbackSshd

WAIT = 30_000


def login(api: LiveApi, username: str, password: str) -> int:
    return httpx.post(
        f"{api.url}/api/auth/login", json={"username": username, "password": password}
    ).status_code


def idle(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.runner.busy == 0, timeout=WAIT)


def open_window(qtbot, profile: Profile, password: str) -> MainWindow:  # type: ignore[no-untyped-def]
    store = ProfileStore()
    store.save(profile)
    secret_store.set_secret(profile.name, "admin_password", password)
    window = MainWindow(store, ReportCache())
    qtbot.addWidget(window)
    window.show()
    idle(qtbot, window)
    return window


def tab_visible(window: MainWindow, page: object) -> bool:
    return window.tabs.isTabVisible(window.tabs.indexOf(page))  # type: ignore[arg-type]


@pytest.fixture
def admin_window(qtbot, secret_service: Path, live_api: LiveApi) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    window = open_window(
        qtbot, Profile("home", api_url=live_api.url, username=live_api.username), live_api.password
    )
    qtbot.waitUntil(lambda: tab_visible(window, window.owner.people), timeout=WAIT)
    idle(qtbot, window)
    yield window
    window.close()
    for profile in window.store.all():
        secret_store.delete_profile(profile.name)


def test_people_users_grants_reset_disable_and_tokens(
    qtbot, admin_window: MainWindow, live_api: LiveApi
) -> None:
    window, page = admin_window, admin_window.owner.people
    window.tabs.setCurrentWidget(page)
    shop, blog = live_api.sites["shop.example"], live_api.sites["blog.example"]
    page.confirm = lambda _text: True
    api = live_api.http()

    # add a viewer of shop.example
    qtbot.keyClicks(page.username, "carol")
    page.role.setCurrentText("viewer")
    page.site_list.item(list(live_api.sites.values()).index(shop)).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(page.add_user, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert page.secret_box.isVisible() and page.secret_label.text() == "Password of carol:"
    carol_password = page.secret.text()
    assert len(carol_password) == 20
    carol = next(u for u in api.get("/api/users").json()["items"] if u["username"] == "carol")
    assert {k: carol[k] for k in ("role", "sites", "disabled")} == {
        "role": "viewer",
        "sites": [shop],
        "disabled": False,
    }
    assert login(live_api, "carol", carol_password) == 200
    shown = [[page.user_table.item(r, c).text() for c in range(5)] for r in range(page.user_table.rowCount())]
    assert [str(carol["id"]), "carol", "viewer", "shop.example", "active"] in shown
    save_screenshot(window, "people")

    # grants: shop and blog
    page.select_user("carol")
    page.site_list.item(list(live_api.sites.values()).index(blog)).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert api.get(f"/api/users/{carol['id']}").json()["sites"] == sorted([shop, blog])

    # reset password: the new one works, the old one does not; kept in the keyring as a profile
    page.select_user("carol")
    qtbot.mouseClick(page.reset, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    new_password = page.secret.text()
    assert page.secret_label.text() == "New password of carol:" and new_password != carol_password
    assert login(live_api, "carol", new_password) == 200
    assert login(live_api, "carol", carol_password) == 401
    qtbot.mouseClick(page.keep_secret, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert keyring.get_password("pixel-desktop", "home carol/admin_password") == new_password
    kept = window.store.get("home carol")
    assert kept is not None and kept.username == "carol" and kept.api_url == live_api.url

    # disable: asked first, naming the user; then the login is refused
    asked: list[str] = []
    page.confirm = lambda text: asked.append(text) or True
    page.select_user("carol")
    qtbot.mouseClick(page.disable, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked == ["Disable carol? Their sessions end now."]
    assert api.get(f"/api/users/{carol['id']}").json()["disabled"] is True
    assert login(live_api, "carol", new_password) == 401

    # a change through the API appears after F5
    assert (
        api.post("/api/users", json={"username": "dave", "role": "admin", "sites": [blog]}).status_code == 201
    )
    qtbot.keyClick(page, Qt.Key.Key_F5)
    idle(qtbot, window)
    assert ["dave", "admin", "blog.example", "active"] in [
        [page.user_table.item(r, c).text() for c in range(1, 5)] for r in range(page.user_table.rowCount())
    ]

    # API token: created with a name, shown once, works; revoked, it gets 401
    qtbot.keyClicks(page.token_name, "weekly report")
    qtbot.mouseClick(page.create_token, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    token = page.secret.text()
    assert page.secret_label.text() == "Token weekly report:" and token.startswith("pxt_")
    assert page.keep_secret.isHidden()
    assert (
        httpx.get(f"{live_api.url}/api/sites", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    row = [page.token_table.item(r, 1).text() for r in range(page.token_table.rowCount())].index(
        "weekly report"
    )
    assert page.token_table.item(row, 2).text() == token[:10] + "…"
    page.token_table.selectRow(row)
    qtbot.mouseClick(page.revoke, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked[-1] == "Revoke the token weekly report? Scripts using it stop working."
    assert (
        httpx.get(f"{live_api.url}/api/sites", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert "weekly report" not in [t["name"] for t in api.get("/api/tokens").json()["items"]]

    # an API refusal is shown word for word
    qtbot.keyClicks(page.username, "dave")
    qtbot.mouseClick(page.add_user, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert page.message.text() == "user 'dave' exists"
    for name in ("carol", "dave"):
        uid = next(u["id"] for u in api.get("/api/users").json()["items"] if u["username"] == name)
        api.delete(f"/api/users/{uid}")
    api.close()


def test_sql_console_table_refusal_csv_and_tsv_copy(
    qtbot, admin_window: MainWindow, live_api: LiveApi, tmp_path: Path
) -> None:
    window, console = admin_window, admin_window.owner.sql
    window.tabs.setCurrentWidget(console)
    site = live_api.sites["docs.example"]
    console.site.setCurrentIndex(console.site.findData(site))
    query = "SELECT path, count() AS n FROM events GROUP BY path ORDER BY n DESC, path LIMIT 5"
    console.editor.setPlainText(query)
    qtbot.keyClick(console.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    idle(qtbot, window)
    with closing(live_api.http()) as api:
        expected = api.post("/api/sql", json={"site_id": site, "query": query}).json()
        refused_query = "DROP TABLE events"
        refusal = api.post("/api/sql", json={"site_id": site, "query": refused_query})
    assert [console.table.horizontalHeaderItem(c).text() for c in range(2)] == ["path", "n"]
    cells = [[console.table.item(r, c).text() for c in range(2)] for r in range(console.table.rowCount())]
    assert cells == [[p, str(n)] for p, n in expected["rows"]] and len(cells) == 5
    screenshots(qtbot, window, "sql-console")

    # CSV: the exact bytes of the rows the API answered
    out = tmp_path / "result.csv"
    console.ask_path = lambda: str(out)
    qtbot.mouseClick(console.export, Qt.MouseButton.LeftButton)
    assert out.read_bytes() == b"path,n\r\n" + b"".join(f"{p},{n}\r\n".encode() for p, n in expected["rows"])
    assert console.status.text() == f"Saved 5 rows to {out}"

    # Ctrl+C copies the selection as TSV
    console.table.clearSelection()
    console.table.setRangeSelected(_range(0, 0, 1, 1), True)
    qtbot.keyClick(console.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    rows = expected["rows"]
    assert QGuiApplication.clipboard().text() == f"{rows[0][0]}\t{rows[0][1]}\n{rows[1][0]}\t{rows[1][1]}"

    # the guard's refusal, as given
    assert refusal.status_code == 400
    console.editor.setPlainText(refused_query)
    qtbot.mouseClick(console.run_button, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert (
        console.status.text() == refusal.json()["detail"] == "only SELECT queries are allowed (this is DROP)"
    )
    assert console.table.rowCount() == 0 and not console.export.isEnabled()
    save_screenshot(window, "sql-console-refused")


def _range(top: int, left: int, bottom: int, right: int):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QTableWidgetSelectionRange

    return QTableWidgetSelectionRange(top, left, bottom, right)


def test_csv_and_tsv_exact_bytes() -> None:
    rows = [[1, 'a,"b"', None, 2.5, True, ["x", 1]], [2, "line\nbreak", "", 0.1, False, {"k": "é"}]]
    assert people.csv_bytes(["id", "s", "n", "f", "b", "j"], rows) == (
        b'id,s,n,f,b,j\r\n1,"a,""b""",,2.5,true,"[""x"",1]"\r\n'
        b'2,"line\nbreak",,0.1,false,"{""k"":""\xc3\xa9""}"\r\n'
    )
    assert people.tsv_text([["a\tb", "c\nd"], ["", "e"]]) == "a b\tc d\n\te"


def test_a_viewer_sees_neither_people_nor_the_console(qtbot, secret_service: Path, live_api: LiveApi) -> None:
    with closing(live_api.http()) as api:
        made = api.post("/api/users", json={"username": "vera", "role": "viewer"}).json()
    try:
        window = open_window(qtbot, Profile("vera", api_url=live_api.url, username="vera"), made["password"])
        qtbot.waitUntil(lambda: window.owner.role == "viewer", timeout=WAIT)
        assert window.dashboard.source is not None and window.dashboard.source.client is not None
        assert not tab_visible(window, window.owner.people) and not tab_visible(window, window.owner.sql)
        assert tab_visible(window, window.stack)
        window.close()
        secret_store.delete_profile("vera")
    finally:
        with closing(live_api.http()) as api:
            api.delete(f"/api/users/{made['id']}")


def test_connect_to_an_existing_pixel_needs_no_engine_and_hides_the_stack(
    qtbot, secret_service: Path, live_api: LiveApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")  # no engine to be found
    window = MainWindow(ProfileStore(), ReportCache())
    qtbot.addWidget(window)
    window.show()
    idle(qtbot, window)
    qtbot.mouseClick(window.owner.connect_existing, Qt.MouseButton.LeftButton)
    dialog = window.owner.dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.name, "colleague")
    qtbot.keyClicks(dialog.api_url, live_api.url + "/")
    qtbot.keyClicks(dialog.username, live_api.username)
    qtbot.keyClicks(dialog.password, "wrong-password-123")
    screenshots(qtbot, dialog, "connect-existing")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert dialog.message.text() == "wrong username or password"
    assert (
        window.store.get("colleague") is None
        and secret_store.get_secret("colleague", "admin_password") is None
    )

    dialog.password.clear()
    qtbot.keyClicks(dialog.password, live_api.password)
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.profile is not None and window.profile.name == "colleague", timeout=WAIT)
    idle(qtbot, window)
    profile = window.store.get("colleague")
    assert profile is not None and profile.engine == NO_ENGINE and profile.api_url == live_api.url
    assert secret_store.get_secret("colleague", "admin_password") == live_api.password
    qtbot.waitUntil(lambda: window.owner.role == "admin", timeout=WAIT)
    assert not tab_visible(window, window.stack) and tab_visible(window, window.owner.people)
    qtbot.waitUntil(lambda: len(window.dashboard.sites) == 3, timeout=WAIT)
    assert window.stack.provisioner is None
    window.close()
    secret_store.delete_profile("colleague")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LoopbackSshd]:
    server = LoopbackSshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def test_edit_a_profile_and_remove_it_with_its_keyring_entries(
    qtbot, secret_service: Path, live_api: LiveApi, sshd: LoopbackSshd, tmp_path: Path
) -> None:
    old_key = "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ1M2y9rt4qr2ZSP3P6HBm0n6Rj4bAxGdpy2tYcG0tX"
    profile = Profile("office", engine="ssh://pixel@127.0.0.1:1", api_url=live_api.url, host_key=old_key)
    window = open_window(qtbot, profile, "stale-password")
    asked: list[str] = []
    window.confirm_key = lambda text: asked.append(text) or True
    qtbot.mouseClick(window.owner.edit, Qt.MouseButton.LeftButton)
    editor = window.owner.dialog
    assert editor is not None
    editor.engine.setText(sshd.url)
    key_file = tmp_path / "id_pixel"
    editor.ssh_key.setText(str(key_file))
    qtbot.keyClicks(editor.passphrase, "key-passphrase-1")
    qtbot.keyClicks(editor.password, live_api.password)
    editor.tls_dir.setText("")
    qtbot.mouseClick(editor.check_key, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert len(asked) == 1 and sshd.fingerprint() in asked[0] and "The key you trusted was" in asked[0]
    assert editor.host_key_label.text() == sshd.fingerprint()
    screenshots(qtbot, editor, "profile-editor")
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    saved = window.store.get("office")
    assert saved is not None
    assert (saved.engine, saved.ssh_key, saved.ssh_key_locked, saved.host_key) == (
        sshd.url,
        str(key_file),
        True,
        sshd.public_key(),
    )
    assert keyring.get_password("pixel-desktop", "office/ssh_passphrase") == "key-passphrase-1"
    assert keyring.get_password("pixel-desktop", "office/admin_password") == live_api.password
    with ApiClient(live_api.url, "owner", secret_store.get_secret("office", "admin_password") or "") as c:
        assert c.login()["user"]["username"] == "owner"

    # remove: asked first, naming it; every keyring entry of the profile goes
    secret_store.set_secret("office", "api_token", "tok-1")
    secret_store.set_secret("other", "admin_password", "keep-me")
    qtbot.mouseClick(window.owner.edit, Qt.MouseButton.LeftButton)
    editor = window.owner.dialog
    removal: list[str] = []
    editor.confirm = lambda text: removal.append(text) or True
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert removal[0].startswith("Remove the profile 'office' and its passwords from the keyring?")
    assert window.store.get("office") is None
    for kind in secret_store.KINDS:
        assert keyring.get_password("pixel-desktop", f"office/{kind}") is None
    assert keyring.get_password("pixel-desktop", "other/admin_password") == "keep-me"
    secret_store.delete_profile("other")
    window.close()
