"""The dashboard page: site switcher, date range, filters, summary tiles, the visitors/pageviews chart
with the previous period, breakdowns, a realtime counter, the report tabs (world map, engagement, content
events, performance, errors, revenue, retention: loaded when shown, reports_tabs.py) and the goals, funnel and
saved-dashboard views. The filters apply to every tab. Every part is first drawn from the local cache
(instantly, offline too), then refreshed from the API on worker threads; the status line says "Live" or
"as of <time>". F5 / Ctrl+R refresh; Ctrl+C in a table copies the selection as TSV; a summary tile answers
Enter/Space and a breakdown row Enter like a click."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from pixel.app.client import ApiRequestError, Fetched, NoData, ReportSource
from pixel.app.desktop.charts import TimeSeriesChart
from pixel.app.desktop.export_dialog import open_export_dialog
from pixel.app.desktop.reports_compare import CompareSelector, add_change_column
from pixel.app.desktop.reports_tabs import report_tabs
from pixel.app.desktop.segments_notes import SegmentsAndNotes
from pixel.app.desktop.views import FunnelView, GoalsView, SavedDashboardsView
from pixel.app.desktop.widgets import BreakdownBox, FilterBar, RangePicker, RealtimeCounter, SummaryTiles
from pixel.app.desktop.workers import Runner

BREAKDOWNS = (
    (
        "Sources",
        [
            ("source", "Sources"),
            ("channel", "Channels"),
            ("utm_campaign", "Campaigns"),
            ("utm_source", "UTM sources"),
        ],
    ),
    ("Pages", [("page", "Top pages"), ("entry_page", "Entry pages"), ("exit_page", "Exit pages")]),
    ("Locations", [("country", "Countries"), ("region", "Regions"), ("city", "Cities")]),
    ("Devices", [("device", "Devices"), ("browser", "Browsers"), ("os", "Operating systems")]),
)


OVERVIEW_METRICS = ",".join(
    ("visitors", "pageviews", "sessions", "views_per_session", "bounce_rate", "visit_duration")
)


def previous_params(current: dict[str, Any]) -> dict[str, str] | None:
    """The custom range just before a report's range (same number of days, site calendar)."""
    if current.get("period") == "realtime":
        return None
    zone = ZoneInfo(current["timezone"])
    first = datetime.fromisoformat(current["from"]).astimezone(zone).date()
    end = datetime.fromisoformat(current["to"]).astimezone(zone).date()
    days = (end - first).days
    if days < 1:
        return None
    prev_first: date = first - timedelta(days=days)
    prev_last: date = first - timedelta(days=1)
    return {"period": "custom", "from": prev_first.isoformat(), "to": prev_last.isoformat()}


class DashboardPage(QWidget):
    status_changed = Signal(str)

    def __init__(self, runner: Runner, source: ReportSource | None = None, realtime_ms: int = 15_000) -> None:
        super().__init__()
        self.runner = runner
        self.source = source
        self.sites: list[dict[str, Any]] = []
        self.site: dict[str, Any] | None = None
        self.filters: list[list[str]] = []
        self.metric_name = "visitors"
        self.generation = 0
        self.parts: dict[str, Fetched] = {}
        self.errors: dict[str, str] = {}
        self.timeseries: dict[str, Any] | None = None
        self.previous: dict[str, Any] | None = None

        self.site_combo = QComboBox()
        self.site_combo.currentIndexChanged.connect(self._site_chosen)
        self.range = RangePicker()
        self.range.changed.connect(self.refresh)
        self.compare = CompareSelector()  # previous period, same period last year, custom range, none
        self.compare.changed.connect(self.refresh)
        self.realtime = RealtimeCounter()
        self.status = QLabel("")
        top = QHBoxLayout()
        w: QWidget
        for w in (QLabel("Site:"), self.site_combo, self.range, self.compare, self.realtime):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.status)
        self.export_button = QPushButton("Export…")  # CSV / ZIP / Parquet of this view (export_dialog.py)
        self.export_button.clicked.connect(lambda: open_export_dialog(self))
        top.addWidget(self.export_button)

        self.filter_bar = FilterBar()
        self.filter_bar.removed.connect(self.remove_filter)
        self.tiles = SummaryTiles()
        self.tiles.metric_selected.connect(self.set_metric)
        self.chart = TimeSeriesChart()
        self.zone_note = QLabel("")
        self.zone_note.setStyleSheet("color:#888")
        self.boxes: list[BreakdownBox] = []
        grid = QGridLayout()
        for i, (title, dims) in enumerate(BREAKDOWNS):
            box = BreakdownBox(title, dims)
            box.filter_requested.connect(self.add_filter)
            box.dimension_changed.connect(lambda _d, b=box: self._load_breakdown(b))
            grid.addWidget(box, i // 2, i % 2)
            self.boxes.append(box)

        overview = QWidget()
        ov = QVBoxLayout(overview)
        for w in (self.tiles, self.chart, self.zone_note):
            ov.addWidget(w)
        ov.addLayout(grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(overview)

        self.goals = GoalsView()
        self.funnel = FunnelView()
        self.funnel.run_requested.connect(self._load_funnel)
        self.saved = SavedDashboardsView(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(scroll, "Overview")
        self.tabs.addTab(self.goals, "Goals")
        self.tabs.addTab(self.funnel, "Funnel")
        self.tabs.addTab(self.saved, "Saved dashboards")

        # Map, Engagement, ..., Retention: loaded when shown (reports_tabs.py)
        self.reports = report_tabs(self)
        self.map, self.retention = self.reports.view("map"), self.reports.view("retention")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.filter_bar)  # above the tabs: the filters apply to every report
        layout.addWidget(self.tabs)

        self.realtime_timer = QTimer(self)
        self.realtime_timer.setInterval(realtime_ms)
        self.realtime_timer.timeout.connect(self._load_realtime)
        for keys in ("F5", "Ctrl+R"):
            QShortcut(
                QKeySequence(keys), self, self.refresh, context=Qt.ShortcutContext.WidgetWithChildrenShortcut
            )
        self.explore = SegmentsAndNotes(self)  # the segments bar, the compare tab, the chart's annotations

    # ------------------------------------------------------------------ state
    def set_source(self, source: ReportSource | None) -> None:
        self.source = source
        self.load_sites()

    def load_sites(self, prefer: int | None = None) -> None:
        if self.source is None:
            return
        source = self.source
        self._part(
            "sites",
            lambda cached: source.cached_sites() if cached else source.sites(),
            lambda data: self._set_sites(data["items"], prefer),
        )

    def _set_sites(self, items: list[dict[str, Any]], prefer: int | None = None) -> None:
        current = prefer or (self.site["id"] if self.site else None)
        changed = [s["id"] for s in items] != [s["id"] for s in self.sites]
        self.sites = items
        if changed:
            self.site_combo.blockSignals(True)
            self.site_combo.clear()
            for s in items:
                self.site_combo.addItem(
                    f"{s['name']} ({s['domain']})" if s["name"] != s["domain"] else s["domain"], s["id"]
                )
            self.site_combo.blockSignals(False)
        ids = [s["id"] for s in items]
        index = ids.index(current) if current in ids else 0
        if items and (self.site is None or self.site["id"] != items[index]["id"] or changed):
            self.site_combo.setCurrentIndex(index)
            self._site_chosen()

    def _site_chosen(self) -> None:
        index = self.site_combo.currentIndex()
        if not 0 <= index < len(self.sites):
            return
        if self.site is not None and self.site["id"] != self.sites[index]["id"]:
            self.filters = []
            self.filter_bar.set_filters([])
        self.site = self.sites[index]
        self.zone_note.setText(f"Times in the site's time zone, {self.site['timezone']}")
        self.refresh()
        if not self.realtime_timer.isActive():
            self.realtime_timer.start()

    def params(self) -> dict[str, Any]:
        return {**self.range.params(), "filters": list(self.filters)}

    def add_filter(self, dimension: str, value: str) -> None:
        item = [dimension, "is", value]
        if item not in self.filters:
            self.filters.append(item)
            self.filter_bar.set_filters(self.filters)
            self.refresh()

    def remove_filter(self, index: int) -> None:
        if 0 <= index < len(self.filters):
            del self.filters[index]
            self.filter_bar.set_filters(self.filters)
            self.refresh()

    def set_metric(self, metric: str) -> None:
        self.metric_name = metric
        self._draw_chart()

    # ------------------------------------------------------------------ loading
    def refresh(self) -> None:
        if self.source is None or self.site is None:
            return
        self.generation += 1
        self.parts = {}
        self.errors = {}
        source, site_id, params = self.source, self.site["id"], self.params()
        self._part(
            "sites",
            lambda cached: source.cached_sites() if cached else source.sites(),
            lambda data: self._set_sites(data["items"]),
        )
        # The tiles, the chart (and its previous period) and the boxes' breakdowns in one request.
        dims = [box.dimension for box in self.boxes]
        compare = self.compare.params()
        self._part(
            "overview",
            lambda cached: self._overview(cached, site_id, params, dims, compare),
            self._set_overview,
            on_missing=self._overview_missing,
            also=("summary", "timeseries", *(f"breakdown:{d}" for d in dims)),
        )
        if self.compare.compares_breakdowns:
            for box in self.boxes:
                self._load_breakdown(box)
        self._load_realtime()
        self._part("goals", lambda cached: self._get(cached, site_id, "goals", params), self.goals.set_data)
        self._part(
            "dashboards",
            lambda cached: source.cached_dashboards(site_id) if cached else source.dashboards(site_id),
            self.saved.set_dashboards,
        )
        self.reports.reset()
        self.explore.load()

    def _get(self, cached: bool, site_id: int, report: str, params: dict[str, Any]) -> Fetched | None:
        assert self.source is not None
        if cached:
            return self.source.cached(f"/api/sites/{site_id}/reports/{report}", params)
        return self.source.report(site_id, report, params)

    def _overview(
        self, cached: bool, site_id: int, params: dict[str, Any], dims: list[str], compare: dict[str, str]
    ) -> Fetched | None:
        """Summary, timeseries (with the previous period's) and breakdowns from the API's dashboard endpoint:
        the same numbers as the individual reports, in one request (and one query on the API's cache)."""
        query = {
            **params,
            "metrics": OVERVIEW_METRICS,
            "breakdowns": ",".join(dims),
            "limit": 10,
            "previous_timeseries": params.get("period") != "realtime" and compare.get("compare") != "false",
            **compare,  # none for the previous period (the endpoint's default): the same request as before
        }
        return self._get(cached, site_id, "dashboard", query)

    def _set_overview(self, data: dict[str, Any]) -> None:
        self.tiles.set_summary(data["summary"])
        self._set_timeseries({"current": data["timeseries"], "previous": data["previous_timeseries"]})
        if self.compare.compares_breakdowns:
            return  # the boxes come with their change against the compared range (refresh, reports_compare.py)
        for box in self.boxes:
            part = data["breakdowns"].get(box.dimension)
            if part is not None:
                box.set_data(part)

    def _overview_missing(self, text: str) -> None:
        for box in self.boxes:
            box.set_message(text)

    def _load_breakdown(self, box: BreakdownBox) -> None:
        if self.source is None or self.site is None:
            return
        site_id, params, dim = self.site["id"], self.params(), box.dimension
        query = {**params, "limit": 10}
        paint = box.set_data
        if self.compare.compares_breakdowns:
            query.update(self.compare.params())
            label = self.compare.label()

            def paint(data: dict[str, Any]) -> None:
                box.set_data(data)
                if data.get("dimension") == box.dimension:
                    add_change_column(box.table, data["rows"], label)

        self._part(
            f"breakdown:{dim}",
            lambda cached: self._get(cached, site_id, f"breakdown/{dim}", query),
            paint,
            on_missing=box.set_message,
        )

    def _load_realtime(self) -> None:
        if self.source is None or self.site is None:
            return
        site_id, filters = self.site["id"], {"filters": list(self.filters)}
        self._part(
            "realtime", lambda cached: self._get(cached, site_id, "realtime", filters), self.realtime.set_data
        )

    def _load_funnel(self, steps: list[dict[str, Any]], window: int) -> None:
        if self.source is None or self.site is None:
            return
        site_id, query = self.site["id"], {**self.params(), "steps": steps, "window": window}
        self._part(
            "funnel",
            lambda cached: self._get(cached, site_id, "funnel", query),
            self.funnel.set_data,
            on_missing=self.funnel.set_message,
        )

    def load_widget(self, widget: dict[str, Any], paint: Callable[[Any], None]) -> None:
        """Data for one widget of a saved dashboard (its own report, params and filters)."""
        if self.source is None or self.site is None:
            return
        site_id = self.site["id"]
        report = widget["report"] + (
            f"/{widget['params']['dimension']}" if widget["report"] == "breakdown" else ""
        )
        query = {k: v for k, v in widget["params"].items() if k != "dimension"}
        query.setdefault("period", self.range.period)
        query["filters"] = list(widget.get("filters") or [])
        self._part(f"widget:{widget['id']}", lambda cached: self._get(cached, site_id, report, query), paint)

    def _part(
        self,
        name: str,
        fetch: Callable[[bool], Fetched | None],
        paint: Callable[[Any], None],
        on_missing: Callable[[str], None] | None = None,
        also: tuple[str, ...] = (),
    ) -> None:
        """Paint `name` from the cache now, then fetch it live on a worker and paint it again. `also`: the
        views one answer paints besides (each marked live or "as of" with it)."""
        generation = self.generation
        try:
            early = fetch(True)
        except (NoData, ApiRequestError):
            early = None
        if early is not None:
            paint(early.data)
            for marked in (name, *also):
                self._mark(marked, early)

        def done(fetched: Fetched | None) -> None:
            if generation != self.generation and name != "sites":
                return
            if fetched is not None:
                paint(fetched.data)
                for marked in (name, *also):
                    self._mark(marked, fetched)

        def failed(exc: BaseException) -> None:
            if generation != self.generation and name != "sites":
                return
            text = str(exc)
            if isinstance(exc, NoData):
                text = "Offline, and nothing cached for this view yet."
            elif isinstance(exc, ApiRequestError):
                text = f"The API refused: {exc.detail}"
            self.errors[name] = text
            if on_missing is not None:
                on_missing(text)
            self._update_status()

        self.runner.submit(lambda _task: fetch(False), on_done=done, on_error=failed)

    def _mark(self, name: str, fetched: Fetched) -> None:
        self.parts[name] = fetched
        self.errors.pop(name, None)
        self._update_status()

    def _update_status(self) -> None:
        stale = [f for f in self.parts.values() if not f.live]
        if stale:
            oldest = min(stale, key=lambda f: f.as_of)
            text = f"Offline — {oldest.as_of_text()}"
            self.status.setToolTip(oldest.problem)
            self.status.setStyleSheet("color:#b45309; font-weight:bold")
        elif self.errors:
            text = next(iter(self.errors.values()))
            self.status.setStyleSheet("color:#b91c1c")
        elif self.parts:
            newest = max(self.parts.values(), key=lambda f: f.as_of)
            text = "Live · updated " + datetime.fromtimestamp(newest.as_of).strftime("%H:%M:%S")
            self.status.setToolTip("")
            self.status.setStyleSheet("color:#15803d")
        else:
            text = ""
        self.status.setText(text)
        self.status_changed.emit(text)

    # ------------------------------------------------------------------ drawing
    def _set_timeseries(self, data: dict[str, Any]) -> None:
        self.timeseries, self.previous = data["current"], data["previous"]
        self._draw_chart()

    def _draw_chart(self) -> None:
        if self.timeseries is None:
            return
        points = self.timeseries["points"]
        metric = self.metric_name if self.metric_name in self.timeseries["metrics"] else "visitors"
        previous = None
        if self.previous is not None and len(self.previous["points"]) == len(points):
            previous = [p[metric] for p in self.previous["points"]]
        self.chart.previous_name = self.compare.label()
        self.chart.set_series([p["bucket"] for p in points], [p[metric] for p in points], metric, previous)
