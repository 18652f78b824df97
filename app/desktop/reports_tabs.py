"""The dashboard's report tabs beyond the overview (world map, retention, and the reports of issue 17), loaded
when shown.

Contract:
- Each tab is one `ReportTab`: a view with `set_message(text)` and the parts it reads, each a `Part`: its name,
  the report (`/api/sites/{id}/reports/<report>`), the query it makes of the dashboard's period and filters,
  and the method of the view that draws the answer (a view of one part: `set_data`).
- A tab's report is fetched the first time the tab is shown after each refresh (site, period, filter or
  comparison change, F5), through the dashboard's `_part`: drawn at once from the cache when it holds the
  answer, then live; offline it stays drawn from the cache and the dashboard's status line says "as of …".
  Hidden tabs cost no request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from pixel.app.desktop.dashboard import DashboardPage


class ReportWidget(Protocol):
    def set_data(self, data: dict[str, Any]) -> None: ...

    def set_message(self, text: str) -> None: ...


@dataclass
class Part:
    key: str  # the part's name in the dashboard's status
    report: str | Callable[[], str]  # path under /reports/ (or what gives it: a view's chosen dimension)
    query: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda params: params)
    paint: Callable[[Any], None] | None = None  # default: the view's set_data


@dataclass
class ReportTab:
    key: str
    title: str
    view: QWidget
    parts: list[Part]


class ReportTabs:
    def __init__(self, page: DashboardPage, tabs: list[ReportTab], after: int = 1) -> None:
        self.page = page
        self.tabs = tabs
        self.loaded: set[str] = set()
        for i, tab in enumerate(tabs):
            page.tabs.insertTab(after + i, tab.view, tab.title)
        page.tabs.currentChanged.connect(lambda _i: self.load_current())

    def by_key(self, key: str) -> ReportTab:
        return next(t for t in self.tabs if t.key == key)

    def view(self, key: str) -> Any:
        return self.by_key(key).view

    def reset(self) -> None:
        """A refresh: every tab is stale; the one shown loads now."""
        self.loaded.clear()
        self.load_current()

    def load_current(self) -> None:
        current = self.page.tabs.currentWidget()
        for tab in self.tabs:
            if tab.view is current and tab.key not in self.loaded:
                self.load(tab)

    def load(self, tab: ReportTab) -> None:
        page = self.page
        if page.source is None or page.site is None:
            return
        self.loaded.add(tab.key)
        view: Any = tab.view
        for part in tab.parts:
            self.load_part(part, view.set_message, part.paint or view.set_data)

    def load_part(self, part: Part, on_missing: Callable[[str], None], paint: Callable[[Any], None]) -> None:
        """One part now (also when a view asks again: another sort, dimension or currency)."""
        page = self.page
        if page.source is None or page.site is None:
            return
        site_id, query = page.site["id"], part.query(page.params())
        report = part.report if isinstance(part.report, str) else part.report()
        page._part(
            part.key, lambda cached: page._get(cached, site_id, report, query), paint, on_missing=on_missing
        )

    def reload(self, key: str) -> None:
        """A view's own choice changed (revenue's dimension or currency): its parts again, if it is shown."""
        self.loaded.discard(key)
        self.load_current()


def report_tabs(page: DashboardPage) -> ReportTabs:
    """The dashboard's report tabs, after the overview: Map, Engagement, Content, Performance, Errors, Revenue,
    Retention."""
    from pixel.app.desktop.reports_perf import ErrorsView, PerformanceView
    from pixel.app.desktop.reports_revenue import RevenueView
    from pixel.app.desktop.reports_views import ROWS, ContentView, EngagementView
    from pixel.app.desktop.retention_view import RetentionView
    from pixel.app.desktop.worldmap import MapView

    def ranked(params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "limit": ROWS}

    world, content, performance, errors = MapView(), ContentView(), PerformanceView(), ErrorsView()
    revenue = RevenueView()
    world.country_clicked.connect(lambda code: page.add_filter("country", code))
    tabs = ReportTabs(
        page,
        [
            ReportTab(
                "map", "Map", world, [Part("map", "breakdown/country", lambda p: {**p, "limit": 1000})]
            ),
            ReportTab(
                "engagement", "Engagement", EngagementView(), [Part("engagement", "engagement", ranked)]
            ),
            ReportTab(
                "content",
                "Content",
                content,
                [
                    Part("outbound", "outbound", ranked, content.set_outbound),
                    Part("downloads", "downloads", ranked, content.set_downloads),
                    Part("forms", "forms", ranked, content.set_forms),
                    Part("not-found", "not-found", ranked, content.set_not_found),
                ],
            ),
            ReportTab(
                "performance",
                "Performance",
                performance,
                [
                    Part("performance", "performance", paint=performance.set_overview),
                    Part("performance/pages", "performance/pages", ranked, performance.set_pages),
                    Part("performance/timeseries", "performance/timeseries", paint=performance.set_series),
                ],
            ),
            ReportTab(
                "errors",
                "Errors",
                errors,
                [
                    Part("errors", "errors", ranked, errors.set_groups),
                    Part("errors/timeseries", "errors/timeseries", paint=errors.set_series),
                ],
            ),
            ReportTab(
                "revenue",
                "Revenue",
                revenue,
                [Part("revenue", revenue.report, lambda p: {**p, **revenue.query()})],
            ),
            ReportTab("retention", "Retention", RetentionView(), [Part("retention", "retention")]),
        ],
    )
    revenue.changed.connect(lambda: tabs.reload("revenue"))
    return tabs
