"""The SQL console (admins): an editor for one SELECT over a site's `events`, the result as a table (Ctrl+C
copies the selection as TSV), and the result exported as CSV (`pixel.app.client.people.csv_bytes`, the exact
rows the API answered). A refusal of the server's guard is shown as given, word for word; a result cut at the
row or time limit says so. Run with the button or Ctrl+Return; F5 / Ctrl+R runs the query again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import people
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.workers import Runner

if TYPE_CHECKING:
    from pixel.app.client import ApiClient

EXAMPLE = "SELECT path, count() AS views\nFROM events\nGROUP BY path\nORDER BY views DESC, path\nLIMIT 20"


class SqlConsole(QWidget):
    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.client: ApiClient | None = None
        self.result: people.SqlResult | None = None
        # Where to save the CSV (tests answer without a dialog); "" cancels.
        self.ask_path: Callable[[], str] = self._ask_path_dialog

        self.site = QComboBox()
        self.editor = QPlainTextEdit(EXAMPLE)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.run_button = QPushButton("&Run (Ctrl+Return)")
        self.run_button.clicked.connect(self.run)
        self.export = QPushButton("&Export CSV…")
        self.export.clicked.connect(self.export_csv)
        self.export.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = CopyTable()

        top = QHBoxLayout()
        site_label = QLabel("&Site:")
        site_label.setBuddy(self.site)
        for w in (site_label, self.site, self.run_button, self.export):
            top.addWidget(w)
        top.addStretch(1)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.status)
        bl.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.editor)
        split.addWidget(bottom)
        split.setSizes([200, 500])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        for keys in ("Ctrl+Return", "Ctrl+Enter", "F5", "Ctrl+R"):
            QShortcut(QKeySequence(keys), self, self.run)

    def set_client(self, client: ApiClient | None, sites: list[dict[str, Any]]) -> None:
        self.client = client
        self.site.clear()
        for s in sites:
            self.site.addItem(s["domain"], s["id"])

    def run(self) -> None:
        client, site_id, query = self.client, self.site.currentData(), self.editor.toPlainText()
        if client is None or site_id is None:
            self.status.setText("Not connected.")
            return
        self.status.setText("Running…")
        self.run_button.setEnabled(False)
        self.runner.submit(
            lambda _t: people.run_sql(client, int(site_id), query), on_done=self._show, on_error=self._refused
        )

    def _show(self, result: people.SqlResult) -> None:
        self.run_button.setEnabled(True)
        self.result = result
        self.table.set_rows(result.columns, result.rows)
        cut = f", cut at the {result.truncated_reason}" if result.truncated else ""
        self.status.setStyleSheet("")
        self.status.setText(f"{len(result.rows)} rows in {result.elapsed_ms:g} ms{cut}")
        self.export.setEnabled(True)

    def _refused(self, exc: BaseException) -> None:
        self.run_button.setEnabled(True)
        self.result = None  # the table and the export never show a result of another query
        self.table.set_rows([], [])
        self.export.setEnabled(False)
        self.status.setStyleSheet("color:#b91c1c")
        self.status.setText(str(getattr(exc, "detail", "") or exc))

    def export_csv(self) -> None:
        if self.result is None:
            return
        path = self.ask_path()
        if not path:
            return
        try:
            Path(path).write_bytes(people.csv_bytes(self.result.columns, self.result.rows))
        except OSError as exc:
            self.status.setText(f"Could not write {path}: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved {len(self.result.rows)} rows to {path}")

    def _ask_path_dialog(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export the result", "result.csv", "CSV (*.csv)")
        return path
