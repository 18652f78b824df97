"""Goals, funnel and saved-dashboard views of the dashboard page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.charts import BarChart, TimeSeriesChart
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.widgets import emphasise, format_value
from pixel.app.desktop.worldmap import WorldMap

if TYPE_CHECKING:
    from pixel.app.desktop.dashboard import DashboardPage


def _table(headers: list[str]) -> QTableWidget:
    table = CopyTable(headers)  # Ctrl+C copies the selection as TSV
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


def _fill(table: QTableWidget, rows: list[list[Any]]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            item = QTableWidgetItem(
                value if isinstance(value, str) else f"{value:,}" if isinstance(value, int) else f"{value:g}"
            )
            if j:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(i, j, item)


class GoalsView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.total = QLabel("")
        self.chart = BarChart()
        self.table = _table(["Goal", "Visitors", "Conversions", "Conversion rate %"])
        for w in (self.total, self.chart, self.table):
            layout.addWidget(w)
        self.goals: list[dict[str, Any]] = []

    def set_data(self, data: dict[str, Any]) -> None:
        self.goals = list(data["goals"])
        self.total.setText(
            f"{data['total_visitors']:,} visitors in the period"
            if self.goals
            else "No goals yet: an admin adds them in the API (POST /api/sites/{id}/goals)."
        )
        self.chart.set_bars([g["name"] for g in self.goals], [g["conversion_rate"] for g in self.goals])
        _fill(
            self.table,
            [[g["name"], g["visitors"], g["conversions"], g["conversion_rate"]] for g in self.goals],
        )


def parse_steps(text: str) -> list[dict[str, Any]]:
    """ "/, /pricing, event:signup" -> funnel steps (pages with * globs, or events)."""
    steps = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.startswith("event:"):
            steps.append({"kind": "event", "event_name": part[len("event:") :].strip()})
        else:
            steps.append({"kind": "page", "page_pattern": part})
    return steps


class FunnelView(QWidget):
    run_requested = Signal(list, int)  # steps, window seconds

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        w: QWidget
        self.steps = QLineEdit("/, /products*, /cart, /checkout")
        self.steps.setPlaceholderText("pages or event:NAME, separated by commas")
        self.window_minutes = QSpinBox()
        self.window_minutes.setRange(1, 90 * 24 * 60)
        self.window_minutes.setValue(60)
        self.window_minutes.setSuffix(" min")
        self.run = QPushButton("Show funnel")
        self.run.clicked.connect(self.request)
        for w in (QLabel("Steps:"), self.steps, QLabel("within"), self.window_minutes, self.run):
            row.addWidget(w)
        self.message = QLabel("")
        self.chart = BarChart()
        self.table = _table(["Step", "Visitors", "Conversion %", "Drop-off"])
        layout.addLayout(row)
        for w in (self.message, self.chart, self.table):
            layout.addWidget(w)
        self.result: list[dict[str, Any]] = []

    def request(self) -> None:
        steps = parse_steps(self.steps.text())
        if not 2 <= len(steps) <= 10:
            self.set_message("A funnel has 2 to 10 steps, separated by commas.")
            return
        self.set_message("")
        self.run_requested.emit(steps, self.window_minutes.value() * 60)

    def set_message(self, text: str) -> None:
        self.message.setText(text)

    def set_data(self, data: dict[str, Any]) -> None:
        self.result = list(data["steps"])
        self.chart.set_bars(
            [f"{s['step']}. {s['name']}" for s in self.result], [s["visitors"] for s in self.result]
        )
        _fill(
            self.table,
            [
                [f"{s['step']}. {s['name']}", s["visitors"], s["conversion_rate"], s["dropoff"]]
                for s in self.result
            ],
        )


class WidgetCard(QFrame):
    """One widget of a saved dashboard, drawn natively by its chart kind."""

    def __init__(self, widget: dict[str, Any]) -> None:
        super().__init__()
        self.widget = widget
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        title = QLabel(widget.get("title") or widget["report"])
        emphasise(title, 1.0)  # a font, not a style sheet: the label keeps following the palette
        layout.addWidget(title)
        kind = widget["chart"]
        self.body: QWidget
        if kind == "line":
            self.body = TimeSeriesChart()
        elif kind == "map":
            self.body = WorldMap()
        elif kind in ("bar", "funnel", "pie"):
            self.body = BarChart()
        elif kind in ("table", "cohort"):
            self.body = _table(["Value", "Visitors"])
        else:
            self.body = QLabel("—")
            emphasise(self.body, 2.0)
        layout.addWidget(self.body)
        self.data: dict[str, Any] | None = None

    def paint(self, data: dict[str, Any]) -> None:
        self.data = data
        report = self.widget["report"]
        if isinstance(self.body, TimeSeriesChart) and report == "timeseries":
            metric = data["metrics"][0]
            self.body.set_series(
                [p["bucket"] for p in data["points"]], [p[metric] for p in data["points"]], metric
            )
        elif isinstance(self.body, BarChart) and report == "breakdown":
            self.body.set_bars([r["value"] for r in data["rows"]], [r["visitors"] for r in data["rows"]])
        elif isinstance(self.body, BarChart) and report == "funnel":
            self.body.set_bars([s["name"] for s in data["steps"]], [s["visitors"] for s in data["steps"]])
        elif isinstance(self.body, BarChart) and report == "goals":
            self.body.set_bars(
                [g["name"] for g in data["goals"]], [g["conversion_rate"] for g in data["goals"]]
            )
        elif isinstance(self.body, WorldMap) and report == "breakdown":
            self.body.set_data(data)
        elif isinstance(self.body, QTableWidget) and report == "breakdown":
            _fill(self.body, [[str(r["value"]), r["visitors"]] for r in data["rows"]])
        elif isinstance(self.body, QTableWidget) and report == "retention":
            weeks = max((len(c["percent"]) for c in data["cohorts"]), default=0)
            self.body.setColumnCount(2 + weeks)
            self.body.setHorizontalHeaderLabels(["Cohort", "Visitors", *(f"week {k}" for k in range(weeks))])
            _fill(
                self.body,
                [[c["cohort"], c["visitors"], *(f"{p:g}%" for p in c["percent"])] for c in data["cohorts"]],
            )
        elif isinstance(self.body, QLabel) and report == "summary":
            metric = self.widget["params"].get("metric", "visitors")
            self.body.setText(format_value(metric, float(data["metrics"][metric]["value"])))
        elif isinstance(self.body, QLabel) and report == "realtime":
            self.body.setText(str(data["visitors"]))


class SavedDashboardsView(QWidget):
    def __init__(self, page: DashboardPage) -> None:
        super().__init__()
        self.page = page
        layout = QVBoxLayout(self)
        self.combo = QComboBox()
        self.combo.currentIndexChanged.connect(self.show_current)
        self.message = QLabel("")
        self.grid = QGridLayout()
        layout.addWidget(self.combo)
        layout.addWidget(self.message)
        layout.addLayout(self.grid)
        layout.addStretch(1)
        self.dashboards: list[dict[str, Any]] = []
        self.cards: list[WidgetCard] = []

    def set_dashboards(self, data: dict[str, Any]) -> None:
        items = list(data["items"])
        if items == self.dashboards and self.cards:
            return  # unchanged (a rename or a widget change is a change: drawn again)
        current = self.combo.currentData()
        self.dashboards = items
        self.combo.blockSignals(True)
        self.combo.clear()
        for d in items:
            self.combo.addItem(d["name"], d["id"])
        ids = [d["id"] for d in items]
        self.combo.setCurrentIndex(ids.index(current) if current in ids else (0 if items else -1))
        self.combo.blockSignals(False)
        self.message.setText("" if items else "No saved dashboards for this site.")
        self.show_current()

    def show_current(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        index = self.combo.currentIndex()
        if not 0 <= index < len(self.dashboards):
            return
        for widget in self.dashboards[index]["widgets"]:
            card = WidgetCard(widget)
            pos = widget["position"]
            self.grid.addWidget(card, pos["y"], pos["x"], pos.get("h", 1), pos["w"])
            self.cards.append(card)
            self.page.load_widget(widget, card.paint)
        self.page.explore.annotate()  # the new line widgets get the site's annotations
