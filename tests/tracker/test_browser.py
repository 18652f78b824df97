"""The tracker in Debian's Chromium against a recording collector: API, automatic events, identity, delivery."""

from __future__ import annotations

import time

import pytest

from tests.tracker.conftest import page_html, snippet


def load(page, pages, collector, commands=(), body="", path="/", src="/pixel.js", attrs=""):
    cmds = [["config", "baseUrl", collector.url], *commands] if collector else list(commands)
    pages.pages[path.split("?")[0].split("#")[0]] = page_html(snippet(cmds, src, attrs), body)
    page.goto(pages.url + path)


def leave(page):
    page.goto("about:blank")


def test_snippet_gives_exactly_one_pageview_with_every_field(page, pages, collector):
    # the original's README snippet tracked its own pageview and got a second, automatic one
    load(page, pages, collector, [["track", "pageview"]], path="/docs/start?x=1#top")
    ev = collector.wait_count("pageview", 1)[0]
    time.sleep(0.3)
    assert len(collector.named("pageview")) == 1
    assert ev["page"] == {"url": pages.url + "/docs/start?x=1#top", "title": "Test page", "referrer": ""}
    # the default build reads no pixel ratio (a device signal) and sends no visitor or session id: the server
    # computes both (cookieless, daily salt)
    assert ev["device"] == {"screen": "1280x720", "lang": "en-US", "tz": "UTC", "webdriver": True}
    assert abs(ev["ts"] - time.time() * 1000) < 10_000
    assert len(ev["event_id"]) >= 16
    assert "visitor_id" not in ev and "session_id" not in ev
    assert ev["params"] == {} and ev["site"] == "" and "user_id" not in ev


def test_the_wire_format_is_the_compact_one(page, pages, collector):
    # one-letter keys (bench/README.md, "Wire format"); the shipper reads them as aliases of the long ones
    load(
        page,
        pages,
        collector,
        [["setUserId", "u-7"], ["track", "buy", {"plan": "pro"}]],
        path="/p?q=1",
        body='<div style="height:3000px">tall</div>',
    )
    collector.wait_count("buy", 1)
    page.evaluate("scrollTo(0, 500)")
    time.sleep(0.3)
    leave(page)
    collector.wait_count("scroll", 1)
    raw = {e["n"]: e for e in collector.raw_events()}
    assert set(raw) == {"pageview", "buy", "engagement", "scroll"}
    for e in raw.values():
        assert set(e) >= {"i", "n", "t", "h", "u", "p", "d", "a"}
        assert set(e["p"]) == {"u", "t", "r"} and set(e["d"]) == {"s", "l", "z", "w"}
        assert e["u"] == "u-7" and e["h"] == "" and e["p"]["u"] == pages.url + "/p?q=1"
    assert set(raw["buy"]) == {"i", "n", "t", "h", "u", "p", "d", "a"}
    assert raw["buy"]["a"] == {"plan": "pro"} and raw["pageview"]["a"] == {}
    assert raw["buy"]["d"] == {"s": "1280x720", "l": "en-US", "z": "UTC", "w": True}
    assert set(raw["scroll"]) - set(raw["buy"]) == {"c"} and set(raw["engagement"]) - set(raw["buy"]) == {"e"}
    # (500 + 720) / (3000 + 16) = 40.5 %
    assert raw["scroll"]["c"] == 40 and raw["engagement"]["e"] > 0
    assert len({e["i"] for e in raw.values()}) == 4


def test_automatic_pageview_can_be_switched_off(page, pages, collector):
    load(
        page, pages, collector, [["config", "pageviewTracking", False], ["track", "signup", {"plan": "pro"}]]
    )
    collector.wait_count("signup", 1)
    time.sleep(0.3)
    assert collector.named("pageview") == []


def test_queue_before_load_runs_in_order_and_later_pushes_at_once(page, pages, collector):
    # config pushed after a track still applies (the original read some keys once, mid-queue)
    load(
        page,
        pages,
        collector,
        [["track", "a"], ["setUserId", "u-1"], ["track", "b"], ["config", "site", "shop.example"]],
    )
    collector.wait_count("b", 1)
    page.evaluate("_pixel.push(['track', 'c', {n: 1}])")
    c = collector.wait_count("c", 1)[0]
    names = [e["event_name"] for e in collector.events()]
    assert names.index("a") < names.index("b") < names.index("c")
    a, b = collector.named("a")[0], collector.named("b")[0]
    assert "user_id" not in a and b["user_id"] == "u-1" and c["user_id"] == "u-1"
    assert {e["site"] for e in collector.events()} == {"shop.example"}
    assert c["params"] == {"n": 1}
    # one request for the events fired together at load
    assert len([r for r in collector.requests if r.method == "POST"]) <= 3


def test_custom_parameters_are_flat_and_size_limited(page, pages, collector):
    load(page, pages, collector)
    collector.wait_count("pageview", 1)
    page.evaluate("""_pixel.push(['track', 'buy', {s: 'x'.repeat(600), n: 3.5, b: false, o: {a: 1}, l: [1],
        f: () => 1, inf: Infinity, u: undefined, z: null}])""")
    ev = collector.wait_count("buy", 1)[0]
    assert ev["params"] == {"s": "x" * 500, "n": 3.5, "b": False}
    many = ",".join(f"k{i}: {i}" for i in range(30))
    page.evaluate(f"_pixel.push(['track', 'many', {{{many}}}])")
    ev = collector.wait_count("many", 1)[0]
    assert ev["params"] == {f"k{i}": i for i in range(25)}
    # the event-name rule is the debug build's (test_debug_build_refuses_bad_names_and_config); the others leave
    # a bad name to the shipper's dead letters
    page.evaluate("_pixel.push(['track', 42]); _pixel.push(['track', 'ok'])")
    collector.wait_count("ok", 1)
    assert [e["event_name"] for e in collector.events()] == ["pageview", "buy", "many", 42, "ok"]


def test_set_user_id_refuses_emails_and_warns_only_in_debug(page, pages, collector):
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    load(page, pages, collector, [["setUserId", "ann@example.com"], ["track", "one"]], src="/pixel.debug.js")
    assert "user_id" not in collector.wait_count("one", 1)[0]
    assert warnings == []
    page.evaluate(
        "_pixel.push(['debug', true]); _pixel.push(['setUserId', 'bob@mail.example.org']);"
        "_pixel.push(['setUserId', 1234]); _pixel.push(['track', 'two'])"
    )
    assert collector.wait_count("two", 1)[0]["user_id"] == "1234"
    assert any("bad user id" in w and "bob@mail.example.org" in w for w in warnings)
    page.evaluate("_pixel.push(['setUserId', null]); _pixel.push(['track', 'three'])")
    assert collector.wait_count("three", 1)[0].get("user_id") is None


def test_invalid_config_is_ignored_with_a_debug_warning(page, pages, collector):
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    load(
        page,
        pages,
        collector,
        [
            ["debug", True],
            ["config", "endpoint", "track"],
            ["config", "scrollTracking", "no"],
            ["config", "nope", 1],
            ["config", "retryDelay", -5],
            ["bogus"],
            ["track", "x" * 65],
            ["track", 42],
        ],
        src="/pixel.debug.js",
    )
    collector.wait_count("pageview", 1)
    assert collector.requests[-1].path == "/track"
    assert sum("bad config" in w for w in warnings) == 4
    assert any("bad command" in w for w in warnings)
    assert sum("bad event" in w for w in warnings) == 2
    time.sleep(0.3)
    assert [e["event_name"] for e in collector.events()] == ["pageview"]


def test_first_party_proxy_path(page, pages):
    # no baseUrl: events go next to the script, here a first-party proxy path
    load(page, pages, None, src="/telemetry/pixel.js")
    deadline = time.monotonic() + 10
    while not pages.posts and time.monotonic() < deadline:
        time.sleep(0.05)
    path, body = pages.posts[0]
    assert path == "/telemetry/track"
    assert body[0]["n"] == "pageview"


def test_script_tag_data_attributes(page, pages, collector):
    # the snippet the API hands out: data-site and data-endpoint on the script tag
    load(page, pages, None, attrs=f' data-site="blog.example" data-endpoint="{collector.url}/collect"')
    ev = collector.wait_count("pageview", 1)[0]
    assert ev["site"] == "blog.example" and collector.requests[0].path == "/collect"


def test_second_copy_of_the_script_does_nothing(page, pages, collector):
    load(page, pages, collector, body='<script src="/pixel.js"></script>')
    collector.wait_count("pageview", 1)
    time.sleep(0.5)
    assert len(collector.named("pageview")) == 1


def test_spa_navigation_gives_one_pageview_each(page, pages, collector):
    load(page, pages, collector, path="/app")
    collector.wait_count("pageview", 1)
    page.evaluate("history.pushState({}, '', '/app/a')")
    page.evaluate("history.replaceState({}, '', '/app/a')")  # same URL: no pageview
    page.evaluate("history.replaceState({}, '', '/app/b')")
    page.evaluate("location.hash = 'part'")  # hash changes are not pages by default
    collector.wait_count("pageview", 3)
    page.go_back()  # popstate back to /app/b (from the hash)
    page.go_back()  # popstate to /app (replaceState rewrote the /app/a entry into /app/b)
    views = collector.wait_count("pageview", 4)
    time.sleep(0.3)
    views = collector.named("pageview")
    base = pages.url
    assert [v["page"]["url"] for v in views] == [
        base + "/app",
        base + "/app/a",
        base + "/app/b",
        base + "/app",
    ]
    assert [v["page"]["referrer"] for v in views] == ["", base + "/app", base + "/app/a", base + "/app/b"]
    # each page left got its engagement and scroll event, on that page
    assert [e["page"]["url"] for e in collector.named("scroll")] == [
        base + "/app",
        base + "/app/a",
        base + "/app/b",
    ]


def test_hash_changes_are_pages_when_asked(page, pages, collector):
    load(page, pages, collector, [["config", "hashTracking", True]], path="/app")
    collector.wait_count("pageview", 1)
    page.evaluate("location.hash = 'one'")
    page.evaluate("history.pushState({}, '', '#two')")
    views = collector.wait_count("pageview", 3)
    assert [v["page"]["url"].rsplit("/", 1)[1] for v in views] == ["app", "app#one", "app#two"]


def test_scroll_depth_is_one_event_on_leave_by_beacon(page, pages, collector):
    load(page, pages, collector, body='<div style="height:4000px">tall</div>')
    collector.wait_count("pageview", 1)
    for y in (500, 1000, 400):
        page.evaluate(f"scrollTo(0, {y})")
        time.sleep(0.1)
    time.sleep(0.3)
    assert collector.named("scroll") == []  # not a stream of events
    leave(page)
    ev = collector.wait_count("scroll", 1)[0]
    # (1000 + 720) / (4000 + 16 body margin) = 42.8 %
    assert ev["scroll_depth"] == 43
    eng = collector.wait_count("engagement", 1)[0]
    assert 500 < eng["engaged_ms"] < 30_000
    beacon = [r for r in collector.requests if r.method == "POST"][-1]
    assert beacon.headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert not [r for r in collector.requests if r.method == "OPTIONS"]  # never a preflight


def test_outbound_and_download_clicks(page, pages, collector):
    body = (
        '<a id=out href="https://other.example/x?y=1">out</a> <a id=in href="/local">in</a>'
        '<a id=pdf href="/files/Report.PDF?v=2"><span>report</span></a> <a id=mail href="mailto:a@b.c">m</a>'
        '<a id=zip href="https://cdn.example/a.zip">zip</a>'
    )
    load(page, pages, collector, body=body)
    collector.wait_count("pageview", 1)
    page.evaluate("document.addEventListener('click', e => e.preventDefault())")
    for sel in ("#out", "#in", "#pdf span", "#mail", "#zip"):
        page.click(sel)
    collector.wait_count("download", 2)
    assert [e["params"] for e in collector.named("outbound")] == [{"url": "https://other.example/x?y=1"}]
    assert [e["params"] for e in collector.named("download")] == [
        {"url": pages.url + "/files/Report.PDF?v=2", "ext": "PDF"},
        {"url": "https://cdn.example/a.zip", "ext": "zip"},
    ]


def test_click_tracking_switches(page, pages, collector):
    body = '<a id=out href="https://other.example/">out</a><a id=pdf href="/a.pdf">pdf</a><a id=doc href="/a.doc">d</a>'
    load(
        page,
        pages,
        collector,
        [["config", "clickTracking", False], ["config", "downloadExtensions", ["doc"]]],
        body=body,
    )
    collector.wait_count("pageview", 1)
    page.evaluate("document.addEventListener('click', e => e.preventDefault())")
    for sel in ("#out", "#pdf", "#doc"):
        page.click(sel)
    collector.wait_count("download", 1)
    time.sleep(0.3)
    assert [e["params"]["ext"] for e in collector.named("download")] == ["doc"]
    assert collector.named("outbound") == []


def test_form_submit_sends_field_names_never_values(page, pages, collector):
    body = (
        '<form id=signup action="/thanks" onsubmit="event.preventDefault()">'
        '<input name=email value="ann@example.com"><input type=password name=pw value=secret>'
        "<input type=hidden name=csrf value=tok><input type=radio name=plan value=a><input type=radio name=plan>"
        "<textarea name=note>hello</textarea><input value=noname><button type=submit name=go>Go</button></form>"
    )
    load(page, pages, collector, body=body)
    collector.wait_count("pageview", 1)
    page.click("button")
    ev = collector.wait_count("form_submit", 1)[0]
    assert ev["params"] == {"id": "signup", "action": pages.url + "/thanks", "fields": "email,csrf,plan,note"}
    raw = str(collector.requests[-1].body)
    assert "secret" not in raw and "ann@example.com" not in raw and "hello" not in raw


@pytest.mark.parametrize("signal", ["dnt", "gpc"])
def test_dnt_and_gpc_respected_when_configured(browser, pages, collector, signal):
    script = (
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
        if signal == "gpc"
        else "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    )
    ctx = browser.new_context()
    try:
        ctx.add_init_script(script)
        page = ctx.new_page()
        load(page, pages, collector, [["config", "respectDnt", True], ["track", "x"]])
        page.evaluate("_pixel.push(['track', 'y'])")
        leave(page)
        time.sleep(0.8)
        assert collector.events() == []
        page = ctx.new_page()
        load(page, pages, collector)  # not asked to respect it: tracked
        collector.wait_count("pageview", 1)
    finally:
        ctx.close()
