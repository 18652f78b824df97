"""Native pyqtgraph charts: a time series on a date axis in the site's time zone with a previous-period
line and a hover crosshair, horizontal bars for breakdowns (click a bar to filter), funnel bars and
small sparklines.

Colours follow the Qt palette (the OS theme, dark mode included), also when it changes while the app runs:
the plot's background is the palette's Base colour, axes, tick labels, legend and hover text its Text colour;
the series take a light or a dark set (`series_colours`) chosen by the background's lightness, each with a
contrast ratio of at least 3:1 against it (WCAG's figure for graphics).

Time zone: the API labels buckets in the site's zone ("2026-03-08 02:00:00", "2026-03-08"). The chart
places each bucket at that wall-clock time read as if it were UTC and draws the axis in UTC, so the
axis shows the site's local dates and hours whatever the viewer's zone (DST changes included).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent

pg.setConfigOptions(antialias=True)

# (current line, previous-period line, bars, sparkline) on a light and on a dark background
LIGHT_SERIES = ("#4f46e5", "#6b7280", "#6366f1", "#4f46e5")
DARK_SERIES = ("#a5b4fc", "#9ca3af", "#818cf8", "#a5b4fc")
CURRENT = QColor(LIGHT_SERIES[0])
PREVIOUS = QColor(LIGHT_SERIES[1])
BAR = QColor(LIGHT_SERIES[2])


def is_dark(colour: QColor) -> bool:
    return colour.lightnessF() < 0.5


def series_colours(palette: QPalette) -> tuple[QColor, QColor, QColor, QColor]:
    """The series colours for a chart drawn on `palette`'s Base colour."""
    chosen = DARK_SERIES if is_dark(palette.color(QPalette.ColorRole.Base)) else LIGHT_SERIES
    current, previous, bar, spark = (QColor(c) for c in chosen)
    return current, previous, bar, spark


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class Themed(pg.PlotWidget):
    """A plot that repaints its background, axes and text from the palette whenever the palette changes."""

    def __init__(self, parent: QWidget | None = None, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.background = QColor()
        self.text = QColor()
        self.colours = series_colours(self.palette())
        self._themed = False  # subclasses call follow_palette() once their items exist

    def follow_palette(self) -> None:
        self._themed = True
        palette = self.palette()
        self.background = palette.color(QPalette.ColorRole.Base)
        self.text = palette.color(QPalette.ColorRole.Text)
        self.setBackground(self.background)
        item = self.getPlotItem()
        for name in ("left", "bottom", "right", "top"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(self.text))
            axis.setTextPen(pg.mkPen(self.text))
        legend = item.legend
        if legend is not None:
            legend.setLabelTextColor(self.text)
            for _sample, label in legend.items:  # labels already drawn keep their colour until set again
                label.setText(label.text, color=self.text)
        self.colours = series_colours(palette)
        self.recolour()

    def recolour(self) -> None:
        """Give the series their colours (`self.colours`) for the current background (subclasses)."""

    def changeEvent(self, event: QEvent) -> None:
        if getattr(self, "_themed", False) and event.type() in (
            QEvent.Type.PaletteChange,
            QEvent.Type.StyleChange,
        ):
            self.follow_palette()
        super().changeEvent(event)


def bucket_x(label: str) -> float:
    """A bucket label in the site's zone as the x value of the date axis (wall time read as UTC)."""
    fmt = "%Y-%m-%d %H:%M:%S" if " " in label else "%Y-%m-%d"
    return float(calendar.timegm(datetime.strptime(label, fmt).timetuple()))


class TimeSeriesChart(Themed):
    """One metric over time with the previous period of the same length as a dashed line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0)})
        self.setMinimumHeight(220)
        self.showGrid(x=False, y=True, alpha=0.15)
        self.setMouseEnabled(x=True, y=False)
        self.getPlotItem().setMenuEnabled(False)
        self.addLegend(offset=(10, 5))
        self.previous = self.plot(
            [], [], pen=pg.mkPen(self.colours[1], width=2, style=Qt.PenStyle.DashLine), name="previous period"
        )
        self.current = self.plot(
            [],
            [],
            pen=pg.mkPen(self.colours[0], width=2.5),
            name="visitors",
            symbol="o",
            symbolSize=5,
            symbolBrush=self.colours[0],
            symbolPen=None,
        )
        for curve in (self.previous, self.current):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.previous_name = "previous period"  # the dashed line's name (the dashboard's chosen comparison)
        self.crosshair = pg.InfiniteLine(angle=90, movable=False)
        self.crosshair.hide()
        self.hover_text = pg.TextItem(anchor=(0, 1))
        self.hover_text.hide()
        self.addItem(self.crosshair, ignoreBounds=True)
        self.addItem(self.hover_text, ignoreBounds=True)
        self.labels: list[str] = []
        self.metric_name = "visitors"
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.y_previous: np.ndarray | None = None
        # (x, tolerance) -> the text of the annotations there, added to the hover text (desktop/annotations.py)
        self.hover_notes: Callable[[float, float], str] | None = None
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.follow_palette()

    def recolour(self) -> None:
        self._pens(len(self.x))
        self.current.setSymbolBrush(self.colours[0])
        self.crosshair.setPen(pg.mkPen(self.text, width=1))
        self.hover_text.setColor(self.text)
        fill = QColor(self.background)
        fill.setAlpha(220)
        self.hover_text.fill = pg.mkBrush(fill)

    def set_series(
        self,
        labels: Sequence[str],
        values: Sequence[float],
        metric: str = "visitors",
        previous: Sequence[float] | None = None,
    ) -> None:
        """Draw `values` at bucket `labels`; `previous` (same length) is the period before."""
        self.labels = list(labels)
        self.metric_name = metric
        self.x = np.fromiter((bucket_x(b) for b in labels), dtype=np.float64, count=len(labels))
        self.y = np.asarray(values, dtype=np.float64)
        self._pens(len(self.x))
        self.current.setData(self.x, self.y, skipFiniteCheck=True)
        self.current.opts["name"] = metric
        self.current.setSymbol("o" if len(self.x) <= 120 else None)
        if previous is not None and len(previous) == len(labels):
            self.y_previous = np.asarray(previous, dtype=np.float64)
            self.previous.setData(self.x, self.y_previous, skipFiniteCheck=True)
            self.previous.show()
        else:
            self.y_previous = None
            self.previous.setData([], [])
            self.previous.hide()
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.clear()
            legend.addItem(self.current, metric)
            if self.y_previous is not None:
                legend.addItem(self.previous, self.previous_name)
        self.autoRange()

    def _pens(self, n: int) -> None:
        """Thin lines for long series: Qt's raster engine draws a wide antialiased polyline of
        thousands of segments far slower than a 1 px one (bench/README.md, "Desktop")."""
        wide = n <= 400
        current, previous = self.colours[0], self.colours[1]
        self.current.setPen(pg.mkPen(current, width=2.5 if wide else 1))
        self.previous.setPen(pg.mkPen(previous, width=2 if wide else 1, style=Qt.PenStyle.DashLine))

    def set_data_fast(self, x: np.ndarray, y: np.ndarray) -> None:
        """Replace the points of the current line only (for large series and benchmarks)."""
        if len(x) != len(self.x):
            self._pens(len(x))
        self.x, self.y = x, y
        self.current.setSymbol(None)
        self.current.setData(x, y, skipFiniteCheck=True)

    def hover_at(self, index: int) -> str:
        """Move the crosshair to bucket `index` and return the text it shows."""
        if not 0 <= index < len(self.labels):
            self.crosshair.hide()
            self.hover_text.hide()
            return ""
        text = f"{self.labels[index]}\n{self.metric_name}: {self.y[index]:g}"
        if self.y_previous is not None:
            text += f"\n{self.previous_name}: {self.y_previous[index]:g}"
        if self.hover_notes is not None:
            step = float(self.x[1] - self.x[0]) if len(self.x) > 1 else 86400.0
            notes = self.hover_notes(float(self.x[index]), step / 2)
            text += f"\n{notes}" if notes else ""
        self.crosshair.setPos(self.x[index])
        self.crosshair.show()
        self.hover_text.setText(text)
        self.hover_text.setPos(self.x[index], float(self.y[index]))
        self.hover_text.show()
        return text

    def _mouse_moved(self, pos: QPointF) -> None:
        if not len(self.x) or not self.sceneBoundingRect().contains(pos):
            return
        point = self.getPlotItem().vb.mapSceneToView(pos)
        self.hover_at(int(np.abs(self.x - point.x()).argmin()))

    def axis_text(self, index: int) -> str:
        """What the date axis prints at bucket `index` (for tests: the site's local time)."""
        axis = self.getPlotItem().getAxis("bottom")
        return axis.tickStrings([self.x[index]], 1, 3600 if " " in self.labels[index] else 86400)[0]


class _ClickableBars(pg.BarGraphItem):
    def __init__(self, owner: BarChart, **opts: Any) -> None:
        super().__init__(**opts)
        self.owner = owner

    def mouseClickEvent(self, ev: MouseClickEvent) -> None:
        row = int(round(ev.pos().y()))
        if 0 <= row < len(self.owner.names):
            self.owner.clicked.emit(self.owner.names[row])
            ev.accept()


class BarChart(Themed):
    """Horizontal bars, largest first at the top, names on the left axis. Emits `clicked(name)`."""

    clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.setMouseEnabled(x=False, y=False)
        self.getPlotItem().setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        self.invertY(True)
        self.names: list[str] = []
        self.values = np.zeros(0)
        self.bars: _ClickableBars | None = None
        self.follow_palette()

    def recolour(self) -> None:
        if self.bars is not None:
            self.bars.setOpts(brush=self.colours[2])

    def set_bars(self, names: Sequence[str], values: Sequence[float]) -> None:
        self.names = [str(n) if n not in (None, "") else "(none)" for n in names]
        self.values = np.asarray(values, dtype=np.float64)
        if self.bars is not None:
            self.removeItem(self.bars)
        y = np.arange(len(self.names), dtype=np.float64)
        self.bars = _ClickableBars(
            self, x0=np.zeros(len(y)), y=y, height=0.7, width=self.values, brush=self.colours[2], pen=None
        )
        self.addItem(self.bars)
        axis = self.getPlotItem().getAxis("left")
        labels = [_short(n) for n in self.names]
        axis.setTicks([list(enumerate(labels))])
        metrics = self.fontMetrics()
        axis.setWidth(min(220, 16 + max((metrics.horizontalAdvance(t) for t in labels), default=20)))
        self.setYRange(-0.5, max(len(y), 1) - 0.5, padding=0.02)
        self.setXRange(0, float(self.values.max()) if len(self.values) else 1.0, padding=0.05)


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class Sparkline(Themed):
    """A tiny line without axes (CPU, memory, ingest rate on the stack page)."""

    def __init__(self, parent: QWidget | None = None, color: str = "", capacity: int = 60) -> None:
        """`color`: a fixed line colour; empty: the palette's series colour."""
        super().__init__(parent)
        self.setFixedHeight(36)
        self.setMinimumWidth(80)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setMouseEnabled(x=False, y=False)
        self.getPlotItem().setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        self.capacity = capacity
        self.values: list[float] = []
        self.color = color
        self.curve = self.plot([], [])
        self.follow_palette()

    def recolour(self) -> None:
        self.curve.setPen(pg.mkPen(self.color or self.colours[3], width=1.5))

    def push(self, value: float | None) -> None:
        self.values.append(float("nan") if value is None else float(value))
        self.values = self.values[-self.capacity :]
        y = np.asarray(self.values, dtype=np.float64)
        self.curve.setData(np.arange(len(y), dtype=np.float64), y, connect="finite")
