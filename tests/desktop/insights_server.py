"""A real `pixel serve` with one site whose traffic holds what the insight reports read: web vitals, errors,
outbound clicks, downloads, form submissions, 404 pages, engaged time and scroll, and revenue in two
currencies (EUR and USD), sent through the collector as the extended tracker sends them. Shared by the
desktop report tests (module scope: one server per test module)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.desktop.conftest import LiveApi, running_api

SITE = "insights.example"
EMPTY = "empty.example"  # a site without any event
PAGES = ["/", "/pricing", "/docs", "/blog/a", "/checkout"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
]
LINKS = ["https://github.com/x", "https://docs.other.org/a"]
FILES = ["https://cdn.example/a.pdf", "https://cdn.example/b.zip"]
FORMS = [("signup", "https://insights.example/signup"), ("", "https://insights.example/search")]
ERRORS = [("TypeError: a is undefined", "https://insights.example/app.js", 12), ("boom", "", 0)]


def visits(
    seed: int = 5, count: int = 60, days: int = 20
) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    rnd = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out = []
    for v in range(count):
        headers = {
            "User-Agent": AGENTS[v % len(AGENTS)],
            "Accept-Language": "en-US,en;q=0.9",  # (without it the bot filter takes the visit for a bot)
            "X-Forwarded-For": f"198.51.100.{v + 1}",
            "CF-IPCountry": rnd.choice(["DE", "US", "FR", "BR", "JP"]),
            "Origin": f"https://{SITE}",
        }
        visitor, session = f"{v:016x}", uuid.UUID(int=rnd.getrandbits(128)).hex[:16]
        ts = now_ms - rnd.randrange(1, days * 86_400_000)
        batch: list[dict[str, Any]] = []
        for _step in range(rnd.randint(1, 4)):
            path = rnd.choice(PAGES)
            base = {
                "site": SITE,
                "visitor_id": visitor,
                "session_id": session,
                "page": {"url": f"https://{SITE}{path}", "path": path, "referrer": ""},
                "device": {"screen": "1920x1080", "viewport": "1920x1080", "lang": "en-US", "tz": "UTC"},
            }

            def add(
                name: str,
                at: int,
                batch: list[dict[str, Any]] = batch,
                base: dict[str, Any] = base,
                **fields: Any,
            ) -> None:
                event_id = uuid.UUID(int=rnd.getrandbits(128)).hex
                batch.append({**base, "event_id": event_id, "event_name": name, "ts": at, **fields})

            extra = {"not_found": 1} if rnd.random() < 0.15 else {}
            add("pageview", ts, **extra)
            add(
                "web_vitals",
                ts + 500,
                params={
                    "ttfb": rnd.randint(50, 2500),
                    "fcp": rnd.randint(300, 4000),
                    "lcp": rnd.randint(800, 6000),
                    "cls": round(rnd.uniform(0, 0.4), 3),
                    "inp": rnd.randint(20, 800),
                },
            )
            add("scroll", ts + 2000, scroll_depth=rnd.choice([25, 50, 75, 100]))
            add("engagement", ts + 3000, engaged_ms=rnd.randint(500, 120_000))
            if rnd.random() < 0.3:
                add("outbound", ts + 3500, params={"url": rnd.choice(LINKS)})
            if rnd.random() < 0.2:
                url = rnd.choice(FILES)
                add("download", ts + 3600, params={"url": url, "ext": url.rsplit(".", 1)[1]})
            if rnd.random() < 0.2:
                form_id, action = rnd.choice(FORMS)
                add("form_submit", ts + 3700, params={"id": form_id, "action": action})
            if rnd.random() < 0.25:
                message, source, line = rnd.choice(ERRORS)
                add("error", ts + 3800, params={"message": message, "source": source, "line": line})
            if path == "/checkout" or rnd.random() < 0.1:
                add(
                    "purchase",
                    ts + 3900,
                    params={
                        "revenue": rnd.choice(["49.90", "120", "0.3333"]),
                        "currency": rnd.choice(["EUR", "USD"]),
                    },
                )
            ts += rnd.randint(5_000, 60_000)
        out.append((headers, batch))
    return out


def send(collector: str) -> int:
    accepted = 0
    with httpx.Client(base_url=collector, timeout=10) as client:
        for headers, batch in visits():
            r = client.post(
                "/track",
                content=orjson.dumps(batch),
                headers={**headers, "Content-Type": "text/plain;charset=UTF-8"},
            )
            assert r.status_code == 204, r.text
            accepted += len(batch)
    return accepted


@pytest.fixture(scope="module")
def insights_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    sites = {SITE: "Europe/Berlin", EMPTY: "Europe/Berlin"}
    with running_api(tmp_path_factory.mktemp("insights-api"), sites, {"PIXEL_CDN_GEO_HEADERS": "1"}) as api:
        api.events = send(api.server.collector)
        api.server.wait_shipped(api.events, timeout=120)
        yield api
