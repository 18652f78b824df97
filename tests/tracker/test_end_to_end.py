"""The tracker in Chromium against a real `pixel serve`: what lands in the store (chDB), column by column."""

from __future__ import annotations

import time

from tests.tracker.conftest import page_html


def wait_until(fn, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_every_automatic_and_custom_event_is_stored(page, pages, pixel_server):
    server = pixel_server
    body = (
        '<div style="height:3000px"><a id=out href="https://other.example/">out</a>'
        '<a id=pdf href="/files/a.pdf">pdf</a>'
        '<form id=f action="/done" onsubmit="event.preventDefault()"><input name=q value=secret>'
        "<input type=password name=pw value=hunter2><button>go</button></form></div>"
    )
    head = (
        "<script>window._pixel=window._pixel||[];_pixel.push(['setUserId','cust-42']);"
        "_pixel.push(['track','signup',{plan:'pro',seats:3,trial:true}]);</script>"
        f'<script async src="{server.collector}/pixel.js" data-site="shop.example"></script>'
    )
    pages.pages["/"] = page_html(head, body, title="Shop")
    page.goto(pages.url + "/?utm_source=news")
    page.evaluate("document.addEventListener('click', e => e.target.closest('a') && e.preventDefault())")
    wait_until(lambda: page.evaluate("(localStorage.pixel_q || '[]') == '[]' && !!window._pixel.push"))
    page.click("#out")
    page.click("#pdf")
    page.click("button")
    page.evaluate("scrollTo(0, 3000)")
    time.sleep(0.3)
    page.goto("about:blank")  # leave: engagement + scroll by beacon
    server.wait_shipped(7)
    with server.open_store() as store:
        rows = store.query(
            "SELECT event_name, site, path, query, title, user_id, visitor_id, session_id, props, "
            "engaged_ms, scroll_depth, screen, language, timezone, is_bot, event_id "
            "FROM events FINAL ORDER BY timestamp, event_name"
        ).dicts()
    by = {r["event_name"]: r for r in rows}
    assert sorted(by) == ["download", "engagement", "form_submit", "outbound", "pageview", "scroll", "signup"]
    assert len(rows) == 7
    assert {r["site"] for r in rows} == {"shop.example"}
    assert {r["user_id"] for r in rows} == {"cust-42"}
    assert len({r["visitor_id"] for r in rows}) == 1 and len({r["session_id"] for r in rows}) == 1
    assert by["pageview"]["path"] == "/" and by["pageview"]["query"] == "utm_source=news"
    assert by["pageview"]["title"] == "Shop"
    assert by["pageview"]["screen"] == "1280x720" and by["pageview"]["language"] == "en-US"
    assert by["pageview"]["timezone"] == "UTC"
    assert by["pageview"]["is_bot"] == 1  # Playwright's navigator.webdriver
    assert by["signup"]["props"] == {"plan": "pro", "seats": "3", "trial": "true"}
    assert by["outbound"]["props"] == {"url": "https://other.example/"}
    # the page is on 127.0.0.1, which is also the visitor's IP: the shipper scrubs values holding it
    assert by["download"]["props"] == {"ext": "pdf"}
    assert by["form_submit"]["props"] == {"id": "f", "fields": "q"}
    assert by["scroll"]["scroll_depth"] == 100
    assert by["engagement"]["engaged_ms"] > 0
    assert len({r["event_id"] for r in rows}) == 7


def test_collector_down_then_back_each_event_stored_exactly_once(page, pages, pixel_server):
    server = pixel_server
    server.stop()
    head = (
        "<script>window._pixel=window._pixel||[];_pixel.push(['track','offline-event']);</script>"
        f'<script async src="/pixel.js" data-endpoint="{server.collector}/track"></script>'
    )
    pages.pages["/"] = page_html(head)
    page.goto(pages.url + "/")
    wait_until(lambda: page.evaluate("JSON.parse(localStorage.pixel_q || '[]').length") == 2)
    page.reload()  # leaves with the collector down: kept
    wait_until(lambda: page.evaluate("JSON.parse(localStorage.pixel_q || '[]').length") >= 4)
    server.start()
    page.reload()
    wait_until(lambda: page.evaluate("localStorage.pixel_q") == "[]")
    page.goto("about:blank")
    server.wait_shipped(8)
    with server.open_store() as store:
        rows = store.query(
            "SELECT event_name, count() AS n, uniqExact(event_id) AS ids FROM events FINAL "
            "WHERE event_name IN ('pageview', 'offline-event') GROUP BY event_name ORDER BY event_name"
        ).dicts()
    assert rows == [
        {"event_name": "offline-event", "n": 3, "ids": 3},
        {"event_name": "pageview", "n": 3, "ids": 3},
    ]
