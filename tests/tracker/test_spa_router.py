"""A third-party-style single-page app on a real framework router from npm (Navigo, pinned in tracker/package.json
devDependencies and served from tracker/node_modules, never bundled) in Chromium, with both builds: exactly one
pageview per navigation (router links, programmatic navigation, the back button) with its title and URL, and the
scroll depth of each view as it was when it was left, before the router drew the next one.

Navigo draws the next view (its route handler) before it calls pushState, as page.js does, so a tracker that
measures at pushState sees the next view already in the document."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.tracker.conftest import page_html, snippet

NAVIGO = Path(__file__).resolve().parents[2] / "tracker" / "node_modules" / "navigo" / "lib" / "navigo.min.js"
WINDOW_HEIGHT = 720  # Playwright's default viewport
BODY_MARGIN = 16  # 8 px above and below the view, Chromium's default body margin

# path -> (title, height of the view in px)
VIEWS = {
    "/app": ("Home", 600),
    "/app/long": ("Long read", 4000),
    "/app/short": ("Short", 1200),
    "/app/mid": ("Middle", 2000),
}

# The app as its authors would write it: Navigo's routes draw the view (title, height, router links) and scroll
# to the top; links marked data-navigo are intercepted by the router; the browser's own scroll restoration is off.
APP = """
<div id=view></div>
<script src="/vendor/navigo.min.js"></script>
<script>
history.scrollRestoration = 'manual';
const VIEWS = %s;
const router = new Navigo('/');
const links = Object.keys(VIEWS).map((p) => `<a data-navigo href="${p}" id="to-${p.split('/').pop()}">${p}</a>`).join(' ');
for (const [path, [title, height]] of Object.entries(VIEWS)) {
  router.on(path, () => {
    document.title = title;
    document.getElementById('view').innerHTML = `<div style="height:${height}px">${title} ${links}</div>`;
    router.updatePageLinks();
    scrollTo(0, 0);
  });
}
router.resolve();
window.appRouter = router;
</script>
"""


def depth(path: str, scroll_y: int) -> int:
    """The scroll depth in % of a view scrolled to `scroll_y`: the part seen over the document's height."""
    height = VIEWS[path][1] + BODY_MARGIN
    return min(100, round((scroll_y + WINDOW_HEIGHT) / height * 100))


def scroll_to(page, y: int) -> None:
    page.evaluate(f"scrollTo(0, {y})")
    page.wait_for_function(f"scrollY === {y}")
    time.sleep(0.2)  # the scroll event reaches the tracker


@pytest.mark.parametrize("build", ["pixel.js", "pixel.ext.js"])
def test_real_router_one_pageview_per_navigation_and_the_depth_of_each_view_left(
    page, pages, collector, build
):
    pages.files["/vendor/navigo.min.js"] = (NAVIGO.read_bytes(), "application/javascript")
    views = {p: list(v) for p, v in VIEWS.items()}
    # the snippet after the app's script: the tracker runs once the router drew the first view
    tracker = snippet([["config", "baseUrl", collector.url]], "/" + build)
    pages.pages["/app"] = page_html("", APP % json.dumps(views) + tracker, title="Home")
    page.goto(pages.url + "/app")
    collector.wait_count("pageview", 1)
    assert page.evaluate("innerHeight") == WINDOW_HEIGHT

    # Home fits in the window: seen whole without a scroll; left by a click on a router link
    page.click("#to-long")
    collector.wait_count("pageview", 2)
    assert page.evaluate("document.documentElement.scrollHeight") == VIEWS["/app/long"][1] + BODY_MARGIN
    scroll_to(page, 1000)
    # left by the router's own API, no click
    page.evaluate("appRouter.navigate('/app/short')")
    collector.wait_count("pageview", 3)
    scroll_to(page, 200)
    page.click("#to-mid")
    collector.wait_count("pageview", 4)
    scroll_to(page, 300)
    page.go_back()  # popstate: the router draws Short again, at the top
    collector.wait_count("pageview", 5)
    page.goto("about:blank")  # leaving may send an event in flight again: counted by event id
    scrolls = collector.wait_unique("scroll", 5)

    base = pages.url
    seen = [(v["page"]["url"], v["page"]["title"]) for v in collector.unique("pageview")]
    assert seen == [
        (base + "/app", "Home"),
        (base + "/app/long", "Long read"),
        (base + "/app/short", "Short"),
        (base + "/app/mid", "Middle"),
        (base + "/app/short", "Short"),
    ]
    expected = [
        ("/app", 100),
        ("/app/long", depth("/app/long", 1000)),  # 43
        ("/app/short", depth("/app/short", 200)),  # 76
        ("/app/mid", depth("/app/mid", 300)),  # 51
        ("/app/short", depth("/app/short", 0)),  # 59
    ]
    assert [d for _, d in expected] == [100, 43, 76, 51, 59]
    assert [(s["page"]["url"], s["scroll_depth"]) for s in scrolls] == [(base + p, d) for p, d in expected]
    time.sleep(0.3)
    assert len(collector.unique("pageview")) == 5
    assert len(collector.unique("scroll")) == 5
