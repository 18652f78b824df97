"""The import dialog (owners): bring a site's history from a file through the API (`app/client/imports.py`).

Steps, each a background task so the window never waits: choose a file (it is uploaded at once, streamed, with
the bar showing the bytes sent; the API guesses its kind from its first lines and the owner can change it) ->
choose the site -> Preview (a table of UTC days with the events each would add and whether the site already has
live data that day, the overlap; a table of skipped lines by reason and of malformed lines with their numbers)
-> the overlap choice (skip those days, the default, or include them) -> Start (the bar follows the import,
asked every `poll_ms`) -> Cancel (an upload stops; a running import stops and what it imported is removed).
Below, the past imports with Undo (after a confirmation). Refusals show the API's own words in the status line.
A file uploaded and never imported is dropped from the server when the dialog closes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import imports as api
from pixel.app.client.api import ApiClient
from pixel.app.desktop.status_colours import Kind, status_style
from pixel.app.desktop.workers import Cancelled, Runner, Task


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: list[list[Any]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(f"{value:,}" if isinstance(value, int) else str(value))
            if isinstance(value, int):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


class ImportDialog(QDialog):
    def __init__(
        self,
        runner: Runner,
        client: ApiClient,
        sites: list[dict[str, Any]],
        site_id: int | None = None,
        parent: QWidget | None = None,
        poll_ms: int = 500,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import history")
        self.runner, self.client = runner, client
        self.upload: dict[str, Any] | None = None
        self.shown: dict[str, Any] | None = None  # the last preview
        self.import_id = ""
        self.task: Task | None = None
        self.imports: list[dict[str, Any]] = []
        # hooks (tests answer without a dialog)
        self.ask_path: Callable[[], str] = self._ask_path_dialog
        self.confirm: Callable[[str], bool] = self._confirm_dialog

        self.file = QLabel("No file chosen")
        self.choose_button = QPushButton("Choose file…")
        self.choose_button.clicked.connect(self.choose_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file, 1)
        file_row.addWidget(self.choose_button)
        self.kind = QComboBox()
        for key, label in api.KINDS.items():
            self.kind.addItem(label, key)
        self.kind.currentIndexChanged.connect(self._changed)
        self.guess = QLabel("")
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.kind, 1)
        kind_row.addWidget(self.guess)
        self.site = QComboBox()
        for s in sites:
            self.site.addItem(str(s["domain"]), int(s["id"]))
        if site_id is not None and self.site.findData(int(site_id)) >= 0:
            self.site.setCurrentIndex(self.site.findData(int(site_id)))
        self.site.currentIndexChanged.connect(self._changed)
        form = QFormLayout()
        form.addRow("File:", file_row)
        form.addRow("Kind:", kind_row)
        form.addRow("Into site:", self.site)

        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(self.preview)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.days = _table(["Day (UTC)", "Events", "Live data that day"])
        self.skips = _table(["Skipped", "Lines"])
        self.skips.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.skips.horizontalHeader().setStretchLastSection(False)
        tables = QHBoxLayout()
        tables.addWidget(self.days, 1)
        tables.addWidget(self.skips, 1)
        self.overlap_skip = QRadioButton(api.OVERLAP["skip"])
        self.overlap_include = QRadioButton(api.OVERLAP["include"])
        self.overlap_skip.setChecked(True)
        self.overlap = QButtonGroup(self)
        self.overlap.addButton(self.overlap_skip)
        self.overlap.addButton(self.overlap_include)
        preview_box = QGroupBox("Preview")
        pv = QVBoxLayout(preview_box)
        pv.addWidget(self.summary)
        pv.addLayout(tables)
        pv.addWidget(self.overlap_skip)
        pv.addWidget(self.overlap_include)

        self.start_button = QPushButton("Start import")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        actions = QHBoxLayout()
        actions.addWidget(self.preview_button)
        actions.addWidget(self.start_button)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.bar, 1)

        self.past = _table(["Import", "Site", "Kind", "File", "Status", "Events", "Days"])
        self.undo_button = QPushButton("Undo import…")
        self.undo_button.clicked.connect(self.undo_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        past_box = QGroupBox("Past imports")
        pl = QVBoxLayout(past_box)
        pl.addWidget(self.past)
        past_buttons = QHBoxLayout()
        past_buttons.addWidget(self.undo_button)
        past_buttons.addWidget(self.refresh_button)
        past_buttons.addStretch(1)
        past_buttons.addWidget(close)
        pl.addLayout(past_buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(preview_box, 2)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(past_box, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._poll)
        self._buttons()
        self.refresh()

    # ------------------------------------------------------------------ state
    def _busy(self) -> bool:
        return self.task is not None or bool(self.import_id)

    def _buttons(self) -> None:
        busy = self._busy()
        self.choose_button.setEnabled(not busy)
        self.kind.setEnabled(not busy)
        self.site.setEnabled(not busy)
        self.preview_button.setEnabled(not busy and self.upload is not None and self.site.count() > 0)
        self.start_button.setEnabled(not busy and self.shown is not None)
        self.cancel_button.setEnabled(busy)
        self.undo_button.setEnabled(not busy)

    def say(self, text: str, kind: Kind | None = None) -> None:
        self.status.setStyleSheet(status_style(kind, self.status) if kind else "")
        self.status.setText(text)

    def _failed(self, what: str) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            self.task = None
            self._buttons()
            if isinstance(exc, Cancelled):
                self.say(f"{what} cancelled.", "muted")
                return
            self.say(f"{what} failed: {getattr(exc, 'detail', '') or exc}", "bad")

        return failed

    def _changed(self) -> None:
        """Another kind or site: the preview shown is not this one's any more."""
        self.shown = None
        self.days.setRowCount(0)
        self.skips.setRowCount(0)
        self.summary.setText("")
        self._buttons()

    # ------------------------------------------------------------------ file
    def _ask_path_dialog(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "The file to import",
            str(Path.home()),
            "Logs and exports (*.log *.gz *.csv *.json *.ndjson *.txt *.zip);;All files (*)",
        )
        return path

    def choose_file(self) -> None:
        chosen = self.ask_path()
        if not chosen:
            return
        path = Path(chosen)
        self._drop_upload()
        self._changed()
        self.file.setText(path.name)
        self.bar.setValue(0)
        size = max(path.stat().st_size, 1)
        client = self.client

        def work(task: Task) -> dict[str, Any]:
            return api.upload(client, path, lambda sent: task.report(sent))

        def progress(sent: Any) -> None:
            self.bar.setValue(int(min(int(sent) / size, 1.0) * 100))
            self.say(f"Uploading {path.name}… {_size(int(sent))} of {_size(size)}")

        self.say(f"Uploading {path.name}…")
        self.task = self.runner.submit(work, self._uploaded, self._failed("Upload"), progress)
        self._buttons()

    def _uploaded(self, upload: dict[str, Any]) -> None:
        self.task = None
        self.upload = upload
        guess = upload.get("kind")
        if guess and self.kind.findData(guess) >= 0:
            self.kind.setCurrentIndex(self.kind.findData(guess))
            self.guess.setText("(guessed from its first lines)")
        else:
            self.guess.setText("(not recognised: choose its kind)")
        self.bar.setValue(100)
        self.say(
            f"Uploaded {upload['name']} ({_size(int(upload['size']))}). Choose its kind and site, then Preview."
        )
        self._buttons()

    def _drop_upload(self) -> None:
        """The server's copy of a file uploaded and not imported."""
        if self.upload is None or self.import_id:
            return
        upload_id, client = str(self.upload["id"]), self.client
        self.upload = None
        self.runner.submit(lambda _t: api.delete_upload(client, upload_id))

    # ------------------------------------------------------------------ preview
    def preview(self) -> None:
        if self.upload is None or self.site.count() == 0:
            return
        upload_id, kind, site_id = (
            str(self.upload["id"]),
            str(self.kind.currentData()),
            int(self.site.currentData()),
        )
        client = self.client
        self.bar.setValue(0)

        def work(task: Task) -> dict[str, Any]:
            return api.preview(client, upload_id, kind, site_id, lambda state: task.report(state))

        def progress(state: Any) -> None:
            self.bar.setValue(int(state.get("percent") or 0))
            self.say(f"Reading the file… {int(state.get('lines') or 0):,} lines")

        self.say("Reading the file…")
        self.task = self.runner.submit(work, self._previewed, self._failed("Preview"), progress)
        self._buttons()

    def _previewed(self, shown: dict[str, Any]) -> None:
        self.task = None
        self.bar.setValue(100)
        self.shown = shown
        _fill(
            self.days,
            [
                [d["day"], int(d["rows"]), "yes: skipped unless included" if d["live"] else ""]
                for d in shown["days"]
            ],
        )
        skipped = sorted(shown["skipped"].items(), key=lambda kv: (-kv[1], kv[0]))
        rows: list[list[Any]] = [[reason, int(n)] for reason, n in skipped]
        if shown["malformed_count"]:
            rows.append(
                [
                    f"malformed lines ({shown['malformed_count']:,}), first ones:",
                    int(shown["malformed_count"]),
                ]
            )
            # a raw source's line number; an aggregate source's "file:line"
            rows += [
                [f"{number}: {reason}" if isinstance(number, str) else f"line {number}: {reason}", ""]
                for number, reason in shown["malformed"]
            ]
        _fill(self.skips, rows)
        hosts = ", ".join(f"{h} ({n:,})" for h, n in shown["hosts"].items()) or "-"
        first, last = shown["first"][:10], shown["last"][:10]
        overlap = shown["overlap_days"]
        # an aggregate source (daily reports: `visitors` in its preview) says what its rows are instead of events
        head = (
            f"Daily reports, {first} to {last}: {int(shown['visitors']):,} visitors (summed over the days), "
            f"{int(shown.get('pageviews') or 0):,} pageviews. Report rows to import: {shown['rows']['skip']:,}"
            if "visitors" in shown
            else f"{shown['lines']:,} lines, {first} to {last}. Sites found: {hosts}. "
            f"Events to import: {shown['rows']['skip']:,}"
        )
        self.summary.setText(
            head
            + (
                f" ({shown['rows']['include']:,} with the {len(overlap)} day(s) that already have live data)"
                if overlap
                else " (no day has live data yet)"
            )
            + "."
        )
        self.say("Check the preview, choose what to do with days that have live data, then Start import.")
        self._buttons()

    # ------------------------------------------------------------------ run
    def start(self) -> None:
        if self.upload is None or self.shown is None:
            return
        upload_id, kind, site_id = (
            str(self.upload["id"]),
            str(self.kind.currentData()),
            int(self.site.currentData()),
        )
        overlap = "include" if self.overlap_include.isChecked() else "skip"
        client = self.client
        self.bar.setValue(0)
        self.say("Starting the import…")
        self.task = self.runner.submit(
            lambda _t: api.start(client, upload_id, kind, site_id, overlap),
            self._started,
            self._failed("Import"),
        )
        self._buttons()

    def _started(self, state: dict[str, Any]) -> None:
        self.task = None
        self.import_id = str(state["id"])
        self.upload = None  # the server's now: removed when the import ends
        self._show_progress(state)
        self.timer.start()

    def _poll(self) -> None:
        if not self.import_id or self.task is not None:
            return
        import_id, client = self.import_id, self.client

        def got(state: dict[str, Any]) -> None:
            self.task = None
            self._show_progress(state)

        def lost(exc: BaseException) -> None:
            self.task = None
            self.say(f"Could not read the import's progress: {getattr(exc, 'detail', '') or exc}", "warn")

        self.task = self.runner.submit(lambda _t: api.status(client, import_id), got, lost)

    def _show_progress(self, state: dict[str, Any]) -> None:
        self.bar.setValue(int(state.get("percent") or 0))
        status = state.get("status", "")
        if not api.finished(state):
            verb = "Cancelling" if status == "cancelling" else "Importing"
            self.say(
                f"{verb} {state.get('file', '')}: {int(state.get('lines') or 0):,} lines read, "
                f"{int(state.get('rows') or 0):,} events so far."
            )
            self._buttons()
            return
        self.timer.stop()
        self.import_id = ""
        if status == "done":
            self.say(f"Imported {int(state['rows']):,} events as {state['id']}.", "good")
        elif status == "truncated":
            self.say(
                f"Imported {int(state['rows']):,} events, then stopped: {state.get('error', '')}", "warn"
            )
        elif status == "cancelled":
            self.bar.setValue(0)
            self.say("Import cancelled; what it had imported was removed.", "muted")
        else:
            self.say(f"Import {status}: {state.get('error', '')}", "bad")
        self.shown = None
        self._buttons()
        self.refresh()

    def cancel(self) -> None:
        if self.import_id:
            import_id, client = self.import_id, self.client
            self.say("Cancelling…")
            self.runner.submit(lambda _t: api.cancel(client, import_id), None, self._failed("Cancel"))
        elif self.task is not None:
            self.task.cancel()

    # ------------------------------------------------------------------ past imports
    def refresh(self) -> None:
        client = self.client

        def listed(found: list[dict[str, Any]]) -> None:
            self.imports = found
            _fill(
                self.past,
                [
                    [
                        i["id"],
                        i["site"],
                        i.get("kind", ""),
                        i.get("file", ""),
                        i["status"],
                        int(i["rows"]),
                        ", ".join(f"{d} ({n:,})" for d, n in (i.get("days") or {}).items()),
                    ]
                    for i in found
                ],
            )

        def not_listed(exc: BaseException) -> None:
            self.say(f"Could not list the imports: {getattr(exc, 'detail', '') or exc}", "bad")

        self.runner.submit(lambda _t: api.list_imports(client), listed, not_listed)

    def _confirm_dialog(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Undo import", text)
        return answer == QMessageBox.StandardButton.Yes

    def undo_selected(self) -> None:
        row = self.past.currentRow()
        if row < 0 or row >= len(self.imports):
            self.say("Choose an import in the list first.", "warn")
            return
        chosen = self.imports[row]
        if not self.confirm(
            f"Remove the {int(chosen['rows']):,} events of import {chosen['id']} ({chosen.get('file', '')}) "
            f"from {chosen['site']}? This cannot be undone."
        ):
            return
        import_id, client = str(chosen["id"]), self.client

        def undone(rows: int) -> None:
            self.task = None
            self.say(f"Import {import_id} undone: {int(rows):,} events removed.", "good")
            self._buttons()
            self.refresh()

        self.task = self.runner.submit(lambda _t: api.undo(client, import_id), undone, self._failed("Undo"))
        self._buttons()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        if self.task is not None and not self.import_id:
            self.task.cancel()
        self._drop_upload()
        super().closeEvent(event)


def open_import_dialog(
    parent: QWidget, runner: Runner, client: ApiClient, sites: list[dict[str, Any]], site_id: int | None
) -> ImportDialog:
    dialog = ImportDialog(runner, client, sites, site_id, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.resize(760, 640)
    dialog.show()
    return dialog
