"""Offline: the API stopped -> a freshly started dashboard draws every chart from the cache, marked
"as of <time>"; the API back -> refreshed with new data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixel.app.client import ApiClient, ReportCache, ReportSource
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.widgets import format_value
from pixel.app.desktop.workers import Runner
from pixel.server import demo
from tests.desktop.conftest import LiveApi, demo_api, save_screenshot
from tests.desktop.test_dashboard import api_get, settle


@pytest.fixture(scope="module")
def offline_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """This test stops its API and sends it more events: its own, not the shared `live_api`."""
    with demo_api(tmp_path_factory.mktemp("offline-api")) as api:
        yield api


def open_page(qtbot, api: LiveApi, cache_path: Path) -> DashboardPage:
    source = ReportSource(
        ApiClient(api.url, api.username, api.password, timeout=3),
        ReportCache(cache_path),
        "home",
    )
    page = DashboardPage(Runner(), source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1400, 1100)
    page.show()
    return page


def close_page(page: DashboardPage) -> None:
    page.runner.shutdown()
    page.source.client.close()
    page.source.cache.close()


def test_offline_cached_charts_as_of_then_refreshed(qtbot, offline_api: LiveApi, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite3"
    online = open_page(qtbot, offline_api, cache)
    online.load_sites()
    settle(qtbot, online)
    plotted = list(online.chart.current.getData()[1])
    tiles = {m: t.value.text() for m, t in online.tiles.tiles.items()}
    bars = [list(b.chart.values) for b in online.boxes]
    as_of = online.parts["summary"].as_of
    close_page(online)

    server = offline_api.server
    server.stop()
    try:
        offline = open_page(qtbot, offline_api, cache)
        offline.load_sites()
        # drawn from the cache at once, before any worker could answer
        assert list(offline.chart.current.getData()[1]) == plotted
        assert {m: t.value.text() for m, t in offline.tiles.tiles.items()} == tiles
        assert [list(b.chart.values) for b in offline.boxes] == bars
        qtbot.waitUntil(lambda: offline.runner.busy == 0, timeout=30_000)
        # the status names the oldest cached view (parts cached a second apart differ in their "as of")
        oldest = min((p for p in offline.parts.values() if not p.live), key=lambda p: p.as_of)
        assert offline.status.text() == f"Offline — {oldest.as_of_text()}"
        assert offline.parts["summary"].as_of == as_of and not offline.parts["summary"].live
        assert "did not answer" in offline.status.toolTip()
        assert list(offline.chart.current.getData()[1]) == plotted  # still drawn after the failed refresh
        save_screenshot(offline, "dashboard-offline")
        # a view never fetched says so instead of showing nothing
        offline.boxes[1].tabs.setCurrentIndex(2)
        qtbot.waitUntil(lambda: offline.runner.busy == 0, timeout=30_000)
        assert offline.boxes[1].note.text() == "Offline, and nothing cached for this view yet."
    finally:
        server.start()
    shop = offline_api.sites["shop.example"]
    before = api_get(offline_api, shop, "summary", period="30d")["metrics"]["visitors"]["value"]
    sent = demo.send(server.collector, events=400, days=1, seed=99)
    server.wait_shipped(sent, timeout=120)
    # The API's report cache keeps a changed day's build for a wait after it was made (`_recent` in
    # server/api/query/report_cache.py), each day its own: the 400 events span two days, and one day may show
    # them while the other still waits (after the restart today is built at once, yesterday's build is seconds
    # old). So the refreshed tile is checked against the API's answer read just before and just after the
    # refresh, equal: the figures only grow once every event is shipped, so the tile read between must be it.
    deadline = time.monotonic() + 120
    while True:
        seen = api_get(offline_api, shop, "summary", period="30d")["metrics"]["visitors"]["value"]
        offline.refresh()
        settle(qtbot, offline)
        shown = offline.tiles.tiles["visitors"].value.text()
        if (
            before
            < seen
            == api_get(offline_api, shop, "summary", period="30d")["metrics"]["visitors"]["value"]
        ):
            break
        assert time.monotonic() < deadline, f"the API's figure: {before} before the events, {seen} now"
        time.sleep(1)
    assert shown == format_value("visitors", seen)
    assert offline.parts["summary"].live and offline.parts["summary"].as_of > as_of
    close_page(offline)
