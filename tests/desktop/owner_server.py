"""A real `pixel serve` of its own for the owner-task tests (sites and goals are created and deleted there,
so the shared `live_api` of the other desktop tests keeps its three sites), with known funnel traffic:
on shop.test, visitors 1-6 view /, 1-4 view /pricing, 1-3 send `signup` (plan pro for 1-2, free for 3),
each in that order a minute apart, 36 hours before the fixture starts (always inside "30d", which ends
at the start of today)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import orjson
import pytest

from pixel.app.client import ApiClient
from pixel.server import demo
from tests.desktop.conftest import LiveApi, running_api

SHOP = "shop.test"


def funnel_visits(domain: str, now_ms: int) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    out = []
    for visitor in range(1, 7):
        steps: list[tuple[str, str, dict[str, str] | None]] = [("pageview", "/", None)]
        if visitor <= 4:
            steps.append(("pageview", "/pricing", None))
        if visitor <= 3:
            steps.append(("signup", "/pricing", {"plan": "pro" if visitor <= 2 else "free"}))
        batch = []
        for i, (name, path, params) in enumerate(steps):
            event: dict[str, Any] = {
                "ts": now_ms - 36 * 3_600_000 + i * 60_000,
                "site": domain,
                "event_id": uuid.uuid4().hex,
                "event_name": name,
                "visitor_id": f"{visitor:016x}",
                "session_id": f"{visitor:016x}",
                "page": {"url": f"https://{domain}{path}", "path": path, "title": path, "referrer": ""},
                "device": {"screen": "1920x1080", "viewport": "1920x1080", "lang": "en-US", "tz": "UTC"},
            }
            if params:
                event["params"] = params
            batch.append(event)
        headers = {
            "User-Agent": demo.DEVICES[0][0],
            "Accept-Language": "en-US,en;q=0.9",
            "X-Forwarded-For": f"198.51.100.{visitor}",
            "Origin": f"https://{domain}",
        }
        out.append((headers, batch))
    return out


@pytest.fixture(scope="module")
def owner_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with running_api(tmp_path_factory.mktemp("owner-api"), {SHOP: "UTC"}) as api:
        sent = 0
        with httpx.Client(base_url=api.server.collector, timeout=10) as http:
            for headers, batch in funnel_visits(SHOP, int(time.time() * 1000)):
                r = http.post(
                    "/track", content=orjson.dumps(batch), headers={**headers, "Content-Type": "text/plain"}
                )
                assert r.status_code == 204, r.text
                sent += len(batch)
        api.events = sent
        api.server.wait_shipped(sent, timeout=120)
        yield api


@pytest.fixture
def owner_client(owner_api: LiveApi) -> Iterator[ApiClient]:
    """An API client logged in as the owner of `owner_api`, closed after the test."""
    client = ApiClient(owner_api.url, owner_api.username, owner_api.password)
    yield client
    client.close()


@pytest.fixture
def ref(owner_api: LiveApi) -> Iterator[httpx.Client]:
    """An independent HTTP client on `owner_api`, to read changes back."""
    with closing(owner_api.http()) as client:
        yield client
