"""Weekly and monthly digests per site, rendered natively by Qt to PDF (QPdfWriter) and PNG, saved to a folder
the owner picks, announced by an OS notification; a digest missed while the app was closed is made at the
next start.

The contract:
- A weekly digest covers the last complete Monday..Sunday, a monthly one the last complete calendar month,
  both in the site's own zone (`last_period`). Its numbers are the API's own (`app/client/alerts.py`: the
  summary compared with the previous period of the same length, top sources and pages, goals, visitors and
  pageviews per day), printed as they come: the PDF's text is what the API said.
- `DigestState` (a small JSON file in the folder) records, per site and kind, the last period made.
  `due` lists the digests whose latest complete period is not made yet; `generate_due` makes them and calls
  `notify(title, message)` once per digest. A period is never made twice, older missed periods are not
  back-filled (only the latest one is useful), and an unreadable state file counts as empty.
- Time is given (`now`, aware): nothing here reads the clock.
- File names are `<site>-<kind>-<first>_<last>.pdf/.png`, the site's characters outside `[A-Za-z0-9.-]` as `_`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen
from PySide6.QtWidgets import QSystemTrayIcon

from pixel.app.client.alerts import DigestData, digest_data
from pixel.app.client.api import ApiClient

KINDS = ("weekly", "monthly")
PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points: the drawing's logical size for both PDF and PNG
PNG_SCALE = 2
STATE_FILE = ".pixel-digests.json"
METRICS = (
    ("visitors", "Visitors"),
    ("pageviews", "Pageviews"),
    ("sessions", "Sessions"),
    ("bounce_rate", "Bounce rate"),
)
Notify = Callable[[str, str], None]


def last_period(kind: str, today: date) -> tuple[date, date]:
    """The last complete week (Monday..Sunday) or calendar month before `today`."""
    if kind == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if kind == "monthly":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"unknown digest kind {kind!r}")


def file_stem(data: DigestData) -> str:
    site = re.sub(r"[^A-Za-z0-9.-]", "_", data.site).strip(".") or "site"
    return f"{site}-{data.kind}-{data.first.isoformat()}_{data.last.isoformat()}"


# -- drawing ----------------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _change(item: dict[str, Any], name: str) -> str:
    change = item.get("change")
    if change is None:
        return "no previous data"
    unit = " points" if name == "bounce_rate" else "%"
    return f"{change:+.1f}{unit} vs {_number(item.get('previous', 0))}"


def metric_lines(data: DigestData) -> list[str]:
    """The summary as printed: `Visitors: 8 (-20.0% vs 10)`."""
    out = []
    for name, label in METRICS:
        item = data.metrics.get(name)
        if item is None:
            continue
        suffix = "%" if name == "bounce_rate" else ""
        out.append(f"{label}: {_number(item['value'])}{suffix} ({_change(item, name)})")
    return out


def paint(p: QPainter, data: DigestData) -> None:
    """The digest on a PAGE_W x PAGE_H canvas."""
    p.fillRect(QRectF(0, 0, PAGE_W, PAGE_H), QColor("white"))
    p.setPen(QColor("#111111"))
    x, y = 48.0, 60.0
    p.setFont(QFont("DejaVu Sans", 18, QFont.Weight.Bold))
    p.drawText(QPointF(x, y), f"{data.site}: {data.kind} digest")
    p.setFont(QFont("DejaVu Sans", 10))
    y += 22
    p.drawText(QPointF(x, y), f"{data.first:%d %b %Y} to {data.last:%d %b %Y}")
    y += 30
    p.setFont(QFont("DejaVu Sans", 11))
    for line in metric_lines(data):
        p.drawText(QPointF(x, y), line)
        y += 18
    y += 12
    y = _chart(p, data, QRectF(x, y, PAGE_W - 2 * x, 140)) + 30
    for title, rows in (("Top sources", data.sources), ("Top pages", data.pages)):
        y = _table(p, title, [(r["value"] or "(direct)", r["visitors"], r["pageviews"]) for r in rows], x, y)
        y += 16
    goal_rows = [(g["name"], g["conversions"], f"{g['conversion_rate']}%") for g in data.goals]
    _table(p, "Goals", goal_rows, x, y, ("goal", "conversions", "rate"))


def _chart(p: QPainter, data: DigestData, box: QRectF) -> float:
    """Pageviews per day as bars, visitors as a line over them; returns the bottom."""
    p.setFont(QFont("DejaVu Sans", 9))
    p.drawText(QPointF(box.left(), box.top() - 4), "Pageviews (bars) and visitors (line) per day")
    p.setPen(QPen(QColor("#cccccc"), 0.5))
    p.drawLine(QPointF(box.left(), box.bottom()), QPointF(box.right(), box.bottom()))
    points = data.points
    if not points:
        return box.bottom()
    top = max(max(int(pt["pageviews"]), int(pt["visitors"])) for pt in points) or 1
    step = box.width() / len(points)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#9ec5fe"))
    for i, pt in enumerate(points):
        h = box.height() * int(pt["pageviews"]) / top
        p.drawRect(QRectF(box.left() + i * step + step * 0.15, box.bottom() - h, step * 0.7, h))
    p.setPen(QPen(QColor("#0b5ed7"), 1.5))
    prev: QPointF | None = None
    for i, pt in enumerate(points):
        here = QPointF(box.left() + (i + 0.5) * step, box.bottom() - box.height() * int(pt["visitors"]) / top)
        if prev is not None:
            p.drawLine(prev, here)
        prev = here
    p.setPen(QColor("#111111"))
    p.setBrush(Qt.BrushStyle.NoBrush)
    return box.bottom()


def _table(
    p: QPainter,
    title: str,
    rows: list[tuple[Any, Any, Any]],
    x: float,
    y: float,
    heads: tuple[str, str, str] = ("", "visitors", "pageviews"),
) -> float:
    p.setFont(QFont("DejaVu Sans", 12, QFont.Weight.Bold))
    p.drawText(QPointF(x, y), title)
    y += 16
    p.setFont(QFont("DejaVu Sans", 9))
    p.drawText(QPointF(x + 330, y), heads[1])
    p.drawText(QPointF(x + 420, y), heads[2])
    y += 14
    if not rows:
        p.drawText(QPointF(x, y), "none in this period")
        return y + 14
    for label, a, b in rows:
        p.drawText(QRectF(x, y - 10, 320, 14), Qt.TextFlag.TextSingleLine, str(label)[:60])
        p.drawText(QPointF(x + 330, y), _number(a))
        p.drawText(QPointF(x + 420, y), _number(b))
        y += 14
    return y


def render_pdf(data: DigestData, path: Path) -> Path:
    writer = QPdfWriter(str(path))
    writer.setResolution(72)
    writer.setPageLayout(
        QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF())
    )
    writer.setTitle(f"{data.site} {data.kind} digest")
    writer.setCreator("Pixel")
    painter = QPainter(writer)
    try:
        paint(painter, data)
    finally:
        painter.end()
    return path


def render_png(data: DigestData, path: Path) -> Path:
    image = QImage(int(PAGE_W * PNG_SCALE), int(PAGE_H * PNG_SCALE), QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.scale(PNG_SCALE, PNG_SCALE)
        paint(painter, data)
    finally:
        painter.end()
    if not image.save(str(path)):  # the format from the .png suffix
        raise OSError(f"could not write {path}")
    return path


# -- schedule ---------------------------------------------------------------------------------------------


@dataclass
class DigestState:
    """What was made: "<site id>:<kind>" -> the last date of the latest period made (ISO)."""

    path: Path

    def load(self) -> dict[str, str]:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}

    def mark(self, site_id: int, kind: str, last: date) -> None:
        doc = self.load()
        doc[f"{site_id}:{kind}"] = last.isoformat()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        tmp.replace(self.path)


def due(
    state: DigestState, sites: list[dict[str, Any]], kinds: tuple[str, ...], now: datetime
) -> list[tuple[dict[str, Any], str, date, date]]:
    """(site, kind, first, last) of each digest whose latest complete period has not been made."""
    made = state.load()
    out = []
    for site in sites:
        today = now.astimezone(ZoneInfo(site.get("timezone") or "UTC")).date()
        for kind in kinds:
            first, last = last_period(kind, today)
            done = made.get(f"{site['id']}:{kind}")
            if done is None or done < last.isoformat():
                out.append((site, kind, first, last))
    return out


def generate_due(
    client: ApiClient,
    folder: Path,
    sites: list[dict[str, Any]],
    now: datetime,
    notify: Notify,
    kinds: tuple[str, ...] = KINDS,
) -> list[Path]:
    """Make every due digest into `folder` (PDF and PNG); the PDFs' paths."""
    folder.mkdir(parents=True, exist_ok=True)
    state = DigestState(folder / STATE_FILE)
    made: list[Path] = []
    for site, kind, first, last in due(state, sites, kinds, now):
        data = digest_data(client, site, kind, first, last)
        stem = file_stem(data)
        pdf = render_pdf(data, folder / f"{stem}.pdf")
        render_png(data, folder / f"{stem}.png")
        state.mark(int(site["id"]), kind, last)
        made.append(pdf)
        visitors = data.metrics.get("visitors", {}).get("value", 0)
        notify(f"{data.site}: {kind} digest ready", f"{_number(visitors)} visitors, {first} to {last}. {pdf}")
    return made


def tray_notify(tray: QSystemTrayIcon) -> Notify:
    """An OS notification through the app's tray icon."""

    def notify(title: str, message: str) -> None:
        tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, 10_000)

    return notify
