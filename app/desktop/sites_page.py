"""The Sites page: the list of sites; add one (domain, name, time zone); rename, time zone and the site's rules
(DNT/GPC, excluded paths, excluded IPs/ranges, allowed origins, retention) saved in one change; delete after a
confirmation naming the site; the snippet of both builds with copy buttons.

Every call goes through `pixel.app.client.site_admin.SiteAdmin` on a worker. A refusal is shown as the API's
(or the client's) own text and the form keeps what the owner typed; the API applies a change whole or not at
all. Keys: Ctrl+N new site, Ctrl+S save, Delete delete, F5/Ctrl+R refresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import available_timezones

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client.site_admin import SiteAdmin, deletion_text, lines, site_label
from pixel.app.desktop.owner_widgets import DeleteKey, MessagePage, add_page_shortcuts, confirm_delete
from pixel.app.desktop.workers import Runner


def zone_box() -> QComboBox:
    """An editable time-zone box; the IANA names are added when the page is first shown (not at start-up)."""
    box = QComboBox()
    box.setEditable(True)
    box.setCurrentText("UTC")
    return box


class SitesPage(QWidget, MessagePage):
    # a site was added, renamed or deleted here: the window's other pages read their site lists again
    sites_changed = Signal()

    def __init__(self, runner: Runner, admin: SiteAdmin | None = None) -> None:
        super().__init__()
        self.runner = runner
        self.admin = admin
        self.sites: list[dict[str, Any]] = []
        self.site: dict[str, Any] | None = None
        self.snippet: dict[str, Any] | None = None
        # Asked before a delete (tests answer without a dialog).
        self.confirm: Callable[[str], bool] = self._confirm_dialog

        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._chosen)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.delete_button = QPushButton("Delete site…")
        self.delete_button.clicked.connect(self.delete_current)
        self.import_button = QPushButton("Import history…")  # app/desktop/import_dialog.py
        self.import_button.clicked.connect(self.open_import)
        left = QVBoxLayout()
        left.addWidget(QLabel("Sites:"))
        left.addWidget(self.list)
        left.addWidget(self.delete_button)
        left.addWidget(self.import_button)
        left.addWidget(self.refresh_button)

        add_box = QGroupBox("Add a site")
        self.new_domain = QLineEdit()
        self.new_domain.setPlaceholderText("example.com")
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("optional, the domain when empty")
        self.new_zone = zone_box()
        self.add_button = QPushButton("Add site")
        self.add_button.clicked.connect(self.add_site)
        self.new_domain.returnPressed.connect(self.add_site)
        add_form = QFormLayout(add_box)
        add_form.addRow("Domain:", self.new_domain)
        add_form.addRow("Name:", self.new_name)
        add_form.addRow("Time zone:", self.new_zone)
        add_form.addRow(self.add_button)

        edit_box = QGroupBox("Site settings and rules")
        self.domain = QLabel("")
        self.name = QLineEdit()
        self.zone = zone_box()
        self.dnt = QCheckBox("Honour Do-Not-Track (events of such visitors are not stored)")
        self.gpc = QCheckBox("Honour Global Privacy Control")
        self.paths = QPlainTextEdit()
        self.paths.setPlaceholderText("/admin/*\n/preview  (one path per line, * matches anything)")
        self.ips = QPlainTextEdit()
        self.ips.setPlaceholderText("203.0.113.7\n10.0.0.0/8  (one address or range per line)")
        self.origins = QPlainTextEdit()
        self.origins.setPlaceholderText("https://example.com  (one per line; empty: any)")
        for box in (self.paths, self.ips, self.origins):
            box.setTabChangesFocus(True)
            box.setMaximumHeight(80)
        self.retention = QSpinBox()
        self.retention.setRange(0, 36500)
        self.retention.setSuffix(" days")
        self.retention.setSpecialValueText("forever")
        self.save_button = QPushButton("Save changes")
        self.save_button.clicked.connect(self.save)
        form = QFormLayout(edit_box)
        form.addRow("Domain:", self.domain)
        form.addRow("Name:", self.name)
        form.addRow("Time zone:", self.zone)
        form.addRow(self.dnt)
        form.addRow(self.gpc)
        form.addRow("Excluded paths:", self.paths)
        form.addRow("Excluded IPs and ranges:", self.ips)
        form.addRow("Allowed origins:", self.origins)
        form.addRow("Keep events:", self.retention)
        form.addRow(self.save_button)

        snippet_box = QGroupBox("Put Pixel on the site")
        self.html = QPlainTextEdit()
        self.extended_html = QPlainTextEdit()
        for box in (self.html, self.extended_html):
            box.setReadOnly(True)
            box.setMaximumHeight(60)
            box.setTabChangesFocus(True)
        self.difference = QLabel("")
        self.difference.setWordWrap(True)
        self.copy_html = QPushButton("Copy")
        self.copy_html.clicked.connect(lambda: self.copy("html"))
        self.copy_extended = QPushButton("Copy")
        self.copy_extended.clicked.connect(lambda: self.copy("extended_html"))
        snip = QFormLayout(snippet_box)
        row = QHBoxLayout()
        row.addWidget(self.html)
        row.addWidget(self.copy_html)
        snip.addRow("Default (consent-free):", row)
        row = QHBoxLayout()
        row.addWidget(self.extended_html)
        row.addWidget(self.copy_extended)
        snip.addRow("Extended:", row)
        snip.addRow(self.difference)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        right = QVBoxLayout()
        for w in (self.message, add_box, edit_box, snippet_box):
            right.addWidget(w)
        right.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 3)

        add_page_shortcuts(
            self,
            (
                (QKeySequence.StandardKey.New, self.new_domain.setFocus),
                (QKeySequence.StandardKey.Save, self.save),
                (QKeySequence("Ctrl+R"), self.refresh),
                (QKeySequence("F5"), self.refresh),
            ),
        )
        self._delete_key = DeleteKey(self.list, self.delete_current)
        self._enable(False)

    def showEvent(self, event: QShowEvent) -> None:
        if self.zone.count() == 0:
            zones = sorted(available_timezones())
            for box in (self.zone, self.new_zone):
                text = box.currentText()
                box.addItems(zones)
                box.setCurrentText(text)
        super().showEvent(event)

    # ------------------------------------------------------------------ state
    def set_admin(self, admin: SiteAdmin | None) -> None:
        self.admin = admin
        self.refresh()

    def open_import(self) -> None:
        if self.admin is not None:
            from pixel.app.desktop.import_dialog import open_import_dialog

            site_id = int(self.site["id"]) if self.site else None
            self.import_dialog = open_import_dialog(self, self.runner, self.admin.client, self.sites, site_id)

    def _enable(self, on: bool) -> None:
        for w in (
            self.name,
            self.zone,
            self.dnt,
            self.gpc,
            self.paths,
            self.ips,
            self.origins,
            self.retention,
        ):
            w.setEnabled(on)
        for b in (self.save_button, self.delete_button, self.copy_html, self.copy_extended):
            b.setEnabled(on)

    def refresh(self, select: int | None = None) -> None:
        if self.admin is None:
            return
        admin = self.admin
        keep = select if select is not None else (self.site["id"] if self.site else None)
        self.runner.submit(lambda _t: admin.sites(), lambda s: self._set_sites(s, keep), self._failed)

    def _set_sites(self, sites: list[dict[str, Any]], select: int | None) -> None:
        self.sites = sites
        self.list.blockSignals(True)
        self.list.clear()
        for s in sites:
            self.list.addItem(site_label(s))
        self.list.blockSignals(False)
        ids = [s["id"] for s in sites]
        self.site = None
        if sites:
            self.list.setCurrentRow(ids.index(select) if select in ids else 0)  # -1 after clear(): fires
        else:
            self._enable(False)

    def _chosen(self, row: int) -> None:
        if not 0 <= row < len(self.sites):
            return
        self.site = site = self.sites[row]
        self.domain.setText(site["domain"])
        self.name.setText(site["name"])
        self.zone.setCurrentText(site["timezone"])
        self.dnt.setChecked(site["honour_dnt"])
        self.gpc.setChecked(site["honour_gpc"])
        self.paths.setPlainText("\n".join(site["excluded_paths"]))
        self.ips.setPlainText("\n".join(site["excluded_ips"]))
        self.origins.setPlainText("\n".join(site["allowed_origins"]))
        self.retention.setValue(site["retention_days"])
        self._enable(True)
        self.html.clear()
        self.extended_html.clear()
        self.difference.clear()
        if self.admin is not None:
            admin, site_id = self.admin, site["id"]
            self.runner.submit(lambda _t: admin.snippet(site_id), self._set_snippet, self._failed)

    def _set_snippet(self, snippet: dict[str, Any]) -> None:
        if self.site is None or snippet["site_id"] != self.site["id"]:
            return
        self.snippet = snippet
        self.html.setPlainText(snippet["html"])
        self.extended_html.setPlainText(snippet["extended_html"])
        self.difference.setText(snippet["difference"])

    def form_fields(self) -> dict[str, Any]:
        """The edit form as the API's fields (one PATCH)."""
        return {
            "name": self.name.text(),
            "timezone": self.zone.currentText().strip(),
            "honour_dnt": self.dnt.isChecked(),
            "honour_gpc": self.gpc.isChecked(),
            "excluded_paths": lines(self.paths.toPlainText()),
            "excluded_ips": lines(self.ips.toPlainText()),
            "allowed_origins": lines(self.origins.toPlainText()),
            "retention_days": self.retention.value(),
        }

    # ------------------------------------------------------------------ actions
    def add_site(self) -> None:
        if self.admin is None:
            return
        admin = self.admin
        domain, name, zone = self.new_domain.text(), self.new_name.text(), self.new_zone.currentText().strip()

        def added(site: dict[str, Any]) -> None:
            self.new_domain.clear()
            self.new_name.clear()
            self.say(f"Added {site_label(site)}. Paste its snippet into the site's pages.")
            self.refresh(select=site["id"])
            self.sites_changed.emit()

        self.runner.submit(lambda _t: admin.add_site(domain, name, zone), added, self._failed)

    def save(self) -> None:
        if self.admin is None or self.site is None:
            return
        admin, site_id, fields = self.admin, self.site["id"], self.form_fields()

        def saved(site: dict[str, Any]) -> None:
            self.say(f"Saved {site_label(site)}.")
            self.refresh(select=site["id"])
            self.sites_changed.emit()

        self.runner.submit(lambda _t: admin.update_site(site_id, **fields), saved, self._failed)

    def delete_current(self) -> None:
        if self.admin is None or self.site is None:
            return
        site, admin = self.site, self.admin
        if not self.confirm(deletion_text(site)):
            self.say(f"Nothing deleted: {site_label(site)} stays.")
            return

        def deleted(_: object) -> None:
            self.say(f"Deleted {site_label(site)}.")
            self.refresh()
            self.sites_changed.emit()

        self.runner.submit(lambda _t: admin.delete_site(site["id"]), deleted, self._failed)

    def copy(self, which: str) -> None:
        if self.snippet is None:
            return
        QGuiApplication.clipboard().setText(self.snippet[which])
        self.say("The default snippet is copied." if which == "html" else "The extended snippet is copied.")

    def _confirm_dialog(self, text: str) -> bool:
        return confirm_delete(self, "Delete the site?", text)
