"""The shared view (/share/<token>) in real Chromium, served by the real API app under uvicorn on 127.0.0.1, over
chDB holding the API tests' known data set (tests/api/dataset.py; expected figures computed in Python from its
events). The clock is pinned: "7d" and "30d" end on 2024-03-17 in the site's zone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore
from tests.api import dataset
from tests.conftest import free_port
from tests.tracker.servers import PageServer

NOW = datetime(2024, 3, 17, 12, 0, tzinfo=UTC).timestamp()
PASSWORD = "correct horse battery"


@dataclass
class Shared:
    url: str
    clock: list[float]
    admin: dict[str, str]
    site_id: int

    def link(self, **body: Any) -> str:
        r = httpx.post(
            f"{self.url}/api/sites/{self.site_id}/shares",
            json={"name": "Shop, shared", **body},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return f"{self.url}/share/{r.json()['token']}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    data_dir: Path = tmp_path_factory.mktemp("share-view")
    store = ChdbStore(data_dir / "store")
    store.migrate()
    store.insert_rows("events", dataset.generate())
    store.insert_rows("events", dataset.noise())
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password("admin-password-123"), "admin")
    site_id = meta.insert(
        "sites", {"domain": dataset.SITE, "name": "Shop", "timezone": dataset.TZ, "created_at": 0.0}
    )
    app = create_app(settings, store)
    clock = [NOW]
    app.state.pixel.tokens.clock = lambda: clock[0]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    r = httpx.post(f"{url}/api/auth/login", json={"username": "admin", "password": "admin-password-123"})
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    try:
        yield Shared(url, clock, admin, site_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


@pytest.fixture(autouse=True)
def pinned(shared: Shared) -> None:
    shared.clock[0] = NOW


def expected(first: date) -> tuple[dict[str, float], list[dict[str, Any]]]:
    events = dataset.select(dataset.generate(), first, date(2024, 3, 17))
    return dataset.summary(events), events


def card(page: Page, metric: str) -> str:
    return page.locator(f'.card[data-metric="{metric}"] .value').inner_text()


def ready(page: Page, period: str) -> None:
    page.wait_for_selector(f'main#share[data-state="ready"][data-period="{period}"]', timeout=15_000)


def test_the_page_shows_the_right_numbers(browser: Browser, shared: Shared) -> None:
    url = shared.link(periods=["7d", "30d"])
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    for period, first in (("7d", date(2024, 3, 11)), ("30d", date(2024, 2, 17))):
        if period != "7d":
            page.select_option("#period", period)
        ready(page, period)
        want, events = expected(first)
        assert card(page, "visitors") == str(want["visitors"])
        assert card(page, "pageviews") == str(want["pageviews"])
        assert card(page, "sessions") == str(want["sessions"])
        assert card(page, "bounce_rate") == f"{want['bounce_rate']:.1f}%"
        bars = page.locator("#chart svg rect")
        days = (date(2024, 3, 17) - first).days + 1
        assert bars.count() == days
        per_day: dict[str, int] = {}
        for e in events:
            if e["event_name"] == "pageview":
                per_day[dataset.local_day(e)] = per_day.get(dataset.local_day(e), 0) + 1
        drawn = {
            bars.nth(i).get_attribute("data-bucket"): int(bars.nth(i).get_attribute("data-pageviews") or 0)
            for i in range(days)
        }
        assert {k: v for k, v in drawn.items() if v} == per_day
        rows = page.locator('.breakdown[data-dimension="country"] tr:has(td.num)')
        shown = {
            rows.nth(i).locator("td.value").inner_text(): rows.nth(i).locator("td.num").inner_text()
            for i in range(rows.count())
        }
        countries: dict[str, set[str]] = {}
        for e in events:
            countries.setdefault(e["country"], set()).add(e["visitor_id"])
        assert shown == {c: str(len(v)) for c, v in countries.items()}
    assert page.locator("#title").inner_text() == "Shop, shared"
    assert errors == []  # no CSP violation, no failed fetch
    page.close()


def test_password_gate(browser: Browser, shared: Shared) -> None:
    url = shared.link(periods=["7d"], password=PASSWORD)
    page = browser.new_page()
    page.goto(url)
    assert page.locator("main#share").count() == 0
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator("#message").inner_text() == "Wrong password."
    assert page.locator("main#share").count() == 0
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    ready(page, "7d")
    want, _ = expected(date(2024, 3, 11))
    assert card(page, "visitors") == str(want["visitors"])
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"], c["path"]) for c in cookies] == [
        ("pixel_share", True, "Strict", url.split(shared.url, 1)[1])
    ]
    page.close()


def test_expired_and_revoked_links_show_a_plain_message(browser: Browser, shared: Shared) -> None:
    expiring = shared.link(expires_at=NOW + 60)
    revoked = shared.link()
    share_id = httpx.get(f"{shared.url}/api/sites/{shared.site_id}/shares", headers=shared.admin).json()[-1][
        "id"
    ]
    r = httpx.delete(f"{shared.url}/api/sites/{shared.site_id}/shares/{share_id}", headers=shared.admin)
    assert r.status_code == 204
    page = browser.new_page()
    response = page.goto(revoked)
    assert response is not None and response.status == 404
    assert page.locator("#message").inner_text() == "This link is not valid: it was revoked or never existed."
    response = page.goto(expiring)
    assert response is not None and response.status == 200
    shared.clock[0] = NOW + 61
    response = page.goto(expiring)
    assert response is not None and response.status == 410
    assert page.locator("body").inner_text().strip() == "This link has expired."
    page.close()


def _embedding(pages: PageServer, src: str) -> str:
    pages.pages["/status"] = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Status</title></head>'
        f'<body><h1>Status</h1><iframe id="stats" src="{src}" width="800" height="600"></iframe></body></html>'
    )
    return f"{pages.url}/status"


def test_embedding_only_on_allowed_origins(browser: Browser, shared: Shared, pages: PageServer) -> None:
    allowed = shared.link(periods=["7d"], embed_origins=[pages.url])
    refused = shared.link(periods=["7d"], embed_origins=["https://status.example.com"])
    closed = shared.link(periods=["7d"])
    page = browser.new_page()
    page.goto(_embedding(pages, allowed))
    frame = page.frame_locator("#stats")
    frame.locator('main#share[data-state="ready"]').wait_for(timeout=15_000)
    want, _ = expected(date(2024, 3, 11))
    assert frame.locator('.card[data-metric="visitors"] .value').inner_text() == str(want["visitors"])
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    for src in (refused, closed):
        messages.clear()
        page.goto(_embedding(pages, src))
        page.wait_for_load_state("load")
        deadline = time.monotonic() + 10
        while not any("frame-ancestors" in m for m in messages) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        blocked = [m for m in messages if "violates the following Content Security Policy directive" in m]
        assert len(blocked) == 1 and "frame-ancestors" in blocked[0] and "has been blocked" in blocked[0], (
            messages
        )
        child = [f for f in page.frames if f != page.main_frame]
        assert len(child) == 1
        assert child[0].evaluate("document.getElementById('share') === null")  # nothing of the view rendered
        assert shared.url not in child[0].url or child[0].content().find("data-src") < 0
    page.close()


def test_the_map_fills_countries_by_their_visitors(browser: Browser, shared: Shared) -> None:
    from pixel.server.api import share_map

    url = shared.link(periods=["30d"])
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    ready(page, "30d")
    page.wait_for_selector('#map[data-state="ready"] svg path[data-country="DE"]', timeout=15_000)
    _, events = expected(date(2024, 2, 17))
    countries: dict[str, set[str]] = {}
    for e in events:
        countries.setdefault(e["country"], set()).add(e["visitor_id"])
    counts = {c: len(v) for c, v in countries.items()}
    assert set(counts) == {"DE", "FR", "US"} and len(set(counts.values())) > 1  # distinct fills to tell apart
    most = max(counts.values())
    names = {"DE": "Germany", "FR": "France", "US": "United States of America"}
    for code, n in counts.items():
        path = page.locator(f'#map path[data-country="{code}"]')
        assert path.get_attribute("data-visitors") == str(n)
        assert path.get_attribute("fill") == share_map.fill(n, most), code
        assert path.locator("title").text_content() == f"{names[code]}: {n} visitors"
    brazil = page.locator('#map path[data-country="BR"]')
    assert (
        brazil.get_attribute("fill") == share_map.LIGHT_FILLS[0]
        and brazil.get_attribute("data-visitors") == "0"
    )
    assert page.locator("#map path").count() == len(json_countries())
    # hover: the caption names the country and its number (the <title> is the browser's own tooltip)
    page.hover('#map path[data-country="DE"]')
    assert page.locator("#map-caption").inner_text() == f"Germany: {counts['DE']} visitors"
    assert page.locator("#map-missing").inner_text() == ""
    page.set_viewport_size({"width": 1000, "height": 1400})
    page.mouse.move(0, 0)
    assert page.locator("#map-caption").inner_text() == ""  # the caption follows the pointer out
    shot = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "share-view-map.png"
    page.locator("main#share").screenshot(path=str(shot))
    assert errors == []  # the CSP let everything through: same-origin script, fetches and inline SVG
    page.close()


def json_countries() -> list[list[str]]:
    import json

    from pixel.server.api import share_map

    return list(json.loads(share_map.countries_json())["countries"])


def test_the_map_asset(shared: Shared) -> None:
    r = httpx.get(f"{shared.url}/share/assets/countries.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    body = r.json()
    assert body["viewBox"] == "0 0 36000 14200"
    codes = [c[0] for c in body["countries"]]
    assert codes == sorted(codes) and "AQ" not in codes and {"DE", "FR", "US", "BR"} <= set(codes)
    assert all(c[2].startswith("M") and c[2].endswith("z") for c in body["countries"])
