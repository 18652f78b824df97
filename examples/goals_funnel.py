"""The goals view (conversion rates) and the funnel view (visitors per step), side by side."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

from pixel.app.desktop.views import FunnelView, GoalsView


def build() -> QWidget:
    goals = GoalsView()
    goals.set_data(
        {
            "total_visitors": 1200,
            "goals": [
                {"goal_id": 1, "name": "Signup", "visitors": 96, "conversions": 101, "conversion_rate": 8.0},
                {
                    "goal_id": 2,
                    "name": "Visit /pricing",
                    "visitors": 310,
                    "conversions": 402,
                    "conversion_rate": 25.83,
                },
            ],
        }
    )
    funnel = FunnelView()
    steps = [("/", 1000), ("/products*", 610), ("/cart", 240), ("/checkout", 88)]
    funnel.set_data(
        {
            "window_seconds": 3600,
            "steps": [
                {
                    "step": i + 1,
                    "name": n,
                    "visitors": v,
                    "conversion_rate": round(v * 100 / 1000, 2),
                    "dropoff": (steps[i - 1][1] - v) if i else 0,
                    "dropoff_rate": 0.0,
                }
                for i, (n, v) in enumerate(steps)
            ],
        }
    )
    widget = QWidget()
    layout = QHBoxLayout(widget)
    layout.addWidget(goals)
    layout.addWidget(funnel)
    widget.resize(1100, 450)
    return widget


if __name__ == "__main__":
    app = pg.mkQApp("Goals and funnel")
    widget = build()
    widget.show()
    pg.exec()
