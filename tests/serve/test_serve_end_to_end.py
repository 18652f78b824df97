"""Events POSTed to a real `pixel serve` land in the chDB store, column by column."""

from __future__ import annotations

import base64

import httpx
import orjson

EVENT = {
    "event_name": "pageview",
    "event_id": "6f1c2a9e-1b7d-4c53-9f0e-2d3b1a7c8e90",
    "ts": 1764260000123,
    "site": "Example.com",
    "visitor_id": "v_3k9x2m1q",
    "session_id": "s_8a7b6c5d",
    "user_id": None,
    "page": {
        "url": "https://example.com/blog/how-to-measure?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
        "path": "/blog/how-to-measure",
        "title": "How to measure things",
        "referrer": "https://www.google.com/",
    },
    "device": {
        "screen": "1920x1080",
        "viewport": "1280x720",
        "lang": "en-US",
        "tz": "Europe/Berlin",
        "dpr": 2,
    },
    "engaged_ms": 5400,
    "scroll_depth": 75,
    "params": {"plan": "pro", "amount": 49, "trial": True, "ratio": 0.5},
}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def test_event_is_stored_column_by_column(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_max_event_age_days="36500")
    r = httpx.post(
        f"{server.collector}/track",
        content=orjson.dumps(EVENT),
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA},
    )
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    server.wait_shipped(1)
    with server.open_store() as store:
        row = store.query("SELECT * FROM events FINAL").dicts()
    assert len(row) == 1
    row = row[0]
    assert row["timestamp"] == "2025-11-27 16:13:20.123"
    assert row["site"] == "example.com"
    assert row["event_id"] == "6f1c2a9e-1b7d-4c53-9f0e-2d3b1a7c8e90"
    assert row["event_name"] == "pageview"
    assert row["visitor_id"] == "v_3k9x2m1q"
    assert row["session_id"] == "s_8a7b6c5d"
    assert row["user_id"] == ""
    assert row["url"] == EVENT["page"]["url"]
    assert row["host"] == "example.com"
    assert row["path"] == "/blog/how-to-measure"
    assert row["query"] == "utm_source=newsletter&utm_medium=email&utm_campaign=nov"
    assert row["title"] == "How to measure things"
    assert row["referrer"] == "https://www.google.com/"
    assert row["screen"] == "1920x1080"
    assert row["language"] == "en-US"
    assert row["timezone"] == "Europe/Berlin"
    assert row["engaged_ms"] == 5400
    assert row["scroll_depth"] == 75
    assert row["props"] == {"plan": "pro", "amount": "49", "trial": "true", "ratio": "0.5"}
    assert len(row["ip_hash"]) == 32 and row["ip_hash"] != "127.0.0.1"


def test_batch_get_pixel_and_server_side_ids(pixel_server) -> None:
    server = pixel_server
    batch = [
        {"event_name": "click", "site": "a.example", "page": {"url": "https://a.example/x"}} for _ in range(3)
    ]
    r = httpx.post(f"{server.collector}/track", json=batch)
    assert r.status_code == 204
    encoded = base64.urlsafe_b64encode(
        orjson.dumps({"event_name": "noscript", "page": {"url": "https://b.example/"}})
    )
    r = httpx.get(f"{server.collector}/track", params={"e": encoded.rstrip(b"=").decode()})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content[:6] == b"GIF89a" and len(r.content) == 42  # the classic 1x1 transparent GIF
    server.wait_shipped(4)
    with server.open_store() as store:
        rows = store.query(
            "SELECT site, event_name, path, event_id FROM events FINAL ORDER BY site, event_id"
        ).rows
    assert [r[:3] for r in rows] == [["a.example", "click", "/x"]] * 3 + [["b.example", "noscript", "/"]]
    # ids generated server-side are distinct and stable (derived from the spool position)
    assert len({r[3] for r in rows}) == 4 and all(len(r[3]) == 32 for r in rows)


def test_metrics_count_requests_events_and_dead_letters(pixel_server) -> None:
    server = pixel_server
    good = [{"event_name": "pageview", "page": {"url": "https://m.example/"}}] * 2
    assert httpx.post(f"{server.collector}/track", json=good).status_code == 204
    bad_event = [{"page": {"url": "https://m.example/"}}]  # no event_name: a dead letter, not a lost event
    assert httpx.post(f"{server.collector}/track", json=bad_event).status_code == 204
    assert httpx.post(f"{server.collector}/track", content=b"{nope").status_code == 400
    assert httpx.get(f"{server.collector}/nope").status_code == 404
    shipped = server.wait_shipped(3)
    assert shipped["pixel_shipper_events_inserted_total"] == 2
    assert shipped["pixel_shipper_events_dead_total"] == 1
    assert shipped["pixel_events_today"] == 3 - 1  # the two stored events, received (and so timed) today
    assert shipped['pixel_shipper_visible_seconds_bucket{le="+Inf"}'] == 2
    assert shipped["pixel_shipper_visible_seconds_count"] == 2
    assert shipped['pixel_shipper_visible_seconds_bucket{le="60.0"}'] == 2  # cumulative buckets
    assert 0 < shipped["pixel_shipper_visible_seconds_sum"] < 120
    collector = server.metrics("collector")
    assert collector['pixel_collector_requests_total{code="204"}'] == 2
    assert collector['pixel_collector_requests_total{code="400"}'] == 1
    assert collector['pixel_collector_requests_total{code="404"}'] == 1
    assert collector["pixel_collector_events_total"] == 3
    assert collector["pixel_spool_backlog_bytes"] == 0
    with server.open_store() as store:
        dead = store.query("SELECT reason, payload FROM dead_letters").rows
    assert dead == [
        ["event_name is missing or not a non-empty string", '{"page":{"url":"https://m.example/"}}']
    ]


def test_shipped_segments_are_deleted(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_segment_max_age="0.5")
    assert (
        httpx.post(f"{server.collector}/track", json={"event_name": "x", "site": "s.example"}).status_code
        == 204
    )
    server.wait_shipped(1)
    spool = server.data_dir / "spool"
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        p.suffix == ".seg" or p.stat().st_size > 16 for p in spool.iterdir()
    ):
        time.sleep(0.2)
    leftovers = [(p.name, p.stat().st_size) for p in spool.iterdir()]
    # only empty open segments of live workers (just the format header) may remain
    assert all(name.endswith(".open") and size == 16 for name, size in leftovers), leftovers


def test_do_not_track_and_gpc_are_honoured_for_the_sites_that_ask(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_dnt_sites="private.example")
    send = [
        ("private.example", {"DNT": "1"}),  # honoured: not stored
        ("private.example", {"Sec-GPC": "1"}),  # honoured: not stored
        ("private.example", {}),  # no signal: stored
        ("open.example", {"DNT": "1", "Sec-GPC": "1"}),  # this site does not honour them: stored
    ]
    for site, headers in send:
        event = {"event_name": "pageview", "site": site, "page": {"url": f"https://{site}/"}}
        assert httpx.post(f"{server.collector}/track", json=event, headers=headers).status_code == 204
    shipped = server.wait_shipped(4)
    assert shipped["pixel_shipper_events_dropped_total"] == 2
    assert shipped["pixel_shipper_events_inserted_total"] == 2
    with server.open_store() as store:
        rows = store.query("SELECT site, count() FROM events FINAL GROUP BY site ORDER BY site").rows
    assert rows == [["open.example", 1], ["private.example", 1]]
