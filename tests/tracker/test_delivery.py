"""Delivery never loses an event: outbox in localStorage, backoff with Retry-After, 4xx dropped, cap reported."""

from __future__ import annotations

import json
import time

from tests.tracker.conftest import page_html, snippet
from tests.tracker.servers import RecordingCollector, long_keys


def outbox(page) -> list[dict]:
    """The localStorage outbox, with the long keys."""
    return [long_keys(e) for e in json.loads(page.evaluate("localStorage.pixel_q || '[]'"))]


def wait_until(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_collector_down_events_wait_in_localstorage_then_all_delivered_once(page, pages):
    down = RecordingCollector().start()
    port = down.port
    down.stop()  # nothing listens there now
    pages.pages["/"] = page_html(
        snippet([["config", "baseUrl", f"http://127.0.0.1:{port}"], ["track", "a", {"i": 1}]], "/pixel.js")
    )
    page.goto(pages.url + "/")
    page.evaluate("_pixel.push(['track', 'b'])")
    wait_until(lambda: len(outbox(page)) == 3)
    page.reload()  # leaves while the collector is down: nothing is thrown away
    wait_until(lambda: len(outbox(page)) >= 6)
    kept = {e["event_id"] for e in outbox(page)}
    up = RecordingCollector(port=port).start()
    try:
        page.reload()  # the next load flushes the outbox
        up.wait_for(lambda ev: kept <= {e["event_id"] for e in ev}, what="the kept events")
        wait_until(lambda: outbox(page) == [])
        time.sleep(0.5)
        ids = [e["event_id"] for e in up.events()]
        names = sorted(e["event_name"] for e in up.events())
        assert len(ids) == len(set(ids))  # each exactly once
        assert names.count("pageview") == 3 and names.count("a") == 3 and names.count("b") == 1
    finally:
        up.stop()


def test_503_with_retry_after_is_retried_then_delivered(page, pages, collector):
    collector.answers = [(503, {"Retry-After": "1"})]
    pages.pages["/"] = page_html(
        snippet([["config", "baseUrl", collector.url], ["config", "retryDelay", 60000]], "/pixel.js")
    )
    page.goto(pages.url + "/")
    collector.wait_count("pageview", 1, timeout=10)
    posts = [r for r in collector.requests if r.method == "POST"]
    assert [r.status for r in posts] == [503, 204]
    # Retry-After 1 s plus up to 50 % jitter (retryDelay alone would have waited a minute)
    assert posts[1].body[0]["i"] == posts[0].body[0]["i"]  # the same event, as sent
    assert outbox(page) == []


def test_500_and_429_back_off_exponentially_and_keep_the_events(page, pages, collector):
    collector.answers = [(500, {}), (429, {}), (502, {})]
    pages.pages["/"] = page_html(
        snippet([["config", "baseUrl", collector.url], ["config", "retryDelay", 200]], "/pixel.js")
    )
    t0 = time.monotonic()
    page.goto(pages.url + "/")
    collector.wait_count("pageview", 1, timeout=10)
    elapsed = time.monotonic() - t0
    assert [r.status for r in collector.requests] == [500, 429, 502, 204]
    assert elapsed >= 0.2 + 0.4 + 0.8  # 200 ms, 400 ms, 800 ms (each plus jitter)


def test_400_is_dropped_not_retried(page, pages, collector):
    collector.answers = [(400, {})]
    pages.pages["/"] = page_html(snippet([["config", "baseUrl", collector.url]], "/pixel.js"))
    page.goto(pages.url + "/")
    wait_until(lambda: collector.requests)
    page.evaluate("_pixel.push(['track', 'next'])")
    collector.wait_count("next", 1)
    time.sleep(0.5)
    assert [r.status for r in collector.requests] == [400, 204]
    assert collector.named("pageview") == []  # refused for good: never sent again
    assert outbox(page) == []


def test_outbox_cap_drops_the_oldest_and_reports_how_many(page, pages):
    down = RecordingCollector().start()
    port = down.port
    down.stop()
    pages.pages["/"] = page_html(
        snippet(
            [
                ["config", "baseUrl", f"http://127.0.0.1:{port}"],
                ["config", "maxFailedEvents", 5],
                ["config", "pageviewTracking", False],
            ],
            "/pixel.js",
        )
    )
    page.goto(pages.url + "/")
    page.evaluate("for (let i = 0; i < 8; i++) _pixel.push(['track', 'e' + i])")
    wait_until(lambda: [e["event_name"] for e in outbox(page)] == ["e3", "e4", "e5", "e6", "e7"])
    up = RecordingCollector(port=port).start()
    try:
        page.evaluate(
            "dispatchEvent(new Event('online'))"
        )  # the browser's back-online signal flushes at once
        dropped = up.wait_count("pixel_dropped", 1)[0]
        assert dropped["params"] == {"count": 3}
        assert [e["event_name"] for e in up.events()][:5] == ["e3", "e4", "e5", "e6", "e7"]
    finally:
        up.stop()


def test_offline_then_online_flushes(context, pages, collector):
    page = context.new_page()
    pages.pages["/"] = page_html(
        snippet([["config", "baseUrl", collector.url], ["config", "retryDelay", 600000]], "/pixel.js")
    )
    page.goto(pages.url + "/")
    collector.wait_count("pageview", 1)
    context.set_offline(True)
    page.evaluate("_pixel.push(['track', 'while-offline'])")
    wait_until(lambda: [e["event_name"] for e in outbox(page)] == ["while-offline"])
    time.sleep(0.3)
    context.set_offline(False)  # fires `online`: sent now, not after the 10-minute backoff
    collector.wait_count("while-offline", 1, timeout=5)


def test_closing_the_tab_delivers_pending_events_by_beacon(context, pages, collector):
    page = context.new_page()
    pages.pages["/"] = page_html(snippet([["config", "baseUrl", collector.url]], "/pixel.js"))
    page.goto(pages.url + "/")
    collector.wait_count("pageview", 1)
    page.evaluate("_pixel.push(['track', 'last-click'])")  # fired right before the close
    page.close()
    events = collector.wait_for(
        lambda ev: {"last-click", "engagement", "scroll"} <= {e["event_name"] for e in ev}
    )
    clicks = [e for e in events if e["event_name"] == "last-click"]
    # Delivered, at least once: when the close races a keepalive fetch already in flight, the beacon may carry
    # the event again. Every copy has the same event_id, which the store collapses (events FINAL).
    assert len(clicks) >= 1
    assert len({e["event_id"] for e in clicks}) == 1
