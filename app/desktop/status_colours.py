"""Status colours that follow the OS theme: good, warning, bad and muted text, and the stack page's series
(CPU, memory, ingest), each in a light-background and a dark-background variant.

Contract: `status_colour(kind, palette)` picks the variant from the lightness of the palette's Window colour
(the background labels and table cells are drawn on; a chart's Base is handled by charts.series_colours);
every variant keeps a WCAG contrast of at least 4.5 against the light and dark palettes the tests use.
`status_style(kind, widget)` is the style sheet for a label's text in that colour, chosen for the widget's
palette at the time of the call (callers set it again when they show a new message or on a palette change).
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

Kind = Literal["good", "warn", "bad", "muted", "cpu", "memory", "ingest"]

LIGHT: dict[str, str] = {
    "good": "#166534",
    "warn": "#92400e",
    "bad": "#b91c1c",
    "muted": "#4b5563",
    "cpu": "#4f46e5",
    "memory": "#92400e",
    "ingest": "#166534",
}
DARK: dict[str, str] = {
    "good": "#4ade80",
    "warn": "#fbbf24",
    "bad": "#fca5a5",
    "muted": "#9ca3af",
    "cpu": "#a5b4fc",
    "memory": "#fbbf24",
    "ingest": "#4ade80",
}


def dark_palette(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def status_colour(kind: Kind, palette: QPalette) -> QColor:
    return QColor((DARK if dark_palette(palette) else LIGHT)[kind])


def status_style(kind: Kind, widget: QWidget) -> str:
    return f"color:{status_colour(kind, widget.palette()).name()}"
