"""Sparklines as on the stack page: CPU, memory and ingest rate, with a gap where a sample is missing."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QFormLayout, QWidget

from pixel.app.desktop.charts import Sparkline


def build() -> QWidget:
    widget = QWidget()
    form = QFormLayout(widget)
    for name, colour, fn in (
        ("CPU %", "#4f46e5", lambda i: 20 + 15 * math.sin(i / 5)),
        ("Memory MiB", "#b45309", lambda i: 300 + i * 2),
        ("Events/s", "#15803d", lambda i: None if 25 <= i < 30 else 50 + 20 * math.cos(i / 3)),
    ):
        spark = Sparkline(color=colour)
        for i in range(60):
            spark.push(fn(i))
        form.addRow(name, spark)
    widget.resize(400, 160)
    return widget


if __name__ == "__main__":
    app = pg.mkQApp("Sparklines")
    widget = build()
    widget.show()
    pg.exec()
