"""The overview's comparison: previous period (the default), the same period last year, a custom range, or none.

Contract:
- `CompareSelector.params()` is what the API's `compare` parameters take: {} for the previous period (the
  dashboard endpoint's default, so the overview's request and its cached answer stay as they were),
  {"compare": "year"}, {"compare": "custom", "compare_from", "compare_to"} (inclusive dates, the site's
  calendar), or {"compare": "false"} for none. `changed` fires when the choice (or a custom date) changes.
- `label()` names the compared range for the chart's dashed line and the change columns.
- With a year or custom comparison each breakdown box also gets its rows' change against the compared range
  (`/reports/breakdown/{dimension}` with the same `compare`; the API's percent `change`, drawn by
  `add_change_column` as the summary tiles draw theirs). The previous-period default compares the tiles and the
  chart only: the whole overview stays one request.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from pixel.app.desktop.widgets import format_change

MODES = (
    ("previous", "vs previous period"),
    ("year", "vs same period last year"),
    ("custom", "vs custom range…"),
    ("none", "no comparison"),
)


class CompareSelector(QWidget):
    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setAccessibleName("Comparison")
        for key, label in MODES:
            self.combo.addItem(label, key)
        self.date_from = QDateEdit()
        self.date_to = QDateEdit()
        today = QDate.currentDate()
        for edit, day in ((self.date_from, today.addDays(-37)), (self.date_to, today.addDays(-31))):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(day)
            edit.dateChanged.connect(self._date_changed)
        self.dash = QLabel("–")
        for w in (self.combo, self.date_from, self.dash, self.date_to):
            layout.addWidget(w)
        self.combo.currentIndexChanged.connect(self._mode_changed)
        self._show_dates()

    @property
    def mode(self) -> str:
        return str(self.combo.currentData())

    def set_mode(self, mode: str, first: QDate | None = None, last: QDate | None = None) -> None:
        """Choose a comparison (tests, a saved state): one `changed`."""
        for edit, day in ((self.date_from, first), (self.date_to, last)):
            if day is not None:
                edit.blockSignals(True)
                edit.setDate(day)
                edit.blockSignals(False)
        index = self.combo.findData(mode)
        if index == self.combo.currentIndex():
            self._mode_changed()
        else:
            self.combo.setCurrentIndex(index)

    def params(self) -> dict[str, str]:
        if self.mode == "previous":
            return {}
        if self.mode == "none":
            return {"compare": "false"}
        if self.mode == "year":
            return {"compare": "year"}
        return {
            "compare": "custom",
            "compare_from": self.date_from.date().toString("yyyy-MM-dd"),
            "compare_to": self.date_to.date().toString("yyyy-MM-dd"),
        }

    def label(self) -> str:
        if self.mode == "year":
            return "same period last year"
        if self.mode == "custom":
            first, last = (e.date().toString("yyyy-MM-dd") for e in (self.date_from, self.date_to))
            return f"{first} – {last}"
        return "previous period"

    @property
    def compares_breakdowns(self) -> bool:
        return self.mode in ("year", "custom")

    def _show_dates(self) -> None:
        custom = self.mode == "custom"
        for w in (self.date_from, self.dash, self.date_to):
            w.setVisible(custom)

    def _mode_changed(self) -> None:
        self._show_dates()
        self.changed.emit()

    def _date_changed(self) -> None:
        if self.mode == "custom":
            self.changed.emit()


def add_change_column(table: QTableWidget, rows: list[dict[str, Any]], label: str) -> None:
    """A last column with each row's change in visitors against the compared range (`rows`: the API's compared
    breakdown rows, in the table's order)."""
    column = table.columnCount()
    table.setColumnCount(column + 1)
    table.setHorizontalHeaderItem(column, QTableWidgetItem(f"vs {label}"))
    for r, row in enumerate(rows[: table.rowCount()]):
        text, colour = format_change("visitors", (row.get("change") or {}).get("visitors"))
        item = QTableWidgetItem(text)
        item.setForeground(QBrush(QColor(colour)))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        previous = (row.get("previous") or {}).get("visitors")
        item.setToolTip("" if previous is None else f"{label}: {previous:,} visitors")
        table.setItem(r, column, item)
