"""Visitors over 30 days on a date axis in the site's time zone, with the previous period dashed
and a hover crosshair (move the mouse over the chart)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyqtgraph as pg

from pixel.app.desktop.charts import TimeSeriesChart


def build() -> TimeSeriesChart:
    rng = np.random.default_rng(1)
    days = [(date(2026, 3, 1) + timedelta(days=i)).isoformat() for i in range(30)]
    visitors = rng.poisson(120, 30) + np.arange(30) * 3
    previous = rng.poisson(110, 30)
    chart = TimeSeriesChart()
    chart.set_series(days, visitors.tolist(), "visitors", previous.tolist())
    chart.hover_at(int(np.argmax(visitors)))
    chart.resize(900, 320)
    return chart


if __name__ == "__main__":
    app = pg.mkQApp("Time series")
    widget = build()
    widget.show()
    pg.exec()
