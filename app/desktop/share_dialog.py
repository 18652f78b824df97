"""The "Share…" dialog: a site's share links (a read-only web view for people without an account) — list them,
make one (name, fixed filters: none, the dashboard's current ones or a saved segment's; the periods a viewer may
pick; an optional expiry and password; the origins allowed to embed it), copy its link or an iframe snippet,
revoke one.

Contract: every request runs on the worker pool through `app.client.share`; the API decides (admins only, the
origins' form, an expiry in the past) and a refusal shows the API's own words in the status line. A link's token
is in the create answer only, so "Copy link" and "Copy embed code" work for the links made in this dialog; for
older ones the status says to make a new link. The link's address is `base` (`share.public_base`: the stack's
HTTPS edge, or the API's address when there is none). The clipboard is `self.copy_text`, replaceable by tests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTimeZone, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import segments as segments_client
from pixel.app.client import share
from pixel.app.client.api import ApiClient
from pixel.app.desktop.status_colours import status_style
from pixel.app.desktop.workers import Runner

COLUMNS = ("Name", "Token", "Periods", "Filters", "Password", "Expires", "State")


def _when(ts: float | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _state(link: dict[str, Any], now: float) -> str:
    if link.get("revoked_at") is not None:
        return "revoked"
    if link.get("expires_at") is not None and now >= float(link["expires_at"]):
        return "expired"
    return "active"


class ShareDialog(QDialog):
    created = Signal(dict)  # the API's answer, token included
    revoked = Signal(int)  # share id

    def __init__(
        self,
        runner: Runner,
        client: ApiClient,
        site: dict[str, Any],
        base: str,
        filters: list[list[str]] | None = None,
        parent: QWidget | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Share {site['domain']}")
        self.runner, self.client, self.site, self.base = runner, client, site, base
        self.now = now or (lambda: datetime.now(UTC).timestamp())
        self.current_filters = [list(f) for f in (filters or [])]
        self.links: list[dict[str, Any]] = []
        self.tokens: dict[int, str] = {}  # share id -> token, for the links made here
        self.copy_text: Callable[[str], None] = lambda text: QGuiApplication.clipboard().setText(text)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.copy_link = QPushButton("Copy link")
        self.copy_link.clicked.connect(lambda: self._copy("link"))
        self.copy_embed = QPushButton("Copy embed code")
        self.copy_embed.clicked.connect(lambda: self._copy("embed"))
        self.revoke_button = QPushButton("Revoke…")
        self.revoke_button.clicked.connect(self.revoke)
        self.confirm_revoke: Callable[[dict[str, Any]], bool] = self._confirm_dialog
        row_buttons = QHBoxLayout()
        for b in (self.copy_link, self.copy_embed, self.revoke_button):
            row_buttons.addWidget(b)
        row_buttons.addStretch(1)

        # a new link
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. Client report, status page")
        self.scope = QComboBox()
        self.periods: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, (key, label) in enumerate(share.PERIODS.items()):
            box = QCheckBox(label)
            box.setChecked(key in ("7d", "30d"))
            self.periods[key] = box
            grid.addWidget(box, i // 4, i % 4)
        self.expires = QCheckBox("Expires on")
        self.expiry = QDateTimeEdit()
        self.expiry.setTimeZone(QTimeZone.utc())
        self.expiry.setDisplayFormat("yyyy-MM-dd HH:mm 'UTC'")
        self.expiry.setCalendarPopup(True)
        self.expiry.setDateTime(QDateTime.fromSecsSinceEpoch(int(self.now()) + 30 * 86400, QTimeZone.utc()))
        self.expiry.setEnabled(False)
        self.expires.toggled.connect(self.expiry.setEnabled)
        expiry_row = QHBoxLayout()
        expiry_row.addWidget(self.expires)
        expiry_row.addWidget(self.expiry)
        expiry_row.addStretch(1)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("optional, at least 8 characters")
        self.origins = QLineEdit()
        self.origins.setPlaceholderText(
            "optional: https://status.example.com (several: separate with spaces)"
        )
        self.create_button = QPushButton("Create link")
        self.create_button.clicked.connect(self.make_link)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("Fixed filters:", self.scope)
        form.addRow("Viewers may pick:", grid)
        form.addRow("Expiry:", expiry_row)
        form.addRow("Password:", self.password)
        form.addRow("May be embedded on:", self.origins)

        self.link = QLineEdit()
        self.link.setReadOnly(True)
        self.link.setPlaceholderText("The new link appears here (its token is shown only once)")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.create_button)
        bottom.addStretch(1)
        bottom.addWidget(close)

        where = (
            "Viewers open links at "
            + base
            + (
                ""
                if base.startswith("https://")
                else " (no HTTPS edge: reachable only where this address is)"
            )
        )
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Share links of {site['domain']}. {where}."))
        layout.addWidget(self.table)
        layout.addLayout(row_buttons)
        layout.addWidget(QLabel("<b>New link</b>"))
        layout.addLayout(form)
        layout.addLayout(bottom)
        layout.addWidget(self.link)
        layout.addWidget(self.status)
        self._fill_scope([])
        self._selected()
        self.reload()

    # ------------------------------------------------------------------ state
    def _say(self, text: str, kind: str = "") -> None:
        self.status.setStyleSheet(status_style(kind, self) if kind else "")  # type: ignore[arg-type]
        self.status.setText(text)

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self._say(getattr(exc, "detail", "") or str(exc), "bad")

    def _busy(self, busy: bool) -> None:
        self.create_button.setEnabled(not busy)
        if busy:
            self.revoke_button.setEnabled(False)
        else:
            self._selected()

    def _fill_scope(self, saved: list[dict[str, Any]]) -> None:
        self.scope.clear()
        self.scope.addItem("None: the whole site", [])
        if self.current_filters:
            n = len(self.current_filters)
            self.scope.addItem(f"The dashboard's filters ({n})", self.current_filters)
        for seg in saved:
            self.scope.addItem(f"Segment: {seg['name']}", [list(f) for f in seg["filters"]])

    def reload(self) -> None:
        client, site_id = self.client, int(self.site["id"])

        def work(_t: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return share.links(client, site_id), segments_client.segments(client, site_id)

        self._busy(True)
        self.runner.submit(work, self._loaded, self._failed)

    def _loaded(self, answer: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        links, saved = answer
        chosen = self.scope.currentData()
        self._fill_scope(saved)
        index = self.scope.findData(chosen)
        self.scope.setCurrentIndex(max(index, 0))
        self.show_links(links)
        self._busy(False)

    def show_links(self, links: list[dict[str, Any]]) -> None:
        self.links = links
        now = self.now()
        self.table.setRowCount(len(links))
        for row, link in enumerate(links):
            values = (
                link["name"],
                link["prefix"] + "…",
                ", ".join(link["periods"]),
                "; ".join(" ".join(f) for f in link["filters"]) or "none",
                "yes" if link["has_password"] else "no",
                _when(link["expires_at"]),
                _state(link, now),
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, link["id"])
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self._selected()

    def selected(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return self.links[rows[0].row()] if rows else None

    def _selected(self) -> None:
        link = self.selected()
        usable = link is not None and _state(link, self.now()) == "active"
        self.copy_link.setEnabled(usable)
        self.copy_embed.setEnabled(usable)
        self.revoke_button.setEnabled(link is not None and link.get("revoked_at") is None)

    def select_id(self, share_id: int) -> None:
        for row, link in enumerate(self.links):
            if link["id"] == share_id:
                self.table.selectRow(row)

    # ------------------------------------------------------------------ actions
    def make_link(self) -> None:
        periods = [key for key, box in self.periods.items() if box.isChecked()]
        if not self.name.text().strip():
            self._say("A share link needs a name.", "bad")
            return
        if not periods:
            self._say("Tick at least one period the viewers may pick.", "bad")
            return
        client, site_id = self.client, int(self.site["id"])
        name, password = self.name.text(), self.password.text()
        filters = list(self.scope.currentData() or [])
        expires_at = float(self.expiry.dateTime().toSecsSinceEpoch()) if self.expires.isChecked() else None
        origins = share.parse_origins(self.origins.text())

        def work(_t: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            made = share.create(
                client,
                site_id,
                name,
                periods=periods,
                filters=filters,
                expires_at=expires_at,
                password=password or None,
                embed_origins=origins,
            )
            return made, share.links(client, site_id)

        self._busy(True)
        self._say("Creating the link…")
        self.runner.submit(work, self._created, self._failed)

    def _created(self, answer: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        made, links = answer
        self.tokens[int(made["id"])] = made["token"]
        self.show_links(links)
        self.select_id(int(made["id"]))
        url = share.link_url(self.base, made["token"])
        self.link.setText(url)
        self.password.clear()
        self._busy(False)
        self._say("Link created. Copy it now: its token is shown only once.", "good")
        self.created.emit(made)

    def _copy(self, what: str) -> None:
        link = self.selected()
        if link is None:
            return
        token = self.tokens.get(int(link["id"]))
        if token is None:
            self._say(
                "This link's token was shown only when it was made; make a new link to copy its address.",
                "warn",
            )
            return
        url = share.link_url(self.base, token)
        if what == "link":
            self.copy_text(url)
            self._say("Link copied.", "good")
            return
        self.copy_text(share.embed_snippet(url, link["name"]))
        if link["embed_origins"]:
            self._say(f"Embed code copied; it works on {', '.join(link['embed_origins'])} only.", "good")
        else:
            self._say(
                "Embed code copied, but this link allows no embedding origin: browsers will refuse the frame. "
                "Make a link with the site's origin under 'May be embedded on'.",
                "warn",
            )

    def _confirm_dialog(self, link: dict[str, Any]) -> bool:
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self,
            "Revoke the link",
            f"Revoke “{link['name']}”? Everyone using it, and every page embedding it, loses access at once.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def revoke(self) -> None:
        link = self.selected()
        if link is None or not self.confirm_revoke(link):
            return
        client, site_id, share_id = self.client, int(self.site["id"]), int(link["id"])

        def work(_t: object) -> list[dict[str, Any]]:
            share.revoke(client, site_id, share_id)
            return share.links(client, site_id)

        def done(links: list[dict[str, Any]]) -> None:
            self.tokens.pop(share_id, None)
            self.show_links(links)
            self.select_id(share_id)
            self._busy(False)
            self._say(f"“{link['name']}” is revoked: its page and data now answer 'not valid'.", "good")
            self.revoked.emit(share_id)

        self._busy(True)
        self.runner.submit(work, done, self._failed)


def open_share_dialog(window: Any) -> ShareDialog | None:
    """The dialog for the main window's dashboard site and filters (None, with a status, when not connected)."""
    dashboard = window.dashboard
    client = getattr(getattr(dashboard, "source", None), "client", None)
    if client is None or dashboard.site is None:
        return None
    profile = getattr(window, "profile", None)
    base = share.public_base(client.base_url, getattr(profile, "collector_url", "") or "")
    dialog = ShareDialog(window.runner, client, dashboard.site, base, list(dashboard.filters), window)
    window.share_dialog = dialog  # kept: a dialog without a Python reference would be collected
    dialog.resize(900, 640)
    dialog.show()
    return dialog
