"""A share link is a credential for its own view only: every route of the app, called with a link's token (as a
bearer token, a cookie, a query parameter) and its unlock cookie, answers 401 or 403, except the shared view's
own routes and the routes open to anyone (`OPEN_PATHS`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.routing import iter_route_contexts

from pixel.server.api.app import OPEN_PATHS
from tests.api.conftest import Api

NOW = datetime(2024, 3, 17, 12, 0, tzinfo=UTC).timestamp()
SHARE_ROUTES = {"/share/{token}", "/share/{token}/data", "/share/assets/{name}"}


@pytest.fixture(scope="module")
def shared(api: Api) -> tuple[Api, str, dict[str, str]]:
    api.client.app.state.pixel.tokens.clock = lambda: NOW  # type: ignore[attr-defined]
    api.admin = api.headers()
    r = api.client.post(
        f"/api/sites/{api.site_id}/shares",
        json={"name": "scope", "password": "correct horse battery"},
        headers=api.admin,
    )
    token = r.json()["token"]
    r = api.client.post(f"/share/{token}", data={"password": "correct horse battery"}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    api.client.cookies.clear()
    return api, token, {"pixel_share": cookie}


def _fill(path: str, api: Api, token: str) -> str:
    values = {"site_id": str(api.site_id), "token": token, "name": "share.js", "dimension": "page"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


def test_every_route_refuses_a_share_token(shared: tuple[Api, str, dict[str, str]]) -> None:
    api, token, cookie = shared
    # every route with its full path (FastAPI keeps included routers lazily: app.routes lists only them)
    routes = [r for r in iter_route_contexts(api.client.app.routes) if r.path]  # type: ignore[attr-defined]
    assert len(routes) > 40
    answered: dict[tuple[str, str], int] = {}
    for route in routes:
        assert route.path is not None
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            path = _fill(route.path, api, token)
            for i, creds in enumerate(
                (
                    {"headers": {"Authorization": f"Bearer {token}"}, "cookies": cookie},
                    {"headers": {"Authorization": f"Bearer {cookie['pixel_share']}"}},
                    {
                        "params": {"token": token, "share": token},
                        "cookies": {**cookie, "access_token": token},
                    },
                )
            ):
                r = api.client.request(method, path, json={}, **creds)  # type: ignore[arg-type]
                if i == 0:
                    answered[(method, route.path)] = r.status_code
                if route.path in SHARE_ROUTES or route.path in OPEN_PATHS:
                    continue
                assert r.status_code in (401, 403), (method, route.path, r.status_code, r.text[:200])
    # the shared view's own routes do answer it (and nothing else outside OPEN_PATHS does)
    assert answered[("GET", "/share/{token}")] == 200
    assert answered[("GET", "/share/{token}/data")] == 200
    assert answered[("GET", "/share/assets/{name}")] == 200
    allowed = {p for (_, p), code in answered.items() if code not in (401, 403)}
    assert allowed <= SHARE_ROUTES | OPEN_PATHS, allowed - SHARE_ROUTES - OPEN_PATHS
    assert any(p.startswith("/api/sites/{site_id}/shares") for _, p in answered)


def test_a_link_reads_only_its_own_site(shared: tuple[Api, str, dict[str, str]]) -> None:
    api, token, cookie = shared
    body = api.client.get(f"/share/{token}/data", params={"period": "30d"}, cookies=cookie).json()
    assert body["site"] == "shop.example"
    other = api.client.post(
        f"/api/sites/{api.other_site_id}/shares", json={"name": "other"}, headers=api.admin
    ).json()["token"]
    r = api.client.get(f"/share/{other}/data", params={"period": "30d"})
    assert r.json()["site"] == "other.example" and "shop.example" not in r.text
