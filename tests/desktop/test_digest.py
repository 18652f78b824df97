"""Digests (#19): made by the desktop from a real `pixel serve`, rendered by Qt to PDF and PNG; the PDF read
back with poppler (pdftotext for its numbers, compared with the API's own; pdftoppm for a raster that is not
blank), the PNG saved into docs/screenshots/; missed digests made once at the next start, time injected."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtGui import QImage

from pixel.app.client.alerts import DigestData
from pixel.app.client.api import ApiClient
from pixel.app.desktop.digest import (
    STATE_FILE,
    DigestState,
    due,
    file_stem,
    generate_due,
    last_period,
    metric_lines,
)
from tests.desktop.conftest import SCREENSHOTS, LiveApi


def _now_of_the_data() -> datetime:
    """The demo traffic of `live_api` is spread over the 40 days before the fixture ran: the digests are made
    as of that moment's date (noon UTC, so the time of day plays no part)."""
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def test_periods() -> None:
    assert last_period("weekly", date(2024, 3, 20)) == (date(2024, 3, 11), date(2024, 3, 17))
    assert last_period("weekly", date(2024, 3, 18)) == (date(2024, 3, 11), date(2024, 3, 17))
    assert last_period("weekly", date(2024, 3, 17)) == (date(2024, 3, 4), date(2024, 3, 10))
    assert last_period("monthly", date(2024, 3, 1)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert last_period("monthly", date(2025, 1, 15)) == (date(2024, 12, 1), date(2024, 12, 31))
    with pytest.raises(ValueError):
        last_period("daily", date(2024, 1, 1))


def test_due_in_the_sites_zone_and_once(tmp_path: Path) -> None:
    state = DigestState(tmp_path / STATE_FILE)
    sites = [
        {"id": 1, "domain": "ny.example", "timezone": "America/New_York"},
        {"id": 2, "domain": "utc.example"},
    ]
    # Monday 02:00 UTC is still Sunday evening in New York: its week is not over yet.
    now = datetime(2024, 3, 18, 2, 0, tzinfo=UTC)
    got = [(s["id"], kind, first, last) for s, kind, first, last in due(state, sites, ("weekly",), now)]
    assert got == [
        (1, "weekly", date(2024, 3, 4), date(2024, 3, 10)),
        (2, "weekly", date(2024, 3, 11), date(2024, 3, 17)),
    ]
    state.mark(1, "weekly", date(2024, 3, 10))
    state.mark(2, "weekly", date(2024, 3, 17))
    assert due(state, sites, ("weekly",), now) == []
    # A week later (the app was closed in between): only the latest week is made, not every missed one.
    later = [(s["id"], f, last) for s, _, f, last in due(state, sites, ("weekly",), now + timedelta(days=14))]
    assert later == [(1, date(2024, 3, 18), date(2024, 3, 24)), (2, date(2024, 3, 25), date(2024, 3, 31))]


def test_unreadable_state_counts_as_empty(tmp_path: Path) -> None:
    for junk in ("", "not json", "[1, 2]", '"x"'):
        (tmp_path / STATE_FILE).write_text(junk)
        assert DigestState(tmp_path / STATE_FILE).load() == {}


def test_file_name_never_leaves_the_folder() -> None:
    data = DigestData("../../etc/x y", 1, "weekly", date(2024, 3, 11), date(2024, 3, 17), {})
    stem = file_stem(data)
    assert "/" not in stem and not stem.startswith(".")
    assert stem == "_.._etc_x_y-weekly-2024-03-11_2024-03-17"


def test_metric_lines() -> None:
    metrics = {
        "visitors": {"value": 1234, "previous": 1000, "change": 23.4},
        "pageviews": {"value": 5, "previous": 0, "change": None},
        "bounce_rate": {"value": 25.0, "previous": 26.7, "change": -1.7},
    }
    data = DigestData("s", 1, "weekly", date(2024, 3, 11), date(2024, 3, 17), metrics)
    assert metric_lines(data) == [
        "Visitors: 1,234 (+23.4% vs 1,000)",
        "Pageviews: 5 (no previous data)",
        "Bounce rate: 25% (-1.7 points vs 26.7)",
    ]


def _api_numbers(live_api: LiveApi, site_id: int, first: date, last: date) -> dict[str, Any]:
    params = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
    with closing(live_api.http()) as http:
        base = f"/api/sites/{site_id}/reports"
        return {
            "summary": http.get(f"{base}/summary", params={**params, "compare": "previous"}).json()[
                "metrics"
            ],
            "sources": http.get(f"{base}/breakdown/source", params={**params, "limit": 5}).json()["rows"],
            "pages": http.get(f"{base}/breakdown/page", params={**params, "limit": 5}).json()["rows"],
        }


@pytest.mark.parametrize("kind", ["weekly", "monthly"])
def test_digest_pdf_equals_the_api(qapp: Any, live_api: LiveApi, tmp_path: Path, kind: str) -> None:
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    site = next(s for s in client.sites() if s["domain"] == "shop.example")
    now = _now_of_the_data()
    notes: list[tuple[str, str]] = []
    made = generate_due(client, tmp_path / "digests", [site], now, lambda t, m: notes.append((t, m)), (kind,))
    client.close()
    assert len(made) == 1
    pdf = made[0]
    first, last = last_period(kind, now.astimezone(ZoneInfo(site["timezone"])).date())
    assert pdf.name == f"shop.example-{kind}-{first}_{last}.pdf"
    assert pdf.with_suffix(".png").exists()
    assert notes == [(f"shop.example: {kind} digest ready", notes[0][1])]
    assert str(pdf) in notes[0][1]

    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    api = _api_numbers(live_api, site["id"], first, last)
    visitors = api["summary"]["visitors"]
    assert visitors["value"] > 0, "the demo traffic covers the period"
    assert f"{first:%d %b %Y} to {last:%d %b %Y}" in text
    for name, label in (("visitors", "Visitors"), ("pageviews", "Pageviews"), ("sessions", "Sessions")):
        item = api["summary"][name]
        expected = f"{label}: {item['value']:,}"
        if item["change"] is not None:
            expected += f" ({item['change']:+.1f}% vs {item['previous']:,})"
        assert expected in text, (expected, text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for row in api["sources"] + api["pages"]:
        label = row["value"] or "(direct)"
        assert f"{label} {row['visitors']:,} {row['pageviews']:,}" in lines, (row, lines)

    raster = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf), str(raster)], check=True)
    image = QImage(str(raster) + ".png")
    assert (image.width(), image.height()) == (414, 585)  # A4 at 50 dpi, rounded up
    dark = sum(
        1
        for x in range(0, image.width(), 3)
        for y in range(0, image.height(), 3)
        if image.pixelColor(x, y).value() < 128
    )
    assert dark > 200, "the page has text and a chart"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(pdf.with_suffix(".png"), SCREENSHOTS / f"digest-{kind}.png")


def test_missed_digest_made_at_next_start_once(qapp: Any, live_api: LiveApi, tmp_path: Path) -> None:
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    sites = [s for s in client.sites() if s["domain"] in ("shop.example", "docs.example")]
    folder = tmp_path / "digests"
    now = _now_of_the_data()
    notes: list[str] = []
    first_start = generate_due(client, folder, sites, now, lambda t, m: notes.append(t), ("weekly",))
    again = generate_due(
        client, folder, sites, now + timedelta(hours=1), lambda t, m: notes.append(t), ("weekly",)
    )
    next_week = generate_due(
        client, folder, sites, now + timedelta(days=7), lambda t, m: notes.append(t), ("weekly",)
    )
    client.close()
    assert len(first_start) == 2 and again == [] and len(next_week) == 2
    assert sorted(notes) == sorted(
        ["docs.example: weekly digest ready", "shop.example: weekly digest ready"] * 2
    )
    assert {p.name for p in folder.glob("*.pdf")} == {p.name for p in first_start + next_week}
