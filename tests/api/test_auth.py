"""Auth on every route, tokens (expiry, signature, refresh rotation, revocation), roles, site limits."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.security import LoginLimiter, Tokens
from tests.api.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD, Api

OPEN = {("post", "/api/auth/login"), ("get", "/api/health"), ("post", "/api/auth/refresh")}


def all_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, from its OpenAPI document (params filled with 1)."""
    schema = api.client.get("/api/openapi.json").json()
    routes = []
    for path, item in schema["paths"].items():
        for method in item:
            routes.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return routes


def test_every_route_needs_a_token_except_login_health_refresh(api: Api) -> None:
    routes = all_routes(api)
    assert len(routes) >= 35
    assert OPEN <= {(m, p) for m, p in routes}
    for method, path in routes:
        if (method, path) in OPEN:
            continue
        r = api.client.request(method.upper(), path, json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "missing_token" and r.headers["www-authenticate"] == "Bearer"
        r = api.client.request(method.upper(), path, json={}, headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401, (method, path)
    assert api.client.get("/api/health").json()["status"] == "ok"
    assert api.client.post("/api/auth/refresh", json={}).status_code == 401


def test_login_errors_and_rate_limit(api: Api) -> None:
    app = create_app(api.settings, api.store, limiter=LoginLimiter(per_user=3, per_client=5, window=60))
    with TestClient(app) as client:
        wrong = {"username": "admin", "password": "wrong"}
        for _ in range(3):
            r = client.post("/api/auth/login", json=wrong)
            assert r.status_code == 401 and r.json() == {
                "error": "invalid_credentials",
                "detail": "wrong username or password",
            }
        r = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password
        # unknown users fail the same way, and count against the client too
        for _ in range(2):
            assert (
                client.post("/api/auth/login", json={"username": "ghost", "password": "x"}).status_code == 401
            )
        assert (
            client.post(
                "/api/auth/login", json={"username": "viewer", "password": VIEWER_PASSWORD}
            ).status_code
            == 429
        )
    assert api.client.post("/api/auth/login", json={"username": "admin"}).status_code == 422


def test_tokens_signed_with_the_install_key_only(api: Api) -> None:
    key_file = api.settings.state_dir / "api-signing.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and len(key_file.read_bytes()) == 64
    me = api.client.get("/api/auth/me", headers=api.admin)
    assert me.status_code == 200 and me.json()["username"] == "admin" and me.json()["role"] == "admin"
    now = 1_700_000_000
    app = create_app(api.settings, api.store)
    app.state.pixel.tokens = Tokens(key_file.read_bytes(), clock=lambda: now + 0.5)
    admin = app.state.pixel.meta.user_by_name("admin")
    claims = {
        "sub": str(admin["id"]),
        "gen": admin["generation"],
        "role": "admin",
        "typ": "access",
        "jti": "ab" * 16,
        "iat": now,
        "exp": now + 600,
    }
    with TestClient(app) as client:
        for key in ("super-secret-dev-key", "change_me_in_prod", "a" * 64):
            forged = jwt.encode(claims, key, algorithm="HS256")
            r = client.get("/api/sites", headers={"Authorization": f"Bearer {forged}"})
            assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        unsigned = jwt.encode(claims, None, algorithm="none")
        assert client.get("/api/sites", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401
        real_key = key_file.read_bytes()
        expired = jwt.encode({**claims, "iat": now - 600, "exp": now}, real_key, algorithm="HS256")
        r = client.get("/api/sites", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and r.json()["error"] == "token_expired"
        good = jwt.encode(claims, real_key, algorithm="HS256")
        assert client.get("/api/sites", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    # a second app on the same data folder uses the same key
    with TestClient(create_app(api.settings, api.store)) as other:
        assert other.get("/api/sites", headers=api.admin).status_code == 200


def test_refresh_rotates_and_replay_ends_all_sessions(api: Api) -> None:
    first = api.login("admin", ADMIN_PASSWORD)
    second = api.login("admin", ADMIN_PASSWORD)
    assert first["expires_in"] == 900 and first["token_type"] == "bearer"
    r = api.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (
        api.client.get(
            "/api/sites", headers={"Authorization": f"Bearer {rotated['access_token']}"}
        ).status_code
        == 200
    )
    # replaying the used token fails and revokes every refresh token of the user
    r = api.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    for token in (rotated["refresh_token"], second["refresh_token"]):
        assert api.client.post("/api/auth/refresh", json={"refresh_token": token}).status_code == 401
    assert api.client.post("/api/auth/refresh", json={"refresh_token": "made-up"}).status_code == 401


def test_logout_revokes_access_and_refresh(api: Api) -> None:
    pair = api.login("admin", ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api.client.get("/api/auth/me", headers=headers).status_code == 200
    r = api.client.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=headers)
    assert r.status_code == 204
    r = api.client.get("/api/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "access token revoked"
    assert (
        api.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    )
    assert api.client.get("/api/auth/me", headers=api.admin).status_code == 200  # other sessions live on


def test_viewer_limited_to_its_sites_and_read_only(api: Api) -> None:
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    sites = api.client.get("/api/sites", headers=viewer).json()
    assert [s["id"] for s in sites["items"]] == [api.site_id] and sites["total"] == 1
    assert api.client.get(f"/api/sites/{api.site_id}/reports/summary", headers=viewer).status_code == 200
    for path in (
        f"/api/sites/{api.other_site_id}",
        f"/api/sites/{api.other_site_id}/reports/summary",
        f"/api/sites/{api.other_site_id}/reports/realtime",
        f"/api/sites/{api.other_site_id}/dashboards",
        f"/api/sites/{api.other_site_id}/snippet",
    ):
        r = api.client.get(path, headers=viewer)
        assert r.status_code == 404, path
    denied: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/sites", {"domain": "new.example"}),
        ("PATCH", f"/api/sites/{api.site_id}", {"name": "x"}),
        ("DELETE", f"/api/sites/{api.site_id}", {}),
        ("POST", f"/api/sites/{api.site_id}/goals", {"name": "g", "kind": "event", "event_name": "x"}),
        ("POST", f"/api/sites/{api.site_id}/dashboards", {"name": "d"}),
        ("GET", "/api/users", {}),
        ("POST", "/api/users", {"username": "eve"}),
        ("POST", "/api/sql", {"site_id": api.site_id, "query": "SELECT 1"}),
    ]
    for method, path, body in denied:
        r = api.client.request(method, path, json=body or None, headers=viewer)
        assert r.status_code == 403 and r.json()["error"] == "admins_only", (method, path, r.text)


def test_users_admin_crud_generated_password_and_last_admin(api: Api) -> None:
    r = api.client.post(
        "/api/users",
        json={"username": "carol", "role": "viewer", "sites": [api.other_site_id]},
        headers=api.admin,
    )
    assert r.status_code == 201
    carol = r.json()
    assert len(carol["password"]) == 20 and carol["sites"] == [api.other_site_id]
    assert api.login("carol", carol["password"])["user"]["role"] == "viewer"
    assert api.client.post("/api/users", json={"username": "carol"}, headers=api.admin).status_code == 409
    assert api.client.post("/api/users", json={"username": "x y"}, headers=api.admin).status_code == 422
    assert (
        api.client.post("/api/users", json={"username": "dan", "sites": [999]}, headers=api.admin).json()[
            "error"
        ]
        == "invalid_sites"
    )
    listed = api.client.get(
        "/api/users", params={"sort": "username", "order": "desc"}, headers=api.admin
    ).json()
    assert [u["username"] for u in listed["items"]] == sorted(
        (u["username"] for u in listed["items"]), reverse=True
    )
    assert "password_hash" not in listed["items"][0]
    # a change of sites ends the live tokens at once; the next login has the new sites
    carol_headers = {"Authorization": f"Bearer {api.login('carol', carol['password'])['access_token']}"}
    r = api.client.patch(f"/api/users/{carol['id']}", json={"all_sites": True}, headers=api.admin)
    assert r.json()["sites"] is None
    assert api.client.get("/api/sites", headers=carol_headers).status_code == 401
    carol_headers = {"Authorization": f"Bearer {api.login('carol', carol['password'])['access_token']}"}
    assert api.client.get("/api/sites", headers=carol_headers).json()["total"] == 2
    api.client.patch(f"/api/users/{carol['id']}", json={"disabled": True}, headers=api.admin)
    assert api.client.get("/api/sites", headers=carol_headers).status_code == 401
    assert api.client.delete(f"/api/users/{carol['id']}", headers=api.admin).status_code == 204
    admin_id = api.client.get("/api/auth/me", headers=api.admin).json()["id"]
    r = api.client.patch(f"/api/users/{admin_id}", json={"role": "viewer"}, headers=api.admin)
    assert r.status_code == 403 and r.json()["error"] == "own_account"
    assert api.client.delete(f"/api/users/{admin_id}", headers=api.admin).status_code == 409


def test_api_tokens_are_read_only_and_revocable(api: Api) -> None:
    r = api.client.post("/api/tokens", json={"name": "grafana"}, headers=api.admin)
    assert r.status_code == 201
    token = r.json()
    assert token["token"].startswith("pxt_") and token["prefix"] == token["token"][:10]
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert api.client.get(f"/api/sites/{api.site_id}/reports/summary", headers=headers).status_code == 200
    r = api.client.post("/api/sites", json={"domain": "x.example"}, headers=headers)
    assert r.status_code == 403 and r.json()["detail"] == "API tokens are read-only"
    listed = api.client.get("/api/tokens", headers=api.admin).json()["items"]
    assert (
        [t["name"] for t in listed] == ["grafana"] and "token" not in listed[0] and listed[0]["last_used_at"]
    )
    assert api.client.delete(f"/api/tokens/{token['id']}", headers=api.admin).status_code == 204
    assert api.client.get("/api/sites", headers=headers).status_code == 401


def test_password_change(api: Api) -> None:
    r = api.client.post(
        "/api/users", json={"username": "erin", "password": "first-password-1"}, headers=api.admin
    )
    assert r.status_code == 201 and r.json()["password"] is None
    headers = api.headers("erin", "first-password-1")
    bad = api.client.post(
        "/api/auth/password",
        json={"current_password": "nope", "new_password": "second-password-2"},
        headers=headers,
    )
    assert bad.status_code == 400
    short = api.client.post(
        "/api/auth/password",
        json={"current_password": "first-password-1", "new_password": "short"},
        headers=headers,
    )
    assert short.status_code == 422
    ok = api.client.post(
        "/api/auth/password",
        json={"current_password": "first-password-1", "new_password": "second-password-2"},
        headers=headers,
    )
    assert ok.status_code == 204
    assert api.login("erin", "second-password-2")["user"]["username"] == "erin"


@pytest.mark.timeout(120)
def test_cli_user_add_while_the_api_runs(api: Api) -> None:
    """`pixel user add` writes the metadata DB the running app reads; the password is shown once."""
    env = {**os.environ, "PIXEL_DATA_DIR": str(api.data_dir)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixel.server.cli",
            "user",
            "add",
            "frank",
            "--role",
            "viewer",
            "--sites",
            str(api.site_id),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    password = re.search(r"password: (\S+)", out.stdout).group(1)  # type: ignore[union-attr]
    assert len(password) == 20
    pair = api.login("frank", password)
    assert pair["user"] == {
        "id": pair["user"]["id"],
        "username": "frank",
        "role": "viewer",
        "sites": [api.site_id],
        "disabled": False,
    }
    again = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "frank"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert again.returncode == 1 and "exists" in again.stderr
