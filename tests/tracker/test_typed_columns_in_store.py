"""The extended build in Chromium against a real `pixel serve`: a 404 page's pageview, revenue from a `track`
call and from tagging without code, an uncaught error and the page's web vitals land in the store's typed
columns (chDB), not in its custom properties."""

from __future__ import annotations

import time

from tests.tracker.conftest import page_html
from tests.tracker.test_extended_build import VITALS_PAGE, noise_png


def wait_until(fn, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_typed_columns_from_the_extended_build(page, pages, pixel_server):
    server = pixel_server
    pages.files["/hero.png"] = (noise_png(300, 200), "image/png")
    head = (
        "<script>window._pixel=window._pixel||[];"
        "_pixel.push(['track','purchase',{revenue:49.90,currency:'EUR',plan:'pro'}]);"
        "function boom() { throw new Error('boom for jane@example.org'); }</script>"
        f'<script async src="{server.collector}/pixel.ext.js" data-site="shop.example"></script>'
    )
    body = (
        "<div data-not-found></div>"
        '<button id=buy data-pixel-event="purchase" data-pixel-prop-revenue="19.99" '
        'data-pixel-prop-currency="usd">buy</button>' + VITALS_PAGE
    )
    pages.pages["/gone"] = page_html(head, body, title="Not found")
    page.goto(pages.url + "/gone")
    wait_until(lambda: page.evaluate("(localStorage.pixel_q || '[]') == '[]' && !!window._pixel.push"))
    time.sleep(0.8)  # the layout shift is in
    page.click("#slow")
    page.click("#buy")
    page.evaluate("setTimeout(boom); 0")
    time.sleep(0.5)
    page.goto("about:blank")  # leave: web vitals, scroll and engagement by beacon
    server.wait_shipped(7)  # pageview, 2 purchases, error, web_vitals, scroll, engagement
    with server.open_store() as store:
        rows = store.query(
            "SELECT event_name, not_found, toDecimalString(revenue, 4) AS revenue, currency, ttfb_ms, fcp_ms, "
            "lcp_ms, cls, inp_ms, ttfb_rating, fcp_rating, lcp_rating, cls_rating, inp_rating, lcp_element, "
            "inp_target, error_message, error_source, error_line, error_col, error_hash, props "
            "FROM events FINAL ORDER BY event_name, revenue"
        ).dicts()
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["event_name"], []).append(row)
    assert [(r["not_found"], r["props"]) for r in by["pageview"]] == [(1, {})]
    assert [(r["revenue"], r["currency"], r["props"]) for r in by["purchase"]] == [
        ("19.9900", "USD", {}),
        ("49.9000", "EUR", {"plan": "pro"}),
    ]
    (error,) = by["error"]
    assert error["error_message"] == "Uncaught Error: boom for [email]"
    # the test page's host is an address: redacted as every IP literal in an error is
    assert error["error_source"] == pages.url.replace("127.0.0.1", "[ip]") + "/gone"
    assert error["error_line"] > 0 and error["error_col"] > 0
    assert 1 <= len(error["error_hash"]) <= 10 and error["props"] == {}
    (vitals,) = by["web_vitals"]
    assert vitals["props"] == {}
    assert (vitals["lcp_element"], vitals["inp_target"]) == ("img#hero", "button#slow")
    assert vitals["inp_ms"] >= 300 and vitals["inp_rating"] in ("needs-improvement", "poor")
    assert 0 < vitals["ttfb_ms"] <= vitals["fcp_ms"] <= vitals["lcp_ms"] < 10_000
    assert 0 < vitals["cls"] < 1
    for metric, good, poor in (
        ("ttfb", 800, 1800),
        ("fcp", 1800, 3000),
        ("lcp", 2500, 4000),
        ("cls", 0.1, 0.25),
    ):
        value = vitals[f"{metric}_ms" if metric != "cls" else "cls"]
        expected = "good" if value <= good else "needs-improvement" if value <= poor else "poor"
        assert vitals[f"{metric}_rating"] == expected, (metric, value)
    assert all(r["revenue"] is None and r["not_found"] == 0 for r in by["scroll"] + by["engagement"])
