"""The People page (admins): users with their role, sites and state, and the signed-in user's API tokens.

Contract: every change goes through `pixel.app.client.people` on a worker, then the lists are read again from
the API (F5 / Ctrl+R reads them again too). A generated password or a new token is shown once, in the
"shown once" box, with Copy and (for a password) an offer to keep it in the keyring as a profile for that
account (`offer_keyring`); the box is cleared by the next action. Selecting a user loads its role and sites into
the controls; "Save role and sites" sends both in one request. Deleting or disabling a user, changing its role,
and revoking a token ask first (`confirm`, a callable tests replace), naming the user or token; Delete on the
user table deletes the selected user (after asking). API refusals are shown word for word.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import people
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.workers import Runner

if TYPE_CHECKING:
    from pixel.app.client import ApiClient

USER_HEADERS = ["id", "username", "role", "sites", "state"]
TOKEN_HEADERS = ["id", "name", "starts with", "created", "last used"]


def _when(ts: float | None) -> str:
    return "never" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class PeoplePage(QWidget):
    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.client: ApiClient | None = None
        self.sites: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.tokens: list[dict[str, Any]] = []
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        # (username, password) -> saved in the keyring; None: the offer is not shown.
        self.offer_keyring: Callable[[str, str], str] | None = None
        self._shown_user = ""

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # users
        self.user_table = CopyTable(USER_HEADERS)
        self.user_table.itemSelectionChanged.connect(self._user_selected)
        self.username = QLineEdit()
        self.username.setPlaceholderText("user name")
        self.role = QComboBox()
        self.role.addItems(["viewer", "admin"])
        self.all_sites = QCheckBox("&All sites")
        self.site_list = QListWidget()
        self.all_sites.toggled.connect(lambda on: self.site_list.setEnabled(not on))
        self.site_list.setMaximumHeight(110)
        self.add_user = QPushButton("A&dd user")
        self.add_user.clicked.connect(self.add)
        self.set_sites = QPushButton("Save &role and sites of selected")
        self.set_sites.clicked.connect(self.apply_sites)
        self.delete_user = QPushButton("De&lete user")
        self.delete_user.clicked.connect(self.remove_user)
        self.disable = QPushButton("Disa&ble")
        self.disable.clicked.connect(self.toggle_disabled)
        self.reset = QPushButton("Reset &password")
        self.reset.clicked.connect(self.reset_password)
        form = QHBoxLayout()
        for w in (QLabel("New user:"), self.username, QLabel("role"), self.role, self.add_user):
            form.addWidget(w)
        grants = QHBoxLayout()
        grants.addWidget(self.all_sites)
        grants.addWidget(self.site_list, 1)
        actions = QHBoxLayout()
        for b in (self.set_sites, self.disable, self.reset, self.delete_user):
            actions.addWidget(b)
        actions.addStretch(1)
        users_box = QGroupBox("Users")
        ub = QVBoxLayout(users_box)
        ub.addWidget(self.user_table, 1)
        ub.addLayout(form)
        ub.addWidget(
            QLabel("Role and sites of the new user, or of the selected user with “Save role and sites”:")
        )
        ub.addLayout(grants)
        ub.addLayout(actions)

        # tokens
        self.token_table = CopyTable(TOKEN_HEADERS)
        self.token_name = QLineEdit()
        self.token_name.setPlaceholderText("what the token is for, e.g. weekly report script")
        self.create_token = QPushButton("Create &token")
        self.create_token.clicked.connect(self.new_token)
        self.revoke = QPushButton("Re&voke selected")
        self.revoke.clicked.connect(self.revoke_token)
        trow = QHBoxLayout()
        for w in (self.token_name, self.create_token, self.revoke):
            trow.addWidget(w)
        tokens_box = QGroupBox("Your API tokens (read-only, for scripts)")
        tb = QVBoxLayout(tokens_box)
        tb.addWidget(self.token_table, 1)
        tb.addLayout(trow)

        # shown once
        self.secret = QLineEdit()
        self.secret.setReadOnly(True)
        self.secret_label = QLabel("")
        self.copy_secret = QPushButton("&Copy")
        self.copy_secret.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.secret.text()))
        self.keep_secret = QPushButton("Keep in the &keyring")
        self.keep_secret.clicked.connect(self._keep)
        self.secret_box = QGroupBox("Shown once: copy it now")
        sb = QHBoxLayout(self.secret_box)
        for w in (self.secret_label, self.secret, self.copy_secret, self.keep_secret):
            sb.addWidget(w)
        self.secret_box.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.secret_box)
        layout.addWidget(users_box, 3)
        layout.addWidget(tokens_box, 2)
        for keys in ("F5", "Ctrl+R"):
            QShortcut(QKeySequence(keys), self, self.refresh)
        delete_key = QShortcut(QKeySequence(Qt.Key.Key_Delete), self.user_table, self.remove_user)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)

    # ------------------------------------------------------------------ data
    def set_client(self, client: ApiClient | None, sites: list[dict[str, Any]]) -> None:
        self.client, self.sites = client, sites
        self.site_list.clear()
        for site in sites:
            item = QListWidgetItem(f"{site['domain']} (#{site['id']})")
            item.setData(Qt.ItemDataRole.UserRole, site["id"])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.site_list.addItem(item)
        self.refresh()

    def refresh(self) -> None:
        client = self.client
        if client is None:
            return
        self.runner.submit(
            lambda _t: (people.users(client), people.tokens(client)),
            on_done=self._show,
            on_error=self._failed,
        )

    def _show(self, lists: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.users, self.tokens = lists
        domains = {s["id"]: s["domain"] for s in self.sites}
        self.user_table.set_rows(
            USER_HEADERS,
            [
                [
                    u["id"],
                    u["username"],
                    u["role"],
                    "all sites"
                    if u["sites"] is None
                    else ", ".join(domains.get(i, f"#{i}") for i in u["sites"]) or "none",
                    "disabled" if u["disabled"] else "active",
                ]
                for u in self.users
            ],
        )
        self.token_table.set_rows(
            TOKEN_HEADERS,
            [
                [t["id"], t["name"], t["prefix"] + "…", _when(t["created_at"]), _when(t["last_used_at"])]
                for t in self.tokens
            ],
        )

    def _failed(self, exc: BaseException) -> None:
        self.message.setText(str(getattr(exc, "detail", "") or exc))

    def _after(self, text: str) -> Callable[[Any], None]:
        def done(_result: Any) -> None:
            self.message.setText(text)
            self.refresh()

        return done

    # ------------------------------------------------------------------ selection and grants
    def checked_sites(self) -> list[int] | None:
        if self.all_sites.isChecked():
            return None
        items = (self.site_list.item(i) for i in range(self.site_list.count()))
        return [
            int(it.data(Qt.ItemDataRole.UserRole)) for it in items if it.checkState() == Qt.CheckState.Checked
        ]

    def selected_user(self) -> dict[str, Any] | None:
        rows = {i.row() for i in self.user_table.selectedIndexes()}
        return self.users[min(rows)] if rows and min(rows) < len(self.users) else None

    def select_user(self, username: str) -> None:
        for row, user in enumerate(self.users):
            if user["username"] == username:
                self.user_table.selectRow(row)
                return
        raise LookupError(username)

    def _user_selected(self) -> None:
        user = self.selected_user()
        if user is None:
            return
        self.disable.setText("Ena&ble" if user["disabled"] else "Disa&ble")
        self.role.setCurrentText(user["role"])
        self.all_sites.setChecked(user["sites"] is None)
        held = set(user["sites"] or [])
        for i in range(self.site_list.count()):
            item = self.site_list.item(i)
            on = int(item.data(Qt.ItemDataRole.UserRole)) in held
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _hide_secret(self) -> None:
        self.secret.clear()
        self.secret_box.hide()

    def _show_secret(self, label: str, value: str, username: str = "") -> None:
        self.secret_label.setText(label)
        self.secret.setText(value)
        self._shown_user = username
        self.keep_secret.setVisible(bool(username) and self.offer_keyring is not None)
        self.secret_box.show()

    def _keep(self) -> None:
        if self.offer_keyring is None or not self._shown_user:
            return
        user, password, keep = self._shown_user, self.secret.text(), self.offer_keyring
        self.runner.submit(
            lambda _t: keep(user, password),
            on_done=lambda name: self.message.setText(
                f"The password of {user} is in the keyring (profile {name})."
            ),
            on_error=self._failed,
        )

    # ------------------------------------------------------------------ actions
    def add(self) -> None:
        client, name = self.client, self.username.text().strip()
        if client is None or not name:
            self.message.setText("Type the new user's name first.")
            return
        role, sites = self.role.currentText(), self.checked_sites()
        self._hide_secret()

        def created(user: dict[str, Any]) -> None:
            self.username.clear()
            self._show_secret(f"Password of {user['username']}:", user["password"] or "", user["username"])
            self._after(f"Added {user['username']} ({user['role']}).")(None)

        self.runner.submit(
            lambda _t: people.add_user(client, name, role, sites), on_done=created, on_error=self._failed
        )

    def apply_sites(self) -> None:
        """The selected user's role (from the role box) and sites, in one request."""
        client, user = self.client, self.selected_user()
        if client is None or user is None:
            self.message.setText("Select a user first.")
            return
        role, sites = self.role.currentText(), self.checked_sites()
        if role != user["role"]:
            what = "an admin: they can change sites, goals and people" if role == "admin" else "a viewer"
            if not self.confirm(f"Make {user['username']} {what}? Their sessions end now."):
                return
        self.runner.submit(
            lambda _t: people.set_access(client, user["id"], role, sites),
            on_done=self._after(f"Role and sites of {user['username']} saved."),
            on_error=self._failed,
        )

    def remove_user(self) -> None:
        client, user = self.client, self.selected_user()
        if client is None or user is None:
            self.message.setText("Select a user first.")
            return
        if not self.confirm(
            f"Delete the user {user['username']} ({user['role']})? They can no longer sign in; their sessions "
            "and API tokens end. This cannot be undone."
        ):
            return
        self.runner.submit(
            lambda _t: people.delete_user(client, user["id"]),
            on_done=self._after(f"Deleted the user {user['username']}."),
            on_error=self._failed,
        )

    def toggle_disabled(self) -> None:
        client, user = self.client, self.selected_user()
        if client is None or user is None:
            self.message.setText("Select a user first.")
            return
        disable = not user["disabled"]
        if disable and not self.confirm(f"Disable {user['username']}? Their sessions end now."):
            return
        verb = "Disabled" if disable else "Enabled"
        self.runner.submit(
            lambda _t: people.set_disabled(client, user["id"], disable),
            on_done=self._after(f"{verb} {user['username']}."),
            on_error=self._failed,
        )

    def reset_password(self) -> None:
        client, user = self.client, self.selected_user()
        if client is None or user is None:
            self.message.setText("Select a user first.")
            return
        if not self.confirm(f"Give {user['username']} a new password? The current one stops working."):
            return
        self._hide_secret()

        def reset(password: str) -> None:
            self._show_secret(f"New password of {user['username']}:", password, user["username"])
            self._after(f"New password for {user['username']}.")(None)

        self.runner.submit(
            lambda _t: people.reset_password(client, user["id"]), on_done=reset, on_error=self._failed
        )

    def new_token(self) -> None:
        client, name = self.client, self.token_name.text().strip()
        if client is None or not name:
            self.message.setText("Name the token first (what it is for).")
            return
        self._hide_secret()

        def created(token: dict[str, Any]) -> None:
            self.token_name.clear()
            self._show_secret(f"Token {token['name']}:", token["token"])
            self._after(f"Token {token['name']} created.")(None)

        self.runner.submit(
            lambda _t: people.create_token(client, name), on_done=created, on_error=self._failed
        )

    def revoke_token(self) -> None:
        client = self.client
        rows = {i.row() for i in self.token_table.selectedIndexes()}
        if client is None or not rows or min(rows) >= len(self.tokens):
            self.message.setText("Select a token first.")
            return
        token = self.tokens[min(rows)]
        if not self.confirm(f"Revoke the token {token['name']}? Scripts using it stop working."):
            return
        self.runner.submit(
            lambda _t: people.revoke_token(client, token["id"]),
            on_done=self._after(f"Token {token['name']} revoked."),
            on_error=self._failed,
        )

    def _confirm_dialog(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Pixel", text)
        return answer == QMessageBox.StandardButton.Yes
