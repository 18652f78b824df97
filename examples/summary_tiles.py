"""Summary tiles with change arrows (green when the change is good: bounce rate going down is)."""

from __future__ import annotations

import pyqtgraph as pg

from pixel.app.desktop.widgets import SummaryTiles


def build() -> SummaryTiles:
    tiles = SummaryTiles()
    values = {
        "visitors": (1840, 12.5),
        "pageviews": (5211, 8.1),
        "sessions": (2290, -3.0),
        "views_per_session": (2.28, 11.2),
        "bounce_rate": (41.3, -2.4),
        "visit_duration": (134.0, None),
    }
    tiles.set_summary({"metrics": {m: {"value": v, "change": c} for m, (v, c) in values.items()}})
    tiles.resize(1000, 90)
    return tiles


if __name__ == "__main__":
    app = pg.mkQApp("Summary tiles")
    widget = build()
    widget.show()
    pg.exec()
