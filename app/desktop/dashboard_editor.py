"""The saved-dashboards editor: a site's saved dashboards listed; create one (Ctrl+N, from the name box),
rename it, delete it after a confirmation naming it (Delete key in the list too); its widgets listed in
order; add a widget of any report kind the API accepts with that report's parameters, remove one (Delete
key), move one up or down (buttons, Alt+Up / Alt+Down in the list). F5 / Ctrl+R read everything again.

Contract: every change goes through `DashboardsAdmin` on the runner (never on the GUI thread) and the list is
then read back from the API, so what is shown is what is stored. A refusal is shown in the API's own words
and changes nothing. `confirm` (a callable tests replace) is asked before a delete, with the dashboard's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client.dashboards_admin import (
    CHARTS,
    METRICS,
    DashboardsAdmin,
    deletion_text,
    describe_widget,
    widget_body,
)
from pixel.app.client.site_admin import site_label
from pixel.app.desktop.owner_widgets import (
    DeleteKey,
    MessagePage,
    add_page_shortcuts,
    confirm_delete,
    order_buttons,
)
from pixel.app.desktop.views import parse_steps
from pixel.app.desktop.widgets import PERIODS
from pixel.app.desktop.workers import Runner

DIMENSIONS = (
    "source",
    "channel",
    "page",
    "entry_page",
    "exit_page",
    "country",
    "region",
    "city",
    "device",
    "browser",
    "os",
    "utm_source",
    "utm_campaign",
)


class MoveKeys(QObject):
    """Calls `move(-1)` / `move(1)` on Alt+Up / Alt+Down in `view` (before the view moves its cursor)."""

    def __init__(self, view: QWidget, move: Callable[[int], None]) -> None:
        super().__init__(view)
        self.move = move
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.modifiers() == Qt.KeyboardModifier.AltModifier and event.key() in (
                Qt.Key.Key_Up,
                Qt.Key.Key_Down,
            ):
                self.move(-1 if event.key() == Qt.Key.Key_Up else 1)
                return True
        return False


class DashboardEditor(QWidget, MessagePage):
    error_style = "font-weight:bold"

    def __init__(self, runner: Runner, admin: DashboardsAdmin | None = None) -> None:
        super().__init__()
        self.runner = runner
        self.admin = admin
        self.sites: list[dict[str, Any]] = []
        self.dashboards: list[dict[str, Any]] = []
        self.confirm: Callable[[str], bool] = self._confirm_dialog

        self.site_combo = QComboBox()
        self.site_combo.currentIndexChanged.connect(lambda _i: self.load_dashboards())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        site_label_ = QLabel("&Site:")
        site_label_.setBuddy(self.site_combo)
        top = QHBoxLayout()
        top.addWidget(site_label_)
        top.addWidget(self.site_combo)
        top.addStretch(1)

        # dashboards
        dash_box = QGroupBox("Saved dashboards")
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._chosen)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Weekly review")
        self.create_button = QPushButton("&New dashboard")
        self.create_button.clicked.connect(self.create_dashboard)
        self.rename_button = QPushButton("&Rename")
        self.rename_button.clicked.connect(self.rename)
        self.delete_button = QPushButton("&Delete…")
        self.delete_button.clicked.connect(self.delete)
        name_row = QFormLayout()
        name_row.addRow("&Name:", self.name)
        buttons = QHBoxLayout()
        for b in (self.create_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        d = QVBoxLayout(dash_box)
        d.addWidget(self.list)
        d.addLayout(name_row)
        d.addLayout(buttons)

        # widgets of the chosen dashboard
        widgets_box = QGroupBox("Widgets, in order")
        self.widget_list = QListWidget()
        order, self.remove_button, self.up_button, self.down_button = order_buttons(
            ("Re&move widget", "Move &up", "Move do&wn"), self.remove_widget, self.move_widget
        )

        self.title = QLineEdit()
        self.title.setPlaceholderText("(the report's name)")
        self.report = QComboBox()
        for report in CHARTS:
            self.report.addItem(report, report)
        self.chart = QComboBox()
        self.metric_box = QComboBox()
        for metric in METRICS:
            self.metric_box.addItem(metric, metric)
        self.dimension = QComboBox()
        self.dimension.setEditable(True)
        self.dimension.addItems(DIMENSIONS)
        self.steps = QLineEdit("/, /pricing")
        self.steps.setPlaceholderText("pages or event:NAME, separated by commas")
        self.window_minutes = QSpinBox()
        self.window_minutes.setRange(1, 90 * 24 * 60)
        self.window_minutes.setValue(60)
        self.window_minutes.setSuffix(" min")
        self.period = QComboBox()
        self.period.addItem("the dashboard's range", "")
        for key, text in PERIODS:
            if key != "custom":
                self.period.addItem(text, key)
        self.add_button = QPushButton("&Add widget")
        self.add_button.clicked.connect(self.add_widget)
        self.form = QFormLayout()
        self.form.addRow("&Title:", self.title)
        self.form.addRow("Re&port:", self.report)
        self.form.addRow("&Chart:", self.chart)
        self.form.addRow("M&etric:", self.metric_box)
        self.form.addRow("D&imension:", self.dimension)
        self.form.addRow("Ste&ps:", self.steps)
        self.form.addRow("With&in:", self.window_minutes)
        self.form.addRow("Perio&d:", self.period)
        self.report.currentIndexChanged.connect(lambda _i: self._report_chosen())
        self._report_chosen()

        w = QVBoxLayout(widgets_box)
        w.addWidget(self.widget_list)
        w.addLayout(order)
        w.addWidget(QLabel("Add a widget:"))
        w.addLayout(self.form)
        w.addWidget(self.add_button)

        columns = QHBoxLayout()
        columns.addWidget(dash_box, 1)
        columns.addWidget(widgets_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addLayout(columns)

        add_page_shortcuts(
            self,
            (
                (QKeySequence.StandardKey.New, self.create_dashboard),
                (QKeySequence("Ctrl+R"), self.refresh),
                (QKeySequence("F5"), self.refresh),
            ),
        )
        self._keys = [
            DeleteKey(self.list, self.delete),
            DeleteKey(self.widget_list, self.remove_widget),
            MoveKeys(self.widget_list, self.move_widget),
        ]

    # ------------------------------------------------------------------ state
    def set_admin(self, admin: DashboardsAdmin | None) -> None:
        self.admin = admin
        self.refresh()

    @property
    def site_id(self) -> int | None:
        data = self.site_combo.currentData()
        return int(data) if data is not None else None

    @property
    def dashboard(self) -> dict[str, Any] | None:
        row = self.list.currentRow()
        return self.dashboards[row] if 0 <= row < len(self.dashboards) else None

    @property
    def widget(self) -> dict[str, Any] | None:
        dashboard, row = self.dashboard, self.widget_list.currentRow()
        if dashboard is None or not 0 <= row < len(dashboard["widgets"]):
            return None
        return dict(dashboard["widgets"][row])

    def _report_chosen(self) -> None:
        report = str(self.report.currentData())
        self.chart.clear()
        self.chart.addItems(list(CHARTS[report]))
        shown: dict[QWidget, bool] = {
            self.metric_box: report in ("summary", "timeseries"),
            self.dimension: report == "breakdown",
            self.steps: report == "funnel",
            self.window_minutes: report == "funnel",
            self.period: report != "realtime",
        }
        for field, visible in shown.items():
            self.form.setRowVisible(field, visible)

    # ------------------------------------------------------------------ loading
    def refresh(self) -> None:
        admin = self.admin
        if admin is None:
            return
        self.runner.submit(lambda _t: admin.sites(), on_done=self._set_sites, on_error=self._failed)

    def _set_sites(self, sites: list[dict[str, Any]]) -> None:
        current = self.site_id
        ids = [s["id"] for s in sites]
        if ids != [s["id"] for s in self.sites] or [site_label(s) for s in sites] != [
            self.site_combo.itemText(i) for i in range(self.site_combo.count())
        ]:
            self.site_combo.blockSignals(True)
            self.site_combo.clear()
            for s in sites:
                self.site_combo.addItem(site_label(s), s["id"])
            self.site_combo.setCurrentIndex(ids.index(current) if current in ids else 0)
            self.site_combo.blockSignals(False)
        self.sites = sites
        self.load_dashboards()

    def load_dashboards(self, select: int | None = None, widget_row: int | None = None) -> None:
        """Read the site's dashboards; keep (or move to) dashboard `select` and widget row `widget_row`."""
        admin, site_id = self.admin, self.site_id
        if admin is None or site_id is None:
            return
        keep = select if select is not None else (self.dashboard or {}).get("id")
        row = widget_row if widget_row is not None else self.widget_list.currentRow()

        def fetch(_t: object) -> list[dict[str, Any]]:
            # the list gives names; each dashboard's widgets come with it (one request per dashboard)
            return [admin.dashboard(d["id"]) for d in admin.dashboards(site_id)]

        def show(items: list[dict[str, Any]]) -> None:
            if site_id != self.site_id:
                return
            self._show(items, keep, row)

        self.runner.submit(fetch, on_done=show, on_error=self._failed)

    def _show(self, items: list[dict[str, Any]], keep: int | None, widget_row: int) -> None:
        self.dashboards = items
        self.list.blockSignals(True)
        self.list.clear()
        for d in items:
            n = len(d["widgets"])
            self.list.addItem(f"{d['name']} ({n} widget{'s' if n != 1 else ''})")
        ids = [d["id"] for d in items]
        self.list.setCurrentRow(ids.index(keep) if keep in ids else (0 if items else -1))
        self.list.blockSignals(False)
        self._chosen(widget_row)

    def _chosen(self, widget_row: int = -1) -> None:
        dashboard = self.dashboard
        self.widget_list.clear()
        if dashboard is None:
            return
        self.name.setText(dashboard["name"])
        for widget in dashboard["widgets"]:
            self.widget_list.addItem(describe_widget(widget))
        if dashboard["widgets"]:
            self.widget_list.setCurrentRow(min(max(widget_row, 0), len(dashboard["widgets"]) - 1))

    # ------------------------------------------------------------------ changes
    def _change(
        self, work: Callable[[DashboardsAdmin], Any], done: Callable[[Any], None], text: str = ""
    ) -> None:
        admin = self.admin
        if admin is None:
            return

        def finished(result: Any) -> None:
            self.say(text)
            done(result)

        self.runner.submit(lambda _t: work(admin), on_done=finished, on_error=self._failed)

    def create_dashboard(self) -> None:
        site_id, name = self.site_id, self.name.text()
        if site_id is None:
            return
        self._change(
            lambda a: a.create(site_id, name),
            lambda d: self.load_dashboards(select=d["id"], widget_row=0),
            f"Created the dashboard {name.strip()}.",
        )

    def rename(self) -> None:
        dashboard, name = self.dashboard, self.name.text()
        if dashboard is None:
            return
        self._change(
            lambda a: a.rename(dashboard["id"], name),
            lambda d: self.load_dashboards(select=d["id"]),
            f"Renamed {dashboard['name']} to {name.strip()}.",
        )

    def delete(self) -> None:
        dashboard = self.dashboard
        if dashboard is None or not self.confirm(deletion_text(dashboard)):
            return
        self._change(
            lambda a: a.delete(dashboard["id"]),
            lambda _r: self.load_dashboards(widget_row=0),
            f"Deleted the dashboard {dashboard['name']}.",
        )

    def body(self) -> dict[str, Any]:
        """The widget the form describes."""
        report = str(self.report.currentData())
        return widget_body(
            report,
            self.chart.currentText(),
            title=self.title.text(),
            metric=str(self.metric_box.currentData()),
            dimension=self.dimension.currentText(),
            steps=parse_steps(self.steps.text()) if report == "funnel" else None,
            window=self.window_minutes.value() * 60,
            period=str(self.period.currentData() or "") if report != "realtime" else "",
        )

    def add_widget(self) -> None:
        dashboard = self.dashboard
        if dashboard is None:
            self.say("Create or choose a dashboard first.", error=True)
            return
        body = self.body()
        self._change(
            lambda a: a.add_widget(dashboard["id"], body),
            lambda d: self.load_dashboards(select=d["id"], widget_row=len(d["widgets"]) - 1),
            f"Added {describe_widget(body)}.",
        )

    def remove_widget(self) -> None:
        dashboard, widget = self.dashboard, self.widget
        if dashboard is None or widget is None:
            return
        row = self.widget_list.currentRow()
        self._change(
            lambda a: a.remove_widget(dashboard["id"], widget["id"]),
            lambda d: self.load_dashboards(select=d["id"], widget_row=row),
            f"Removed {describe_widget(widget)}.",
        )

    def move_widget(self, delta: int) -> None:
        dashboard, widget = self.dashboard, self.widget
        if dashboard is None or widget is None:
            return
        row = self.widget_list.currentRow() + delta
        if not 0 <= row < len(dashboard["widgets"]):
            return
        self._change(
            lambda a: a.move_widget(dashboard["id"], widget["id"], delta),
            lambda d: self.load_dashboards(select=d["id"], widget_row=row),
        )

    def _confirm_dialog(self, text: str) -> bool:
        return confirm_delete(self, "Delete the saved dashboard?", text)
