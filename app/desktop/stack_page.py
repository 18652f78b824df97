"""The stack page: containers with state and health, CPU and memory sparklines, ingest rate, backlog
and disk use; Start / Stop / Restart / Upgrade / Back up / Restore / Uninstall, each confirmed and
run on a worker with a progress dialog that can be cancelled; a live log viewer with follow and
search. Everything that talks to Docker runs on worker threads through `pixel.app.stack`. Below the
actions, `site_tools.PublicPanel`: the HTTPS certificate, GeoIP, "Public address…", and per site "Check
installation" and the proxy recipes (its API parts need `page.public.set_api(client factory)`); then
`backup_panel.BackupPanel`, the scheduled backups (`page.backups.set_profile(...)`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressDialog,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.backup_panel import BackupPanel
from pixel.app.desktop.charts import Sparkline
from pixel.app.desktop.site_tools import PublicPanel
from pixel.app.desktop.status_colours import Kind, status_colour, status_style
from pixel.app.desktop.workers import Cancelled, Runner, Task
from pixel.app.stack.errors import StackError
from pixel.app.stack.progress import Progress

if TYPE_CHECKING:  # docker-py is slow to import (bench/README.md): only when a stack is opened (cold start)
    from pixel.app.stack.provisioner import Provisioner, StackStatus

HEALTH_KINDS: dict[str, Kind] = {"healthy": "good", "starting": "warn", "unhealthy": "bad"}


class ThemedSparkline(Sparkline):
    """A sparkline whose line colour is a status colour (`kind`) for the current theme, light or dark."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        super().__init__()

    def recolour(self) -> None:
        self.color = status_colour(self.kind, self.palette()).name()
        super().recolour()


ACTIONS = ("start", "stop", "restart", "upgrade", "backup", "restore", "uninstall")
CONFIRM = {
    "start": "Start the Pixel stack?",
    "stop": "Stop the Pixel stack? Visits are not recorded while it is stopped.",
    "restart": "Restart the Pixel stack? Visits arriving during the restart wait in the browsers' outbox.",
    "upgrade": "Upgrade to the image {image}? A backup is taken first; if the new version is not healthy, "
    "the previous one is put back.",
    "backup": "Back up all data to {path}? The stack is stopped while the copy is made.",
    "restore": "Replace ALL current data with the backup {path}? This cannot be undone.",
    "uninstall": "Remove the Pixel containers? Your data volumes are kept unless you tick 'delete data'.",
}


def human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def volume_usage(prov: Provisioner) -> int | None:
    """Bytes used by the stack's volumes (the engine's disk-usage report; may take a second)."""
    try:
        df = prov.client.df()
    except Exception:
        return None
    ours = {prov.spec.volume_name(v) for v in prov.spec.volumes}
    sizes = [(v.get("UsageData") or {}).get("Size", -1) for v in df.get("Volumes") or [] if v["Name"] in ours]
    return sum(s for s in sizes if s >= 0) if sizes else None


def _open(task: Task | None) -> bool:
    """Whether `task` runs or its outcome has yet to reach the GUI thread."""
    return task is not None and not task.settled


class StackPage(QWidget):
    status_loaded = Signal(object)

    def __init__(self, runner: Runner, poll_ms: int = 5_000) -> None:
        super().__init__()
        self.runner = runner
        self.provisioner: Provisioner | None = None
        self.status: StackStatus | None = None
        self.disk_bytes: int | None = None
        self._disk_at = 0.0
        self._last_count: tuple[float, int] | None = None
        self.ingest_rate: float | None = None
        # One status poll at a time, in order; a poll asked for meanwhile (after an action) runs when the one
        # under way has settled, so the table always ends on the state after the action.
        self._poll_task: Task | None = None
        self._poll_again = False
        self._disk_task: Task | None = None
        self._log_task: Task | None = None
        self.action_task: Task | None = None
        self.last_action: tuple[str, str] | None = None  # (action, "done" | error text)
        self.profile_name = ""  # the profile shown: its MaxMind key (keyring) goes with an upgrade
        # Dialog hooks (tests drive them without modal dialogs).
        self.confirm: Callable[[str, str], bool] = self._confirm_dialog
        self.ask_path: Callable[[str, bool], str] = self._path_dialog
        self.ask_text: Callable[[str, str], str] = self._text_dialog

        self.target_label = QLabel("No stack selected")
        self.target_label.setStyleSheet("font-weight:bold")
        self.message = QLabel("")
        self._message_kind: Kind | None = None  # the status colour of the message shown, if any
        self.message.setWordWrap(True)
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(
            ["Service", "State", "Health", "Restarts", "CPU", "Memory", "Ports"]
        )
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(120)
        self.table.setMaximumHeight(200)
        self.table.verticalHeader().setDefaultSectionSize(40)
        for column in (4, 5):
            self.table.setColumnWidth(column, 140)
        self.sparks: dict[str, tuple[Sparkline, Sparkline]] = {}

        self.ingest = QLabel("Ingest: —")
        self.ingest_spark = ThemedSparkline("ingest")
        self.ingest_spark.setFixedWidth(200)
        self.backlog = QLabel("Backlog: —")
        self.disk = QLabel("Disk: —")
        figures = QHBoxLayout()
        w: QWidget
        for w in (self.ingest, self.ingest_spark, self.backlog, self.disk):
            figures.addWidget(w)
        figures.addStretch(1)

        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for name in ACTIONS:
            button = QPushButton("Back up" if name == "backup" else name.capitalize())
            button.clicked.connect(lambda _=False, n=name: self.request(n))
            actions.addWidget(button)
            self.buttons[name] = button
        self.delete_data = QCheckBox("delete data on uninstall")
        actions.addWidget(self.delete_data)
        actions.addStretch(1)

        self.log_service = QComboBox()
        self.follow = QCheckBox("Follow")
        self.follow.toggled.connect(self._follow_toggled)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the log…")
        self.search.returnPressed.connect(self.find_next)
        self.search_result = QLabel("")
        load = QPushButton("Load")
        load.clicked.connect(self.load_logs)
        log_bar = QHBoxLayout()
        for w in (QLabel("Logs of"), self.log_service, load, self.follow, self.search, self.search_result):
            log_bar.addWidget(w)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        # a font, not a style sheet: a widget with a style sheet keeps the colours of the theme it started in
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPixelSize(11)
        self.log.setFont(mono)

        layout = QVBoxLayout(self)
        layout.addWidget(self.target_label)
        layout.addWidget(self.message)
        layout.addWidget(self.table)
        layout.addLayout(figures)
        layout.addLayout(actions)
        # the certificate, GeoIP, "Public address…", per site "Check installation" and the proxy recipes
        self.public = PublicPanel(runner)
        layout.addWidget(self.public)
        self.backups = BackupPanel(runner)  # scheduled backups: the plan, the last good one, restore
        layout.addWidget(self.backups)
        layout.addLayout(log_bar)
        layout.addWidget(self.log, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)

    # ------------------------------------------------------------------ connecting and polling
    def open(self, connect: Callable[[], Provisioner], description: str) -> None:
        """`connect` builds the provisioner (contacts the engine): it runs on a worker."""
        self.target_label.setText(description)
        self.message.setText("Connecting…")
        self.runner.submit(lambda _t: connect(), on_done=self.set_provisioner, on_error=self._error)

    def set_provisioner(self, prov: Provisioner) -> None:
        self.provisioner = prov
        self.log_service.clear()
        for svc in prov.spec.services:
            self.log_service.addItem(svc.name)
        self.message.setText("")
        self.public.load_certificate(prov)
        self.backups.set_provisioner(prov)
        self.poll()
        self.timer.start()

    def poll(self) -> None:
        """Read the containers' status on a worker. The volumes' disk use (the engine's disk-usage report walks
        every volume and can take many seconds on a busy engine) is its own task, at most every 30 s, so it
        never holds the status back."""
        if self.provisioner is None:
            return
        if _open(self._poll_task):
            self._poll_again = True
            return
        prov = self.provisioner

        def work(_task: Task) -> tuple[Provisioner, StackStatus, float]:
            return prov, prov.status(), time.monotonic()

        self._poll_task = self.runner.submit(work, on_done=self._status_polled, on_error=self._poll_failed)
        if time.monotonic() - self._disk_at > 30 and not _open(self._disk_task):
            self._disk_at = time.monotonic()
            self._disk_task = self.runner.submit(
                lambda _t: (prov, volume_usage(prov)), on_done=self._show_disk
            )

    def _status_polled(self, result: tuple[Provisioner, StackStatus, float]) -> None:
        prov, status, at = result
        if prov is self.provisioner:  # not a stack the page has since left
            self._show_status(status, at)
        self._poll_next()

    def _poll_failed(self, exc: BaseException) -> None:
        self._error(exc)
        self._poll_next()

    def _poll_next(self) -> None:
        if self._poll_again:
            self._poll_again = False
            self.poll()

    def _show_disk(self, result: tuple[Provisioner, int | None]) -> None:
        prov, disk = result
        if prov is self.provisioner and disk is not None:
            self.disk_bytes = disk
            self.disk.setText(f"Disk: {human_bytes(disk)}")

    def _show_status(self, status: StackStatus, at: float) -> None:
        self.status = status
        if not status.installed:
            self.message.setText("The stack is not installed on this engine.")
        self.table.setRowCount(len(status.containers))
        for i, c in enumerate(status.containers):
            cells = [
                c.service,
                c.state,
                c.health,
                str(c.restarts),
                None,
                None,
                ", ".join(f"{h}→{p}" for p, h in sorted(c.ports.items())),
            ]
            for j, text in enumerate(cells):
                if text is None:
                    continue
                item = QTableWidgetItem(text)
                if j == 2:
                    item.setForeground(status_colour(HEALTH_KINDS.get(c.health, "muted"), self.palette()))
                self.table.setItem(i, j, item)
            cpu, mem = self.sparks.setdefault(c.service, (ThemedSparkline("cpu"), ThemedSparkline("memory")))
            cpu.push(c.cpu_percent)
            mem.push(None if c.memory_bytes is None else c.memory_bytes / 2**20)
            cpu.setToolTip(f"CPU {c.cpu_percent or 0:.1f}%")
            mem.setToolTip(f"memory {human_bytes(c.memory_bytes)} of {human_bytes(c.memory_limit)}")
            self.table.setCellWidget(i, 4, cpu)
            self.table.setCellWidget(i, 5, mem)
        count = status.events_inserted
        if count is not None:
            if self._last_count is not None and at > self._last_count[0] and count >= self._last_count[1]:
                self.ingest_rate = (count - self._last_count[1]) / (at - self._last_count[0])
            self._last_count = (at, count)
        self.ingest_spark.push(self.ingest_rate)
        self.ingest.setText(
            "Ingest: "
            + ("—" if self.ingest_rate is None else f"{self.ingest_rate:.1f} events/s")
            + ("" if count is None else f" ({count:,} stored since start)")
        )
        self.backlog.setText(f"Backlog: {human_bytes(status.backlog_bytes)}")
        self.disk.setText(f"Disk: {human_bytes(self.disk_bytes)}")
        self.status_loaded.emit(status)

    def changeEvent(self, event: QEvent) -> None:
        """The theme changed (light/dark): health cells and the message take its status colours."""
        if event.type() == QEvent.Type.PaletteChange:
            for row in range(self.table.rowCount()):
                item = self.table.item(row, 2)
                if item is not None:
                    item.setForeground(status_colour(HEALTH_KINDS.get(item.text(), "muted"), self.palette()))
            kind = getattr(self, "_message_kind", None)  # None too while __init__ runs
            if kind is not None:
                self.message.setStyleSheet(status_style(kind, self))
        super().changeEvent(event)

    def _error(self, exc: BaseException) -> None:
        if isinstance(exc, StackError):
            self.message.setText(f"{exc.problem}\nWhat to do: {exc.action}" if exc.action else exc.problem)
        else:
            self.message.setText(f"{type(exc).__name__}: {exc}")
        self._message_kind = "bad"
        self.message.setStyleSheet(status_style("bad", self))

    # ------------------------------------------------------------------ actions
    def request(self, action: str) -> Task | None:
        """Ask for confirmation (and a path or image where needed), then run `action` on a worker."""
        if self.provisioner is None or self.acting():
            return None
        prov = self.provisioner
        detail: dict[str, str] = {}
        if action in ("backup", "restore"):
            path = self.ask_path(action, action == "backup")
            if not path:
                return None
            detail["path"] = path
        if action == "upgrade":
            image = self.ask_text("Upgrade to which image?", prov.settings.get("PIXEL_IMAGE", ""))
            if not image:
                return None
            detail["image"] = image
        if not self.confirm(action, CONFIRM[action].format(**detail)):
            return None
        delete = self.delete_data.isChecked()
        profile = self.profile_name
        dialog = QProgressDialog(f"{action.capitalize()}…", "Cancel", 0, 100, self)
        dialog.setWindowTitle("Pixel")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setValue(0)
        self.progress_dialog = dialog

        def work(task: Task) -> str:
            progress = task.progress_callback  # this task's dialog: given to the call, never kept on prov
            if action in ("start", "stop", "restart"):
                getattr(prov, action)(progress=progress)
            elif action == "backup":
                return str(prov.backup(Path(detail["path"]), progress=progress))
            elif action == "restore":
                prov.restore(Path(detail["path"]), progress=progress)
            elif action == "uninstall":
                return ", ".join(prov.uninstall(delete_data=delete))
            elif action == "upgrade":
                from pixel.app.stack.manage import upgrade_to_image

                values = upgrade_values(profile)  # the keyring, off the GUI thread
                backup = upgrade_to_image(
                    prov, detail["image"], backup_dir=_backup_dir(), values=values, progress=progress
                )
                return str(backup)
            return "done"

        def progress(event: Progress) -> None:
            if event.fraction is None:
                dialog.setRange(0, 0)
            else:
                dialog.setRange(0, 100)
                dialog.setValue(int(event.fraction * 100))
            dialog.setLabelText(event.message)

        def done(result: str) -> None:
            dialog.close()
            self.last_action = (action, result)
            self._message_kind = "good"
            self.message.setStyleSheet(status_style("good", self))
            self.message.setText(f"{action.capitalize()}: {result}")
            self.poll()

        def failed(exc: BaseException) -> None:
            dialog.close()
            self.last_action = (action, "cancelled" if isinstance(exc, Cancelled) else str(exc))
            self._error(exc)
            self.poll()

        self.action_task = self.runner.submit(work, on_done=done, on_error=failed, on_progress=progress)
        dialog.canceled.connect(self.action_task.cancel)
        return self.action_task

    def acting(self) -> bool:
        """Whether an action is open: from its request until the page has shown its outcome (the runner has
        settled it), not only until its worker returned, so the next one starts after the owner sees it."""
        return _open(self.action_task)

    def _confirm_dialog(self, action: str, text: str) -> bool:
        answer = QMessageBox.question(self, f"{action.capitalize()} Pixel", text)
        return answer == QMessageBox.StandardButton.Yes

    def _path_dialog(self, action: str, save: bool) -> str:
        if save:
            return QFileDialog.getSaveFileName(
                self, "Back up to", "pixel-backup.tar.gz", "Backups (*.tar.gz)"
            )[0]
        return QFileDialog.getOpenFileName(self, "Restore from", "", "Backups (*.tar.gz)")[0]

    def _text_dialog(self, title: str, default: str) -> str:
        text, ok = QInputDialog.getText(self, "Pixel", title, text=default)
        return text if ok else ""

    # ------------------------------------------------------------------ logs
    def load_logs(self) -> None:
        if self.provisioner is None:
            return
        prov, service = self.provisioner, self.log_service.currentText() or None
        self.runner.submit(
            lambda _t: list(prov.logs(service, tail=500)), on_done=self._set_log, on_error=self._error
        )

    def _set_log(self, lines: list[str]) -> None:
        self.log.setPlainText("\n".join(lines))
        self.log.moveCursor(QTextCursor.MoveOperation.End)

    def _follow_toggled(self, on: bool) -> None:
        if self._log_task is not None:
            self._log_task.cancel()
            self._log_task = None
        if not on or self.provisioner is None:
            return
        prov, service = self.provisioner, self.log_service.currentText()

        def follow(task: Task) -> None:
            container = prov.container(service)
            if container is None:
                raise StackError(f"No container for {service}", code="not-installed")
            since = datetime.now(UTC)
            while not task.cancelled.is_set():
                until = datetime.now(UTC)
                text = container.logs(since=since, until=until).decode("utf-8", "replace")
                since = until
                lines = [line for line in text.splitlines() if line]
                if lines:
                    task.report(lines)
                task.cancelled.wait(1.0)

        self._log_task = self.runner.submit(follow, on_progress=self._append_log, on_error=self._error)

    def _append_log(self, lines: list[str]) -> None:
        for line in lines:
            self.log.appendPlainText(line)

    def find_next(self) -> bool:
        """Select the next match of the search text (wrapping around); says how many lines match."""
        needle = self.search.text()
        if not needle:
            self.search_result.setText("")
            return False
        found = self.log.find(needle)
        if not found:
            self.log.moveCursor(QTextCursor.MoveOperation.Start)
            found = self.log.find(needle)
        matches = sum(1 for line in self.log.toPlainText().splitlines() if needle.lower() in line.lower())
        self.search_result.setText(
            f"{matches} matching line{'s' if matches != 1 else ''}" if found else "not found"
        )
        return found

    def stop(self) -> None:
        self.timer.stop()
        if self._log_task is not None:
            self._log_task.cancel()


def upgrade_values(profile: str) -> dict[str, str]:
    """What an upgrade from the app adds to the stack's stored settings: the profile's MaxMind key from the
    keyring (written again as the stack's key file), if one is kept."""
    from pixel.app.stack.maxmind_key import with_stored_key

    return with_stored_key(profile)


def _backup_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("pixel-desktop", appauthor=False)) / "backups"
