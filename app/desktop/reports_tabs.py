"""The dashboard's report tabs beyond the overview (world map, retention, and the reports of issue 17), loaded
when shown.

Contract:
- Each tab is one `ReportTab`: a view with `set_data(answer)` and `set_message(text)`, the report it reads
  (`/api/sites/{id}/reports/<report>`) and the query it adds to the dashboard's period and filters.
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
class ReportTab:
    key: str  # the part's name in the dashboard's status
    title: str
    view: QWidget
    report: str  # path under /reports/
    query: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda params: params)


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
        site_id, query = page.site["id"], tab.query(page.params())
        view: Any = tab.view
        page._part(
            tab.key,
            lambda cached: page._get(cached, site_id, tab.report, query),
            view.set_data,
            on_missing=view.set_message,
        )
