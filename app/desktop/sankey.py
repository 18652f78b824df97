"""A native Sankey diagram of a journeys answer (`/reports/journeys`), drawn with QPainter.

One column per step, one bar per node (its height proportional to its sessions; the step's other pages
together as "(other pages)"), bands between consecutive steps for the links, and each node's drop-off as a
red tail (sessions that left the site there; in a journey *to* a page, a green tail on the left: sessions that
entered the site there). What is drawn is kept in `nodes` and `links` (`Drawn`), with the API's own figures,
so a test can compare the picture with the answer. Hovering a node or a band shows its figures (`hover_text`);
clicking a named node emits `node_clicked` with its page (the page re-centres the journey on it).

Colours follow the palette (light or dark, also when it changes while the app runs): background Base, text
Text, bars and bands the series colours of `charts.series_colours`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from pixel.app.desktop.charts import is_dark, series_colours

OTHER = "(other pages)"
NODE_WIDTH = 14.0
GAP = 10.0
MARGIN = 16.0
TAIL = 26.0


@dataclass
class Drawn:
    """A drawn node (`target` None) or link, with its figures and where it is."""

    kind: str  # "node" or "link"
    step: int
    page: str | None  # a node's page, a link's source (None: the other pages)
    sessions: int
    dropoff: int = 0
    target: str | None = None
    rect: QRectF = field(default_factory=QRectF)
    path: QPainterPath = field(default_factory=QPainterPath)

    @property
    def label(self) -> str:
        return self.page if self.page is not None else OTHER


def _name(page: str | None) -> str:
    return page if page is not None else OTHER


class SankeyView(QWidget):
    node_clicked = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] | None = None
        self.nodes: list[Drawn] = []
        self.links: list[Drawn] = []
        self.hover_text = ""
        self.message = "No journey yet."
        self._scale = 0.0
        self._out_used: dict[tuple[int, str | None], float] = {}
        self.setMouseTracking(True)
        self.setMinimumSize(480, 300)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ------------------------------------------------------------------ data
    def set_journeys(self, data: dict[str, Any] | None, message: str = "") -> None:
        self.data = data
        self.message = message or (
            "No session took this journey in this period." if data else "No journey yet."
        )
        self.hover_text = ""
        self._layout()
        self.update()

    @property
    def right_aligned(self) -> bool:
        return bool(self.data and self.data.get("mode") == "end")

    def _layout(self) -> None:
        self.nodes, self.links = [], []
        data = self.data
        if not data or not data.get("sessions"):
            return
        columns = data["columns"]
        n = len(columns)
        width, height = float(self.width()), float(self.height())
        label_room = min(220.0, width * 0.22)
        inner_w = max(width - 2 * MARGIN - label_room - TAIL, 50.0)
        step_x = inner_w / max(n - 1, 1)
        heights = [sum(nd["sessions"] for nd in c["nodes"]) for c in columns]
        counts = [len(c["nodes"]) for c in columns]
        usable = [height - 2 * MARGIN - GAP * max(k - 1, 0) for k in counts]
        scale = min((u / h) for u, h in zip(usable, heights, strict=True) if h) if any(heights) else 0.0
        scale = max(scale, 0.0)
        by_key: dict[tuple[int, str | None], Drawn] = {}
        for c, column in enumerate(columns):
            if self.right_aligned:
                x = MARGIN + label_room + TAIL + c * step_x - (NODE_WIDTH if c == n - 1 else 0.0)
            else:
                x = MARGIN + c * step_x - (NODE_WIDTH if c == n - 1 else 0.0)
            y = MARGIN
            for nd in column["nodes"]:
                h = max(nd["sessions"] * scale, 2.0)
                drawn = Drawn("node", column["step"], nd["page"], nd["sessions"], nd["dropoff"])
                drawn.rect = QRectF(x, y, NODE_WIDTH, h)
                self.nodes.append(drawn)
                by_key[(column["step"], nd["page"])] = drawn
                y += h + GAP
        out_used: dict[tuple[int, str | None], float] = {}
        in_used: dict[tuple[int, str | None], float] = {}
        for link in data["links"]:
            src = by_key.get((link["step"], link["source"]))
            dst = by_key.get((link["step"] + 1, link["target"]))
            if src is None or dst is None:
                continue
            h = link["sessions"] * scale
            sy = src.rect.top() + out_used.get((src.step, src.page), 0.0)
            ty = dst.rect.top() + in_used.get((dst.step, dst.page), 0.0)
            if self.right_aligned:  # entries sit at the top of a node's left side
                ty += dst.dropoff * scale
            out_used[(src.step, src.page)] = out_used.get((src.step, src.page), 0.0) + h
            in_used[(dst.step, dst.page)] = in_used.get((dst.step, dst.page), 0.0) + h
            x0, x1 = src.rect.right(), dst.rect.left()
            mid = (x0 + x1) / 2
            path = QPainterPath(QPointF(x0, sy))
            path.cubicTo(QPointF(mid, sy), QPointF(mid, ty), QPointF(x1, ty))
            path.lineTo(QPointF(x1, ty + h))
            path.cubicTo(QPointF(mid, ty + h), QPointF(mid, sy + h), QPointF(x0, sy + h))
            path.closeSubpath()
            self.links.append(
                Drawn(
                    "link", link["step"], link["source"], link["sessions"], target=link["target"], path=path
                )
            )
        self._scale = scale
        self._out_used = out_used

    # ------------------------------------------------------------------ drawing
    def resizeEvent(self, event: Any) -> None:
        self._layout()
        super().resizeEvent(event)

    def colours(self) -> tuple[QColor, QColor, QColor, QColor, QColor]:
        """(background, text, bars, bands, drop-off) for the current palette."""
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        current, _previous, bar, _spark = series_colours(palette)
        band = QColor(bar)
        band.setAlphaF(0.35)
        dark = is_dark(base)
        drop = QColor("#f87171" if dark else "#dc2626")
        if self.right_aligned:
            drop = QColor("#4ade80" if dark else "#16a34a")
        return base, text, current, band, drop

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base, text, bar, band, drop = self.colours()
        painter.fillRect(self.rect(), base)
        if not self.nodes:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            painter.end()
            return
        painter.setPen(Qt.PenStyle.NoPen)
        for link in self.links:
            painter.setBrush(band)
            painter.drawPath(link.path)
        last_step = max(d.step for d in self.nodes)
        for node in self.nodes:
            painter.setBrush(bar)
            painter.drawRect(node.rect)
            if node.dropoff:
                h = node.dropoff * self._scale
                tail = QPainterPath()
                if self.right_aligned:
                    x, y = node.rect.left(), node.rect.top()
                    tail.moveTo(x, y)
                    tail.lineTo(x - TAIL, y - 2)
                    tail.lineTo(x - TAIL, y + max(h - 2, 1))
                    tail.lineTo(x, y + h)
                else:
                    x = node.rect.right()
                    y = node.rect.top() + self._out_used.get((node.step, node.page), 0.0)
                    tail.moveTo(x, y)
                    tail.lineTo(x + TAIL, y + 2)
                    tail.lineTo(x + TAIL, y + max(h + 2, 3))
                    tail.lineTo(x, y + h)
                tail.closeSubpath()
                painter.setBrush(drop)
                painter.drawPath(tail)
        painter.setPen(text)
        metrics = painter.fontMetrics()
        for node in self.nodes:
            label = f"{node.label}  {node.sessions:,}"
            if node.rect.height() < metrics.height() * 0.6 and node.sessions * 20 < (self.data or {}).get(
                "sessions", 0
            ):
                continue  # too thin to label: the hover shows it
            left_side = node.step == last_step and not self.right_aligned
            if left_side:
                box = QRectF(node.rect.left() - 6 - 200, node.rect.center().y() - 10, 200, 20)
                align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            else:
                box = QRectF(
                    node.rect.right() + 6 + (TAIL if node.dropoff and not self.right_aligned else 0),
                    node.rect.center().y() - 10,
                    200,
                    20,
                )
                align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            elided = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, int(box.width()))
            painter.drawText(box, align, elided)
        painter.end()

    # ------------------------------------------------------------------ hover and click
    def item_at(self, point: QPointF) -> Drawn | None:
        for node in self.nodes:
            if node.rect.adjusted(-3, -1, 3, 1).contains(point):
                return node
        for link in reversed(self.links):
            if link.path.contains(point):
                return link
        return None

    def describe(self, item: Drawn) -> str:
        if item.kind == "link":
            return f"{_name(item.page)} → {_name(item.target)}: {item.sessions:,} sessions (step {item.step} to {item.step + 1})"
        total = (self.data or {}).get("sessions", 0)
        share = f" ({item.sessions * 100.0 / total:.1f}% of {total:,})" if total else ""
        text = f"{item.label}, step {item.step}: {item.sessions:,} sessions{share}"
        if item.dropoff:
            what = "entered the site here" if self.right_aligned else "left the site here"
            text += f"; {item.dropoff:,} {what}"
        return text

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        item = self.item_at(event.position())
        self.hover_text = self.describe(item) if item is not None else ""
        if self.hover_text:
            QToolTip.showText(event.globalPosition().toPoint(), self.hover_text, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        item = self.item_at(event.position())
        if (
            event.button() == Qt.MouseButton.LeftButton
            and item is not None
            and item.kind == "node"
            and item.page is not None
        ):
            self.node_clicked.emit(item.page)
        super().mousePressEvent(event)

    def changeEvent(self, event: Any) -> None:
        self.update()  # a palette change (dark mode switched on or off) repaints with the new colours
        super().changeEvent(event)
