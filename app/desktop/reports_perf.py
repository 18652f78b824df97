"""The performance (web vitals) and errors report views of the dashboard (issue 17).

Contract:
- `PerformanceView`: `set_overview` takes `/reports/performance` (a tile per vital: its p75 and the shares
  of good / needs-improvement / poor page loads by Google's thresholds, as the API rated them; a table of the
  p75s by device type), `set_pages` takes `/reports/performance/pages`, `set_series` takes
  `/reports/performance/timeseries` (the chosen vital's p75 per bucket; buckets without a sample are not
  plotted). Milliseconds shown through `reports_views.duration`, CLS with three decimals.
- `ErrorsView`: `set_groups` takes `/reports/errors` (message, source:line, count, visitors, pages,
  browsers, first and last seen in the site's zone), `set_series` takes `/reports/errors/timeseries`.
- The share bars use green / amber / red sets for a light or a dark background (palette Base).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pixel.app.desktop.charts import TimeSeriesChart, is_dark
from pixel.app.desktop.none_refs import balanced_calls
from pixel.app.desktop.reports_views import Cell, ReportTable, count, duration, number, pages_text, section
from pixel.app.desktop.widgets import emphasise

VITALS = (("lcp", "LCP"), ("inp", "INP"), ("cls", "CLS"), ("fcp", "FCP"), ("ttfb", "TTFB"))
LIGHT_RATINGS = ("#15803d", "#b45309", "#b91c1c")
DARK_RATINGS = ("#4ade80", "#fbbf24", "#f87171")


def vital_text(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if metric == "cls" else duration(value)


def rating_colours(palette: QPalette) -> tuple[QColor, QColor, QColor]:
    chosen = DARK_RATINGS if is_dark(palette.color(QPalette.ColorRole.Base)) else LIGHT_RATINGS
    good, middle, poor = (QColor(c) for c in chosen)
    return good, middle, poor


class ShareBar(QWidget):
    """Good / needs improvement / poor as one bar split in proportion."""

    def __init__(self) -> None:
        super().__init__()
        self.shares: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.setMinimumHeight(10)

    def sizeHint(self) -> QSize:
        return QSize(160, 10)

    def set_shares(self, good: float | None, middle: float | None, poor: float | None) -> None:
        self.shares = (good or 0.0, middle or 0.0, poor or 0.0)
        self.update()

    @balanced_calls
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        total = sum(self.shares)
        x = 0.0
        if total <= 0:
            painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Mid))
        for part, colour in zip(self.shares, rating_colours(self.palette()), strict=True):
            width = self.width() * part / total if total > 0 else 0.0
            painter.fillRect(QRectF(x, 0, width, self.height()), colour)
            x += width
        painter.end()


class VitalTile(QFrame):
    def __init__(self, metric: str, title: str) -> None:
        super().__init__()
        self.vital = metric  # (not `metric`: QWidget.metric is a method Qt calls)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        self.title = QLabel(f"{title} (p75)")
        emphasise(self.title, 0.85)
        self.value = QLabel("—")
        emphasise(self.value, 1.6)
        self.bar = ShareBar()
        self.shares = QLabel("")
        for w in (self.title, self.value, self.bar, self.shares):
            layout.addWidget(w)

    def set_vital(self, vital: dict[str, Any]) -> None:
        self.value.setText(vital_text(self.vital, vital["p75"]))
        self.bar.set_shares(vital["good"], vital["needs_improvement"], vital["poor"])
        self.shares.setText(
            f"good {_pct(vital['good'])} · needs improvement {_pct(vital['needs_improvement'])} · "
            f"poor {_pct(vital['poor'])}"
        )
        self.setToolTip(f"{vital['samples']:,} samples")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def vitals_row(first: Cell, row: dict[str, Any]) -> list[Cell]:
    return [
        first,
        number(row["samples"], count(row["samples"])),
        *(number(row[m]["p75"], vital_text(m, row[m]["p75"])) for m, _ in VITALS),
    ]


class PerformanceView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        note = QLabel(
            "Web vitals from the extended tracker: the 75th percentile of each, and the share of page loads "
            "rated good, needs improvement or poor by Google's thresholds."
        )
        note.setWordWrap(True)
        tiles = QHBoxLayout()
        self.tiles = {m: VitalTile(m, t) for m, t in VITALS}
        for tile in self.tiles.values():
            tiles.addWidget(tile)
        self.vital_choice = QComboBox()
        for m, t in VITALS:
            self.vital_choice.addItem(f"{t} p75 over time", m)
        self.vital_choice.currentIndexChanged.connect(lambda _i: self._draw())
        self.chart = TimeSeriesChart()
        headers = ["Samples", *(t for _, t in VITALS)]
        self.devices = ReportTable(["Device", *headers], "Web vitals by device type")
        self.devices.setMinimumHeight(120)
        self.pages = ReportTable(["Page", *headers], "Web vitals by page")
        self.message = QLabel("")
        layout.addWidget(note)
        layout.addLayout(tiles)
        layout.addWidget(self.vital_choice)
        layout.addWidget(self.chart)
        row = QHBoxLayout()
        row.addWidget(section("By device type", self.devices))
        row.addWidget(section("By page", self.pages), 2)
        layout.addLayout(row)
        layout.addWidget(self.message)
        self.overview: dict[str, Any] | None = None
        self.series: dict[str, Any] | None = None
        self.page_rows: list[dict[str, Any]] = []

    def set_overview(self, data: dict[str, Any]) -> None:
        self.overview = data
        for m, tile in self.tiles.items():
            tile.set_vital(data["overall"][m])
        self.devices.fill([vitals_row(Cell(r["device"] or "(unknown)"), r) for r in data["by_device"]])
        self.message.setText("" if data["overall"]["samples"] else "No web vitals in this period.")

    def set_pages(self, data: dict[str, Any]) -> None:
        self.page_rows = list(data["rows"])
        self.pages.fill([vitals_row(Cell(r["page"]), r) for r in self.page_rows])

    def set_series(self, data: dict[str, Any]) -> None:
        self.series = data
        self._draw()

    def plotted(self) -> tuple[list[str], list[float]]:
        """(buckets, p75 values) of the chosen vital: the buckets that have one."""
        if self.series is None:
            return [], []
        metric = self.vital_choice.currentData()
        points = [p for p in self.series["points"] if p[metric] is not None]
        return [p["bucket"] for p in points], [float(p[metric]) for p in points]

    def _draw(self) -> None:
        labels, values = self.plotted()
        self.chart.set_series(labels, values, f"{self.vital_choice.currentText().split()[0]} p75")

    def set_message(self, text: str) -> None:
        self.message.setText(text)


class ErrorsView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.chart = TimeSeriesChart()
        self.table = ReportTable(
            ["Message", "Source", "Count", "Visitors", "Pages", "Browsers", "First seen", "Last seen"],
            "Error groups",
        )
        self.message = QLabel("")
        layout.addWidget(section("JavaScript errors over time", self.chart))
        layout.addWidget(section("Top error groups (message, source and line)", self.table), 1)
        layout.addWidget(self.message)
        self.rows: list[dict[str, Any]] = []
        self.zone = "UTC"

    def set_series(self, data: dict[str, Any]) -> None:
        self.zone = data.get("timezone", self.zone)
        points = data["points"]
        self.chart.set_series([p["bucket"] for p in points], [p["errors"] for p in points], "errors")

    def local(self, moment: str) -> str:
        """An ISO 8601 UTC time as the site's local date and time."""
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        return when.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d %H:%M")

    def set_groups(self, data: dict[str, Any]) -> None:
        self.zone = data.get("timezone", self.zone)
        self.rows = list(data["rows"])
        self.table.fill(
            [
                [
                    Cell(r["message"] or "(no message)"),
                    Cell(f"{r['source'] or '(inline)'}:{r['line']}"),
                    number(r["count"], count(r["count"])),
                    number(r["visitors"], count(r["visitors"])),
                    Cell(pages_text(r["pages"], r["page_count"])),
                    Cell(pages_text(r["browsers"], r["browser_count"])),
                    Cell(self.local(r["first_seen"]), r["first_seen"]),
                    Cell(self.local(r["last_seen"]), r["last_seen"]),
                ]
                for r in self.rows
            ]
        )
        self.message.setText("" if self.rows else "No errors in this period.")

    def set_message(self, text: str) -> None:
        self.message.setText(text)
