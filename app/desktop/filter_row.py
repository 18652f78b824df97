"""A filter row of its own for pages outside the dashboard (the Journeys page): pick a dimension, an operator and
a value and press Add (or Enter), or pick one of the site's saved segments (its filters replace the current
ones); the active filters are shown as the dashboard's chips (`widgets.FilterBar`), a chip's ✕ removes it.

The row holds only the filter triples ([dimension, operator, value], the API's `filters`); it asks nothing
itself. `changed` is emitted with the new list after each change made by the user (not after `set_filters` or
`set_segments`, which the page calls). The API is the validator: a dimension the API refuses comes back as its
400 text on the page, the row does not second-guess it (a `prop:<name>` typed in the dimension box is kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from pixel.app.desktop.widgets import FilterBar

# The reports' event-level filter dimensions (server/api/query/filters.py DIMENSIONS), most used first.
DIMENSIONS = (
    "page",
    "country",
    "region",
    "city",
    "browser",
    "os",
    "device",
    "source",
    "referrer",
    "channel",
    "medium",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "hostname",
    "title",
    "language",
    "screen",
    "browser_version",
    "os_version",
    "event",
)
OPERATORS = (
    ("is", "is"),
    ("is_not", "is not"),
    ("contains", "contains"),
    ("not_contains", "does not contain"),
    ("matches", "matches (regex)"),
    ("not_matches", "does not match"),
)
NO_SEGMENT = "Segment: none"

Filters = list[list[str]]


class FilterRow(QWidget):
    changed = Signal(list)  # the filters after a change made in the row

    def __init__(self) -> None:
        super().__init__()
        self.filters: Filters = []
        self.segments: list[dict[str, Any]] = []
        self.dimension = QComboBox()
        self.dimension.setEditable(True)  # prop:<name> can be typed
        self.dimension.addItems(DIMENSIONS)
        self.dimension.setToolTip("The dimension to filter on (type prop:<name> for a custom property)")
        self.operator = QComboBox()
        for key, text in OPERATORS:
            self.operator.addItem(text, key)
        self.value = QLineEdit()
        self.value.setPlaceholderText("value")
        self.value.returnPressed.connect(self.add_current)
        self.add_button = QPushButton("Add filter")
        self.add_button.clicked.connect(self.add_current)
        self.segment = QComboBox()
        self.segment.setMinimumWidth(180)
        self.segment.setToolTip("A saved segment of this site: its filters replace the current ones")
        self.segment.activated.connect(self._segment_picked)
        self.set_segments([])
        self.bar = FilterBar()
        self.bar.removed.connect(self.remove)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Filter:"))
        row.addWidget(self.dimension)
        row.addWidget(self.operator)
        row.addWidget(self.value, 1)
        row.addWidget(self.add_button)
        row.addWidget(self.segment)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.bar)

    def set_filters(self, filters: Sequence[Sequence[str]]) -> None:
        """Show `filters` (a copy is kept); no `changed`."""
        self.filters = [list(f) for f in filters]
        self.bar.set_filters(self.filters)

    def set_segments(self, segments: list[dict[str, Any]]) -> None:
        """The site's segments to pick from (each with `name` and `filters`); no `changed`."""
        self.segments = list(segments)
        self.segment.blockSignals(True)
        self.segment.clear()
        self.segment.addItem(NO_SEGMENT, None)
        for s in self.segments:
            self.segment.addItem(s["name"] + (" (shared)" if s.get("shared") else ""), s["id"])
        self.segment.setEnabled(bool(self.segments))
        self.segment.blockSignals(False)

    def add(self, dimension: str, operator: str, value: str) -> None:
        """Add one filter (a repeated one is not added twice) and emit `changed`."""
        item = [dimension.strip(), operator, value]
        if not item[0] or item in self.filters:
            return
        self.filters.append(item)
        self.bar.set_filters(self.filters)
        self.changed.emit(list(self.filters))

    def add_current(self) -> None:
        """The filter of the dimension, operator and value boxes (a value is needed)."""
        if not self.value.text().strip():
            return
        self.add(self.dimension.currentText(), str(self.operator.currentData()), self.value.text().strip())
        self.value.clear()

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.filters):
            del self.filters[index]
            self.bar.set_filters(self.filters)
            self.changed.emit(list(self.filters))

    def pick_segment(self, segment_id: int | None) -> None:
        """Replace the filters by the segment's (None: no filters) and emit `changed`."""
        chosen = next((s for s in self.segments if s["id"] == segment_id), None)
        self.segment.setCurrentIndex(max(self.segment.findData(segment_id), 0))
        self.set_filters(chosen["filters"] if chosen else [])
        self.changed.emit(list(self.filters))

    def _segment_picked(self, index: int) -> None:
        data = self.segment.itemData(index)
        self.pick_segment(int(data) if data is not None else None)
