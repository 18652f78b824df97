"""Annotations on a time series chart: a marker per note (a vertical line; a shaded band for a range of more than one day) with its
text on hover, and "add a note here" by right-clicking the chart. A right-click on a marker offers, besides
adding, to edit or delete each manual note there; automatic ones are listed read-only (the API refuses to edit
them, and a refusal, e.g. another user's note, is the page's to show).

Manual notes are solid amber lines; automatic ones (written by Pixel: an upgrade, a restore, a change of the site's
rules, a GeoIP update, a tracker build, an ingestion gap, the shipper degraded) are dashed teal lines labelled with
their kind, so the two never look alike. The colours follow the chart's background (light or dark palette).

Time: the chart's x axis is the site's wall-clock time read as UTC (charts.py), so a marker at epoch `t` is drawn
at the wall-clock time `t` has in the site's zone (`chart_x`); a right-click at x is the local date x shows.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QWidget

from pixel.app.client.annotations import Marker
from pixel.app.desktop.charts import TimeSeriesChart, is_dark

if TYPE_CHECKING:
    from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent

# (manual, automatic) marker colours on a light and on a dark background
LIGHT_MARKERS = ("#b45309", "#0f766e")
DARK_MARKERS = ("#fbbf24", "#5eead4")
ONE_DAY = 86400.0 + 3600.0  # a day, a DST change included


def chart_x(epoch: float, zone: ZoneInfo) -> float:
    """Where `epoch` is on a chart whose axis is the site's wall-clock time read as UTC."""
    local = datetime.fromtimestamp(epoch, zone).replace(tzinfo=None)
    return float(calendar.timegm(local.timetuple())) + local.microsecond / 1e6


def day_at(x: float) -> date:
    """The site's local date at chart position `x`."""
    return datetime.fromtimestamp(x, UTC).date()


def ask_note(parent: QWidget, day: date) -> str | None:
    text, ok = QInputDialog.getText(parent, "Add an annotation", f"Note for {day.isoformat()}:")
    return text if ok and text.strip() else None


def ask_edit(parent: QWidget, marker: Marker) -> str | None:
    text, ok = QInputDialog.getText(parent, "Edit the annotation", "Note:", text=marker.text)
    return text if ok and text.strip() else None


def confirm_delete(parent: QWidget, marker: Marker) -> bool:
    answer = QMessageBox.question(parent, "Delete the annotation", f"Delete the note “{marker.text}”?")
    return answer == QMessageBox.StandardButton.Yes


def choose_action(parent: QWidget, day: date, markers: Sequence[Marker]) -> tuple[str, Marker | None] | None:
    """A menu at the cursor: add a note on `day`, edit or delete a manual marker there; None if dismissed."""
    menu = QMenu(parent)
    chosen: dict[Any, tuple[str, Marker | None]] = {
        menu.addAction(f"Add a note on {day.isoformat()}…"): ("add", None)
    }
    for marker in markers:
        menu.addSeparator()
        if marker.automatic:
            menu.addAction(f"{AnnotationLayer.short(marker)} (automatic: read-only)").setEnabled(False)
            continue
        chosen[menu.addAction(f"Edit “{AnnotationLayer.short(marker)}”…")] = ("edit", marker)
        chosen[menu.addAction(f"Delete “{AnnotationLayer.short(marker)}”…")] = ("delete", marker)
    picked = menu.exec(QCursor.pos())
    return chosen.get(picked) if picked is not None else None


class AnnotationLayer(QObject):
    """The markers of one chart. `add_requested(date, text)` is emitted after a right-click and a note typed;
    `edit_requested(marker, text)` and `delete_requested(marker)` after a right-click on a manual marker."""

    add_requested = Signal(object, str)
    edit_requested = Signal(object, str)
    delete_requested = Signal(object)

    def __init__(self, chart: TimeSeriesChart) -> None:
        super().__init__(chart)
        self.chart = chart
        self.markers: list[Marker] = []
        self.items: list[tuple[Marker, float, float, Any]] = []  # marker, x start, x end, the drawn item
        self.zone = ZoneInfo("UTC")
        self.ask: Callable[[date], str | None] = lambda day: ask_note(chart, day)
        self.ask_edit: Callable[[Marker], str | None] = lambda marker: ask_edit(chart, marker)
        self.confirm: Callable[[Marker], bool] = lambda marker: confirm_delete(chart, marker)
        self.choose: Callable[[date, Sequence[Marker]], tuple[str, Marker | None] | None] = lambda day, near: (
            choose_action(chart, day, near)
        )
        chart.scene().sigMouseClicked.connect(self._clicked)
        chart.hover_notes = self.text_near

    def colours(self) -> tuple[QColor, QColor]:
        chosen = DARK_MARKERS if is_dark(self.chart.background) else LIGHT_MARKERS
        return QColor(chosen[0]), QColor(chosen[1])

    def set_markers(self, markers: Sequence[Marker], timezone: str) -> None:
        for drawn in self.items:
            self.chart.removeItem(drawn[3])
        self.items = []
        self.markers = list(markers)
        self.zone = ZoneInfo(timezone)
        manual, automatic = self.colours()
        item: Any
        for marker in self.markers:
            colour = automatic if marker.automatic else manual
            style = Qt.PenStyle.DashLine if marker.automatic else Qt.PenStyle.SolidLine
            start = chart_x(marker.starts_at, self.zone)
            end = chart_x(marker.ends_at, self.zone) if marker.ends_at is not None else start
            if end - start > ONE_DAY:  # a range of days: a band; a moment or one day: a line
                fill = QColor(colour)
                fill.setAlpha(40)
                item = pg.LinearRegionItem(
                    (start, end),
                    movable=False,
                    brush=pg.mkBrush(fill),
                    pen=pg.mkPen(colour, width=1, style=style),
                )
            else:
                item = pg.InfiniteLine(
                    pos=start, angle=90, movable=False, pen=pg.mkPen(colour, width=2, style=style)
                )
                pg.InfLineLabel(
                    item, text=self.short(marker), position=0.95, color=colour, anchors=[(0, 0), (0, 0)]
                )
            item.setToolTip(marker.label(self.zone))
            item.setZValue(-5)
            self.chart.addItem(item, ignoreBounds=True)
            self.items.append((marker, start, end, item))

    @staticmethod
    def short(marker: Marker) -> str:
        """The label beside a line: the kind of an automatic note, the start of a manual one's text."""
        if marker.automatic:
            return marker.kind.replace("_", " ")
        return marker.text if len(marker.text) <= 18 else marker.text[:17] + "…"

    def near(self, x: float, tolerance: float) -> list[Marker]:
        """The markers at `x` (within `tolerance` of a line, or inside a band)."""
        return [m for m, start, end, _ in self.items if start - tolerance <= x <= end + tolerance]

    def text_near(self, x: float, tolerance: float) -> str:
        """The hover text of the markers at `x` (the chart's crosshair adds it to its own)."""
        return "\n".join(m.label(self.zone) for m in self.near(x, tolerance))

    def recolour(self) -> None:
        self.set_markers(self.markers, str(self.zone))

    def request_add(self, x: float) -> None:
        day = day_at(x)
        text = self.ask(day)
        if text:
            self.add_requested.emit(day, text.strip())

    def request_at(self, x: float, tolerance: float) -> None:
        """A right-click at `x`: add a note there, or (markers there) add, edit or delete, as chosen."""
        near = self.near(x, tolerance)
        if not near:
            self.request_add(x)
            return
        picked = self.choose(day_at(x), near)
        if picked is None:
            return
        action, marker = picked
        if action == "add":
            self.request_add(x)
        elif marker is not None and not marker.automatic and action == "edit":
            text = self.ask_edit(marker)
            if text and text.strip() != marker.text:
                self.edit_requested.emit(marker, text.strip())
        elif marker is not None and not marker.automatic and action == "delete" and self.confirm(marker):
            self.delete_requested.emit(marker)

    def _clicked(self, ev: MouseClickEvent) -> None:
        if ev.button() != Qt.MouseButton.RightButton:
            return
        plot = self.chart.getPlotItem()
        if not plot.sceneBoundingRect().contains(ev.scenePos()):
            return
        ev.accept()
        pixel = float(plot.vb.viewPixelSize()[0])
        self.request_at(plot.vb.mapSceneToView(ev.scenePos()).x(), 6 * pixel)
