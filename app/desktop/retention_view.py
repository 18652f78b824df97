"""Retention: the API's weekly cohort table (`/reports/retention`) drawn as a heatmap.

Contract:
- One row per cohort (the week, Monday in the site's zone, in which visitors were first seen in the period),
  its size, then one cell per later week k (0, 1, 2...): the share of the cohort active in week k, exactly the
  API's `percent[k]` (`cells` holds what is shown), with the count and the share in the cell's tooltip.
- A cell's fill grows with its share (0 to 100 %) from the palette's Base colour to an accent; the text colour
  is the one (the palette's Text or its opposite) with the stronger contrast on that fill. Colours are chosen
  again when the palette changes (dark mode).
- Read-only table: Tab to it, arrows to move, Ctrl+C copies the selection as TSV.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidgetItem, QVBoxLayout, QWidget

from pixel.app.desktop.charts import contrast, is_dark
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.none_refs import balanced_calls
from pixel.app.desktop.worldmap import mix

LIGHT_ACCENT, DARK_ACCENT = QColor("#4338ca"), QColor("#a5b4fc")


def heat(base: QColor, share: float) -> QColor:
    """The fill of a cell with `share` percent (0 to 100) on a `base` background."""
    accent = DARK_ACCENT if is_dark(base) else LIGHT_ACCENT
    return mix(base, accent, max(0.0, min(100.0, share)) / 100.0)


def readable(fill: QColor, text: QColor) -> QColor:
    """`text` or its opposite (white/black), whichever stands out more on `fill`."""
    other = QColor("#ffffff") if is_dark(text) else QColor("#000000")
    return text if contrast(fill, text) >= contrast(fill, other) else other


class RetentionView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.note = QLabel(
            "Weekly cohorts: visitors by the week they were first seen in the period (Monday, the site's time "
            "zone), and the share of them active again in each following week."
        )
        self.note.setWordWrap(True)
        self.table = CopyTable(["Cohort", "Visitors"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setAccessibleName("Retention by weekly cohort")
        self.message = QLabel("")
        for w in (self.note, self.table, self.message):
            layout.addWidget(w)
        self.cohorts: list[dict[str, Any]] = []
        self.cells: list[list[float]] = []

    @balanced_calls
    def set_data(self, data: dict[str, Any]) -> None:
        self.cohorts = list(data.get("cohorts", []))
        self.cells = [[float(p) for p in c["percent"]] for c in self.cohorts]
        weeks = max((len(row) for row in self.cells), default=0)
        self.table.clear()
        self.table.setColumnCount(2 + weeks)
        self.table.setHorizontalHeaderLabels(["Cohort", "Visitors", *(f"Week {k}" for k in range(weeks))])
        self.table.setRowCount(len(self.cohorts))
        for r, cohort in enumerate(self.cohorts):
            self.table.setItem(r, 0, QTableWidgetItem(f"{cohort['cohort']}"))
            size = QTableWidgetItem(f"{int(cohort['visitors']):,}")
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, 1, size)
            counts = cohort.get("weeks", [])
            for k, share in enumerate(self.cells[r]):
                item = QTableWidgetItem(f"{share:g}%")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                count = int(counts[k]) if k < len(counts) else 0
                item.setToolTip(
                    f"Cohort of {cohort['cohort']}: {count:,} of {int(cohort['visitors']):,} visitors "
                    f"active in week {k} ({share:g}%)"
                )
                self.table.setItem(r, 2 + k, item)
        self.recolour()
        self.message.setText("" if self.cohorts else "No visitors in this period.")

    @balanced_calls
    def recolour(self) -> None:
        palette = self.palette()  # the view's (its table's follows it, a moment later at a theme change)
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        for r, row in enumerate(self.cells):
            for k, share in enumerate(row):
                item = self.table.item(r, 2 + k)
                if item is None:
                    continue
                fill = heat(base, share)
                item.setBackground(QBrush(fill))
                item.setForeground(QBrush(readable(fill, text)))

    def fill_of(self, row: int, week: int) -> QColor:
        item = self.table.item(row, 2 + week)
        return item.background().color() if item is not None else QColor()

    def set_message(self, text: str) -> None:
        self.message.setText(text)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange) and self.cells:
            self.recolour()
        super().changeEvent(event)
