"""The Alerts tab: traffic judged against each site's weekly pattern (with an OS notification for a spike or
a drop), the stack's health (ingestion stopped, disk filling, certificate near expiry: judged by the stack;
backup failing: judged here, the desktop schedules the backups) with each kind's rule, the stack's alert channels
(webhook, Slack-compatible, SMTP) with "Send test", and the digests' folder.

The contract:
- Every API call runs on the `Runner`'s workers; results are shown on the GUI thread.
- A channel's secret is typed here, sent to the stack once (where it is kept as the stack's secret) and never
  kept by the app or shown again: the table shows the API's `has_secret`, never a secret.
- "Send test" shows the stack's answer as it is: "Sent." or the receiver's or SMTP server's own error.
- `notify(title, message)` is the OS notification (the tray icon's balloon; the page's message line where
  the desktop has no tray); it is called once per alerting verdict and once per digest made.
- Health findings are notified once per episode: a finding in alert is told again only when its episode
  changes (another gap, a renewed certificate near expiry again) or after it was "ok" in between. The rules
  (on/off and thresholds per kind) are the stack's (`GET/PUT /api/alerts/rules`, admins); "backup failing"
  is judged by `pixel.app.stack.backup_alert` on each check of the backup panel (`backup_checked`), with the
  stack's backup rule (its defaults until the rules are read).
- Loading (on `set_client` and Retry): a 403 on the channels or rules means "not an admin" (traffic only, said
  plainly); the stack unreachable, a refused sign-in or any other error says so in plain words with a Retry
  button, and the page keeps what it showed.
- The digests' folder is the owner's choice (kept in QSettings); on `set_client` (each start and connection)
  the due digests are made into it (`digest.generate_due`), as of `clock()`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import alerts as alerts_api
from pixel.app.client.api import ApiClient, ApiRequestError, AuthError, Unreachable
from pixel.app.desktop import digest
from pixel.app.desktop.workers import Runner
from pixel.app.stack import backup_alert
from pixel.app.stack.backup_schedule import BackupScheduler

Notify = Callable[[str, str], None]
FOLDER_KEY = "digests/folder"
TITLES = {
    "ingestion_stopped": "ingestion stopped",
    "disk_filling": "disk filling",
    "certificate_expiry": "certificate near expiry",
    "backup_failing": "backup failing",
}
DEFAULT_RULES: dict[str, dict[str, Any]] = {  # as the stack's (server/alerts/rules.py) until they are read
    "ingestion": {"enabled": True, "silence_factor": 10.0, "dead_letters_per_hour": 100},
    "disk": {"enabled": True, "min_free_percent": 10.0, "min_free_gb": 2.0},
    "certificate": {"enabled": True, "days": 14, "address": ""},
    "backup": {"enabled": True, "factor": 2.0},
}


NOT_ADMIN = (
    "Signed in without admin rights: the traffic verdicts are shown, but the stack's health, alert rules and"
    " channels are for admins."
)


def load_problem(exc: BaseException) -> str:
    """A plain message for a failed load of the page, saying what to do before Retry."""
    if isinstance(exc, Unreachable):
        return (
            f"The stack could not be reached ({exc}). Check that it is running and that this computer can reach"
            " it, then press Retry."
        )
    if isinstance(exc, AuthError) and exc.status == 401:
        return f"The stack refused the sign-in ({exc.detail}). Sign in again, then press Retry."
    if isinstance(exc, ApiRequestError):
        return f"The stack could not load the alerts: {exc.detail} ({exc.status}). Press Retry to try again."
    return f"The alerts could not be loaded: {exc}. Press Retry to try again."


def _spin(low: float, high: float, suffix: str, decimals: int = 0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    return box


def _table(heads: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(heads))
    table.setHorizontalHeaderLabels(heads)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class AlertsPage(QWidget):
    def __init__(
        self,
        runner: Runner,
        notify: Notify | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.runner = runner
        self.clock = clock
        self.client: ApiClient | None = None
        self.sites: list[dict[str, Any]] = []
        self.channels: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.rules: dict[str, dict[str, Any]] = {k: dict(v) for k, v in DEFAULT_RULES.items()}
        self.findings: list[dict[str, Any]] = []  # the stack's, as last read
        self.backup: dict[str, Any] | None = None  # the desktop's "backup failing" finding
        self.told: dict[tuple[str, str], str] = {}  # (kind, target) -> episode notified
        self.tray: QSystemTrayIcon | None = None
        self.notify: Notify = notify or self._os_notify
        self.settings = QSettings("Pixel", "pixel-desktop")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry)
        self.retry_button.hide()

        traffic = QGroupBox("Traffic against each site's usual week")
        self.traffic_table = _table(["Site", "Verdict", "Last hours", "Usually", "Message"])
        self.check_button = QPushButton("Check now")
        self.check_button.clicked.connect(self.check_traffic)
        box = QVBoxLayout(traffic)
        box.addWidget(self.traffic_table)
        box.addWidget(self.check_button)

        stack = QGroupBox("Stack health: ingestion, disk, certificate, backups")
        self.health_table = _table(["Alert", "About", "State", "Message"])
        self.health_table.setMaximumHeight(210)
        self.ingestion_on = QCheckBox("Ingestion stopped (sites gone silent, shipper degraded)")
        self.silence_factor = _spin(2, 1000, " × a site's usual interval without events", 1)
        self.silence_factor.setPrefix("silent ")
        self.dead_letters = _spin(1, 10_000_000, " dead letters an hour")
        self.dead_letters.setPrefix("or ")
        self.disk_on = QCheckBox("Disk filling (the data folder)")
        self.disk_percent = _spin(0, 100, " % free", 1)
        self.disk_percent.setPrefix("below ")
        self.disk_gb = _spin(0, 1_000_000, " GB free", 1)
        self.disk_gb.setPrefix("or below ")
        self.cert_on = QCheckBox("Certificate near expiry")
        self.cert_days = _spin(1, 365, " days before expiry")
        self.cert_address = QLineEdit()
        self.cert_address.setPlaceholderText("stats.example.com (the public address)")
        self.backup_on = QCheckBox("Backup failing (judged by this app)")
        self.backup_factor = _spin(1, 30, " × the interval without a good backup", 1)
        grid = QGridLayout()
        for line, widgets in enumerate(
            (
                (self.ingestion_on, self.silence_factor, self.dead_letters),
                (self.disk_on, self.disk_percent, self.disk_gb),
                (self.cert_on, self.cert_days, self.cert_address),
                (self.backup_on, self.backup_factor),
            )
        ):
            for col, w in enumerate(widgets):
                grid.addWidget(w, line, col)
        self.save_rules_button = QPushButton("Save alert rules")
        self.save_rules_button.clicked.connect(self.save_rules)
        self.rules_result = QLabel("")
        self.rules_result.setWordWrap(True)
        rules_row = QHBoxLayout()
        rules_row.addWidget(self.save_rules_button)
        rules_row.addWidget(self.rules_result, 1)
        box = QVBoxLayout(stack)
        box.addWidget(self.health_table)
        box.addLayout(grid)
        box.addLayout(rules_row)
        self._show_rules(self.rules)
        self.save_rules_button.setEnabled(False)  # until the stack's rules are read (admins)

        chans = QGroupBox("Alert channels of the stack")
        self.channel_table = _table(["Name", "Kind", "Sends to", "Secret", "Last error"])
        self.kind = QComboBox()
        self.kind.addItems(["webhook", "slack", "smtp"])
        self.name = QLineEdit()
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://example.com/pixel-alerts (webhook)")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("webhook signing key / Slack webhook URL / SMTP password")
        self.smtp_host = QLineEdit()
        self.smtp_port = QSpinBox()
        self.smtp_port.setRange(1, 65535)
        self.smtp_port.setValue(587)
        self.smtp_security = QComboBox()
        self.smtp_security.addItems(["starttls", "tls", "none"])
        self.smtp_username = QLineEdit()
        self.sender_edit = QLineEdit()
        self.recipients = QLineEdit()
        self.recipients.setPlaceholderText("owner@example.com, ops@example.com")
        form = QFormLayout()
        for label, widget in (
            ("Kind", self.kind),
            ("Name", self.name),
            ("Webhook URL", self.url),
            ("Secret", self.secret),
            ("SMTP server", self.smtp_host),
            ("SMTP port", self.smtp_port),
            ("SMTP security", self.smtp_security),
            ("SMTP username", self.smtp_username),
            ("From", self.sender_edit),
            ("To", self.recipients),
        ):
            form.addRow(label, widget)
        self.add_button = QPushButton("Add channel")
        self.add_button.clicked.connect(self.add_channel)
        self.test_button = QPushButton("Send test")
        self.test_button.clicked.connect(self.send_test)
        self.delete_button = QPushButton("Delete channel")
        self.delete_button.clicked.connect(self.delete_channel)
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.test_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        box = QVBoxLayout(chans)
        box.addWidget(self.channel_table)
        box.addLayout(form)
        box.addLayout(buttons)
        box.addWidget(self.test_result)

        digests = QGroupBox("Digests (weekly and monthly, PDF and PNG)")
        self.folder_label = QLabel(self.folder() or "No folder chosen: digests are not made.")
        self.folder_button = QPushButton("Choose folder…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.digest_button = QPushButton("Make due digests now")
        self.digest_button.clicked.connect(self.make_digests)
        row = QHBoxLayout(digests)
        row.addWidget(self.folder_label, 1)
        row.addWidget(self.folder_button)
        row.addWidget(self.digest_button)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.message, 1)
        top.addWidget(self.retry_button)
        layout.addLayout(top)
        layout.addWidget(traffic)
        layout.addWidget(stack)
        layout.addWidget(chans)
        layout.addWidget(digests)

    # -- notifications --------------------------------------------------------------------------------
    def _os_notify(self, title: str, message: str) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self.tray is None:
                icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
                self.tray = QSystemTrayIcon(icon, self)
                self.tray.show()
            digest.tray_notify(self.tray)(title, message)
        else:
            self.message.setText(f"{title}: {message}")

    # -- connection -----------------------------------------------------------------------------------
    def set_client(self, client: ApiClient) -> None:
        self.client = client

        def load(
            _t: object,
        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any] | None]:
            sites = client.sites()
            try:
                chans: list[dict[str, Any]] | None = alerts_api.channels(client)
                rules: dict[str, Any] | None = alerts_api.rules(client)
            except AuthError as exc:
                if exc.status != 403:
                    raise
                chans, rules = None, None  # not an admin: no channels or rules to manage
            return sites, chans, rules

        self.retry_button.hide()
        self.message.setText("Loading the alerts…")
        self.runner.submit(load, on_done=self._loaded, on_error=self._load_failed)

    def retry(self) -> None:
        """Load again with the same connection (after the stack came back, or the account was fixed)."""
        if self.client is not None:
            self.set_client(self.client)

    def _load_failed(self, exc: BaseException) -> None:
        self.message.setText(load_problem(exc))
        self.retry_button.show()

    def _loaded(
        self, result: tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any] | None]
    ) -> None:
        self.sites, chans, rules = result
        self.message.setText("" if chans is not None else NOT_ADMIN)
        self._show_channels(chans or [])
        for w in (self.add_button, self.test_button, self.delete_button):
            w.setEnabled(chans is not None)
        self.save_rules_button.setEnabled(rules is not None)
        if rules is not None:
            self._show_rules(rules)
        self.check_traffic()
        if self.folder():
            self.make_digests()

    def _error(self, exc: BaseException) -> None:
        self.message.setText(str(exc))

    # -- traffic --------------------------------------------------------------------------------------
    def check_traffic(self) -> None:
        """The traffic verdicts, and the stack's health when the rules could be read (an admin)."""
        client, sites = self.client, list(self.sites)
        if client is None:
            return
        self.runner.submit(
            lambda _t: [alerts_api.traffic(client, int(s["id"])) for s in sites],
            on_done=self.show_verdicts,
            on_error=self._error,
        )
        if self.save_rules_button.isEnabled():
            self.check_health()

    # -- stack health ---------------------------------------------------------------------------------
    def check_health(self) -> None:
        client = self.client
        if client is not None:
            self.runner.submit(
                lambda _t: alerts_api.health(client), on_done=self.show_health, on_error=self._error
            )

    def show_health(self, findings: list[dict[str, Any]]) -> None:
        """The stack's findings in the table; an OS notification for each new episode in alert."""
        self.findings = findings
        self._fill_health()
        for f in findings:
            self._tell(f)

    def backup_checked(self, scheduler: BackupScheduler) -> None:
        """The backup panel checked its schedule (on the GUI thread): judge "backup failing" and tell."""
        rule = self.rules["backup"]
        if not rule.get("enabled", True):
            self.backup = None
            self._fill_health()
            return
        verdict = backup_alert.judge(scheduler, self.clock(), float(rule.get("factor", 2.0)))
        self.backup = {
            "kind": "backup_failing",
            "target": str(scheduler.plan.folder),
            "state": verdict.state,
            "episode": verdict.episode,
            "message": verdict.message,
            "alerting": verdict.alerting,
        }
        self._fill_health()
        self._tell(self.backup)

    def _tell(self, finding: dict[str, Any]) -> None:
        key = (str(finding["kind"]), str(finding["target"]))
        if finding["state"] == "ok":
            self.told.pop(key, None)
        elif finding["state"] == "alert" and self.told.get(key) != finding["episode"]:
            self.told[key] = str(finding["episode"])
            title = TITLES.get(key[0], key[0])
            self.notify(f"Pixel: {title} ({key[1]})", str(finding["message"]))

    def _fill_health(self) -> None:
        rows = [*self.findings, *([self.backup] if self.backup else [])]
        rows.sort(key=lambda f: {"alert": 0, "unknown": 1}.get(str(f["state"]), 2))  # alerts first
        self.health_table.setRowCount(len(rows))
        for i, f in enumerate(rows):
            cells = (TITLES.get(f["kind"], f["kind"]), f["target"], f["state"], f["message"])
            for j, text in enumerate(cells):
                self.health_table.setItem(i, j, QTableWidgetItem(str(text)))

    def _show_rules(self, rules: dict[str, Any]) -> None:
        self.rules = {k: {**DEFAULT_RULES[k], **dict(rules.get(k) or {})} for k in DEFAULT_RULES}
        r = self.rules
        self.ingestion_on.setChecked(bool(r["ingestion"]["enabled"]))
        self.silence_factor.setValue(float(r["ingestion"]["silence_factor"]))
        self.dead_letters.setValue(float(r["ingestion"]["dead_letters_per_hour"]))
        self.disk_on.setChecked(bool(r["disk"]["enabled"]))
        self.disk_percent.setValue(float(r["disk"]["min_free_percent"]))
        self.disk_gb.setValue(float(r["disk"]["min_free_gb"]))
        self.cert_on.setChecked(bool(r["certificate"]["enabled"]))
        self.cert_days.setValue(float(r["certificate"]["days"]))
        self.cert_address.setText(str(r["certificate"]["address"]))
        self.backup_on.setChecked(bool(r["backup"]["enabled"]))
        self.backup_factor.setValue(float(r["backup"]["factor"]))

    def rules_body(self) -> dict[str, Any]:
        return {
            "ingestion": {
                "enabled": self.ingestion_on.isChecked(),
                "silence_factor": self.silence_factor.value(),
                "dead_letters_per_hour": int(self.dead_letters.value()),
            },
            "disk": {
                "enabled": self.disk_on.isChecked(),
                "min_free_percent": self.disk_percent.value(),
                "min_free_gb": self.disk_gb.value(),
            },
            "certificate": {
                "enabled": self.cert_on.isChecked(),
                "days": int(self.cert_days.value()),
                "address": self.cert_address.text().strip(),
            },
            "backup": {"enabled": self.backup_on.isChecked(), "factor": self.backup_factor.value()},
        }

    def save_rules(self) -> None:
        client = self.client
        if client is None:
            return
        body = self.rules_body()

        def saved(rules: dict[str, Any]) -> None:
            self._show_rules(rules)
            self.rules_result.setText("Alert rules saved.")
            self.check_health()

        self.rules_result.setText("Saving…")
        self.runner.submit(
            lambda _t: alerts_api.save_rules(client, body), on_done=saved, on_error=self._rules_refused
        )

    def _rules_refused(self, exc: BaseException) -> None:
        self.rules_result.setText(f"Not saved: {exc}")

    def show_verdicts(self, verdicts: list[dict[str, Any]]) -> None:
        """Fill the table; an OS notification for each spike or drop."""
        self.verdicts = verdicts
        self.traffic_table.setRowCount(len(verdicts))
        for i, v in enumerate(verdicts):
            expected = "" if v.get("expected") is None else f"{v['expected']:.0f}"
            for j, text in enumerate((v["site"], v["kind"], str(v["observed"]), expected, v["message"])):
                self.traffic_table.setItem(i, j, QTableWidgetItem(text))
        for v in verdicts:
            if v.get("alerting"):
                self.notify(f"Pixel: traffic {v['kind']} on {v['site']}", v["message"])

    # -- channels -------------------------------------------------------------------------------------
    def _show_channels(self, chans: list[dict[str, Any]]) -> None:
        self.channels = chans
        self.channel_table.setRowCount(len(chans))
        for i, c in enumerate(chans):
            cells = (
                c["name"],
                c["kind"],
                c["target"],
                "set" if c["has_secret"] else "none",
                c["last_error"] or "",
            )
            for j, text in enumerate(cells):
                self.channel_table.setItem(i, j, QTableWidgetItem(text))

    def _reload_channels(self) -> None:
        client = self.client
        if client is not None:
            self.runner.submit(
                lambda _t: alerts_api.channels(client), on_done=self._show_channels, on_error=self._error
            )

    def channel_body(self) -> dict[str, Any]:
        kind = self.kind.currentText()
        body: dict[str, Any] = {"kind": kind, "name": self.name.text().strip(), "secret": self.secret.text()}
        if kind == "webhook":
            body["url"] = self.url.text().strip()
        if kind == "smtp":
            body.update(
                smtp_host=self.smtp_host.text().strip(),
                smtp_port=self.smtp_port.value(),
                smtp_security=self.smtp_security.currentText(),
                smtp_username=self.smtp_username.text().strip(),
                sender=self.sender_edit.text().strip(),
                recipients=[r.strip() for r in self.recipients.text().split(",") if r.strip()],
            )
        return body

    def add_channel(self) -> None:
        client = self.client
        if client is None:
            return
        body = self.channel_body()

        def added(_result: object) -> None:
            self.secret.clear()  # sent to the stack; never kept here
            self.test_result.setText(f"Channel {body['name']!r} added.")
            self._reload_channels()

        self.runner.submit(
            lambda _t: alerts_api.create_channel(client, body), on_done=added, on_error=self._refused
        )

    def _refused(self, exc: BaseException) -> None:
        self.test_result.setText(str(exc))

    def _selected(self) -> dict[str, Any] | None:
        row = self.channel_table.currentRow()
        return self.channels[row] if 0 <= row < len(self.channels) else None

    def send_test(self) -> None:
        client, chosen = self.client, self._selected()
        if client is None or chosen is None:
            self.test_result.setText("Choose a channel first.")
            return
        self.test_result.setText("Sending…")

        def shown(result: dict[str, Any]) -> None:
            self.test_result.setText("Sent." if result["ok"] else f"Not sent: {result['error']}")
            self._reload_channels()

        self.runner.submit(
            lambda _t: alerts_api.send_test(client, int(chosen["id"])), on_done=shown, on_error=self._refused
        )

    def delete_channel(self) -> None:
        client, chosen = self.client, self._selected()
        if client is None or chosen is None:
            return
        self.runner.submit(
            lambda _t: alerts_api.delete_channel(client, int(chosen["id"])),
            on_done=lambda _r: self._reload_channels(),
            on_error=self._refused,
        )

    # -- digests --------------------------------------------------------------------------------------
    def folder(self) -> str:
        """The digests' folder; a `~` (as an owner may type or a setting may hold) is the home folder, never a
        folder named `~` under whatever the working directory is."""
        value = str(self.settings.value(FOLDER_KEY, "") or "")
        return os.path.expanduser(value) if value else ""

    def set_folder(self, folder: str) -> None:
        self.settings.setValue(FOLDER_KEY, folder)
        self.folder_label.setText(folder or "No folder chosen: digests are not made.")

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for digests", self.folder())
        if chosen:
            self.set_folder(chosen)
            self.make_digests()

    def make_digests(self) -> None:
        client, folder, sites = self.client, self.folder(), list(self.sites)
        if client is None or not folder:
            return
        now = self.clock()
        made: list[tuple[str, str]] = []

        def work(_t: object) -> list[Path]:
            return digest.generate_due(client, Path(folder), sites, now, lambda t, m: made.append((t, m)))

        def done(paths: list[Path]) -> None:
            for title, message in made:  # on the GUI thread
                self.notify(title, message)
            if paths:
                self.message.setText(f"{len(paths)} digest(s) saved in {folder}.")

        self.runner.submit(work, on_done=done, on_error=self._error)
