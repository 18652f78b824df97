"""The engagement and content-events report views of the dashboard (issue 17), and the table they share.

Contract:
- `EngagementView.set_data` takes `/reports/engagement`; `ContentView` takes `/reports/outbound`,
  `/downloads`, `/forms` and `/not-found` (one method each). Every figure shown is the API's, formatted:
  durations from milliseconds (`duration`), shares with their one decimal and a % sign, None as "—".
- `ReportTable`: a read-only table sorted by clicking a header (numbers by value, texts alphabetically; the
  rows are the API's first `ROWS` by its default order), Ctrl+C copies the selection as TSV, keyboard
  reachable like every table.
- A chart's `names`/`values` are exactly what it plots (tests compare them with the API's rows).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHeaderView, QLabel, QTableWidgetItem, QVBoxLayout, QWidget

from pixel.app.desktop.charts import BarChart
from pixel.app.desktop.copy_table import CopyTable
from pixel.app.desktop.none_refs import balanced_calls
from pixel.app.desktop.widgets import emphasise

ROWS = 100  # rows asked of each ranked report


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(round(ms))} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    return f"{whole // 60}m {whole % 60:02d}s"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def count(value: int) -> str:
    return f"{int(value):,}"


class Cell(QTableWidgetItem):
    """A cell shown as `text`, sorted by `key` (a number, or the text itself)."""

    def __init__(self, text: str, key: float | str | None = None) -> None:
        super().__init__(text)
        self.key: float | str = text.lower() if key is None else key
        if not isinstance(self.key, str):
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.key, getattr(other, "key", other.text())
        if isinstance(mine, str) or isinstance(theirs, str):
            return str(mine) < str(theirs)
        return mine < theirs


def number(value: float | int | None, text: str) -> Cell:
    return Cell(text, float("-inf") if value is None else float(value))


class ReportTable(CopyTable):
    def __init__(self, headers: list[str], name: str) -> None:
        super().__init__(headers)
        self.setAccessibleName(name)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setMinimumHeight(160)

    @balanced_calls
    def fill(self, rows: list[list[Cell]]) -> None:
        self.setSortingEnabled(False)  # (rows placed where they are put, then sorted by the chosen header)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                self.setItem(r, c, cell)
        self.setSortingEnabled(True)

    def texts(self, column: int) -> list[str]:
        items = (self.item(r, column) for r in range(self.rowCount()))
        return [item.text() if item is not None else "" for item in items]


def section(title: str, *widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    head = QLabel(title)
    emphasise(head, 1.0)
    layout.addWidget(head)
    for w in widgets:
        layout.addWidget(w)
    return box


class EngagementView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.note = QLabel(
            "Per page: engaged time is the time the tab was visible and in use (median and 75th percentile of "
            "the page visits); scroll is the share of page visits reaching each depth."
        )
        self.note.setWordWrap(True)
        self.chart = BarChart()
        self.chart.setMinimumHeight(200)
        self.table = ReportTable(
            [
                "Page",
                "Visitors",
                "Pageviews",
                "Median engaged",
                "p75 engaged",
                "Scroll 25%",
                "50%",
                "75%",
                "100%",
                "Bounce rate",
                "Exit rate",
            ],
            "Engagement per page",
        )
        self.message = QLabel("")
        layout.addWidget(self.note)
        layout.addWidget(section("Median engaged time (seconds), top pages", self.chart))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self.rows: list[dict[str, Any]] = []

    def set_data(self, data: dict[str, Any]) -> None:
        self.rows = list(data["rows"])
        top = self.rows[:10]
        self.chart.set_bars([r["page"] for r in top], [(r["median_engaged_ms"] or 0) / 1000 for r in top])
        self.table.fill(
            [
                [
                    Cell(r["page"]),
                    number(r["visitors"], count(r["visitors"])),
                    number(r["pageviews"], count(r["pageviews"])),
                    number(r["median_engaged_ms"], duration(r["median_engaged_ms"])),
                    number(r["p75_engaged_ms"], duration(r["p75_engaged_ms"])),
                    *(
                        number(r["scroll"][f"reached_{d}"], share(r["scroll"][f"reached_{d}"]))
                        for d in (25, 50, 75, 100)
                    ),
                    number(r["bounce_rate"], share(r["bounce_rate"])),
                    number(r["exit_rate"], share(r["exit_rate"])),
                ]
                for r in self.rows
            ]
        )
        self.message.setText("" if self.rows else "No pageviews in this period.")

    def set_message(self, text: str) -> None:
        self.message.setText(text)


class ContentView(QWidget):
    """Outbound links, file downloads, form submissions and 404 pages, each a table (and bars for links)."""

    def __init__(self) -> None:
        super().__init__()
        self.links_chart = BarChart()
        self.links = ReportTable(["Link", "Clicks", "Visitors"], "Outbound links")
        self.downloads = ReportTable(["File", "Downloads", "Visitors"], "File downloads")
        self.forms = ReportTable(["Form", "Action", "Submissions", "Visitors", "Pages"], "Form submissions")
        self.not_found = ReportTable(["Page", "Pageviews", "Visitors", "Referrers"], "Pages not found (404)")
        self.notes = {name: QLabel("") for name in ("outbound", "downloads", "forms", "not-found")}
        grid = QGridLayout(self)
        grid.addWidget(section("Outbound links", self.links_chart, self.links, self.notes["outbound"]), 0, 0)
        grid.addWidget(section("File downloads", self.downloads, self.notes["downloads"]), 0, 1)
        grid.addWidget(section("Form submissions", self.forms, self.notes["forms"]), 1, 0)
        grid.addWidget(section("Pages not found (404)", self.not_found, self.notes["not-found"]), 1, 1)
        self.message = QLabel("")
        grid.addWidget(self.message, 2, 0, 1, 2)
        self.data: dict[str, list[dict[str, Any]]] = {}

    def _empty(self, name: str, rows: list[dict[str, Any]], what: str) -> None:
        self.data[name] = rows
        self.notes[name].setText("" if rows else f"No {what} in this period.")

    def set_outbound(self, data: dict[str, Any]) -> None:
        rows = list(data["rows"])
        self._empty("outbound", rows, "outbound clicks")
        self.links_chart.set_bars([r["url"] for r in rows[:10]], [r["clicks"] for r in rows[:10]])
        self.links.fill(
            [
                [
                    Cell(r["url"]),
                    number(r["clicks"], count(r["clicks"])),
                    number(r["visitors"], count(r["visitors"])),
                ]
                for r in rows
            ]
        )

    def set_downloads(self, data: dict[str, Any]) -> None:
        rows = list(data["rows"])
        self._empty("downloads", rows, "downloads")
        self.downloads.fill(
            [
                [
                    Cell(r["file"]),
                    number(r["downloads"], count(r["downloads"])),
                    number(r["visitors"], count(r["visitors"])),
                ]
                for r in rows
            ]
        )

    def set_forms(self, data: dict[str, Any]) -> None:
        rows = list(data["rows"])
        self._empty("forms", rows, "form submissions")
        self.forms.fill(
            [
                [
                    Cell(r["form_id"] or "(no id)"),
                    Cell(r["action"] or "—"),
                    number(r["submissions"], count(r["submissions"])),
                    number(r["visitors"], count(r["visitors"])),
                    Cell(pages_text(r["pages"], r["page_count"])),
                ]
                for r in rows
            ]
        )

    def set_not_found(self, data: dict[str, Any]) -> None:
        rows = list(data["rows"])
        self._empty("not-found", rows, "404 pages")
        self.not_found.fill(
            [
                [
                    Cell(r["page"]),
                    number(r["pageviews"], count(r["pageviews"])),
                    number(r["visitors"], count(r["visitors"])),
                    Cell(
                        ", ".join(
                            f"{x['referrer'] or '(direct)'} ({x['pageviews']:,})" for x in r["referrers"]
                        )
                    ),
                ]
                for r in rows
            ]
        )

    def set_message(self, text: str) -> None:
        self.message.setText(text)


def pages_text(pages: list[str], total: int) -> str:
    more = total - len(pages)
    return ", ".join(pages) + (f" and {more:,} more" if more > 0 else "")
