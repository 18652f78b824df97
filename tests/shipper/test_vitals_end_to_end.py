"""Typed columns end to end: events in the compact wire format, as the extended tracker build sends them (a
text/plain JSON array: a 404 pageview, purchases and a refund, its one `web_vitals` event, errors), POSTed to a
real `pixel serve`, come out of its chDB store with the typed columns exactly; an address the page echoes into
an error or a selector is stored in no spelling."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from pixel.server.enrich.privacy import IP_MARK

TS = 1_764_260_000_000  # 2025-11-27 16:13:20 UTC
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA, "Accept-Language": "en"}
DEVICE = {"s": "1920x1080", "l": "en-GB", "z": "Europe/London", "w": False}


def wire(i: str, name: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One event as `tracker/src/track.js` builds it."""
    page = {"u": "https://shop.example/missing", "t": "Not found", "r": ""}
    return {"i": i, "n": name, "t": TS, "h": "shop.example", "p": page, "d": DEVICE, "a": params, **extra}


BATCH = [
    wire("e1", "pageview", {}, f=1),
    wire("e2", "purchase", {"revenue": 49.90, "currency": "EUR", "plan": "pro"}),
    wire("e3", "purchase", {"revenue": "1234.5", "currency": "usd"}),  # a data-pixel-prop-* value: a string
    wire("e4", "refund", {"revenue": -49.90, "currency": "EUR"}),
    wire("e5", "purchase", {"revenue": "49,90", "currency": "EUR"}),  # ambiguous: stays a property
    wire(
        "e6",
        "web_vitals",
        {
            "ttfb": 112,
            "fcp": 1800,
            "lcp": 2501,
            "lcp_el": "img#hero",
            "cls": 0.25,
            "inp": 312,
            "inp_el": "button#slow",
        },
    ),
    wire(
        "e7",
        "error",
        {
            "message": "Uncaught TypeError: x is undefined (mail jane@example.org)",
            "source": "https://shop.example/app.js?v=3&token=s3cret",
            "line": 12,
            "col": 5,
            "hash": "1a2b3c4d5e",
        },
    ),
    wire("e8", "error", {"message": "r", "source": "", "line": 0, "col": 0, "hash": "z9"}),  # a rejection
    wire("e9", "pageview", {}),
]
COLUMNS = (
    "event_id, event_name, not_found, toDecimalString(revenue, 4) AS revenue, currency, ttfb_ms, fcp_ms, "
    "lcp_ms, cls, inp_ms, ttfb_rating, fcp_rating, lcp_rating, cls_rating, inp_rating, lcp_element, "
    "inp_target, error_message, error_source, error_line, error_col, error_hash, props"
)
NONE: dict[str, Any] = {
    "not_found": 0,
    "revenue": None,
    "currency": "",
    "ttfb_ms": None,
    "fcp_ms": None,
    "lcp_ms": None,
    "cls": None,
    "inp_ms": None,
    "ttfb_rating": "",
    "fcp_rating": "",
    "lcp_rating": "",
    "cls_rating": "",
    "inp_rating": "",
    "lcp_element": "",
    "inp_target": "",
    "error_message": "",
    "error_source": "",
    "error_line": 0,
    "error_col": 0,
    "error_hash": "",
    "props": {},
}
EXPECTED = {
    "e1": {"event_name": "pageview", "not_found": 1},
    "e2": {"event_name": "purchase", "revenue": "49.9000", "currency": "EUR", "props": {"plan": "pro"}},
    "e3": {"event_name": "purchase", "revenue": "1234.5000", "currency": "USD"},
    "e4": {"event_name": "refund", "revenue": "-49.9000", "currency": "EUR"},
    "e5": {"event_name": "purchase", "props": {"revenue": "49,90", "currency": "EUR"}},
    "e6": {
        "event_name": "web_vitals",
        "ttfb_ms": 112.0,
        "fcp_ms": 1800.0,
        "lcp_ms": 2501.0,
        "cls": 0.25,
        "inp_ms": 312.0,
        "ttfb_rating": "good",
        "fcp_rating": "good",
        "lcp_rating": "needs-improvement",
        "cls_rating": "needs-improvement",
        "inp_rating": "needs-improvement",
        "lcp_element": "img#hero",
        "inp_target": "button#slow",
    },
    "e7": {
        "event_name": "error",
        "error_message": "Uncaught TypeError: x is undefined (mail [email])",
        "error_source": "https://shop.example/app.js?v=3",
        "error_line": 12,
        "error_col": 5,
        "error_hash": "1a2b3c4d5e",
    },
    "e8": {"event_name": "error", "error_message": "r", "error_hash": "z9"},
    "e9": {"event_name": "pageview"},
}


def test_the_extended_builds_events_land_in_the_typed_columns(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_max_event_age_days="36500")
    r = httpx.post(f"{server.collector}/track", content=orjson.dumps(BATCH), headers=HEADERS)
    assert r.status_code == 204
    server.wait_shipped(len(BATCH))
    with server.open_store() as store:
        rows = store.query(f"SELECT {COLUMNS} FROM events FINAL ORDER BY event_id").dicts()
        assert store.scalar("SELECT count() FROM dead_letters") == 0
        # what reports can do with them now: revenue per currency, net of refunds; vitals by rating
        assert store.query(
            "SELECT currency, toDecimalString(sum(revenue), 4) FROM events FINAL WHERE revenue IS NOT NULL "
            "GROUP BY currency ORDER BY currency"
        ).rows == [["EUR", "0.0000"], ["USD", "1234.5000"]]
    assert {row.pop("event_id"): row for row in rows} == {
        i: {**NONE, **expected} for i, expected in EXPECTED.items()
    }


def test_echoed_addresses_leave_no_trace_in_typed_texts(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_trusted_proxies="127.0.0.1,::1", pixel_max_event_age_days="36500")
    visitors = {
        "203.0.113.7": [
            "203.0.113.7",
            "203-0-113-7",
            "203_0_113_7",
            "203%2E0%2E113%2E7",
            "::ffff:203.0.113.7",
        ],
        "2001:db8:85a3::8a2e:370:7334": [
            "2001:db8:85a3::8a2e:370:7334",
            "2001:DB8:85A3::8A2E:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001-db8-85a3--8a2e-370-7334",
            "2001%3Adb8%3A85a3%3A%3A8a2e%3A370%3A7334",
        ],
    }
    sent = 0
    for v, (ip, spellings) in enumerate(visitors.items()):
        batch = []
        for k, s in enumerate(spellings):
            batch.append(
                wire(
                    f"err-{v}-{k}",
                    "error",
                    {
                        "message": f"blocked {s} (ip-{s}.isp.example)",
                        "source": f"https://cdn.example/{s}/a.js",
                        "hash": s,
                    },
                )
            )
            batch.append(
                wire(
                    f"vit-{v}-{k}",
                    "web_vitals",
                    {"lcp": 1, "lcp_el": f"div#{s}", "inp": 1, "inp_el": f"a.{s}"},
                )
            )
        r = httpx.post(
            f"{server.collector}/track",
            content=orjson.dumps(batch),
            headers={**HEADERS, "X-Forwarded-For": ip},
        )
        assert r.status_code == 204
        sent += len(batch)
    server.wait_shipped(sent)
    with server.open_store() as store:
        rows = store.query(
            "SELECT event_id, error_message, error_source, error_hash, lcp_element, inp_target, props "
            "FROM events FINAL ORDER BY event_id"
        ).dicts()
    assert len(rows) == sent
    for row in rows:
        texts = [
            row["error_message"],
            row["error_source"],
            row["error_hash"],
            row["lcp_element"],
            row["inp_target"],
        ]
        filled = [t for t in texts if t]
        assert len(filled) == (3 if row["event_id"].startswith("err") else 2), row
        assert all(IP_MARK in t for t in filled), row
        folded = " ".join(filled).lower()
        for needle in ("203.0.113", "203-0-113", "203_0_113", "%2e113", "8a2e", "85a3", "2001"):
            assert needle not in folded, (needle, row)
        assert row["props"] == {}
