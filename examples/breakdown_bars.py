"""A breakdown box: top pages as bars and a table; click a bar or a row to ask for a filter."""

from __future__ import annotations

import pyqtgraph as pg

from pixel.app.desktop.widgets import BreakdownBox


def build() -> BreakdownBox:
    box = BreakdownBox("Pages", [("page", "Top pages"), ("entry_page", "Entry pages")])
    rows = [
        {"value": p, "visitors": v, "pageviews": v * 2, "events": v * 3}
        for p, v in (("/", 420), ("/pricing", 233), ("/blog/launch", 180), ("/docs", 97), ("/about", 41))
    ]
    box.set_data({"dimension": "page", "metrics": ["visitors", "pageviews", "events"], "rows": rows})
    box.filter_requested.connect(lambda dim, value: print(f"filter: {dim} is {value}"))
    box.resize(520, 420)
    return box


if __name__ == "__main__":
    app = pg.mkQApp("Breakdown")
    widget = build()
    widget.show()
    pg.exec()
