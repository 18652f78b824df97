"""Small dashboard widgets: summary tiles with change arrows, filter chips, the date range picker,
breakdown boxes (bars + table, click a row to filter) and the realtime counter."""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import QDate, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTabBar,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.charts import BarChart
from pixel.app.desktop.copy_table import CopyTable

TILE_METRICS = (
    ("visitors", "Unique visitors"),
    ("pageviews", "Pageviews"),
    ("sessions", "Visits"),
    ("views_per_session", "Views per visit"),
    ("bounce_rate", "Bounce rate"),
    ("visit_duration", "Visit duration"),
)
CHARTABLE = ("visitors", "pageviews", "sessions", "views_per_session", "bounce_rate", "visit_duration")
PERIODS = (
    ("today", "Today"),
    ("yesterday", "Yesterday"),
    ("realtime", "Last 30 minutes"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("last_month", "Last month"),
    ("12mo", "Last 12 months"),
    ("custom", "Custom range…"),
)
LOWER_IS_BETTER = {"bounce_rate"}
UP, DOWN = "▲", "▼"


def format_value(metric: str, value: float) -> str:
    if metric == "bounce_rate":
        return f"{value:g}%"
    if metric == "visit_duration":
        seconds = int(round(value))
        return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    if metric == "views_per_session":
        return f"{value:.2f}"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{int(value):,}"


def format_change(metric: str, change: float | None) -> tuple[str, str]:
    """(text, colour) of a change: arrow and percent (bounce rate: points); green when it is good."""
    if change is None:
        return "—", "#888"
    if change == 0:
        return "0%", "#888"
    arrow = UP if change > 0 else DOWN
    unit = " pts" if metric == "bounce_rate" else "%"
    good = (change > 0) != (metric in LOWER_IS_BETTER)
    return f"{arrow} {abs(change):g}{unit}", "#15803d" if good else "#b91c1c"


def emphasise(label: QLabel, factor: float) -> None:
    """Bold text `factor` times the OS font size (text sizes follow the OS setting, never fixed pixels)."""
    font = label.font()
    font.setPointSizeF(max(1.0, font.pointSizeF() * factor))
    font.setBold(True)
    label.setFont(font)


class Tile(QFrame):
    clicked = Signal(str)

    def __init__(self, metric: str, title: str) -> None:
        super().__init__()
        self.metric_name = metric
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab to a tile, Enter/Space selects its metric
        self.is_selected = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.title = QLabel(title.upper())
        emphasise(self.title, 0.85)
        self.value = QLabel("—")
        emphasise(self.value, 1.6)
        self.change = QLabel("")
        for w in (self.title, self.value, self.change):
            layout.addWidget(w)
        self.set_selected(False)

    def set_selected(self, on: bool) -> None:
        self.is_selected = on
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """The border drawn from the palette (a style sheet would freeze the labels' colours at a theme change)."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        role = QPalette.ColorRole.Highlight if self.is_selected else QPalette.ColorRole.Mid
        width = 2 if self.is_selected else 1
        painter.setPen(QPen(self.palette().color(role), width))
        painter.drawRoundedRect(
            QRectF(self.rect()).adjusted(width / 2, width / 2, -width / 2, -width / 2), 6, 6
        )
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.clicked.emit(self.metric_name)
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit(self.metric_name)
            event.accept()
            return
        super().keyPressEvent(event)


class SummaryTiles(QWidget):
    metric_selected = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tiles = {m: Tile(m, t) for m, t in TILE_METRICS}
        for tile in self.tiles.values():
            layout.addWidget(tile)
            tile.clicked.connect(self.select)
        self.selected = "visitors"
        self.tiles["visitors"].set_selected(True)

    def select(self, metric: str) -> None:
        self.selected = metric
        for name, tile in self.tiles.items():
            tile.set_selected(name == metric)
        self.metric_selected.emit(metric)

    def set_summary(self, data: dict[str, Any]) -> None:
        for metric, tile in self.tiles.items():
            item = data["metrics"].get(metric, {})
            tile.value.setText(format_value(metric, float(item.get("value", 0))))
            text, colour = format_change(metric, item.get("change"))
            tile.change.setText(text)
            tile.change.setStyleSheet(f"color:{colour}")
            previous = item.get("previous")
            tile.setToolTip(
                "" if previous is None else f"previous period: {format_value(metric, float(previous))}"
            )


class FilterBar(QWidget):
    """The active filters as chips; clicking a chip's ✕ removes that filter."""

    removed = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.chips: list[QPushButton] = []
        self.set_filters([])

    def set_filters(self, filters: list[list[str]]) -> None:
        for chip in self.chips:
            chip.deleteLater()
        self.chips = []
        while self.layout_.count():
            item = self.layout_.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for i, (dim, op, value) in enumerate(filters):
            chip = QPushButton(f"{dim} {op.replace('_', ' ')} {value}  ✕")
            chip.setStyleSheet(
                "QPushButton{background:#eef2ff; color:#1e1b4b; border:1px solid #c7d2fe; border-radius:10px;"
                "padding:2px 10px}"
            )
            chip.clicked.connect(lambda _=False, index=i: self.removed.emit(index))
            self.layout_.addWidget(chip)
            self.chips.append(chip)
        self.layout_.addStretch(1)
        self.setVisible(bool(filters))


class RangePicker(QWidget):
    """Period presets plus a custom from/to in the site's calendar."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        for key, label in PERIODS:
            self.combo.addItem(label, key)
        self.date_from = QDateEdit()
        self.date_to = QDateEdit()
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(QDate.currentDate())
            edit.dateChanged.connect(self._custom_changed)
        self.date_from.setDate(QDate.currentDate().addDays(-6))
        layout.addWidget(self.combo)
        layout.addWidget(self.date_from)
        layout.addWidget(QLabel("–"))
        layout.addWidget(self.date_to)
        self.set_period("30d")
        self.combo.currentIndexChanged.connect(self._combo_changed)

    def set_period(self, period: str, date_from: date | None = None, date_to: date | None = None) -> None:
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(max(0, self.combo.findData(period)))
        self.combo.blockSignals(False)
        if date_from and date_to:
            for edit, value in ((self.date_from, date_from), (self.date_to, date_to)):
                edit.blockSignals(True)
                edit.setDate(QDate(value.year, value.month, value.day))
                edit.blockSignals(False)
        self._show_dates()

    def _show_dates(self) -> None:
        custom = self.period == "custom"
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)

    def _combo_changed(self) -> None:
        self._show_dates()
        self.changed.emit()

    def _custom_changed(self) -> None:
        if self.period == "custom":
            self.changed.emit()

    @property
    def period(self) -> str:
        return str(self.combo.currentData())

    def params(self) -> dict[str, str]:
        out = {"period": self.period}
        if self.period == "custom":
            out["from"] = self.date_from.date().toString("yyyy-MM-dd")
            out["to"] = self.date_to.date().toString("yyyy-MM-dd")
        return out


class BreakdownBox(QFrame):
    """A group of breakdowns (tabs), each drawn as bars and a table. Clicking a bar or a row asks for
    a filter on that value."""

    filter_requested = Signal(str, str)  # dimension, value
    dimension_changed = Signal(str)

    def __init__(self, title: str, dimensions: list[tuple[str, str]]) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.dimensions = dimensions
        layout = QVBoxLayout(self)
        head = QLabel(title)
        emphasise(head, 1.0)
        self.tabs = QTabBar()
        for _, label in dimensions:
            self.tabs.addTab(label)
        self.tabs.currentChanged.connect(lambda i: self.dimension_changed.emit(self.dimensions[i][0]))
        self.chart = BarChart()
        self.chart.clicked.connect(lambda value: self._request(value))
        self.table = CopyTable()  # Ctrl+C copies the selection as TSV
        self.table.setColumnCount(3)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._row_clicked)
        self.table.cellActivated.connect(self._row_clicked)  # Enter on a row filters too
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.note = QLabel("")
        self.note.setStyleSheet("color:#888")
        for w in (head, self.tabs, self.chart, self.table, self.note):
            layout.addWidget(w)
        self.rows: list[dict[str, Any]] = []
        self.metrics: list[str] = []

    @property
    def dimension(self) -> str:
        return self.dimensions[self.tabs.currentIndex()][0]

    def set_data(self, data: dict[str, Any]) -> None:
        if data.get("dimension") != self.dimension:
            return
        self.rows = list(data["rows"])
        self.metrics = list(data["metrics"])[:2]
        self.chart.set_bars([r["value"] for r in self.rows], [r["visitors"] for r in self.rows])
        self.table.setColumnCount(1 + len(self.metrics))
        self.table.setHorizontalHeaderLabels([self.tabs.tabText(self.tabs.currentIndex()), *self.metrics])
        self.table.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            self.table.setItem(
                i, 0, QTableWidgetItem(str(row["value"]) if row["value"] not in ("", None) else "(none)")
            )
            for j, metric in enumerate(self.metrics, start=1):
                item = QTableWidgetItem(f"{row[metric]:,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.note.setText("" if self.rows else "No data for this period")

    def set_message(self, text: str) -> None:
        self.note.setText(text)

    def _row_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.rows):
            self._request(str(self.rows[row]["value"]))

    def _request(self, value: str) -> None:
        if self.dimension in ("entry_page", "exit_page"):
            self.filter_requested.emit("page", value)  # sessions' first/last page: filter on the page
        else:
            self.filter_requested.emit(self.dimension, value)


class RealtimeCounter(QLabel):
    def __init__(self) -> None:
        super().__init__("● — visitors now")
        self.setStyleSheet("color:#15803d; font-weight:bold")
        self.visitors: int | None = None

    def set_data(self, data: dict[str, Any]) -> None:
        self.visitors = int(data["visitors"])
        self.setText(f"● {self.visitors} current visitor{'s' if self.visitors != 1 else ''}")
