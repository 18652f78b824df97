"""Saved segments on the dashboard: a bar to pick a segment (its filters replace the current ones), to save the
current filters as a segment (personal, or shared with the site's users by an admin), to rename, share or unshare,
and delete the segment picked (the "Manage" menu; the API decides who may, as for dashboards), and to compare two
segments; the comparison view shows their summary side by side and both time series on one chart.

The bar holds no data of its own: the dashboard gives it the site's segments (`set_segments`) and acts on its
signals. Asking for a name and confirming a deletion are replaceable functions (`ask_name`, `ask_rename`,
`confirm_delete`), so tests drive the bar without a modal dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.charts import TimeSeriesChart
from pixel.app.desktop.widgets import format_value

COMPARED = ("visitors", "pageviews", "sessions", "bounce_rate", "visit_duration")
TITLES = {
    "visitors": "Visitors",
    "pageviews": "Pageviews",
    "sessions": "Sessions",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
}
EVERYONE = "All visitors (no segment)"


def describe(filters: Sequence[Sequence[str]]) -> str:
    return " · ".join(f"{d} {op} {v}" for d, op, v in filters) or "no filters"


class SegmentsBar(QWidget):
    chosen = Signal(list)  # the filters of the segment picked ([] for everyone)
    save_requested = Signal(str, bool)  # name, shared
    compare_requested = Signal(object, object)  # two segments (dicts; None = everyone)
    rename_requested = Signal(object, str)  # the segment picked, its new name
    share_requested = Signal(object, bool)  # the segment picked, shared or not
    delete_requested = Signal(object)  # the segment picked

    def __init__(self) -> None:
        super().__init__()
        self.segments: list[dict[str, Any]] = []
        self.ask_name: Callable[[], str | None] = self._ask_name
        self.ask_rename: Callable[[dict[str, Any]], str | None] = self._ask_rename
        self.confirm_delete: Callable[[dict[str, Any]], bool] = self._confirm_delete
        self.pick = QComboBox()
        self.pick.setMinimumWidth(220)
        self.pick.activated.connect(self._picked)
        self.save = QPushButton("Save filters as segment…")
        self.save.clicked.connect(self._save)
        self.shared = QCheckBox("shared")
        self.shared.setToolTip("Shared with everyone who sees the site (admins only)")
        self.other = QComboBox()
        self.other.setMinimumWidth(200)
        self.compare = QPushButton("Compare")
        self.compare.clicked.connect(self._compare)
        self.manage = QPushButton("Manage")
        self.manage.setToolTip("Rename, share or unshare, or delete the segment picked")
        menu = QMenu(self.manage)
        self.rename_action = menu.addAction("Rename…", self.rename_current)
        self.share_action = menu.addAction("Share with the site's users", self.toggle_share)
        self.delete_action = menu.addAction("Delete…", self.delete_current)
        self.manage.setMenu(menu)
        self.pick.currentIndexChanged.connect(lambda _i: self._update_manage())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("Segment:"), self.pick, self.manage, self.save, self.shared, QLabel("compare with")):
            row.addWidget(w)
        row.addWidget(self.other)
        row.addWidget(self.compare)
        row.addStretch(1)
        self.set_segments([])

    def set_segments(self, items: Sequence[dict[str, Any]], current: int | None = None) -> None:
        self.segments = sorted(items, key=lambda s: (s["name"].lower(), s["id"]))
        for combo in (self.pick, self.other):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(EVERYONE, None)
            for s in self.segments:
                mark = " (shared)" if s["shared"] else ""
                combo.addItem(f"{s['name']}{mark}", s["id"])
                combo.setItemData(combo.count() - 1, describe(s["filters"]), 3)  # 3: Qt.ToolTipRole
            wanted = current if combo is self.pick and current is not None else keep
            index = combo.findData(wanted)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)
        self._update_manage()

    def current(self) -> dict[str, Any] | None:
        """The segment picked in the bar (None: everyone)."""
        return self.segment(self.pick.currentData())

    def _update_manage(self) -> None:
        chosen = self.current()
        self.manage.setEnabled(chosen is not None)
        shared = bool(chosen and chosen["shared"])
        self.share_action.setText("Make personal (unshare)" if shared else "Share with the site's users")

    def rename_current(self) -> None:
        chosen = self.current()
        name = self.ask_rename(chosen) if chosen else None
        if chosen and name and name.strip() != chosen["name"]:
            self.rename_requested.emit(chosen, name.strip())

    def toggle_share(self) -> None:
        chosen = self.current()
        if chosen:
            self.share_requested.emit(chosen, not chosen["shared"])

    def delete_current(self) -> None:
        chosen = self.current()
        if chosen and self.confirm_delete(chosen):
            self.delete_requested.emit(chosen)

    def _ask_rename(self, segment: dict[str, Any]) -> str | None:
        name, ok = QInputDialog.getText(self, "Rename segment", "New name:", text=segment["name"])
        return name if ok and name.strip() else None

    def _confirm_delete(self, segment: dict[str, Any]) -> bool:
        answer = QMessageBox.question(
            self, "Delete segment", f"Delete the segment “{segment['name']}”? The filters in use stay."
        )
        return answer == QMessageBox.StandardButton.Yes

    def segment(self, segment_id: int | None) -> dict[str, Any] | None:
        return next((s for s in self.segments if s["id"] == segment_id), None)

    def select(self, segment_id: int | None) -> None:
        """Pick a segment as the user would (its filters are applied)."""
        self.pick.setCurrentIndex(max(self.pick.findData(segment_id), 0))
        self._picked()

    def _picked(self, *_: object) -> None:
        chosen = self.segment(self.pick.currentData())
        self.chosen.emit([list(f) for f in chosen["filters"]] if chosen else [])

    def _ask_name(self) -> str | None:
        name, ok = QInputDialog.getText(self, "Save segment", "Name of the segment (the current filters):")
        return name if ok and name.strip() else None

    def _save(self) -> None:
        name = self.ask_name()
        if name:
            self.save_requested.emit(name.strip(), self.shared.isChecked())

    def _compare(self) -> None:
        self.compare_requested.emit(
            self.segment(self.pick.currentData()), self.segment(self.other.currentData())
        )


class CompareChart(TimeSeriesChart):
    """Two segments' series on one chart: the first solid, the second dashed, each named in the legend."""

    def set_pair(
        self,
        labels: Sequence[str],
        first: Sequence[float],
        second: Sequence[float],
        names: tuple[str, str],
        metric: str,
    ) -> None:
        self.set_series(labels, first, metric, second)
        self.names = names
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.clear()
            legend.addItem(self.current, names[0])
            legend.addItem(self.previous, names[1])

    def hover_at(self, index: int) -> str:
        text = super().hover_at(index)
        if text and getattr(self, "names", None):
            text = text.replace(f"{self.metric_name}:", f"{self.names[0]}:", 1).replace(
                "previous period:", f"{self.names[1]}:"
            )
            self.hover_text.setText(text)
        return text


class SegmentCompare(QWidget):
    """Two segments side by side: each metric of the summary for both, and both time series on one chart."""

    def __init__(self) -> None:
        super().__init__()
        self.title = QLabel("Pick two segments above and press Compare.")
        self.grid = QGridLayout()
        self.cells: dict[tuple[str, int], QLabel] = {}
        self.heads = (QLabel(""), QLabel(""))
        self.grid.addWidget(self.heads[0], 0, 1)
        self.grid.addWidget(self.heads[1], 0, 2)
        for row, metric in enumerate(COMPARED, start=1):
            self.grid.addWidget(QLabel(TITLES[metric]), row, 0)
            for col in (0, 1):
                cell = QLabel("—")
                self.cells[(metric, col)] = cell
                self.grid.addWidget(cell, row, col + 1)
        self.chart = CompareChart()
        self.message = QLabel("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(self.grid)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.message)

    def set_data(self, data: dict[str, Any]) -> None:
        """`data`: {"names": [a, b], "summaries": [summary, summary], "timeseries": [ts, ts]} (the API's)."""
        names = tuple(data["names"])
        self.title.setText(f"{names[0]}  vs  {names[1]}")
        for col, (head, summary) in enumerate(zip(self.heads, data["summaries"], strict=True)):
            head.setText(f"<b>{names[col]}</b>")
            for metric in COMPARED:
                item = summary["metrics"].get(metric)
                self.cells[(metric, col)].setText(format_value(metric, float(item["value"])) if item else "—")
        first, second = (ts["points"] for ts in data["timeseries"])
        self.chart.set_pair(
            [p["bucket"] for p in first],
            [p["visitors"] for p in first],
            [p["visitors"] for p in second],
            (names[0], names[1]),
            "visitors",
        )
        self.message.setText("")

    def set_message(self, text: str) -> None:
        self.message.setText(text)
