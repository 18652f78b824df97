"""The consent-free default build (pixel.js) in Chromium: it touches no device-signal API and stores nothing but
the outbox; SPA pageviews and scroll depth with a History API router; the 404 flag."""

from __future__ import annotations

import json
import time

import pytest

from tests.tracker.conftest import page_html, snippet

# Counts every call of the canvas, WebGL, audio and hardware APIs a fingerprint reads, and every access to
# the storage APIs, before any script of the page runs.
SPY = """
window.__calls = [];
const spy = (obj, name, label) => {
  const d = Object.getOwnPropertyDescriptor(obj, name);
  if (!d) return;
  if (d.get) Object.defineProperty(obj, name, {...d, get() { __calls.push(label); return d.get.call(this); }});
  else if (typeof d.value == 'function')
    Object.defineProperty(obj, name, {...d, value: function (...a) { __calls.push(label); return d.value.apply(this, a); }});
};
spy(HTMLCanvasElement.prototype, 'getContext', 'canvas.getContext');
spy(HTMLCanvasElement.prototype, 'toDataURL', 'canvas.toDataURL');
spy(CanvasRenderingContext2D.prototype, 'fillText', 'canvas.fillText');
spy(WebGLRenderingContext.prototype, 'getParameter', 'webgl.getParameter');
spy(WebGLRenderingContext.prototype, 'getExtension', 'webgl.getExtension');
for (const C of ['OfflineAudioContext', 'AudioContext']) {
  const Orig = window[C];
  window[C] = function (...a) { __calls.push(C); return new Orig(...a); };
}
spy(Navigator.prototype, 'hardwareConcurrency', 'hardwareConcurrency');
spy(Navigator.prototype, 'deviceMemory', 'deviceMemory');
spy(Navigator.prototype, 'platform', 'platform');
spy(Screen.prototype, 'colorDepth', 'colorDepth');
spy(window, 'devicePixelRatio', 'devicePixelRatio');
spy(window, 'localStorage', 'localStorage');
spy(window, 'sessionStorage', 'sessionStorage');
spy(window, 'indexedDB', 'indexedDB');
spy(Document.prototype, 'cookie', 'cookie');
"""

DEVICE_APIS = {
    "canvas.getContext",
    "canvas.toDataURL",
    "canvas.fillText",
    "webgl.getParameter",
    "webgl.getExtension",
    "OfflineAudioContext",
    "AudioContext",
    "hardwareConcurrency",
    "deviceMemory",
    "platform",
    "colorDepth",
    "devicePixelRatio",
}


@pytest.fixture
def spied(browser):
    ctx = browser.new_context()
    ctx.add_init_script(SPY)
    yield ctx.new_page()
    ctx.close()


def load(
    page, pages, collector, commands=(), body="", path="/", src="/pixel.js", attrs="", title="Test page"
):
    cmds = [["config", "baseUrl", collector.url], *commands]
    pages.pages[path.split("?")[0]] = page_html(snippet(cmds, src, attrs), body, title=title)
    page.goto(pages.url + path)


def use_every_feature(page, collector):
    """Every automatic event of the default build, and the ones the page asks for."""
    collector.wait_count("pageview", 1)
    page.evaluate("_pixel.push(['setUserId', 'u-1']); _pixel.push(['track', 'buy', {plan: 'pro'}])")
    page.evaluate("document.addEventListener('click', e => e.target.closest('a') && e.preventDefault())")
    page.click("#out")
    page.click("#pdf")
    page.click("button")
    page.evaluate("scrollTo(0, 800)")
    page.evaluate("history.pushState({}, '', '/next')")
    collector.wait_count("pageview", 2)
    collector.wait_count("form_submit", 1)


BODY = (
    '<div style="height:3000px"><a id=out href="https://other.example/">o</a><a id=pdf href="/a.pdf">p</a>'
    '<form onsubmit="event.preventDefault()"><input name=q><button>go</button></form></div>'
)


def test_default_build_touches_no_device_signal_api_and_stores_only_the_outbox(spied, pages, collector):
    load(spied, pages, collector, body=BODY)
    use_every_feature(spied, collector)
    calls = spied.evaluate("__calls")
    assert DEVICE_APIS.isdisjoint(calls), calls
    # storage: localStorage only (the outbox), no cookie, no sessionStorage, no IndexedDB
    assert set(calls) == {"localStorage"}
    assert spied.evaluate("Object.keys(localStorage)") == ["pixel_q"]
    assert spied.evaluate("document.cookie") == "" and spied.context.cookies() == []
    # the outbox holds pending events only: after delivery, nothing
    assert json.loads(spied.evaluate("localStorage.pixel_q")) == []
    sent = collector.raw_events()
    assert all("v" not in e and "s" not in e for e in sent)
    assert {e["n"] for e in sent} >= {"pageview", "buy", "outbound", "download", "form_submit", "scroll"}


def test_the_extended_build_reads_device_signals_only_after_consent(spied, pages, collector):
    # the spy's positive control: the same page on pixel.ext.js reads the signals once consent is given
    load(spied, pages, collector, body=BODY, src="/pixel.ext.js")
    use_every_feature(spied, collector)
    assert DEVICE_APIS.isdisjoint(spied.evaluate("__calls"))
    spied.evaluate("_pixel.push(['consent', true])")
    calls = set(spied.evaluate("__calls"))
    assert {"canvas.getContext", "canvas.toDataURL", "canvas.fillText", "webgl.getParameter"} <= calls
    assert {"hardwareConcurrency", "deviceMemory", "colorDepth", "devicePixelRatio", "platform"} <= calls


@pytest.mark.parametrize("how", ["config", "attribute"])
def test_storage_off_touches_no_storage_at_all(spied, pages, collector, how):
    if how == "config":
        load(spied, pages, collector, [["config", "storage", False]], body=BODY)
    else:
        load(spied, pages, collector, body=BODY, attrs=' data-storage="off"')
    use_every_feature(spied, collector)
    assert spied.evaluate("__calls") == []
    spied.evaluate("_pixel.push(['track', 'last'])")
    collector.wait_count("last", 1)
    assert spied.evaluate("__calls") == []
    # (the spy counted every read of window.localStorage: the check reads it once)
    assert spied.evaluate("localStorage.length") == 0


def test_storage_off_keeps_the_outbox_in_memory_through_a_failure(page, pages, collector):
    collector.answers = [(503, {"Retry-After": "0.2"})]
    load(page, pages, collector, [["config", "storage", False], ["track", "a"]])
    collector.wait_count("a", 1)
    assert [r.status for r in collector.requests if r.method == "POST"][:2] == [503, 204]
    assert page.evaluate("localStorage.length") == 0


# A plain History API router, as a third-party single-page app has it: a click on a link pushes the URL, then
# draws the view (its height, its title) and scrolls to the top, then saves its state with replaceState; back and
# forward redraw from popstate (the router's listener is registered before the tracker loads).
ROUTER = """
<div id=view></div>
<script>
const VIEWS = {'/spa': ['Home', 600], '/spa/long': ['Long read', 4000], '/spa/short': ['Short', 1200]};
function draw() {
  const [title, h] = VIEWS[location.pathname];
  document.title = title;
  document.getElementById('view').innerHTML =
    `<div style="height:${h}px">${title} <a href="/spa">home</a> <a href="/spa/long">long</a> <a href="/spa/short">short</a></div>`;
}
function go(path) {
  history.pushState({}, '', path);
  draw();
  scrollTo(0, 0);
  history.replaceState({saved: 1}, '', path);
}
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (a && a.pathname.startsWith('/spa')) { e.preventDefault(); go(a.pathname); }
});
addEventListener('popstate', draw);
draw();
</script>
"""


def test_spa_scroll_depth_is_the_depth_of_the_view_left_and_one_pageview_per_navigation(
    page, pages, collector
):
    pages.pages["/spa"] = page_html(snippet([["config", "baseUrl", collector.url]], "/pixel.js"), ROUTER)
    page.goto(pages.url + "/spa")
    collector.wait_count("pageview", 1)
    # Home fits in the window (600 + 16 of body margin < 720): read whole without a scroll event
    page.click("a[href='/spa/long']")
    collector.wait_count("pageview", 2)
    # Long read: scrolled to 1000 of 4016, (1000 + 720) / 4016 = 42.8 %
    page.evaluate("scrollTo(0, 1000)")
    time.sleep(0.2)
    page.click("a[href='/spa/short']")
    collector.wait_count("pageview", 3)
    # Short: to its end, (480 + 720) / 1216 = 98.7 %
    page.evaluate("scrollTo(0, 480)")
    time.sleep(0.2)
    page.go_back()  # popstate: the router redraws Long read at the top
    collector.wait_count("pageview", 4)
    page.goto("about:blank")  # leaving may send an event in flight again: counted by event id
    scrolls = collector.wait_unique("scroll", 4)
    views = collector.unique("pageview")
    base = pages.url
    assert [(v["page"]["url"], v["page"]["title"]) for v in views] == [
        (base + "/spa", "Home"),
        (base + "/spa/long", "Long read"),
        (base + "/spa/short", "Short"),
        (base + "/spa/long", "Long read"),
    ]
    assert [(s["page"]["url"], s["scroll_depth"]) for s in scrolls] == [
        (base + "/spa", 100),
        (base + "/spa/long", 43),
        (base + "/spa/short", 99),
        (base + "/spa/long", 18),  # (0 + 720) / 4016
    ]
    time.sleep(0.3)
    assert len(collector.unique("pageview")) == 4


def test_not_found_flag_from_config_and_from_the_attribute(page, pages, collector):
    load(page, pages, collector, [["config", "notFound", True]], path="/missing")
    collector.wait_count("pageview", 1)
    page.evaluate("history.pushState({}, '', '/found')")  # the flag was used up by the 404's pageview
    collector.wait_count("pageview", 2)
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<main data-not-found></main>');"
        "history.pushState({}, '', '/gone')"
    )
    collector.wait_count("pageview", 3)
    views = [e for e in collector.raw_events() if e["n"] == "pageview"]
    assert [(v["p"]["u"].rsplit("/", 1)[1], v.get("f")) for v in views] == [
        ("missing", 1),
        ("found", None),
        ("gone", 1),
    ]
    assert collector.named("pageview")[0]["not_found"] == 1


def test_not_found_attribute_on_the_script_tag(page, pages, collector):
    load(page, pages, collector, attrs=" data-not-found")
    collector.wait_count("pageview", 1)
    assert collector.raw_events()[0]["f"] == 1


def test_revenue_is_sent_as_parameters(page, pages, collector):
    load(page, pages, collector, [["track", "purchase", {"revenue": 49.9, "currency": "EUR"}]])
    ev = collector.wait_count("purchase", 1)[0]
    assert ev["params"] == {"revenue": 49.9, "currency": "EUR"}
