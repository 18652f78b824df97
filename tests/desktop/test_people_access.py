"""People page: a user's role and site grants changed together, and a user deleted, click by click against a
real `pixel serve`; each change read back through the API; light and dark screenshots."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from pixel.app.desktop.window import MainWindow
from tests.desktop import test_owner_tasks
from tests.desktop.conftest import LiveApi
from tests.desktop.test_owner_pages import screenshots
from tests.desktop.test_owner_tasks import idle, login

admin_window = test_owner_tasks.admin_window  # the fixture: a main window signed in as the admin


def _check_only(page, site_ids: list[int], all_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    page.all_sites.setChecked(False)
    for row, sid in enumerate(all_ids):
        state = Qt.CheckState.Checked if sid in site_ids else Qt.CheckState.Unchecked
        page.site_list.item(row).setCheckState(state)


def test_people_role_and_sites_then_delete(
    qtbot, admin_window: MainWindow, live_api: LiveApi, secret_service: Path
) -> None:
    window, page = admin_window, admin_window.owner.people
    window.tabs.setCurrentWidget(page)
    api = live_api.http()
    ids = list(live_api.sites.values())
    shop, blog = live_api.sites["shop.example"], live_api.sites["blog.example"]
    erin = api.post("/api/users", json={"username": "erin", "role": "viewer", "sites": [shop]}).json()
    qtbot.keyClick(page, Qt.Key.Key_F5)
    idle(qtbot, window)

    # selecting loads the user's role and sites into the controls
    page.select_user("erin")
    assert page.role.currentText() == "viewer" and not page.all_sites.isChecked()
    assert page.checked_sites() == [shop]

    # viewer -> admin of blog only: asked first, naming the user and what an admin may do; Cancel changes nothing
    asked: list[str] = []
    page.confirm = lambda text: asked.append(text) or False
    page.role.setCurrentText("admin")
    _check_only(page, [blog], ids)
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked == ["Make erin an admin: they can change sites, goals and people? Their sessions end now."]
    stored = api.get(f"/api/users/{erin['id']}").json()
    assert (stored["role"], stored["sites"]) == ("viewer", [shop])
    page.confirm = lambda text: asked.append(text) or True
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    stored = api.get(f"/api/users/{erin['id']}").json()
    assert (stored["role"], stored["sites"]) == ("admin", [blog])
    assert page.message.text() == "Role and sites of erin saved."
    row = next(r for r in range(page.user_table.rowCount()) if page.user_table.item(r, 1).text() == "erin")
    assert [page.user_table.item(row, c).text() for c in range(2, 5)] == ["admin", "blog.example", "active"]

    # all sites, same role: no question asked (only a role change asks)
    page.select_user("erin")
    page.all_sites.setChecked(True)
    asked.clear()
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked == []
    assert api.get(f"/api/users/{erin['id']}").json()["sites"] is None

    # back to a viewer of shop: one request changes both
    page.select_user("erin")
    page.role.setCurrentText("viewer")
    _check_only(page, [shop], ids)
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked == ["Make erin a viewer? Their sessions end now."]
    stored = api.get(f"/api/users/{erin['id']}").json()
    assert (stored["role"], stored["sites"]) == ("viewer", [shop])
    page.select_user("erin")
    screenshots(qtbot, window, "people-roles")

    # the signed-in admin cannot change their own role: the API's words, nothing changed
    page.select_user(live_api.username)
    page.role.setCurrentText("viewer")
    qtbot.mouseClick(page.set_sites, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert page.message.text() == "you cannot change your own role, sites or disabled flag"
    me = next(u for u in api.get("/api/users").json()["items"] if u["username"] == live_api.username)
    assert me["role"] == "admin"

    # delete: asked first naming the user; Cancel keeps them; Delete on the table removes them
    password = api.patch(f"/api/users/{erin['id']}", json={"password": "erin-password-1234"})
    assert password.status_code == 200
    asked.clear()
    page.confirm = lambda text: asked.append(text) or False
    page.select_user("erin")
    qtbot.mouseClick(page.delete_user, Qt.MouseButton.LeftButton)
    idle(qtbot, window)
    assert asked == [
        "Delete the user erin (viewer)? They can no longer sign in; their sessions and API tokens end. "
        "This cannot be undone."
    ]
    assert api.get(f"/api/users/{erin['id']}").status_code == 200
    page.confirm = lambda text: asked.append(text) or True
    page.select_user("erin")
    page.user_table.setFocus()
    qtbot.keyClick(page.user_table, Qt.Key.Key_Delete)
    idle(qtbot, window)
    assert api.get(f"/api/users/{erin['id']}").status_code == 404
    assert login(live_api, "erin", "erin-password-1234") == 401
    assert page.message.text() == "Deleted the user erin."
    assert "erin" not in [page.user_table.item(r, 1).text() for r in range(page.user_table.rowCount())]

    api.close()
