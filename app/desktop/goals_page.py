"""The Goals and funnels page of one site: goals listed with what each counts; create, edit and delete a goal
(a page glob, an event, or an event with a property value); a funnel built step by step (add, remove, move up and
down) whose conversion is previewed live: each change of the steps, window or period asks the API again after a
short pause, and only the answer to the latest steps is drawn.

Every call goes through `pixel.app.client.site_admin.SiteAdmin` on a worker; refusals are shown in the API's (or
the client's) own words and change nothing. Keys: Ctrl+N new goal, Ctrl+S save goal, Delete deletes the goal
selected (after a confirmation), F5/Ctrl+R refresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client.site_admin import GoalKind, SiteAdmin, describe_goal, goal_body, goal_kind
from pixel.app.desktop.charts import BarChart
from pixel.app.desktop.owner_widgets import (
    DeleteKey,
    MessagePage,
    add_page_shortcuts,
    confirm_delete,
    error_text,
    order_buttons,
)
from pixel.app.desktop.site_combo import fill_site_combo
from pixel.app.desktop.workers import Runner

KINDS: list[tuple[GoalKind, str]] = [
    ("page", "Visits a page"),
    ("event", "Sends an event"),
    ("event_property", "Sends an event with a property"),
]
PERIODS = [("30d", "Last 30 days"), ("7d", "Last 7 days"), ("today", "Today"), ("12mo", "Last 12 months")]


class GoalEditor(QWidget):
    """Kind, page glob / event name, property key and value: the fields one goal or funnel step needs."""

    def __init__(self) -> None:
        super().__init__()
        self.kind = QComboBox()
        for key, text in KINDS:
            self.kind.addItem(text, key)
        self.pattern = QLineEdit()
        self.pattern.setPlaceholderText("/pricing or /blog/*")
        self.event_name = QLineEdit()
        self.event_name.setPlaceholderText("signup")
        self.prop_key = QLineEdit()
        self.prop_key.setPlaceholderText("plan")
        self.prop_value = QLineEdit()
        self.prop_value.setPlaceholderText("pro")
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Counts a visitor who:", self.kind)
        self.form.addRow("Page (glob):", self.pattern)
        self.form.addRow("Event:", self.event_name)
        self.form.addRow("Property:", self.prop_key)
        self.form.addRow("Value:", self.prop_value)
        self.kind.currentIndexChanged.connect(self._shown)
        self._shown()

    def current_kind(self) -> GoalKind:
        kind: GoalKind = self.kind.currentData()
        return kind

    def _shown(self) -> None:
        kind = self.current_kind()
        self.form.setRowVisible(self.pattern, kind == "page")
        self.form.setRowVisible(self.event_name, kind != "page")
        self.form.setRowVisible(self.prop_key, kind == "event_property")
        self.form.setRowVisible(self.prop_value, kind == "event_property")

    def body(self, name: str | None) -> dict[str, Any]:
        return goal_body(
            self.current_kind(),
            name,
            page_pattern=self.pattern.text(),
            event_name=self.event_name.text(),
            prop_key=self.prop_key.text(),
            prop_value=self.prop_value.text(),
        )

    def load(self, goal: dict[str, Any]) -> None:
        self.kind.setCurrentIndex([k for k, _ in KINDS].index(goal_kind(goal)))
        self.pattern.setText(goal.get("page_pattern") or "")
        self.event_name.setText(goal.get("event_name") or "")
        self.prop_key.setText(goal.get("prop_key") or "")
        self.prop_value.setText(goal.get("prop_value") or "")

    def clear(self) -> None:
        self.kind.setCurrentIndex(0)
        for w in (self.pattern, self.event_name, self.prop_key, self.prop_value):
            w.clear()


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            table.setItem(i, j, QTableWidgetItem(text))


class GoalsPage(QWidget, MessagePage):
    def __init__(self, runner: Runner, admin: SiteAdmin | None = None, preview_ms: int = 300) -> None:
        super().__init__()
        self.runner = runner
        self.admin = admin
        self.sites: list[dict[str, Any]] = []
        self.goals: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self.result: list[dict[str, Any]] = []
        self.preview_generation = 0
        self.confirm: Callable[[str], bool] = self._confirm_dialog

        self.site_combo = QComboBox()
        self.site_combo.currentIndexChanged.connect(self.load_goals)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Site:"))
        top.addWidget(self.site_combo)
        top.addStretch(1)

        # goals
        goals_box = QGroupBox("Goals")
        self.table = _table(["Goal", "Counts a visitor who"])
        self.table.itemSelectionChanged.connect(self._goal_chosen)
        self.goal_name = QLineEdit()
        self.goal_name.setPlaceholderText("Signed up")
        self.goal = GoalEditor()
        self.new_button = QPushButton("New goal")
        self.new_button.clicked.connect(self.new_goal)
        self.save_button = QPushButton("Save goal")
        self.save_button.clicked.connect(self.save_goal)
        self.delete_button = QPushButton("Delete goal…")
        self.delete_button.clicked.connect(self.delete_goal)
        buttons = QHBoxLayout()
        for b in (self.new_button, self.save_button, self.delete_button):
            buttons.addWidget(b)
        g = QVBoxLayout(goals_box)
        g.addWidget(self.table)
        name_row = QFormLayout()
        name_row.addRow("Name:", self.goal_name)
        g.addLayout(name_row)
        g.addWidget(self.goal)
        g.addLayout(buttons)

        # funnel
        funnel_box = QGroupBox("Funnel")
        self.step = GoalEditor()
        self.add_step_button = QPushButton("Add step")
        self.add_step_button.clicked.connect(self.add_step)
        self.step_list = QListWidget()
        step_buttons, self.remove_step_button, self.up_button, self.down_button = order_buttons(
            ("Remove", "Up", "Down"), self.remove_step, self.move_step
        )
        self.window_minutes = QSpinBox()
        self.window_minutes.setRange(1, 90 * 24 * 60)
        self.window_minutes.setValue(60)
        self.window_minutes.setSuffix(" min")
        self.period = QComboBox()
        for key, text in PERIODS:
            self.period.addItem(text, key)
        options = QFormLayout()
        options.addRow("All steps within:", self.window_minutes)
        options.addRow("Period:", self.period)
        self.preview_message = QLabel("Add two steps or more to see the funnel.")
        self.preview_message.setWordWrap(True)
        self.chart = BarChart()
        self.preview = _table(["Step", "Visitors", "Conversion %", "Drop-off"])
        f = QVBoxLayout(funnel_box)
        f.addWidget(self.step)
        f.addWidget(self.add_step_button)
        f.addWidget(self.step_list)
        f.addLayout(step_buttons)
        f.addLayout(options)
        f.addWidget(self.preview_message)
        f.addWidget(self.chart)
        f.addWidget(self.preview)

        columns = QHBoxLayout()
        columns.addWidget(goals_box, 1)
        columns.addWidget(funnel_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addLayout(columns)

        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(preview_ms)
        self.preview_timer.timeout.connect(self.run_preview)
        self.window_minutes.valueChanged.connect(self.preview_timer.start)
        self.period.currentIndexChanged.connect(self.preview_timer.start)

        add_page_shortcuts(
            self,
            (
                (QKeySequence.StandardKey.New, self.new_goal),
                (QKeySequence.StandardKey.Save, self.save_goal),
                (QKeySequence("Ctrl+R"), self.refresh),
                (QKeySequence("F5"), self.refresh),
            ),
        )
        # item views take the Delete key for themselves (a QShortcut on them never fires): a key filter
        self._delete_keys = [
            DeleteKey(self.table, self.delete_goal),
            DeleteKey(self.step_list, self.remove_step),
        ]

    # ------------------------------------------------------------------ state
    def set_admin(self, admin: SiteAdmin | None) -> None:
        self.admin = admin
        self.refresh()

    def site_id(self) -> int | None:
        data = self.site_combo.currentData()
        return int(data) if data is not None else None

    def refresh(self) -> None:
        if self.admin is None:
            return
        admin = self.admin
        self.runner.submit(lambda _t: admin.sites(), self._set_sites, self._failed)

    def _set_sites(self, sites: list[dict[str, Any]]) -> None:
        self.sites = sites
        fill_site_combo(self.site_combo, sites)
        self.load_goals()

    def load_goals(self, select: int | None = None) -> None:
        site_id = self.site_id()
        if self.admin is None or site_id is None:
            return
        admin = self.admin
        self.runner.submit(
            lambda _t: admin.goals(site_id), lambda g: self._set_goals(g, select), self._failed
        )
        self.preview_timer.start()

    def _set_goals(self, goals: list[dict[str, Any]], select: int | None) -> None:
        self.goals = goals
        self.table.blockSignals(True)
        _fill(self.table, [[g["name"], describe_goal(g)] for g in goals])
        self.table.clearSelection()
        self.table.blockSignals(False)
        ids = [g["id"] for g in goals]
        if select in ids:
            self.table.selectRow(ids.index(select))

    def selected_goal(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return self.goals[rows[0].row()] if rows and rows[0].row() < len(self.goals) else None

    def _goal_chosen(self) -> None:
        goal = self.selected_goal()
        if goal is not None:
            self.goal_name.setText(goal["name"])
            self.goal.load(goal)

    # ------------------------------------------------------------------ goals
    def new_goal(self) -> None:
        self.table.clearSelection()
        self.goal_name.clear()
        self.goal.clear()
        self.goal_name.setFocus()

    def save_goal(self) -> None:
        site_id = self.site_id()
        if self.admin is None or site_id is None:
            return
        admin, body, old = self.admin, self.goal.body(self.goal_name.text()), self.selected_goal()

        def saved(goal: dict[str, Any]) -> None:
            self.say(f"Saved the goal {goal['name']}.")
            self.load_goals(select=goal["id"])

        if old is None:
            self.runner.submit(lambda _t: admin.create_goal(site_id, body), saved, self._failed)
        else:
            self.runner.submit(lambda _t: admin.edit_goal(site_id, old["id"], body), saved, self._failed)

    def delete_goal(self) -> None:
        site_id, goal = self.site_id(), self.selected_goal()
        if self.admin is None or site_id is None or goal is None:
            return
        admin = self.admin
        if not self.confirm(f"Delete the goal {goal['name']} ({describe_goal(goal)})?"):
            self.say(f"Nothing deleted: the goal {goal['name']} stays.")
            return

        def deleted(_: object) -> None:
            self.say(f"Deleted the goal {goal['name']}.")
            self.new_goal()
            self.load_goals()

        self.runner.submit(lambda _t: admin.delete_goal(site_id, goal["id"]), deleted, self._failed)

    # ------------------------------------------------------------------ funnel
    def _show_steps(self, row: int) -> None:
        self.step_list.clear()
        for i, step in enumerate(self.steps, 1):
            self.step_list.addItem(f"{i}. {describe_goal(step)}")
        self.step_list.setCurrentRow(min(row, len(self.steps) - 1))
        self.preview_timer.start()

    def add_step(self) -> None:
        self.steps.append(self.step.body(None))
        self._show_steps(len(self.steps) - 1)

    def remove_step(self) -> None:
        row = self.step_list.currentRow()
        if 0 <= row < len(self.steps):
            del self.steps[row]
            self._show_steps(row)

    def move_step(self, delta: int) -> None:
        row = self.step_list.currentRow()
        to = row + delta
        if 0 <= row < len(self.steps) and 0 <= to < len(self.steps):
            self.steps[row], self.steps[to] = self.steps[to], self.steps[row]
            self._show_steps(to)

    def open_funnel(self, site_id: int, steps: list[dict[str, Any]]) -> None:
        """The funnel editor with `steps` (e.g. a journey's pages) on the site `site_id`, previewed."""
        index = self.site_combo.findData(site_id)
        if index >= 0:
            self.site_combo.setCurrentIndex(index)
        self.steps = [dict(step) for step in steps]
        self._show_steps(0)

    def run_preview(self) -> None:
        """Ask for the funnel of the current steps; an older answer arriving later is dropped."""
        self.preview_generation += 1
        generation = self.preview_generation
        site_id = self.site_id()
        if len(self.steps) < 2 or self.admin is None or site_id is None:
            self.result = []
            self.chart.set_bars([], [])
            _fill(self.preview, [])
            self.preview_message.setText("Add two steps or more to see the funnel.")
            return
        admin, steps = self.admin, list(self.steps)
        window, period = self.window_minutes.value() * 60, self.period.currentData()

        def done(data: dict[str, Any]) -> None:
            if generation == self.preview_generation:
                self._set_preview(data)

        def failed(exc: BaseException) -> None:
            if generation == self.preview_generation:
                self.preview_message.setText(error_text(exc))

        self.runner.submit(lambda _t: admin.funnel(site_id, steps, window, period), done, failed)

    def _set_preview(self, data: dict[str, Any]) -> None:
        self.result = list(data["steps"])
        first = self.result[0]["visitors"] if self.result else 0
        last = self.result[-1] if self.result else None
        self.preview_message.setText(
            f"{last['conversion_rate']:g}% of {first:,} visitors reach the last step"
            if last and first
            else "No visitor reached the first step in this period."
        )
        labels = [f"{s['step']}. {s['name']}" for s in self.result]
        self.chart.set_bars(labels, [s["visitors"] for s in self.result])
        _fill(
            self.preview,
            [
                [label, f"{s['visitors']:,}", f"{s['conversion_rate']:g}", f"{s['dropoff']:,}"]
                for label, s in zip(labels, self.result, strict=True)
            ],
        )

    def _confirm_dialog(self, text: str) -> bool:
        return confirm_delete(self, "Delete the goal?", text)
