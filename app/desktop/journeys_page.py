"""The Journeys page of one site: the top paths of 2 to 6 steps (across all sessions, from a page, to a page)
as a Sankey diagram (`sankey.SankeyView`) and a table, with page groups (`/blog/*`) and reloads counted or not.
The page has a filter row of its own (`filter_row.FilterRow`: dimension, operator, value, or one of the site's
saved segments); its filters go to the API as the reports' `filters` (a session counts when one of its events
matches them all) and are cleared when another site is picked, as on the dashboard.

Answers come through the profile's `ReportSource`: live when the host answers (then cached), else the cached
answer with its "as of" time, so the page draws offline like the dashboard. Clicking a node re-centres the
journey on its page (it becomes the start page; Back returns to the journey before). "Make a funnel from this
path" hands the selected path's pages to `open_funnel(site_id, steps)` (the main window opens the funnel
editor with them). Only the answer to the latest request is drawn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import ApiRequestError, Fetched, NoData, ReportSource
from pixel.app.client.journeys import api_params, funnel_steps, journeys
from pixel.app.client.segments import segments
from pixel.app.desktop.filter_row import FilterRow
from pixel.app.desktop.sankey import SankeyView
from pixel.app.desktop.segments_bar import describe as describe_filters
from pixel.app.desktop.site_combo import fill_site_combo
from pixel.app.desktop.workers import Runner

PERIODS = [("30d", "Last 30 days"), ("7d", "Last 7 days"), ("today", "Today"), ("12mo", "Last 12 months")]
FunnelOpener = Callable[[int, list[dict[str, Any]]], None]


class JourneysPage(QWidget):
    def __init__(self, runner: Runner, open_funnel: FunnelOpener | None = None) -> None:
        super().__init__()
        self.runner = runner
        self.open_funnel = open_funnel
        self.source: ReportSource | None = None
        self.sites: list[dict[str, Any]] = []
        self.data: dict[str, Any] | None = None
        self.fetched: Fetched | None = None
        self.generation = 0
        self.history: list[tuple[str, str]] = []  # (start, end) before each re-centring
        self.shown_site: int | None = None  # the site whose filters the filter row holds

        self.site_combo = QComboBox()
        self.site_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.period = QComboBox()
        for key, text in PERIODS:
            self.period.addItem(text, key)
        self.steps = QSpinBox()
        self.steps.setRange(2, 6)
        self.steps.setValue(4)
        self.steps.setPrefix("Steps: ")
        self.start = QLineEdit()
        self.start.setPlaceholderText("from page (any)")
        self.end = QLineEdit()
        self.end.setPlaceholderText("to page (any)")
        self.groups = QLineEdit()
        self.groups.setPlaceholderText("group pages: /blog/*, /docs/*")
        self.collapse = QCheckBox("A reload is not a step")
        self.collapse.setChecked(True)
        self.show_button = QPushButton("Show")
        self.show_button.clicked.connect(self.refresh)
        self.back_button = QPushButton("Back")
        self.back_button.setEnabled(False)
        self.back_button.clicked.connect(self.back)
        row1 = QHBoxLayout()
        for label, combo in (("Site:", self.site_combo), ("Period:", self.period)):
            row1.addWidget(QLabel(label))
            row1.addWidget(combo)
        row1.addWidget(self.steps)
        row1.addWidget(self.collapse)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for edit in (self.start, self.end, self.groups):
            row2.addWidget(edit, 1)
        row2.addWidget(self.back_button)
        row2.addWidget(self.show_button)
        self.filter_row = FilterRow()
        self.filter_row.changed.connect(lambda _f: self.refresh())

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.sankey = SankeyView()
        self.sankey.node_clicked.connect(self.recentre)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Path", "Sessions", "Ends the session"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 640)
        self.table.itemSelectionChanged.connect(self._selection)
        self.funnel_button = QPushButton("Make a funnel from this path")
        self.funnel_button.setEnabled(False)
        self.funnel_button.clicked.connect(self.make_funnel)

        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.filter_row)
        layout.addWidget(self.status)
        layout.addWidget(self.sankey, 3)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.funnel_button)

        self.site_combo.currentIndexChanged.connect(self._site_changed)
        self.period.currentIndexChanged.connect(self.refresh)
        self.steps.valueChanged.connect(self.refresh)
        self.collapse.toggled.connect(self.refresh)
        for edit in (self.start, self.end, self.groups):
            edit.returnPressed.connect(self.refresh)

    # ------------------------------------------------------------------ state
    def set_source(self, source: ReportSource | None) -> None:
        self.source = source
        self.load_sites()

    def site_id(self) -> int | None:
        data = self.site_combo.currentData()
        return int(data) if data is not None else None

    def load_sites(self) -> None:
        if self.source is None:
            return
        source = self.source
        early = source.cached_sites()
        if early is not None:
            self._set_sites(early.data["items"])

        def done(fetched: Fetched) -> None:
            if source is self.source:
                self._set_sites(fetched.data["items"])

        self.runner.submit(lambda _t: source.sites(), done, self._failed)

    def _set_sites(self, sites: list[dict[str, Any]]) -> None:
        self.sites = sites
        fill_site_combo(self.site_combo, sites)
        self._site_changed()

    def _site_changed(self) -> None:
        """Another site (or the list again): its segments are asked for, the filters of another site dropped."""
        site_id = self.site_id()
        if site_id != self.shown_site:
            self.shown_site = site_id
            self.filter_row.set_filters([])
            self.filter_row.set_segments([])
            self.load_segments()
        self.refresh()

    def load_segments(self) -> None:
        """The site's saved segments into the filter row (none while offline: picking one needs the API)."""
        site_id, source = self.site_id(), self.source
        client = source.client if source is not None else None
        if site_id is None or client is None:
            return

        def done(items: list[dict[str, Any]]) -> None:
            if site_id == self.site_id():
                self.filter_row.set_segments(items)

        self.runner.submit(lambda _t: segments(client, site_id), done, self._failed)

    def params(self) -> dict[str, Any]:
        """The request of the controls as they are now."""
        out: dict[str, Any] = {
            "period": self.period.currentData(),
            "steps": self.steps.value(),
            "collapse_repeats": self.collapse.isChecked(),
            "limit": 25,
            "per_step": 8,
        }
        if self.start.text().strip():
            out["start"] = self.start.text().strip()
        if self.end.text().strip():
            out["end"] = self.end.text().strip()
        groups = [g.strip() for g in self.groups.text().split(",") if g.strip()]
        if groups:
            out["groups"] = groups
        if self.filter_row.filters:
            out["filters"] = [list(f) for f in self.filter_row.filters]
        return out

    # ------------------------------------------------------------------ requests
    def refresh(self) -> None:
        """Ask for the journey of the controls; the cached answer paints at once, an older answer is dropped."""
        self.generation += 1
        generation = self.generation
        site_id, source = self.site_id(), self.source
        if site_id is None or source is None:
            return
        params = self.params()
        cached = source.cached(f"/api/sites/{site_id}/reports/journeys", api_params(params))
        if cached is not None:
            self._show(cached)

        def done(fetched: Fetched) -> None:
            if generation == self.generation:
                self._show(fetched)

        def failed(exc: BaseException) -> None:
            if generation == self.generation:
                self._failed(exc)

        self.status.setText("Loading…")
        self.runner.submit(lambda _t: journeys(source, site_id, **params), done, failed)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, NoData):
            text = "Offline, and nothing cached for this journey yet."
        elif isinstance(exc, ApiRequestError):
            text = f"The API refused: {exc.detail}"
        else:
            text = str(exc)
        self.status.setText(text)
        self.status.setStyleSheet("color:#b91c1c")

    def _show(self, fetched: Fetched) -> None:
        self.fetched = fetched
        self.data = data = fetched.data
        total = data["sessions"]
        where = {"all": "from their entry page", "start": f"from {data['start']}", "end": f"to {data['end']}"}
        where["both"] = f"from {data['start']} to {data['end']}"
        text = f"{total:,} sessions, {data['steps']} steps {where[data['mode']]}"
        if self.filter_row.filters:
            text += f" · {describe_filters(self.filter_row.filters)}"
        if not fetched.live:
            text += f" — offline, {fetched.as_of_text()}"
            self.status.setStyleSheet("color:#b45309; font-weight:bold")
        else:
            self.status.setStyleSheet("")
        self.status.setText(text)
        self.sankey.set_journeys(data)
        paths = data["paths"]
        self.table.setRowCount(len(paths))
        for i, p in enumerate(paths):
            for j, value in enumerate(
                (" → ".join(p["pages"]), f"{p['sessions']:,}", "yes" if p["complete"] else "")
            ):
                self.table.setItem(i, j, QTableWidgetItem(value))
        self.funnel_button.setEnabled(False)

    # ------------------------------------------------------------------ actions
    def recentre(self, page: str) -> None:
        """Re-centre the journey on `page`: the journey from it (Back returns to the one before)."""
        self.history.append((self.start.text(), self.end.text()))
        self.back_button.setEnabled(True)
        self.start.setText(page)
        self.end.clear()
        self.refresh()

    def back(self) -> None:
        if not self.history:
            return
        start, end = self.history.pop()
        self.back_button.setEnabled(bool(self.history))
        self.start.setText(start)
        self.end.setText(end)
        self.refresh()

    def selected_path(self) -> list[str] | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or self.data is None:
            return None
        row = rows[0].row()
        paths = self.data["paths"]
        return list(paths[row]["pages"]) if 0 <= row < len(paths) else None

    def _selection(self) -> None:
        path = self.selected_path()
        self.funnel_button.setEnabled(bool(path and len(path) >= 2 and self.open_funnel is not None))

    def make_funnel(self) -> None:
        path, site_id = self.selected_path(), self.site_id()
        if path and len(path) >= 2 and site_id is not None and self.open_funnel is not None:
            self.open_funnel(site_id, funnel_steps(path))
