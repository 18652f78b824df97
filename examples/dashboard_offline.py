"""The whole dashboard page drawn offline from a local cache filled with generated answers (no
server): what a site owner sees on a plane, marked "as of" the time the answers were fetched."""

from __future__ import annotations

import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyqtgraph as pg

from pixel.app.client import ReportCache, ReportSource
from pixel.app.client.api import report_params
from pixel.app.client.cache import list_key, request_key
from pixel.app.desktop.dashboard import BREAKDOWNS, OVERVIEW_METRICS, DashboardPage
from pixel.app.desktop.workers import Runner


def fill_cache(cache: ReportCache, profile: str = "example", today: date | None = None) -> None:
    """Store the answers the page asks for first (30 days, no filter) as if fetched an hour ago."""
    rng = np.random.default_rng(3)
    today = today or date.today()
    first = today - timedelta(days=29)
    as_of = time.time() - 3600
    site = {"id": 1, "domain": "example.com", "name": "example.com", "timezone": "Europe/Berlin"}
    put = lambda path, params, data: cache.put(request_key(profile, path, report_params(params)), data, as_of)  # noqa: E731
    cache.put(list_key(profile, "/api/sites"), {"items": [site], "total": 1}, as_of)
    base = {"period": "30d", "filters": []}
    rng_info = {
        "site": "example.com",
        "period": "30d",
        "timezone": "Europe/Berlin",
        "from": f"{first.isoformat()}T00:00:00+00:00",
        "to": f"{(today + timedelta(days=1)).isoformat()}T00:00:00+00:00",
    }

    def series(scale: float) -> dict:
        points = []
        for i in range(30):
            v = int(rng.poisson(100 * scale)) + i * 2
            points.append(
                {
                    "bucket": (first + timedelta(days=i)).isoformat(),
                    "visitors": v,
                    "pageviews": v * 3,
                    "sessions": int(v * 1.2),
                    "views_per_session": 2.5,
                    "bounce_rate": 40.0,
                    "visit_duration": 95.0,
                }
            )
        return {**rng_info, "interval": "day", "metrics": OVERVIEW_METRICS.split(","), "points": points}

    summary = {
        m: {"value": v, "previous": v * 0.9, "change": 11.1}
        for m, v in (
            ("visitors", 3100),
            ("pageviews", 9300),
            ("sessions", 3720),
            ("views_per_session", 2.5),
            ("bounce_rate", 40.0),
            ("visit_duration", 95.0),
        )
    }
    breakdowns = {}
    for _, dims in BREAKDOWNS:
        dim = dims[0][0]
        rows = [
            {"value": f"{dim}-{i}", "visitors": 500 // (i + 1), "pageviews": 900 // (i + 1), "events": 0}
            for i in range(6)
        ]
        breakdowns[dim] = {
            **rng_info,
            "dimension": dim,
            "metrics": ["visitors", "pageviews", "events"],
            "rows": rows,
        }
    # The page asks the API's dashboard endpoint for the tiles, the chart and the boxes in one request.
    put(
        "/api/sites/1/reports/dashboard",
        {
            **base,
            "metrics": OVERVIEW_METRICS,
            "breakdowns": ",".join(breakdowns),
            "limit": 10,
            "previous_timeseries": True,
        },
        {
            "summary": {**rng_info, "metrics": summary},
            "timeseries": series(1.0),
            "previous_timeseries": series(0.8),
            "breakdowns": breakdowns,
        },
    )
    put(
        "/api/sites/1/reports/realtime",
        {"filters": []},
        {"visitors": 7, "pageviews_per_minute": [], "top_pages": []},
    )


def build(folder: Path | None = None) -> DashboardPage:
    folder = folder or Path(tempfile.mkdtemp())
    cache = ReportCache(folder / "cache.sqlite3")
    fill_cache(cache)
    page = DashboardPage(Runner(), ReportSource(None, cache, "example"))  # no client: offline
    page.load_sites()
    page.resize(1300, 1000)
    return page


if __name__ == "__main__":
    app = pg.mkQApp("Dashboard (offline)")
    widget = build()
    widget.show()
    pg.exec()
