"""The export dialog: save the dashboard's current site, range and filters as a ZIP of CSVs, one report as
CSV, or the raw events as Parquet, into a file the owner picks (the system's save dialog).

The download runs on the worker pool (`app.client.exports.download`: streamed into a temporary file that
replaces the chosen file only when complete), shows the bytes received, and can be cancelled; a refusal shows
the API's own words; a cancelled or failed export leaves no file behind. `ask_path` (suggested name, file
filter -> chosen path or "") is the save dialog, replaceable by tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client.api import ApiClient
from pixel.app.client.exports import KINDS, download, export_path, suggested_name
from pixel.app.desktop.workers import Cancelled, Runner, Task

DIMENSIONS = (
    "page",
    "entry_page",
    "exit_page",
    "source",
    "referrer",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "region",
    "city",
    "browser",
    "os",
    "device",
    "language",
    "event",
)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


class ExportDialog(QDialog):
    saved = Signal(str, int)  # path, bytes

    def __init__(
        self,
        runner: Runner,
        client: ApiClient,
        site: dict[str, Any],
        params: dict[str, Any],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {site['domain']}")
        self.runner, self.client, self.site, self.params = runner, client, site, dict(params)
        self.task: Task | None = None
        self.ask_path: Callable[[str, str], str] = self._ask_path_dialog

        self.kind = QComboBox()
        for key, spec in KINDS.items():
            self.kind.addItem(spec.label, key)
        self.dimension = QComboBox()
        self.dimension.addItems(DIMENSIONS)
        self.dimension_label = QLabel("Report:")
        self.kind.currentIndexChanged.connect(self._kind_changed)
        filters = self.params.get("filters") or []
        scope = self.params.get("period", "30d")
        if scope == "custom":
            scope = f"{self.params.get('from')} to {self.params.get('to')}"
        self.scope = QLabel(
            f"{site['domain']}, {scope}, "
            + (f"{len(filters)} filter{'s' if len(filters) != 1 else ''}" if filters else "no filters")
            + " (as on the dashboard)"
        )
        form = QFormLayout()
        form.addRow("What:", self.kind)
        form.addRow(self.dimension_label, self.dimension)
        form.addRow("Data:", self.scope)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.save_button = QPushButton("Save as…")
        self.save_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel export")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.save_button, self.cancel_button, close):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._kind_changed()

    def _kind_changed(self) -> None:
        needs = self.kind.currentData() == "breakdown"
        self.dimension.setVisible(needs)
        self.dimension_label.setVisible(needs)

    def _ask_path_dialog(self, suggested: str, file_filter: str) -> str:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the export", str(Path.home() / suggested), file_filter
        )
        return path

    def start(self) -> None:
        kind = str(self.kind.currentData())
        dim = self.dimension.currentText() if kind == "breakdown" else ""
        name = suggested_name(self.site["domain"], kind, str(self.params.get("period", "30d")), dim)
        path = self.ask_path(name, KINDS[kind].file_filter)
        if not path:
            return
        dest = Path(path)
        url = export_path(int(self.site["id"]), kind, dim)
        params = self.params

        def work(task: Task) -> int:
            return download(self.client, url, params, dest, lambda n: task.report(n))

        self.save_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._style("")
        self.status.setText(f"Exporting to {dest}…")
        self.task = self.runner.submit(
            work, lambda n: self._done(dest, int(n)), self._failed, lambda n: self._progress(dest, int(n))
        )

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, dest: Path, received: int) -> None:
        self.status.setText(f"Exporting to {dest}… {_size(received)} received")

    def _finish(self) -> None:
        self.task = None
        self.save_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _style(self, colour: str) -> None:
        self.status.setStyleSheet(f"color:{colour}" if colour else "")

    def _done(self, dest: Path, size: int) -> None:
        self._finish()
        self._style("#15803d")
        self.status.setText(f"Saved {_size(size)} to {dest}")
        self.saved.emit(str(dest), size)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, Cancelled):
            self._style("")
            self.status.setText("Export cancelled; nothing was saved.")
            return
        self._style("#b91c1c")
        detail = getattr(exc, "detail", "") or str(exc)
        if isinstance(exc, OSError):
            detail = f"Could not write the file: {exc.strerror or exc}"
        self.status.setText(f"Export failed: {detail}")


def open_export_dialog(dashboard: Any) -> ExportDialog | None:
    """The dialog for the dashboard's site, range and filters (None when not connected or no site)."""
    source = getattr(dashboard, "source", None)
    client = getattr(source, "client", None)
    if client is None or dashboard.site is None:
        return None
    dialog = ExportDialog(dashboard.runner, client, dashboard.site, dashboard.params(), dashboard)
    dialog.show()
    return dialog
