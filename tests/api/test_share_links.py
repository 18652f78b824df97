"""Share links through the API (`/api/sites/{id}/shares`) and the shared view's routes (`/share/{token}`):
tokens, expiry, revocation, the password gate and its cookie, the data route's numbers (computed in Python
from the data set), its refusals, and the Content-Security-Policy. The clock is pinned."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pixel.server.api.share_links import UNLOCK_TTL
from tests.api import dataset
from tests.api.conftest import Api

NOW = datetime(2024, 3, 17, 12, 0, tzinfo=UTC).timestamp()
BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors "
)


@pytest.fixture(scope="module")
def pinned(api: Api) -> Api:
    clock = [NOW]
    api.client.app.state.pixel.tokens.clock = lambda: clock[0]  # type: ignore[attr-defined]
    api.clock = clock  # type: ignore[attr-defined]
    api.admin = api.headers()
    return api


@pytest.fixture(autouse=True)
def reset(pinned: Api) -> None:
    pinned.clock[0] = NOW  # type: ignore[attr-defined]
    pinned.client.cookies.clear()
    limiter = pinned.client.app.state.pixel.limiter  # type: ignore[attr-defined]
    limiter._fails.clear()


def make(api: Api, site_id: int | None = None, **body: Any) -> dict[str, Any]:
    r = api.client.post(
        f"/api/sites/{site_id or api.site_id}/shares", json={"name": "Public", **body}, headers=api.admin
    )
    assert r.status_code == 201, r.text
    return r.json()


def expected(first: date, last: date, pred: Any = None) -> dict[str, float]:
    return dataset.summary(dataset.select(dataset.generate(), first, last, pred))


def test_create_list_revoke(pinned: Api) -> None:
    api = pinned
    created = make(api, periods=["7d", "30d", "7d"], embed_origins=["https://status.example.com"])
    token = created["token"]
    assert re.fullmatch(r"pxs_[A-Za-z0-9_-]{43}", token)  # 256 random bits
    assert created["path"] == f"/share/{token}"
    assert created["periods"] == ["7d", "30d"]
    assert created["has_password"] is False and created["expires_at"] is None
    assert created["prefix"] == token[:8]
    listed = api.client.get(f"/api/sites/{api.site_id}/shares", headers=api.admin).json()
    mine = [s for s in listed if s["id"] == created["id"]]
    assert len(mine) == 1 and "token" not in mine[0] and mine[0]["revoked_at"] is None
    # the token itself is stored nowhere: only its keyed hash
    meta_files = list(api.settings.meta_db_path.parent.glob(api.settings.meta_db_path.name + "*"))
    assert api.settings.meta_db_path in meta_files
    for path in meta_files:
        assert token.encode() not in path.read_bytes(), path
    assert api.client.get(f"/share/{token}").status_code == 200
    r = api.client.delete(f"/api/sites/{api.other_site_id}/shares/{created['id']}", headers=api.admin)
    assert r.status_code == 404  # not the other site's link
    r = api.client.delete(f"/api/sites/{api.site_id}/shares/{created['id']}", headers=api.admin)
    assert r.status_code == 204
    listed = api.client.get(f"/api/sites/{api.site_id}/shares", headers=api.admin).json()
    assert [s["revoked_at"] for s in listed if s["id"] == created["id"]] == [NOW]
    for path in (f"/share/{token}", f"/share/{token}/data"):
        r = api.client.get(path)
        assert r.status_code == 404
    assert "revoked or never existed" in api.client.get(f"/share/{token}").text


def test_only_admins_of_the_site_manage_links(pinned: Api) -> None:
    api = pinned
    viewer = api.headers("viewer", "viewer-password-123")
    assert api.client.get(f"/api/sites/{api.site_id}/shares", headers=viewer).status_code == 403
    r = api.client.post(f"/api/sites/{api.site_id}/shares", json={"name": "x"}, headers=viewer)
    assert r.status_code == 403
    assert api.client.get("/api/sites/999/shares", headers=api.admin).status_code == 404
    assert api.client.get(f"/api/sites/{api.site_id}/shares").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"embed_origins": ["https://a.example; script-src *"]},
        {"embed_origins": ["https://a.example/path"]},
        {"embed_origins": ["*"]},
        {"embed_origins": ["https://*.example.com"]},
        {"embed_origins": ["javascript:alert(1)"]},
        {"embed_origins": ["https://A.example"]},
        {"embed_origins": ["https://a.example:99999"]},
        {"embed_origins": ["https://a.example 'unsafe-inline'"]},
        {"periods": ["custom"]},
        {"periods": ["forever"]},
        {"periods": []},
        {"filters": [["country", "is"]]},
        {"filters": [["nope", "is", "x"]]},
        {"filters": [["country", "like", "x"]]},
        {"password": "short"},
        {"name": ""},
        {"site_id": 2},
        {"expires_at": -5},
    ],
)
def test_bad_links_are_refused(pinned: Api, body: dict[str, Any]) -> None:
    r = pinned.client.post(
        f"/api/sites/{pinned.site_id}/shares", json={"name": "x", **body}, headers=pinned.admin
    )
    assert r.status_code == 422, r.text


def test_expiry_in_the_past_is_refused(pinned: Api) -> None:
    r = pinned.client.post(
        f"/api/sites/{pinned.site_id}/shares", json={"name": "x", "expires_at": NOW - 1}, headers=pinned.admin
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_share")


def test_data_has_the_numbers_of_the_allowed_periods(pinned: Api) -> None:
    api = pinned
    token = make(api, periods=["7d", "30d"])["token"]
    for period, first in (("7d", date(2024, 3, 11)), ("30d", date(2024, 2, 17)), (None, date(2024, 3, 11))):
        r = api.client.get(f"/share/{token}/data", params={"period": period} if period else {})
        assert r.status_code == 200, r.text
        body = r.json()
        want = expected(first, date(2024, 3, 17))
        got = {k: v["value"] for k, v in body["summary"]["metrics"].items()}
        for name in ("visitors", "pageviews", "sessions", "bounce_rate"):
            assert got[name] == want[name], (period, name)
        assert body["period"] == (period or "7d") and body["site"] == dataset.SITE
        points = body["timeseries"]["points"]
        assert points[0]["bucket"] == first.isoformat() and points[-1]["bucket"] == "2024-03-17"
        events = dataset.select(dataset.generate(), first, date(2024, 3, 17))
        assert sum(p["pageviews"] for p in points) == want["pageviews"]
        pages: dict[str, set[str]] = {}
        for e in events:
            if e["event_name"] == "pageview":
                pages.setdefault(e["path"], set()).add(e["visitor_id"])
        rows = {row["value"]: row["visitors"] for row in body["breakdowns"]["page"]["rows"]}
        assert rows == {p: len(v) for p, v in pages.items()}
        assert set(body["breakdowns"]) == {"page", "source", "country", "browser", "device"}
        assert "other.example" not in r.text and "/secret" not in r.text


def test_fixed_filters_apply_and_no_other_parameter_is_taken(pinned: Api) -> None:
    api = pinned
    token = make(api, periods=["30d"], filters=[["country", "is", "DE"]])["token"]
    body = api.client.get(f"/share/{token}/data", params={"period": "30d"}).json()
    want = expected(date(2024, 2, 17), date(2024, 3, 17), lambda e: e["country"] == "DE")
    assert body["summary"]["metrics"]["visitors"]["value"] == want["visitors"]
    assert body["summary"]["metrics"]["pageviews"]["value"] == want["pageviews"]
    assert [r["value"] for r in body["breakdowns"]["country"]["rows"]] == ["DE"]
    assert body["filters"] == [["country", "is", "DE"]]
    refused = [
        {"period": "7d"},
        {"period": "custom", "from": "2024-01-01", "to": "2024-03-17"},
        {"period": "realtime"},
        {"period": "30d", "filters": '[["country","is","FR"]]'},
        {"period": "30d", "include_bots": "true"},
        {"period": "30d", "site_id": str(api.other_site_id)},
        {"period": ["30d", "7d"]},
    ]
    for params in refused:
        r = api.client.get(f"/share/{token}/data", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"] in ("period_not_allowed", "not_allowed")


def test_expired_link_is_gone(pinned: Api) -> None:
    api = pinned
    token = make(api, expires_at=NOW + 3600)["token"]
    assert api.client.get(f"/share/{token}").status_code == 200
    api.clock[0] = NOW + 3600  # type: ignore[attr-defined]
    r = api.client.get(f"/share/{token}")
    assert r.status_code == 410 and "This link has expired." in r.text
    assert r.headers["content-security-policy"] == BASE_CSP + "'none'"
    assert api.client.get(f"/share/{token}/data").status_code == 410


@pytest.mark.parametrize(
    "token", ["pxs_" + "A" * 43, "pxs_short", "x" * 5000, "pxt_" + "A" * 43, "pxs_" + "A" * 42 + "/"]
)
def test_unknown_tokens_are_not_found(pinned: Api, token: str) -> None:
    r = pinned.client.get(f"/share/{token}")
    assert r.status_code == 404 and "revoked or never existed" in r.text
    assert pinned.client.get(f"/share/{token}/data").status_code == 404


def test_password_gate_and_its_cookie(pinned: Api) -> None:
    api = pinned
    created = make(api, password="correct horse battery")
    token = created["token"]
    other = make(api, password="correct horse battery")["token"]
    assert created["has_password"] is True
    r = api.client.get(f"/share/{token}")
    assert r.status_code == 401 and 'type="password"' in r.text and "data-src" not in r.text
    assert api.client.get(f"/share/{token}/data").status_code == 401
    r = api.client.post(f"/share/{token}", data={"password": "wrong password!"}, follow_redirects=False)
    assert r.status_code == 401 and "Wrong password." in r.text and "set-cookie" not in r.headers
    r = api.client.post(f"/share/{token}", data={"password": "correct horse battery"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/share/{token}"
    cookie = r.headers["set-cookie"]
    assert f"Path=/share/{token};" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and f"Max-Age={UNLOCK_TTL}" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    value = cookie.split(";")[0].split("=", 1)[1]
    unlocked = {"pixel_share": value}
    api.client.cookies.clear()
    assert api.client.get(f"/share/{token}/data", cookies=unlocked).status_code == 200
    assert api.client.get(f"/share/{token}", cookies=unlocked).status_code == 200
    # the cookie opens no other link, and ends with its lifetime
    assert api.client.get(f"/share/{other}/data", cookies=unlocked).status_code == 401
    forged = {"pixel_share": value[:-1] + ("0" if value[-1] != "0" else "1")}
    assert api.client.get(f"/share/{token}/data", cookies=forged).status_code == 401
    longer = {"pixel_share": value.replace(value.split(".")[1], str(int(NOW) + 10 * UNLOCK_TTL))}
    assert api.client.get(f"/share/{token}/data", cookies=longer).status_code == 401
    api.clock[0] = NOW + UNLOCK_TTL  # type: ignore[attr-defined]
    assert api.client.get(f"/share/{token}/data", cookies=unlocked).status_code == 401


def test_cookie_is_secure_behind_https(pinned: Api) -> None:
    token = make(pinned, password="correct horse battery")["token"]
    r = pinned.client.post(
        f"/share/{token}",
        data={"password": "correct horse battery"},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "; Secure" in r.headers["set-cookie"]


def test_password_attempts_are_limited(pinned: Api) -> None:
    api = pinned
    token = make(api, password="correct horse battery")["token"]
    for _ in range(5):
        r = api.client.post(f"/share/{token}", data={"password": "nope nope nope"}, follow_redirects=False)
        assert r.status_code == 401
    r = api.client.post(f"/share/{token}", data={"password": "correct horse battery"}, follow_redirects=False)
    assert r.status_code == 429 and "Too many attempts" in r.text and int(r.headers["retry-after"]) > 0
    assert "set-cookie" not in r.headers


def test_security_headers(pinned: Api) -> None:
    api = pinned
    framed = make(api, embed_origins=["https://status.example.com", "http://127.0.0.1:8000"])["token"]
    closed = make(api)["token"]
    r = api.client.get(f"/share/{framed}")
    assert r.headers["content-security-policy"] == (
        BASE_CSP + "https://status.example.com http://127.0.0.1:8000"
    )
    assert "x-frame-options" not in r.headers
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = api.client.get(f"/share/{closed}")
    assert r.headers["content-security-policy"] == BASE_CSP + "'none'"
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text and " on" not in r.text.replace(" one", "")  # nothing inline
    assert re.findall(r' src="([^"]+)"| href="([^"]+)"', r.text) == [
        ("", "data:,"),
        ("", "/share/assets/share.css"),
        ("/share/assets/share.js", ""),
    ]
    js = api.client.get("/share/assets/share.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "http" not in js.text.replace("http://www.w3.org/2000/svg", "")  # nothing from other hosts
    assert api.client.get("/share/assets/share.css").headers["content-type"].startswith("text/css")
    assert api.client.get("/share/assets/..%2Fshare_links.py").status_code == 404
    data = api.client.get(f"/share/{closed}/data")
    assert data.headers["content-security-policy"] == BASE_CSP + "'none'"


def test_deleting_the_site_deletes_its_links(pinned: Api) -> None:
    api = pinned
    r = api.client.post("/api/sites", json={"domain": "gone.example"}, headers=api.admin)
    site_id = r.json()["id"]
    token = make(api, site_id=site_id)["token"]
    assert api.client.get(f"/share/{token}/data").status_code == 200
    assert api.client.delete(f"/api/sites/{site_id}", headers=api.admin).status_code == 204
    assert api.client.get(f"/share/{token}/data").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/share/..%2Fapi%2Fusers",
        "/share/..%2F..%2Fapi%2Fusers",
        "/share/x/..%2F..%2Fapi%2Fusers",
        "/share/%2e%2e/api/users",
        "/share/assets/..%2F..%2Fapi%2Fusers",
        "/share//api/users",
    ],
)
def test_paths_under_share_reach_only_the_shared_view(pinned: Api, path: str) -> None:
    """The edge forwards /share/* only: no spelling of a path there reaches another API route, even with an
    admin's token."""
    r = pinned.client.get(path, headers=pinned.admin)
    assert r.status_code == 404
    assert "admin" not in r.text
