"""The revenue report view of the dashboard (issue 17).

Contract:
- `set_data` takes `/reports/revenue/{dimension}`: totals (revenue, orders, refunds, average order value,
  visitors) and one row per value, in ONE currency; amounts are the API's exact decimal strings, shown as
  they are (never summed or converted here); revenue in other currencies is listed apart ("never added").
- The dimension and currency choosers emit `changed`; the dashboard then asks for that report again.
  The currency chooser offers "the site's reporting currency" (no `currency` parameter: the API picks it,
  or the only currency present) and every currency the last answer named.
- A currency mix without a chosen currency is the API's 400 `currency_mix`: `set_message` shows its reason.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pixel.app.desktop.charts import BarChart
from pixel.app.desktop.reports_views import Cell, ReportTable, count, number, section

DIMENSIONS = (
    ("source", "Sources"),
    ("channel", "Channels"),
    ("utm_campaign", "Campaigns"),
    ("page", "Pages"),
    ("country", "Countries"),
    ("device", "Devices"),
)


def amount(text: str | None) -> str:
    """An exact amount as the API sent it, with thousands separators (no rounding, no float)."""
    if text is None:
        return "—"
    value = Decimal(text)
    return f"{value:,.4f}"


class RevenueView(QWidget):
    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        controls = QHBoxLayout()
        self.dimension = QComboBox()
        for key, label in DIMENSIONS:
            self.dimension.addItem(label, key)
        self.currency = QComboBox()
        self.currency.addItem("the site's reporting currency", None)
        self.dimension.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.currency.currentIndexChanged.connect(lambda _i: self.changed.emit())
        for w in (QLabel("Revenue by"), self.dimension, QLabel("in"), self.currency):
            controls.addWidget(w)
        controls.addStretch(1)
        self.totals = QLabel("")
        self.others = QLabel("")
        self.others.setWordWrap(True)
        self.chart = BarChart()
        self.table = ReportTable(
            ["Value", "Revenue", "Orders", "Refunds", "Average order", "Visitors"], "Revenue"
        )
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addLayout(controls)
        for w in (self.totals, self.others):
            layout.addWidget(w)
        layout.addWidget(section("Revenue, top values", self.chart))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self.data: dict[str, Any] | None = None

    def query(self) -> dict[str, Any]:
        """What the report takes besides the period and filters."""
        out: dict[str, Any] = {"limit": 100}
        if self.currency.currentData():
            out["currency"] = self.currency.currentData()
        return out

    def report(self) -> str:
        return f"revenue/{self.dimension.currentData()}"

    def set_data(self, data: dict[str, Any]) -> None:
        self.data = data
        self.message.setText("")
        code = data["currency"]
        totals = data["totals"]
        if code is None:
            self.totals.setText("No revenue in this period.")
        else:
            self.totals.setText(
                f"{code} {amount(totals['revenue'])} revenue · {totals['orders']:,} orders · "
                f"{totals['refunds']:,} refunds · average order {amount(totals['average_order_value'])} · "
                f"{totals['visitors']:,} paying visitors"
            )
        others = data["other_currencies"]
        self.others.setText(
            "Also (never added): "
            + "; ".join(f"{o['currency']} {amount(o['revenue'])} ({o['orders']:,} orders)" for o in others)
            if others
            else ""
        )
        self._offer([c for c in [code, *(o["currency"] for o in others)] if c])
        rows = list(data["rows"])
        self.chart.set_bars(
            [r["value"] for r in rows[:10]], [float(Decimal(r["revenue"])) for r in rows[:10]]
        )
        self.table.fill(
            [
                [
                    Cell(r["value"] or "(none)"),
                    number(float(Decimal(r["revenue"])), amount(r["revenue"])),
                    number(r["orders"], count(r["orders"])),
                    number(r["refunds"], count(r["refunds"])),
                    number(
                        None
                        if r["average_order_value"] is None
                        else float(Decimal(r["average_order_value"])),
                        amount(r["average_order_value"]),
                    ),
                    number(r["visitors"], count(r["visitors"])),
                ]
                for r in rows
            ]
        )

    def _offer(self, codes: list[str]) -> None:
        """Add the currencies an answer named to the chooser (kept: choosing one must not remove the others)."""
        known = {self.currency.itemData(i) for i in range(self.currency.count())}
        self.currency.blockSignals(True)
        for code in sorted(set(codes) - known):
            self.currency.addItem(code, code)
        self.currency.blockSignals(False)

    def set_message(self, text: str) -> None:
        """A refusal: a currency mix names its currencies, which the chooser then offers."""
        self.message.setText(text)
        named = re.search(r"currencies \(([A-Z]{3}(?:, [A-Z]{3})*)\)", text)
        if named:
            self._offer(named.group(1).split(", "))
