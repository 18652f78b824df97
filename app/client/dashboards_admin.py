"""Qt-free owner tasks on saved dashboards, over an `ApiClient`: list a site's dashboards, create, rename,
delete one; add a widget (any report kind the API accepts, with its parameters), remove one, move one up or
down.

Contract: the API is the validator. Every refusal reaches the caller as `ApiRequestError` whose `detail` is
the API's own text, and a refused change changes nothing (the API validates the whole body before writing).
One check happens here before any request: a dashboard name that is empty or only spaces (`EmptyName`).
The API offers a dashboard only as a whole (PUT replaces name and widgets), so every widget change reads the
dashboard, changes the list and writes it back: the last writer wins if two people edit the same dashboard
at the same moment. Moving a widget swaps it with its neighbour in the list and swaps their grid positions,
so the drawn layout follows the order; a new widget goes in a full-width row below the others."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pixel.app.client.api import ApiClient
from pixel.app.client.site_admin import EmptyName

# Report kind -> the chart kinds the desktop draws it with (first: the default).
CHARTS: dict[str, tuple[str, ...]] = {
    "summary": ("number",),
    "timeseries": ("line",),
    "breakdown": ("bar", "table"),
    "realtime": ("number",),
    "goals": ("bar",),
    "funnel": ("funnel", "bar"),
    "retention": ("cohort",),
}
METRICS = ("visitors", "pageviews", "sessions", "views_per_session", "bounce_rate", "visit_duration")
GRID_COLUMNS = 2  # the saved-dashboards view lays widgets on a grid this wide


def widget_body(
    report: str,
    chart: str = "",
    *,
    title: str = "",
    metric: str = "visitors",
    dimension: str = "source",
    steps: list[dict[str, Any]] | None = None,
    window: int = 3600,
    period: str = "",
    limit: int = 10,
) -> dict[str, Any]:
    """A widget of `report` with the parameters that report reads (others left out); no position yet.
    `period` empty: the dashboard's range. Funnel steps are stored as a JSON text (the API's widget
    parameters are flat values)."""
    params: dict[str, Any] = {}
    if report == "summary":
        params["metric"] = metric
    elif report == "timeseries":
        params["metrics"] = metric
    elif report == "breakdown":
        params.update(dimension=dimension.strip(), limit=limit)
    elif report == "funnel":
        params.update(steps=json.dumps(steps or [], separators=(",", ":")), window=window)
    if period:
        params["period"] = period
    return {
        "title": title.strip(),
        "report": report,
        "params": params,
        "filters": [],
        "chart": chart or CHARTS.get(report, ("number",))[0],
    }


def describe_widget(widget: dict[str, Any]) -> str:
    """One line naming a widget: its title (or report), what it shows and how."""
    params = widget.get("params") or {}
    what = widget["report"]
    if widget["report"] == "breakdown":
        what += f" by {params.get('dimension', '?')}"
    elif widget["report"] in ("summary", "timeseries"):
        what += f" of {params.get('metric') or params.get('metrics') or 'visitors'}"
    elif widget["report"] == "funnel":
        try:
            what += f" of {len(json.loads(str(params.get('steps') or '[]')))} steps"
        except ValueError:
            pass
    if params.get("period"):
        what += f", {params['period']}"
    title = widget.get("title") or widget["report"]
    return f"{title} — {what} as {widget['chart']}"


def deletion_text(dashboard: dict[str, Any]) -> str:
    """What the confirmation before deleting `dashboard` says (names it and counts its widgets)."""
    n = len(dashboard.get("widgets") or [])
    return (
        f"Delete the saved dashboard {dashboard['name']}?\n\nIts {n} widget{'s' if n != 1 else ''} "
        "go with it. The data they show stay."
    )


def _strip(widget: dict[str, Any]) -> dict[str, Any]:
    """A stored widget as the API takes it back (only its own fields)."""
    keys = ("id", "title", "report", "params", "filters", "chart", "position")
    return {k: widget[k] for k in keys if k in widget}


@dataclass
class DashboardsAdmin:
    """Saved dashboards of one API (an `ApiClient`, logged in on first use)."""

    client: ApiClient

    def sites(self) -> list[dict[str, Any]]:
        return self.client.every("/api/sites")

    def dashboards(self, site_id: int) -> list[dict[str, Any]]:
        return self.client.every(f"/api/sites/{site_id}/dashboards")

    def dashboard(self, dashboard_id: int) -> dict[str, Any]:
        return dict(self.client.get(f"/api/dashboards/{dashboard_id}"))

    def create(self, site_id: int, name: str) -> dict[str, Any]:
        if not name.strip():
            raise EmptyName("a dashboard")
        body = {"name": name.strip(), "widgets": []}
        return dict(self.client.request("POST", f"/api/sites/{site_id}/dashboards", body=body))

    def _put(self, dashboard: dict[str, Any], widgets: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"name": dashboard["name"], "widgets": [_strip(w) for w in widgets]}
        return dict(self.client.request("PUT", f"/api/dashboards/{dashboard['id']}", body=body))

    def rename(self, dashboard_id: int, name: str) -> dict[str, Any]:
        if not name.strip():
            raise EmptyName("a dashboard")
        current = self.dashboard(dashboard_id)
        return self._put({**current, "name": name.strip()}, current["widgets"])

    def delete(self, dashboard_id: int) -> None:
        self.client.request("DELETE", f"/api/dashboards/{dashboard_id}")

    def add_widget(self, dashboard_id: int, widget: dict[str, Any]) -> dict[str, Any]:
        """Append `widget` (from `widget_body`) in a full-width row below the others."""
        current = self.dashboard(dashboard_id)
        widgets = list(current["widgets"])
        bottom = max((w["position"]["y"] + w["position"]["h"] for w in widgets), default=0)
        placed = {**widget, "position": {"x": 0, "y": bottom, "w": GRID_COLUMNS, "h": 1}}
        return self._put(current, [*widgets, placed])

    def remove_widget(self, dashboard_id: int, widget_id: str) -> dict[str, Any]:
        current = self.dashboard(dashboard_id)
        widgets = [w for w in current["widgets"] if w["id"] != widget_id]
        if len(widgets) == len(current["widgets"]):
            raise LookupError(f"the dashboard has no widget {widget_id}")
        return self._put(current, widgets)

    def move_widget(self, dashboard_id: int, widget_id: str, delta: int) -> dict[str, Any]:
        """Swap the widget with the one `delta` (-1 up, +1 down) places away, positions included; at
        either end nothing is written and the dashboard is returned as it is."""
        current = self.dashboard(dashboard_id)
        widgets = [dict(w) for w in current["widgets"]]
        ids = [w["id"] for w in widgets]
        if widget_id not in ids:
            raise LookupError(f"the dashboard has no widget {widget_id}")
        i = ids.index(widget_id)
        j = i + delta
        if delta not in (-1, 1) or not 0 <= j < len(widgets):
            return current
        a, b = widgets[i], widgets[j]
        a["position"], b["position"] = b["position"], a["position"]
        widgets[i], widgets[j] = b, a
        return self._put(current, widgets)
