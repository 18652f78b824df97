"""The tracker's compact wire format (one-letter keys) through a real `pixel serve`, column by column.

The short keys are aliases of the long ones (bench/README.md, "Wire format"): both formats are stored the same,
in one batch too, a long key present wins, and enrichment sees the device fields of a compact event.
"""

from __future__ import annotations

import httpx
import orjson

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA, "Accept-Language": "de-DE,de;q=0.9"}
URL = "https://shop.example/cart/checkout?step=2&utm_source=mail"

COMPACT = {
    "i": "lq5x0k2a9f3b7c1d",
    "n": "purchase",
    "t": 1764260000123,
    "h": "Shop.Example",
    "v": "3k9x2m1qz",
    "s": "lq5x0a8b1c2d3e4f",
    "u": "cust-42",
    "p": {"u": URL, "t": "Checkout", "r": "https://www.google.com/"},
    "d": {"s": "1920x1080", "l": "de-DE", "z": "Europe/Berlin", "r": 2, "w": False},
    "e": 5400,
    "c": 75,
    "a": {"plan": "pro", "amount": 49, "trial": True, "ratio": 0.5},
}
LONG = {
    "event_id": "long-0001",
    "event_name": "signup",
    "ts": 1764260000456,
    "site": "shop.example",
    "visitor_id": "3k9x2m1qz",
    "session_id": "lq5x0a8b1c2d3e4f",
    "page": {"url": URL, "title": "Checkout", "referrer": ""},
    "device": {"screen": "1920x1080", "lang": "de-DE", "tz": "Europe/Berlin", "dpr": 2},
    "params": {"plan": "free"},
}
COLUMNS = (
    "timestamp, site, event_id, event_name, visitor_id, session_id, user_id, url, host, path, query, title, "
    "referrer, screen, language, timezone, engaged_ms, scroll_depth, props, is_bot"
)


def post(server, body) -> None:
    r = httpx.post(f"{server.collector}/track", content=orjson.dumps(body), headers=HEADERS)
    assert r.status_code == 204


def test_compact_and_long_events_are_stored_alike(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_max_event_age_days="36500")
    post(server, [COMPACT, LONG])
    server.wait_shipped(2)
    with server.open_store() as store:
        rows = store.query(f"SELECT {COLUMNS} FROM events FINAL ORDER BY timestamp").dicts()
    assert rows == [
        {
            "timestamp": "2025-11-27 16:13:20.123",
            "site": "shop.example",
            "event_id": "lq5x0k2a9f3b7c1d",
            "event_name": "purchase",
            "visitor_id": "3k9x2m1qz",
            "session_id": "lq5x0a8b1c2d3e4f",
            "user_id": "cust-42",
            "url": URL,
            "host": "shop.example",
            "path": "/cart/checkout",
            "query": "step=2&utm_source=mail",
            "title": "Checkout",
            "referrer": "https://www.google.com/",
            "screen": "1920x1080",
            "language": "de-DE",
            "timezone": "Europe/Berlin",
            "engaged_ms": 5400,
            "scroll_depth": 75,
            "props": {"plan": "pro", "amount": "49", "trial": "true", "ratio": "0.5"},
            "is_bot": 0,
        },
        {
            "timestamp": "2025-11-27 16:13:20.456",
            "site": "shop.example",
            "event_id": "long-0001",
            "event_name": "signup",
            "visitor_id": "3k9x2m1qz",
            "session_id": "lq5x0a8b1c2d3e4f",
            "user_id": "",
            "url": URL,
            "host": "shop.example",
            "path": "/cart/checkout",
            "query": "step=2&utm_source=mail",
            "title": "Checkout",
            "referrer": "",
            "screen": "1920x1080",
            "language": "de-DE",
            "timezone": "Europe/Berlin",
            "engaged_ms": 0,
            "scroll_depth": 0,
            "props": {"plan": "free"},
            "is_bot": 0,
        },
    ]


def test_compact_device_reaches_enrichment_and_the_long_key_wins(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_max_event_age_days="36500")
    # navigator.webdriver as d.w: the bot detector reads the expanded device
    automated = {**COMPACT, "i": "auto-1", "d": {**COMPACT["d"], "w": True}}
    both = {
        **COMPACT,
        "i": "both-1",
        "event_name": "from-long-key",
        "c": 250,
        "p": {"u": URL, "title": "Long title"},
    }
    no_name = {k: v for k, v in COMPACT.items() if k != "n"}  # no event name in either form: a dead letter
    post(server, [automated, both, no_name])
    shipped = server.wait_shipped(3)
    assert shipped["pixel_shipper_events_dead_total"] == 1
    with server.open_store() as store:
        rows = store.query(
            "SELECT event_id, event_name, is_bot, title, scroll_depth FROM events FINAL ORDER BY event_id"
        ).rows
        dead = store.query("SELECT reason FROM dead_letters").rows
    assert rows == [
        ["auto-1", "purchase", 1, "Checkout", 75],
        ["both-1", "from-long-key", 0, "Long title", 100],
    ]
    assert dead == [["event_name is missing or not a non-empty string"]]
