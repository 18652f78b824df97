"""The stack page's scheduled backups: the plan (folder, daily/weekly/off, keep N), the last good backup's
date, the last failure in red, the list of backups with "Restore selected…".

The logic is `pixel.app.stack.backup_schedule` (no Qt); this panel saves the plan in the profile and runs
the scheduler while the app is open: a check at `set_profile` (a run missed while the app was closed is
made then, once) and every `check_ms`. Backups and restores run on workers; the stack is opened through the
window's `connect` only when a backup is due (the Docker client stays out of the cold start otherwise).
`clock` and the `confirm` / `ask_folder` hooks are for tests; `on_checked(scheduler)` is called each time the
panel shows the schedule's state (after a run, failed or not), for the Alerts page's "backup failing".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.status_colours import status_style
from pixel.app.desktop.workers import Runner, Task
from pixel.app.errors import AppError
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.stack.backup_schedule import (
    KEEP_MAX,
    BackupFile,
    BackupPlan,
    BackupScheduler,
    plan_from_extra,
    plan_to_extra,
)

if TYPE_CHECKING:
    from pixel.app.stack.provisioner import Provisioner

EVERY = (("Off", ""), ("Daily", "daily"), ("Weekly", "weekly"))


def when(b: BackupFile) -> str:
    return f"{b.taken:%Y-%m-%d %H:%M} UTC"


def size_text(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


class BackupPanel(QGroupBox):
    def __init__(self, runner: Runner, check_ms: int = 60_000) -> None:
        super().__init__("Scheduled backups")
        self.runner = runner
        self.store: ProfileStore | None = None
        self.profile: Profile | None = None
        self.connect_stack: Callable[[], Provisioner] | None = None
        self.provisioner: Provisioner | None = None
        self.scheduler: BackupScheduler | None = None
        self.running: Task | None = None
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        self.ask_folder: Callable[[], str] = lambda: QFileDialog.getExistingDirectory(self, "Back up into")

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("A folder on this computer (an external disk is best)")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        self.every = QComboBox()
        for label, value in EVERY:
            self.every.addItem(label, value)
        self.keep = QSpinBox()
        self.keep.setRange(1, KEEP_MAX)
        self.keep.setValue(7)
        self.keep.setPrefix("keep the last ")
        self.save = QPushButton("Save schedule")
        self.save.clicked.connect(self.save_plan)
        self.last = QLabel("No schedule: choose a folder and how often.")
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.hide()
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.restore = QPushButton("Restore selected…")
        self.restore.clicked.connect(self.restore_selected)

        row = QHBoxLayout()
        w: QWidget
        for w in (QLabel("Folder"), self.folder, choose, self.every, self.keep, self.save):
            row.addWidget(w)
        row.setStretch(1, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.list, 1)
        bottom.addWidget(self.restore)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.last)
        layout.addWidget(self.error)
        layout.addLayout(bottom)

        self.timer = QTimer(self)
        self.on_checked: Callable[[BackupScheduler], None] | None = None
        self.timer.setInterval(check_ms)
        self.timer.timeout.connect(self.check)

    # ------------------------------------------------------------------ the plan
    def set_profile(
        self, store: ProfileStore, profile: Profile, connect: Callable[[], Provisioner] | None
    ) -> None:
        """The profile whose stack is backed up (`connect` None: no stack, nothing scheduled)."""
        self.store, self.profile, self.connect_stack = store, profile, connect
        self.provisioner = None
        self.error.hide()
        try:
            plan = plan_from_extra(profile.extra) if connect is not None else None
        except AppError as exc:
            plan = None
            self._show_error(f"The saved schedule cannot be used: {exc}")
        self.folder.setText(str(plan.folder) if plan else "")
        self.every.setCurrentIndex(
            next(i for i, (_l, v) in enumerate(EVERY) if v == (plan.every if plan else ""))
        )
        self.keep.setValue(plan.keep if plan else 7)
        self._use(plan)

    def set_provisioner(self, prov: Provisioner) -> None:
        self.provisioner = prov

    def save_plan(self) -> None:
        if self.store is None or self.profile is None or self.connect_stack is None:
            return
        every, folder = self.every.currentData(), self.folder.text().strip()
        try:
            plan = BackupPlan(Path(folder).expanduser(), every, self.keep.value()) if every else None
        except AppError as exc:
            self._show_error(str(exc))
            return
        self.profile.extra = plan_to_extra(plan, self.profile.extra)
        self.store.save(self.profile)
        self.error.hide()
        self._use(plan)

    def _use(self, plan: BackupPlan | None) -> None:
        self.scheduler = None
        if plan is not None and self.profile is not None:
            self.scheduler = BackupScheduler(plan, self.profile.project, self._backup, lambda: self.clock())
            self.timer.start()
            QTimer.singleShot(0, self.check)  # a run missed while the app was closed: now, once
        else:
            self.timer.stop()
        self.show_backups()

    def _choose(self) -> None:
        folder = self.ask_folder()
        if folder:
            self.folder.setText(folder)

    # ------------------------------------------------------------------ running
    def _stack(self) -> Provisioner:
        """The stack (opened on first use; on a worker)."""
        if self.provisioner is None:
            if self.connect_stack is None:
                raise AppError("No stack to back up")
            self.provisioner = self.connect_stack()
        return self.provisioner

    def _backup(self, path: Path) -> Path:
        return self._stack().backup(path)

    def check(self) -> Task | None:
        """Start the backup if it is due and none runs."""
        scheduler = self.scheduler
        if scheduler is None or self.running is not None or not scheduler.due():
            return None
        self.last.setText("Backing up now…")
        self.running = self.runner.submit(
            lambda _t: scheduler.run(), on_done=self._finished, on_error=self._failed
        )
        return self.running

    def _finished(self, _result: object) -> None:
        self.running = None
        self.show_backups()

    def _failed(self, exc: BaseException) -> None:
        self.running = None
        self.show_backups()
        self._show_error(str(exc))

    def show_backups(self) -> None:
        scheduler = self.scheduler
        self.list.clear()
        if scheduler is None:
            self.last.setText("No schedule: choose a folder and how often.")
            return
        listed = scheduler.backups()
        plan = scheduler.plan
        where = f"{plan.every.capitalize()} into {plan.folder}, keeping the last {plan.keep}."
        self.last.setText(
            f"{where} Last good backup: {when(listed[0])}." if listed else f"{where} No backup yet."
        )
        for b in listed:
            item = QListWidgetItem(f"{when(b)}  ·  {size_text(b.size)}  ·  {b.name}")
            item.setData(Qt.ItemDataRole.UserRole, b.name)
            self.list.addItem(item)
        if scheduler.last_error:
            self._show_error(scheduler.last_error)
        else:
            self.error.hide()
        if self.on_checked is not None:  # the Alerts page's "backup failing" judgement
            self.on_checked(scheduler)

    def _show_error(self, text: str) -> None:
        self.error.setStyleSheet(status_style("bad", self.error))  # for the palette of the moment
        self.error.setText(text)
        self.error.show()

    # ------------------------------------------------------------------ restore
    def restore_selected(self) -> Task | None:
        item, scheduler = self.list.currentItem(), self.scheduler
        if item is None or scheduler is None or self.running is not None:
            return None
        name = str(item.data(Qt.ItemDataRole.UserRole))
        if not self.confirm(f"Replace ALL current data with the backup {name}? This cannot be undone."):
            return None
        self.last.setText(f"Restoring {name}…")
        self.running = self.runner.submit(
            lambda _t: scheduler.restore(name, lambda path: self._stack().restore(path)),
            on_done=lambda _r: self._restored(name),
            on_error=self._failed,
        )
        return self.running

    def _restored(self, name: str) -> None:
        self._finished(None)
        self.last.setText(f"{self.last.text()} Restored {name}.")

    def _confirm_dialog(self, text: str) -> bool:
        answer = QMessageBox.warning(
            self,
            "Restore",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes
