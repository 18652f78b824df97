"""A native world map (choropleth) of visitors by country, drawn with QPainter from Natural Earth's 1:110m
country shapes shipped in data/countries-110m.json.gz (made by scripts/worldmap_data.py; public domain).
Nothing is fetched to draw it: it works offline from the cached breakdown like every other view.

Contract:
- `WorldMap.set_data(answer)` takes a `/reports/breakdown/country` answer; `values` is then the visitors per
  ISO alpha-2 code exactly as the API gave them (rows with no country and the `(other)` row are left out),
  and `plotted` the part of it that has a shape on the map (tiny countries such as Singapore have none at
  this scale: `missing` lists them, the view names them under the map).
- The fill of a country grows with its visitors (square-root scale up to the period's largest); a country
  without visitors keeps the neutral fill. Colours follow the palette (light and dark), also when it changes.
- Hover shows the country's name and figures (tooltip and `hovered`); a click emits `country_clicked(code)`,
  which the dashboard turns into a country filter. Keyboard: Tab to the map, Left/Right (or Up/Down) step
  through the countries with visitors, largest first, Enter or Space filters by the one shown.
- Equirectangular projection, latitudes -58 to 84 (Antarctica is not drawn), aspect ratio kept.
"""

from __future__ import annotations

import gzip
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QKeyEvent,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
    QTransform,
)
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from pixel.app.desktop.charts import is_dark
from pixel.app.desktop.none_refs import balanced, balanced_calls

DATA = Path(__file__).resolve().parent / "data" / "countries-110m.json.gz"
WEST, EAST, SOUTH, NORTH = -180.0, 180.0, -58.0, 84.0
SKIPPED = {"AQ"}  # Antarctica: below the drawn latitudes
# (no visitors, fewest, most) fills on a light and on a dark background
LIGHT_FILLS = ("#e5e7eb", "#c7d2fe", "#3730a3")
DARK_FILLS = ("#374151", "#312e81", "#a5b4fc")


@cache
def shapes() -> dict[str, tuple[str, QPainterPath]]:
    """Country code -> (name, outline in degrees with y = -latitude), read once from the shipped file."""
    raw = json.loads(gzip.decompress(DATA.read_bytes()))
    scale = float(raw["scale"])
    out: dict[str, tuple[str, QPainterPath]] = {}
    with balanced():  # void Qt calls (none_refs)
        for code, country in raw["countries"].items():
            if code in SKIPPED:
                continue
            path = QPainterPath()
            path.setFillRule(Qt.FillRule.OddEvenFill)
            for ring in country["rings"]:
                path.addPolygon(
                    QPolygonF(
                        [QPointF(ring[i] / scale, -ring[i + 1] / scale) for i in range(0, len(ring) - 1, 2)]
                    )
                )
                path.closeSubpath()
            out[code] = (country["name"], path)
    return out


def mix(a: QColor, b: QColor, t: float) -> QColor:
    t = min(1.0, max(0.0, t))
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def country_name(code: str) -> str:
    found = shapes().get(code)
    return found[0] if found else code


class WorldMap(QWidget):
    country_clicked = Signal(str)
    hovered = Signal(str)  # the hover text ("" when the pointer leaves the countries)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(360, 160)
        self.setAccessibleName("World map of visitors by country")
        self.rows: dict[str, dict[str, Any]] = {}
        self.values: dict[str, int] = {}
        self.current = ""  # the country under the pointer or chosen with the keyboard

    # ------------------------------------------------------------------ data
    @balanced_calls
    def set_data(self, data: dict[str, Any]) -> None:
        rows = [r for r in data.get("rows", []) if isinstance(r.get("value"), str) and len(r["value"]) == 2]
        self.rows = {r["value"].upper(): r for r in rows}
        self.values = {code: int(r.get("visitors", 0)) for code, r in self.rows.items()}
        if self.current not in shapes():
            self.current = ""
        self.update()

    @property
    def plotted(self) -> dict[str, int]:
        known = shapes()
        return {code: v for code, v in self.values.items() if code in known}

    @property
    def missing(self) -> dict[str, int]:
        known = shapes()
        return {code: v for code, v in self.values.items() if code not in known}

    def describe(self, code: str) -> str:
        row = self.rows.get(code)
        name = country_name(code)
        if row is None:
            return f"{name} ({code}): no visitors in the period"
        figures = [f"{int(row.get('visitors', 0)):,} visitors"]
        for metric in ("pageviews", "sessions"):
            if metric in row:
                figures.append(f"{int(row[metric]):,} {metric}")
        return f"{name} ({code}): " + " · ".join(figures)

    # ------------------------------------------------------------------ geometry
    def sizeHint(self) -> QSize:
        return QSize(900, 380)

    def transform(self) -> QTransform:
        """Degrees (x = longitude, y = -latitude) to widget pixels, aspect kept, centred."""
        area = QRectF(self.rect()).adjusted(4, 4, -4, -24)  # room for the legend below
        width, height = EAST - WEST, NORTH - SOUTH
        k = max(1e-6, min(area.width() / width, area.height() / height))
        dx = area.left() + (area.width() - width * k) / 2
        dy = area.top() + (area.height() - height * k) / 2
        return QTransform(k, 0, 0, k, dx - WEST * k, dy + NORTH * k)

    @balanced_calls
    def country_at(self, pos: QPointF) -> str:
        inverted, ok = self.transform().inverted()
        if not ok:
            return ""
        geo = inverted.map(pos)
        for code, (_name, path) in shapes().items():
            if path.controlPointRect().contains(geo) and path.contains(geo):
                return code
        return ""

    @balanced_calls
    def centre_of(self, code: str) -> QPointF:
        """A point inside the country's largest outline, in widget pixels (tests click it)."""
        path = shapes()[code][1]
        best = max(
            path.toSubpathPolygons(), key=lambda p: p.boundingRect().width() * p.boundingRect().height()
        )
        box = best.boundingRect()
        transform = self.transform()
        candidates = [box.center()] + [
            QPointF(box.left() + box.width() * (i + 0.5) / 8, box.top() + box.height() * (j + 0.5) / 8)
            for i in range(8)
            for j in range(8)
        ]
        for geo in candidates:
            if path.contains(geo):
                return transform.map(geo)
        return transform.map(box.center())

    # ------------------------------------------------------------------ colours
    def fills(self) -> tuple[QColor, QColor, QColor]:
        chosen = DARK_FILLS if is_dark(self.palette().color(QPalette.ColorRole.Base)) else LIGHT_FILLS
        empty, low, high = (QColor(c) for c in chosen)
        return empty, low, high

    def colour_of(self, code: str) -> QColor:
        empty, low, high = self.fills()
        value = self.values.get(code, 0)
        top = max(self.values.values(), default=0)
        if value <= 0 or top <= 0:
            return empty
        return mix(low, high, math.sqrt(value / top))

    # ------------------------------------------------------------------ painting
    @balanced_calls
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        transform = self.transform()
        border = QPen(palette.color(QPalette.ColorRole.Base), 0.6)
        border.setCosmetic(True)
        for code, (_name, path) in shapes().items():
            mapped = transform.map(path)
            painter.setPen(border)
            painter.setBrush(self.colour_of(code))
            painter.drawPath(mapped)
        if self.current in shapes():
            outline = QPen(palette.color(QPalette.ColorRole.Text), 1.6 if self.hasFocus() else 1.2)
            outline.setCosmetic(True)
            painter.setPen(outline)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(transform.map(shapes()[self.current][1]))
        self._legend(painter)
        if self.hasFocus():
            focus = QPen(palette.color(QPalette.ColorRole.Highlight), 2)
            painter.setPen(focus)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        painter.end()

    def _legend(self, painter: QPainter) -> None:
        empty, low, high = self.fills()
        top = max(self.values.values(), default=0)
        bar = QRectF(8, self.height() - 18, 160, 10)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(11):
            gradient.setColorAt(i / 10, mix(low, high, math.sqrt(i / 10)))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(gradient)
        painter.drawRect(bar)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        text = f"1 – {top:,} visitors" if top else "no visitors in the period"
        painter.drawText(QPointF(bar.right() + 8, bar.bottom()), text)

    # ------------------------------------------------------------------ interaction
    @balanced_calls
    def _show(self, code: str, at: QPointF | None = None) -> None:
        changed = code != self.current
        self.current = code
        text = self.describe(code) if code else ""
        if at is not None and text:
            QToolTip.showText(self.mapToGlobal(at.toPoint()), text, self)
        elif not text:
            QToolTip.hideText()
        if changed:
            self.update()
        self.hovered.emit(text)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._show(self.country_at(event.position()), event.position())

    def leaveEvent(self, event: QEvent) -> None:
        if not self.hasFocus():
            self._show("")
        super().leaveEvent(event)

    @balanced_calls
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            code = self.country_at(event.position())
            if code:
                self.country_clicked.emit(code)
                event.accept()
                return
        super().mousePressEvent(event)

    def ranked(self) -> list[str]:
        return sorted(self.plotted, key=lambda c: (-self.plotted[c], c))

    @balanced_calls
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        order = self.ranked()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Left, Qt.Key.Key_Up) and order:
            step = 1 if key in (Qt.Key.Key_Right, Qt.Key.Key_Down) else -1
            index = order.index(self.current) + step if self.current in order else (0 if step > 0 else -1)
            code = order[index % len(order)]
            self._show(code, self.centre_of(code))
            event.accept()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and self.current:
            self.country_clicked.emit(self.current)
            event.accept()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusOutEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusInEvent(event)


class MapView(QWidget):
    """The map with a line for the country under the pointer and one naming countries too small to draw."""

    country_clicked = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.map = WorldMap()
        self.map.country_clicked.connect(self.country_clicked)
        self.hint = "Point at a country for its figures; click it (or Enter) to filter by it."
        self.info = QLabel(self.hint)
        self.map.hovered.connect(lambda text: self.info.setText(text or self.hint))
        self.small = QLabel("")
        self.small.setWordWrap(True)
        self.message = QLabel("")
        for w in (self.map, self.info, self.small, self.message):
            layout.addWidget(w)

    @balanced_calls
    def set_data(self, data: dict[str, Any]) -> None:
        self.map.set_data(data)
        self.message.setText("")
        missing = sorted(self.map.missing.items(), key=lambda kv: (-kv[1], kv[0]))
        self.small.setText(
            "Too small for the map: " + ", ".join(f"{code} {n:,}" for code, n in missing) if missing else ""
        )
        unknown = sum(
            int(r.get("visitors", 0))
            for r in data.get("rows", [])
            if not (isinstance(r.get("value"), str) and len(r["value"]) == 2)
        )
        if unknown:
            self.small.setText(
                (self.small.text() + " · " if self.small.text() else "")
                + f"{unknown:,} visitors with no known country"
            )

    def set_message(self, text: str) -> None:
        self.message.setText(text)
