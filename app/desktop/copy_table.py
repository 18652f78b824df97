"""A read-only table whose Ctrl+C (the platform's Copy shortcut) copies the selected cells as TSV: the
rectangle from the first to the last selected row and column, cells not selected left empty, rows in view
order; tabs and line breaks inside a cell become spaces (what spreadsheets paste)."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem, QWidget

from pixel.app.client.people import cell_text, tsv_text


class CopyTable(QTableWidget):
    def __init__(self, headers: list[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.verticalHeader().setVisible(False)
        if headers:
            self.set_rows(headers, [])

    def set_rows(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.clear()
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.setItem(r, c, QTableWidgetItem(cell_text(value)))
        self.resizeColumnsToContents()

    def selection_tsv(self) -> str:
        indexes = self.selectedIndexes()
        if not indexes:
            return ""
        rows = sorted({i.row() for i in indexes})
        cols = sorted({i.column() for i in indexes})
        chosen = {(i.row(), i.column()) for i in indexes}
        grid = []
        for r in range(rows[0], rows[-1] + 1):
            line = []
            for c in range(cols[0], cols[-1] + 1):
                item = self.item(r, c)
                line.append(item.text() if item is not None and (r, c) in chosen else "")
            grid.append(line)
        return tsv_text(grid)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            QGuiApplication.clipboard().setText(self.selection_tsv())
            event.accept()
            return
        super().keyPressEvent(event)
