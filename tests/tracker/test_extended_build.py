"""The extended build (pixel.ext.js) in Chromium: web vitals, uncaught errors, tagging without code, and the
device id only after consent, bound to the site and the month."""

from __future__ import annotations

import random
import re
import struct
import time
import zlib
from datetime import UTC, datetime

from tests.tracker.conftest import page_html, snippet

EXT = "/pixel.ext.js"


def load(page, pages, collector, commands=(), body="", path="/", attrs=""):
    cmds = [["config", "baseUrl", collector.url], *commands]
    pages.pages[path] = page_html(snippet(cmds, EXT, attrs), body)
    page.goto(pages.url + path)


def noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of random pixels (Chromium leaves low-entropy images, a flat colour, out of LCP)."""
    rnd = random.Random(7)
    rows = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# A large image (the LCP element), a layout shift without input, and a click handler that blocks the main
# thread for 300 ms (the INP interaction).
VITALS_PAGE = """
<button id=slow>slow</button>
<img id=hero width=900 height=500 src="/hero.png">
<p>text below</p>
<script>
document.getElementById('slow').addEventListener('click', () => {
  const t = performance.now();
  while (performance.now() - t < 300);
  document.getElementById('slow').textContent = 'done';
});
setTimeout(() => document.body.insertAdjacentHTML('afterbegin', '<div style="height:200px">banner</div>'), 400);
</script>
"""


def test_web_vitals_arrive_once_at_leave(page, pages, collector):
    pages.files["/hero.png"] = (noise_png(300, 200), "image/png")
    load(page, pages, collector, body=VITALS_PAGE)
    collector.wait_count("pageview", 1)
    time.sleep(0.8)  # the shift is in
    page.click("#slow")
    time.sleep(0.3)
    assert collector.named("web_vitals") == []  # not before the page is hidden or left
    page.goto("about:blank")
    v = collector.wait_count("web_vitals", 1)[0]["params"]
    assert set(v) == {"ttfb", "fcp", "lcp", "lcp_el", "cls", "inp", "inp_el"}, v
    assert v["lcp_el"] == "img#hero" and v["inp_el"] == "button#slow"
    assert v["inp"] >= 300
    assert 0 < v["ttfb"] <= v["fcp"] <= v["lcp"] < 10_000
    assert 0 < v["cls"] < 1
    time.sleep(0.3)
    assert len(collector.unique("web_vitals")) == 1  # (a copy in flight when the page was left: one id)


def test_web_vitals_are_sent_at_the_first_hide_only(page, pages, collector):
    pages.files["/hero.png"] = (noise_png(30, 20), "image/png")
    load(page, pages, collector, body=VITALS_PAGE)
    collector.wait_count("pageview", 1)
    hide = "Object.defineProperty(document, 'hidden', {value: %s, configurable: true}); dispatchEvent(new Event('visibilitychange'))"
    page.evaluate(hide % "true")
    collector.wait_count("web_vitals", 1)
    page.evaluate(hide % "false")
    page.evaluate(hide % "true")
    page.goto("about:blank")
    collector.wait_count("scroll", 1)
    assert (
        len(collector.unique("web_vitals")) == 1
    )  # once per page, counted by id (delivery is at least once)


ERRORS_PAGE = """
<script>
function boom() { throw new Error('boom'); }
function nope() { return Promise.reject(new Error('nope')); }
</script>
"""


def test_an_error_and_a_rejection_thrown_50_times_arrive_once_each(page, pages, collector):
    load(page, pages, collector, body=ERRORS_PAGE, path="/err")
    collector.wait_count("pageview", 1)
    page.evaluate("for (let i = 0; i < 50; i++) { setTimeout(boom); nope(); } 0")
    time.sleep(0.5)
    page.evaluate("_pixel.push(['track', 'after'])")
    collector.wait_count("after", 1)
    errors = collector.named("error")
    assert len(errors) == 2
    by = {e["params"]["message"]: e["params"] for e in errors}
    src = pages.url + "/err"
    assert by["Uncaught Error: boom"]["source"] == src and by["Uncaught Error: boom"]["line"] > 0
    assert by["nope"]["source"] == src and by["nope"]["line"] > 0 and by["nope"]["col"] > 0
    assert all(re.fullmatch(r"[0-9a-z]{1,10}", e["hash"]) for e in by.values())
    assert by["Uncaught Error: boom"]["hash"] != by["nope"]["hash"]


def test_at_most_ten_errors_per_page(page, pages, collector):
    load(page, pages, collector, body=ERRORS_PAGE)
    collector.wait_count("pageview", 1)
    page.evaluate("for (let i = 0; i < 15; i++) setTimeout(() => { throw new Error('e' + i) })")
    page.evaluate("for (let i = 0; i < 5; i++) Promise.reject('r' + i); 0")  # a reason without a stack
    time.sleep(0.5)
    page.evaluate("_pixel.push(['track', 'after'])")
    collector.wait_count("after", 1)
    errors = collector.named("error")
    assert [e["params"]["message"] for e in errors] == [f"Uncaught Error: e{i}" for i in range(10)]
    page.reload()  # a new page load: the count starts again
    collector.wait_count("pageview", 2)
    page.evaluate("Promise.reject('r'); 0")
    # The reload may send the outbox again by beacon (at least once, same event ids): count distinct events.
    collector.wait_for(lambda ev: len({e["event_id"] for e in ev if e["event_name"] == "error"}) >= 11)
    e = next(e for e in collector.named("error") if e["params"]["message"] == "r")["params"]
    assert (e["message"], e["source"], e["line"], e["col"]) == ("r", "", 0, 0)
    assert len({e["event_id"] for e in collector.named("error")}) == 11


def test_tagging_without_code(page, pages, collector):
    body = (
        '<button id=b data-pixel-event="signup" data-pixel-prop-plan="pro" data-pixel-prop-seats="3">'
        "<span>Sign up</span></button><p id=plain>plain</p>"
    )
    load(page, pages, collector, body=body)
    collector.wait_count("pageview", 1)
    page.click("#b span")
    page.click("#plain")
    ev = collector.wait_count("signup", 1)[0]
    assert ev["params"] == {"plan": "pro", "seats": "3"}
    time.sleep(0.3)
    assert [e["event_name"] for e in collector.events()] == ["pageview", "signup"]


def test_device_id_only_after_consent_and_forgotten_on_withdrawal(browser, pages, collector):
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        load(page, pages, collector, [["track", "before"]])
        collector.wait_count("before", 1)
        page.evaluate("_pixel.push(['consent', true]); _pixel.push(['track', 'with'])")
        page.evaluate("_pixel.push(['consent', false]); _pixel.push(['track', 'without'])")
        collector.wait_count("without", 1)
        raw = {e["n"]: e for e in collector.raw_events()}
        assert "v" not in raw["pageview"] and "v" not in raw["before"] and "v" not in raw["without"]
        assert "r" not in raw["before"]["d"] and "r" not in raw["without"]["d"]
        vid = raw["with"]["v"]
        assert re.fullmatch(r"[0-9a-z]{1,10}", vid) and raw["with"]["d"]["r"] == 1
        # nothing of it is stored, and no cookie
        assert vid not in page.evaluate("JSON.stringify(localStorage)") and ctx.cookies() == []
        # a fresh profile with consent on the same site this month: the same id; on another site: another
        other = browser.new_context()
        try:
            p2 = other.new_page()
            load(p2, pages, collector, [["consent", True], ["track", "same"]])
            load(p2, pages, collector, [["consent", True], ["config", "site", "b.example"], ["track", "b"]])
            collector.wait_count("b", 1)
        finally:
            other.close()
        raw = {e["n"]: e for e in collector.raw_events()}
        assert raw["same"]["v"] == vid and raw["b"]["v"] != vid
    finally:
        ctx.close()


def test_device_id_changes_with_the_month(browser, pages, collector):
    """Each visit tracks its own event name: the tracker may send an event again when its context closes
    before the answer came (at least once; the event id dedups it), so "the newest event" is not the visit's."""
    ids = []
    for i, day in enumerate(
        (
            datetime(2026, 3, 2, tzinfo=UTC),
            datetime(2026, 3, 30, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
        )
    ):
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.clock.set_fixed_time(day)
            load(page, pages, collector, [["consent", True], ["track", f"m{i}"]])
            ids.append({e["visitor_id"] for e in collector.wait_count(f"m{i}", 1)})
        finally:
            ctx.close()
    assert all(len(one) == 1 for one in ids), ids
    assert ids[0] == ids[1] != ids[2]
