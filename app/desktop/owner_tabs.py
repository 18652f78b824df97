"""What the main window gains for owner tasks: the People and SQL tabs (shown to admins only, once the API
said who is signed in), a "Share…" button (admins only: the share links of the dashboard's site,
share_dialog.py), "Connect to an existing Pixel…" and "Edit profile…" buttons, and the stack tab hidden for a
profile with no Docker engine.

Contract: `profile_chosen(profile)` hides the admin tabs at once (a viewer never sees them, not even while
connecting) and shows the stack tab only if the profile has an engine; `connected(profile, client)` asks
the API for the signed-in user and the sites on a worker, then shows the admin tabs if the user is an admin.
A site added, renamed or deleted on the Sites page (`SitesPage.sites_changed`) is at once in the site lists
of the dashboard, Journeys, Goals, People (grants) and SQL pages: they read the sites again.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QPushButton

from pixel.app import secret_store
from pixel.app.client import people
from pixel.app.desktop.people_page import PeoplePage
from pixel.app.desktop.profile_editor import ConnectExistingDialog, ProfileEditor
from pixel.app.desktop.share_dialog import open_share_dialog
from pixel.app.desktop.sql_console import SqlConsole
from pixel.app.profiles import Profile

if TYPE_CHECKING:
    from PySide6.QtWidgets import QHBoxLayout

    from pixel.app.client import ApiClient
    from pixel.app.desktop.window import MainWindow


class OwnerTabs:
    def __init__(self, window: MainWindow, bar: QHBoxLayout) -> None:
        self.window = window
        self.role = ""
        self.people = PeoplePage(window.runner)
        self.sql = SqlConsole(window.runner)
        self.people.offer_keyring = self.keep_password
        window.tabs.addTab(self.people, "People")
        window.tabs.addTab(self.sql, "SQL")
        self.share = QPushButton("Share…")  # share links of the dashboard's site (admins; share_dialog.py)
        self.share.clicked.connect(lambda: open_share_dialog(self.window))
        bar.insertWidget(bar.count() - 1, self.share)
        self._admin_tabs(False)
        self.connect_existing = QPushButton("Connect to an existing Pixel…")
        self.connect_existing.clicked.connect(self.open_connect_existing)
        self.edit = QPushButton("Edit profile…")
        self.edit.clicked.connect(self.open_editor)
        bar.insertWidget(bar.count() - 1, self.connect_existing)
        bar.insertWidget(bar.count() - 1, self.edit)
        self.dialog: ConnectExistingDialog | ProfileEditor | None = None
        self.client: ApiClient | None = None
        window.sites_page.sites_changed.connect(self.sites_changed)

    def _admin_tabs(self, visible: bool) -> None:
        tabs = self.window.tabs
        for page in (self.people, self.sql):
            tabs.setTabVisible(tabs.indexOf(page), visible)
        self.share.setVisible(visible)

    def profile_chosen(self, profile: Profile) -> None:
        self.role = ""
        self.client = None
        self._admin_tabs(False)
        self.people.set_client(None, [])
        self.sql.set_client(None, [])
        tabs = self.window.tabs
        tabs.setTabVisible(tabs.indexOf(self.window.stack), profile.has_engine)
        shown = tabs.currentWidget()
        if shown in (self.people, self.sql) or (shown is self.window.stack and not profile.has_engine):
            tabs.setCurrentWidget(self.window.dashboard)

    def connected(self, profile: Profile, client: ApiClient) -> None:
        def ask(_t: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            return people.me(client), client.sites()

        def known(answer: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
            if self.window.profile is None or self.window.profile.name != profile.name:
                return
            user, sites = answer
            self.role = user["role"]
            admin = self.role == "admin"
            self._admin_tabs(admin)
            if admin:
                self.client = client
                self.people.set_client(client, sites)
                self.sql.set_client(client, sites)

        self.window.runner.submit(ask, on_done=known, on_error=lambda _e: None)

    def sites_changed(self) -> None:
        window, client = self.window, self.client
        window.dashboard.load_sites()
        window.journeys_page.load_sites()
        window.goals_page.refresh()
        if client is None:
            return

        def known(sites: list[dict[str, Any]]) -> None:
            if self.client is client:
                self.people.set_client(client, sites)
                self.sql.set_client(client, sites)

        window.runner.submit(lambda _t: client.sites(), on_done=known, on_error=lambda _e: None)

    def keep_password(self, username: str, password: str) -> str:
        """A profile for `username` on the current Pixel, its password in the keyring (worker thread)."""
        profile = self.window.profile
        if profile is None:
            raise LookupError("no profile")
        name = re.sub(r"[^A-Za-z0-9 _.-]", "-", f"{profile.name} {username}")[:64]
        copy = replace(profile, name=name, username=username)  # validates the name first
        secret_store.set_secret(name, "admin_password", password)
        self.window.store.save(copy)
        return name

    def open_connect_existing(self) -> None:
        dialog = ConnectExistingDialog(self.window.runner, self.window.store, self.window)
        dialog.saved.connect(lambda name: self.window.reload_profiles(name))
        self.dialog = dialog
        dialog.show()

    def open_editor(self) -> None:
        profile = self.window.profile
        if profile is None:
            return
        dialog = ProfileEditor(
            self.window.runner, self.window.store, profile, self.window.confirm_key, self.window
        )
        dialog.saved.connect(lambda name: self.window.reload_profiles(name or None))
        self.dialog = dialog
        dialog.show()
