"""Accounts (issue 12, part 2): ids are never reused, every change of a user ends its sessions at once,
site grants die with their site, unknown site ids are refused, nobody lifts their own limits, and every
malformed token is a 401. Time is pinned: tokens are issued and checked against an injected clock."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.api import create_app
from pixel.server.api.cli import main as cli_main
from pixel.server.api.meta import _V1, MetaDB
from pixel.server.api.metaschema import MIGRATIONS
from pixel.server.api.security import ACCESS_TTL, REFRESH_TTL, Tokens, hash_password
from pixel.server.settings import Settings
from tests.api.conftest import Api

T0 = 1_700_000_000  # the pinned "now" of every token in this module
PASSWORD = "a-long-password-123"
_HASH = hash_password(PASSWORD)  # one argon2 hash for every user made here (it is slow on purpose)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    app: FastAPI
    client: TestClient
    meta: MetaDB
    clock: Clock
    key: bytes
    data_dir: Path

    def token(self, user_id: int) -> dict[str, str]:
        """Real access token of the user under its current generation, as login would issue it."""
        user = self.meta.user(user_id)
        assert user is not None
        access, _ = self.app.state.pixel.tokens.issue_access(user_id, user["role"], user["generation"])
        return {"Authorization": f"Bearer {access}"}

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        r = self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def site(self, domain: str) -> int:
        return self.meta.insert(
            "sites", {"domain": domain, "name": domain, "timezone": "UTC", "created_at": 0}
        )

    def user(self, name: str, role: str = "viewer", sites: list[int] | None = None) -> int:
        return self.meta.create_user(name, _HASH, role, sites)


def make_env(api: Api, data_dir: Path) -> Env:
    settings_ = Settings(data_dir=data_dir)
    app = create_app(settings_, api.store)
    clock = Clock()
    key = (settings_.state_dir / "api-signing.key").read_bytes()
    app.state.pixel.tokens = Tokens(key, clock=clock)
    client = TestClient(app)
    return Env(app, client, app.state.pixel.meta, clock, key, data_dir)


@pytest.fixture
def env(api: Api, tmp_path: Path) -> Iterator[Env]:
    e = make_env(api, tmp_path / "data")
    with e.client:
        yield e


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


# -- ids are never reused ---------------------------------------------------------------------------


def test_a_deleted_users_tokens_do_not_become_the_next_users(env: Env) -> None:
    root = env.user("root", "admin")
    viewer = env.user("viewer", "viewer")
    pair = env.login("viewer")
    assert env.client.get("/api/auth/me", headers=bearer(pair)).json()["id"] == viewer
    assert env.client.delete(f"/api/users/{viewer}", headers=env.token(root)).status_code == 204
    r = env.client.post("/api/users", json={"username": "newadmin", "role": "admin"}, headers=env.token(root))
    assert r.status_code == 201
    assert r.json()["id"] == viewer + 1  # the deleted id is not given again
    for path, body in (("/api/auth/me", None), ("/api/users", None)):
        r = env.client.get(path, headers=bearer(pair))
        assert (r.status_code, r.json()["error"]) == (401, "invalid_token"), (path, body)
    r = env.client.post("/api/users", json={"username": "eve", "role": "admin"}, headers=bearer(pair))
    assert r.status_code == 401 and env.meta.user_by_name("eve") is None
    r = env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")


def test_a_grant_dies_with_its_site_and_never_applies_to_the_next_one(env: Env) -> None:
    root = env.user("root", "admin")
    shop, blog = env.site("shop.example"), env.site("blog.example")
    viewer = env.user("viewer", "viewer", [shop, blog])
    dashboard = env.client.post(
        f"/api/sites/{blog}/dashboards", json={"name": "d"}, headers=env.token(root)
    ).json()["id"]
    goal = env.client.post(
        f"/api/sites/{blog}/goals",
        json={"name": "g", "kind": "event", "event_name": "buy"},
        headers=env.token(root),
    ).json()["id"]
    assert env.client.delete(f"/api/sites/{blog}", headers=env.token(root)).status_code == 204
    assert env.meta.user(viewer)["sites"] == [shop]  # type: ignore[index]
    assert env.meta.all("SELECT * FROM user_sites WHERE site_id = ?", blog) == []
    new = env.client.post("/api/sites", json={"domain": "new.example"}, headers=env.token(root)).json()["id"]
    assert new == blog + 1
    headers = bearer(env.login("viewer"))
    assert [s["id"] for s in env.client.get("/api/sites", headers=headers).json()["items"]] == [shop]
    assert env.client.get(f"/api/sites/{new}", headers=headers).status_code == 404
    assert env.client.get(f"/api/sites/{blog}", headers=headers).status_code == 404
    # the deleted site's dashboard and goal went with it; new ones get new ids
    assert env.client.get(f"/api/dashboards/{dashboard}", headers=env.token(root)).status_code == 404
    assert env.meta.all("SELECT id FROM goals WHERE id = ?", goal) == []
    again = env.client.post(f"/api/sites/{new}/dashboards", json={"name": "d"}, headers=env.token(root))
    assert again.json()["id"] == dashboard + 1
    goal2 = env.client.post(
        f"/api/sites/{new}/goals",
        json={"name": "g", "kind": "event", "event_name": "x"},
        headers=env.token(root),
    )
    assert goal2.json()["id"] == goal + 1


def test_api_token_ids_are_not_reused(env: Env) -> None:
    root = env.user("root", "admin")
    first = env.client.post("/api/tokens", json={"name": "a"}, headers=env.token(root)).json()
    assert env.client.delete(f"/api/tokens/{first['id']}", headers=env.token(root)).status_code == 204
    second = env.client.post("/api/tokens", json={"name": "b"}, headers=env.token(root)).json()
    assert second["id"] == first["id"] + 1


# -- every change of a user ends its sessions at once ----------------------------------------------

CHANGES: dict[str, dict[str, Any]] = {
    "disable": {"disabled": True},
    "password": {"password": "another-password-456"},
    "role": {"role": "admin"},
    "sites": {"sites": []},
    "all_sites": {"all_sites": True},
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_of_the_user_ends_its_access_and_refresh_tokens_at_once(env: Env, change: str) -> None:
    root = env.user("root", "admin")
    shop = env.site("shop.example")
    carol = env.user("carol", "viewer", [shop])
    pairs = [env.login("carol"), env.login("carol")]
    api_token = env.client.post("/api/tokens", json={"name": "t"}, headers=bearer(pairs[0])).json()["token"]
    for pair in pairs:
        assert env.client.get("/api/sites", headers=bearer(pair)).status_code == 200
    r = env.client.patch(f"/api/users/{carol}", json=CHANGES[change], headers=env.token(root))
    assert r.status_code == 200, r.text
    for pair in pairs:  # no clock moved: the access tokens are still within their 15 minutes
        r = env.client.get("/api/sites", headers=bearer(pair))
        assert (r.status_code, r.json()["error"]) == (401, "invalid_token"), change
        r = env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert (r.status_code, r.json()["error"]) == (401, "invalid_token"), change
    api_status = env.client.get("/api/sites", headers={"Authorization": f"Bearer {api_token}"}).status_code
    # API tokens follow the user's current role and sites; they end with a new password or disabling
    assert api_status == (401 if change in ("disable", "password") else 200)
    if change != "disable":
        password = CHANGES[change].get("password", PASSWORD)
        assert env.client.get("/api/auth/me", headers=bearer(env.login("carol", password))).status_code == 200


def test_delete_self_password_change_logout_all_and_cli_reset_end_every_session(env: Env) -> None:
    env.user("root", "admin")
    dave = env.user("dave", "viewer")
    # own password change: all sessions end, this one too
    pairs = [env.login("dave"), env.login("dave")]
    r = env.client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "dave-new-password-1"},
        headers=bearer(pairs[0]),
    )
    assert r.status_code == 204
    for pair in pairs:
        assert env.client.get("/api/auth/me", headers=bearer(pair)).status_code == 401
        assert (
            env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
            == 401
        )
    # logout everywhere
    pairs = [env.login("dave", "dave-new-password-1"), env.login("dave", "dave-new-password-1")]
    r = env.client.post("/api/auth/logout", json={"all": True}, headers=bearer(pairs[0]))
    assert r.status_code == 204
    for pair in pairs:
        assert env.client.get("/api/auth/me", headers=bearer(pair)).status_code == 401
        assert (
            env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
            == 401
        )
    # pixel user reset-password
    pair = env.login("dave", "dave-new-password-1")
    assert cli_main(["user", "reset-password", "dave", "--data-dir", str(env.data_dir)]) == 0
    assert env.client.get("/api/auth/me", headers=bearer(pair)).status_code == 401
    assert (
        env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    )
    assert env.meta.user(dave)["generation"] == 4  # type: ignore[index]


def test_token_expiry_follows_the_injected_clock(env: Env) -> None:
    env.user("erin", "viewer")
    pair = env.login("erin")
    env.clock.now = T0 + ACCESS_TTL - 1
    assert env.client.get("/api/auth/me", headers=bearer(pair)).status_code == 200
    env.clock.now = T0 + ACCESS_TTL
    r = env.client.get("/api/auth/me", headers=bearer(pair))
    assert (r.status_code, r.json()["error"]) == (401, "token_expired")
    fresh = env.client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    env.clock.now = T0 + ACCESS_TTL + REFRESH_TTL + 1
    r = env.client.post("/api/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]})
    assert r.status_code == 401


# -- unknown site ids ------------------------------------------------------------------------------


def test_unknown_site_ids_are_refused_and_nothing_changes(env: Env) -> None:
    root = env.user("root", "admin")
    shop = env.site("shop.example")
    gone = env.site("gone.example")
    env.meta.delete("sites", gone)
    for sites in ([gone], [shop, 999], [999, 1000]):
        r = env.client.post("/api/users", json={"username": "x", "sites": sites}, headers=env.token(root))
        missing = ", ".join(str(s) for s in sorted(sites) if s != shop)
        assert (r.status_code, r.json()) == (
            400,
            {"error": "invalid_sites", "detail": f"unknown site ids: {missing}"},
        )
        assert env.meta.user_by_name("x") is None
    viewer = env.user("viewer", "viewer", [shop])
    before = env.meta.user(viewer)
    r = env.client.patch(f"/api/users/{viewer}", json={"sites": [shop, gone]}, headers=env.token(root))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_sites")
    assert env.meta.user(viewer) == before  # grants and generation as they were
    r = env.client.patch(
        f"/api/users/{viewer}", json={"sites": [shop], "all_sites": True}, headers=env.token(root)
    )
    assert r.status_code == 422


def test_cli_user_add_refuses_unknown_or_malformed_site_ids(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = env.site("shop.example")
    other = env.site("other.example")
    base = ["user", "add", "frank", "--role", "viewer", "--data-dir", str(env.data_dir)]
    assert cli_main([*base, "--sites", f"{shop},999"]) == 2
    assert capsys.readouterr().err == (
        f"pixel user add: unknown site ids: 999 (existing sites: {shop}, {other})\n"
    )
    for bad in ("", ",", "1,,2", "x", "-1", "1.5", "١"):
        assert cli_main([*base, "--sites", bad]) == 2, bad
        assert capsys.readouterr().err == (
            f"pixel user add: --sites takes comma-separated site ids, not {bad!r}\n"
        )
    assert env.meta.user_by_name("frank") is None
    assert cli_main([*base, "--sites", f" {other} "]) == 0
    assert env.meta.user_by_name("frank")["sites"] == [other]  # type: ignore[index]


# -- who may do what to whom ---------------------------------------------------------------------

# The accounts every matrix case starts from: (name, role, sites) with sites among "A", "B".
ACCOUNTS: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("root", "admin", None),  # admin of all sites
    ("root2", "admin", None),
    ("vall", "viewer", None),  # viewer of all sites
    ("la", "admin", ("A",)),  # admins limited to sites
    ("la2", "admin", ("A",)),
    ("lb", "admin", ("B",)),
    ("lab", "admin", ("A", "B")),
    ("lab2", "admin", ("A", "B")),
    ("va", "viewer", ("A",)),
    ("vb", "viewer", ("B",)),
]

# What an actor does to a target: GET, PATCH of one field, DELETE.
ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "GET", {}),
    ("role", "PATCH", {}),  # to the role the target does not have
    ("sites_a", "PATCH", {"sites": ["A"]}),
    ("sites_b", "PATCH", {"sites": ["B"]}),
    ("all_sites", "PATCH", {"all_sites": True}),
    ("disable", "PATCH", {"disabled": True}),
    ("password", "PATCH", {"password": "reset-by-someone-1"}),
    ("delete", "DELETE", {}),
]

ALL = "200 200 200 200 200 200 200 204"
HIDDEN = "404 404 404 404 404 404 404 404"
VIEWER = "403 403 403 403 403 403 403 403"  # admins_only
SELF = "200 403 403 403 403 403 403 204"  # own role/sites/flag/password: own_account; may delete itself
WITHIN_A = "200 200 200 403 403 200 200 204"  # limited admin of A on a user of A only
WITHIN_AB = "200 200 200 200 403 200 200 204"

NAMES = [name for name, _, _ in ACCOUNTS]


def _row(actor: str, groups: dict[str, list[str]]) -> dict[str, str]:
    """{expected statuses: targets} -> {target: expected statuses}, the actor itself named "self";
    every account must be a target exactly once."""
    row = {("self" if t == actor else t): expected for expected, targets in groups.items() for t in targets}
    assert sorted(sum(groups.values(), [])) == sorted(NAMES), actor
    return row


def _others(*names: str) -> list[str]:
    return [n for n in NAMES if n not in names]


# actor -> target -> expected status of each action, in ACTIONS' order.
MATRIX: dict[str, dict[str, str]] = {
    "root": _row("root", {SELF: ["root"], ALL: _others("root")}),
    "la": _row("la", {SELF: ["la"], WITHIN_A: ["la2", "va"], HIDDEN: _others("la", "la2", "va")}),
    "lab": _row(
        "lab",
        {
            SELF: ["lab"],
            WITHIN_AB: ["la", "la2", "lb", "lab2", "va", "vb"],
            HIDDEN: ["root", "root2", "vall"],
        },
    ),
    "va": _row("va", {VIEWER: NAMES}),
    "vall": _row("vall", {VIEWER: NAMES}),
}


# actor -> (role of the new user, its sites) -> status of POST /api/users.
CREATE: dict[str, dict[tuple[str, tuple[str, ...] | None], int]] = {
    "root": {(r, s): 201 for r in ("admin", "viewer") for s in (None, ("A",), ("B",), ("A", "B"))}
    | {(r, ("Z",)): 400 for r in ("admin", "viewer")},
    "la": {(r, s): 403 for r in ("admin", "viewer") for s in (None, ("B",), ("A", "B"), ("Z",))}
    | {(r, ("A",)): 201 for r in ("admin", "viewer")},
    "lab": {(r, s): 403 for r in ("admin", "viewer") for s in (None, ("Z",))}
    | {(r, s): 201 for r in ("admin", "viewer") for s in (("A",), ("B",), ("A", "B"))},
    "va": {(r, s): 403 for r in ("admin", "viewer") for s in (None, ("A",), ("Z",))},
    "vall": {(r, s): 403 for r in ("admin", "viewer") for s in (None, ("A",))},
}


@dataclass
class Template:
    path: Path
    ids: dict[str, int]
    sites: dict[str, int]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The accounts of the matrix, in a metadata DB each case copies."""
    path = tmp_path_factory.mktemp("matrix") / "template.sqlite3"
    meta = MetaDB(path)
    sites = {
        name: meta.insert(
            "sites", {"domain": f"{name.lower()}.example", "name": name, "timezone": "UTC", "created_at": 0}
        )
        for name in ("A", "B", "C")
    }
    meta.delete("sites", sites.pop("C"))  # a deleted site: its id names nothing ("Z" below)
    sites["Z"] = 3
    ids = {
        name: meta.create_user(name, _HASH, role, None if held is None else [sites[s] for s in held])
        for name, role, held in ACCOUNTS
    }
    return Template(path, ids, sites)


def _fresh_meta(env: Env, template: Template, case: str) -> MetaDB:
    """A copy of the template DB, put in the app for one case."""
    path = env.data_dir / f"case-{case}.sqlite3"
    src, dst = sqlite3.connect(template.path), sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    meta = MetaDB(path)
    env.app.state.pixel.meta = meta
    env.meta = meta
    return meta


def _body(
    action: str, extra: dict[str, Any], target: dict[str, Any], sites: dict[str, int]
) -> dict[str, Any]:
    if action == "role":
        return {"role": "viewer" if target["role"] == "admin" else "admin"}
    if "sites" in extra:
        return {"sites": [sites[s] for s in extra["sites"]]}
    return extra


def test_privilege_matrix_users(env: Env, template: Template) -> None:
    """Every actor on every target, every field: the exact status; a refusal changes nothing, a success
    changes exactly what was asked and ends the target's sessions."""
    checked = 0
    for actor, row in MATRIX.items():
        for target_name, expected_row in row.items():
            expected = [int(code) for code in expected_row.split()]
            for (action, method, extra), status in zip(ACTIONS, expected, strict=True):
                meta = _fresh_meta(env, template, f"{checked}")
                actor_id = template.ids[actor]
                target_id = actor_id if target_name == "self" else template.ids[target_name]
                before = meta.users()
                target = meta.user(target_id)
                assert target is not None
                path = f"/api/users/{target_id}"
                body = _body(action, extra, target, template.sites)
                r = env.client.request(method, path, json=body or None, headers=env.token(actor_id))
                case = (actor, target_name, action, r.text)
                assert r.status_code == status, case
                after = meta.user(target_id)
                if status >= 400:
                    assert meta.users() == before, case
                    code = {403: ("admins_only", "own_account", "beyond_your_access"), 404: ("not_found",)}
                    assert r.json()["error"] in code[status], case
                    if actor in ("va", "vall"):
                        assert r.json()["error"] == "admins_only", case
                    elif target_name == "self":
                        assert r.json()["error"] == "own_account", case
                elif method == "DELETE":
                    assert after is None, case
                elif method == "PATCH":
                    assert after is not None and after["generation"] == target["generation"] + 1, case
                    field = {
                        "sites_a": "sites",
                        "sites_b": "sites",
                        "all_sites": "sites",
                        "disable": "disabled",
                    }
                    name = field.get(action, action)
                    if name != "password":
                        want = {
                            "role": body.get("role"),
                            "sites": body.get("sites") if action != "all_sites" else None,
                            "disabled": True,
                        }[name]
                        assert after[name] == want, case
                    else:
                        assert after["password_hash"] != target["password_hash"], case
                    others = [u for u in meta.users() if u["id"] != target_id]
                    assert others == [u for u in before if u["id"] != target_id], case
                checked += 1
    assert checked == len(MATRIX) * len(NAMES) * len(ACTIONS) == 400


def test_privilege_matrix_create_and_list(env: Env, template: Template) -> None:
    checked = 0
    for actor, cases in CREATE.items():
        for (role, held), status in cases.items():
            meta = _fresh_meta(env, template, f"create-{checked}")
            before = meta.users()
            sites = None if held is None else [template.sites[s] for s in held]
            r = env.client.post(
                "/api/users",
                json={"username": "newbie", "role": role, "sites": sites},
                headers=env.token(template.ids[actor]),
            )
            case = (actor, role, held, r.text)
            assert r.status_code == status, case
            if status == 201:
                made = meta.user_by_name("newbie")
                assert made is not None and (made["role"], made["sites"]) == (role, sites), case
                assert made["id"] > max(template.ids.values()), case
            else:
                assert meta.users() == before, case
            checked += 1
    assert checked == 40
    # what each admin sees in the list: the users within its own access
    _fresh_meta(env, template, "list")
    seen = {
        actor: sorted(
            u["username"]
            for u in env.client.get(
                "/api/users", params={"limit": 100}, headers=env.token(template.ids[actor])
            ).json()["items"]
        )
        for actor in ("root", "la", "lab")
    }
    assert seen == {
        "root": sorted(name for name, _, _ in ACCOUNTS),
        "la": ["la", "la2", "va"],
        "lab": ["la", "la2", "lab", "lab2", "lb", "va", "vb"],
    }


def test_only_admins_of_all_sites_create_sites_and_api_tokens_stay_read_only(
    env: Env, template: Template
) -> None:
    _fresh_meta(env, template, "sites")
    for actor, status in (("root", 201), ("la", 403), ("lab", 403), ("va", 403)):
        r = env.client.post(
            "/api/sites", json={"domain": f"{actor}.example"}, headers=env.token(template.ids[actor])
        )
        assert r.status_code == status, (actor, r.text)
    token = env.client.post("/api/tokens", json={"name": "t"}, headers=env.token(template.ids["root"])).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    target = template.ids["va"]
    assert env.client.get(f"/api/users/{target}", headers=headers).status_code == 200
    for method, body in (("PATCH", {"all_sites": True}), ("DELETE", None)):
        assert (
            env.client.request(method, f"/api/users/{target}", json=body, headers=headers).status_code == 403
        )


def test_the_last_admin_of_all_sites_stays(env: Env) -> None:
    root = env.user("root", "admin")
    shop = env.site("shop.example")
    limited = env.user("limited", "admin", [shop])
    r = env.client.delete(f"/api/users/{root}", headers=env.token(root))
    assert (r.status_code, r.json()["error"]) == (409, "last_admin")
    second = env.user("second", "admin")
    # demoting, limiting or disabling one of two leaves one: allowed; the other then cannot be lost
    assert (
        env.client.patch(f"/api/users/{second}", json={"sites": [shop]}, headers=env.token(root)).status_code
        == 200
    )
    assert env.client.delete(f"/api/users/{root}", headers=env.token(root)).status_code == 409
    assert env.meta.user(root) is not None and env.meta.user(limited) is not None


# -- malformed tokens ------------------------------------------------------------------------------


def _signed(env: Env, claims: Any, headers: dict[str, Any] | None = None) -> str:
    """Any JSON value as a JWT payload, signed with the install's real key."""
    return jwt.api_jws.encode(json.dumps(claims).encode(), env.key, algorithm="HS256", headers=headers)


def _valid_claims(env: Env, user_id: int) -> dict[str, Any]:
    user = env.meta.user(user_id)
    assert user is not None
    return {
        "sub": str(user_id),
        "gen": user["generation"],
        "role": user["role"],
        "typ": "access",
        "jti": "0123456789abcdef" * 2,
        "iat": T0,
        "exp": T0 + ACCESS_TTL,
    }


BAD_VALUES: dict[str, list[Any]] = {
    "sub": [
        "abc",
        "1.0",
        " 1",
        "+1",
        "01",
        "0",
        "-1",
        "١",
        "1e3",
        "99999999999999999999",
        "",
        1,
        1.0,
        None,
        [1],
        {},
        True,
    ],
    "gen": ["1", 0, -1, 2**63, 2**70, 1.5, None, True, [1], {"a": 1}],
    "typ": ["refresh", "ACCESS", "", None, 1, ["access"]],
    "role": ["root", None, 1, ["admin"]],
    "jti": ["x", "", None, 1, ["a"], "0123456789ABCDEF" * 2, "0" * 33],
    "iat": ["1", None, 1.5, [T0], 2**70, -1, T0 + 10_000],
    "exp": ["1", None, 1.5, [T0], 2**70, 10**40, T0 + ACCESS_TTL + 1],
}


def test_every_malformed_access_token_is_a_401(env: Env) -> None:
    admin = env.user("admin", "admin")
    claims = _valid_claims(env, admin)
    assert (
        env.client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {_signed(env, claims)}"}
        ).status_code
        == 200
    )
    tokens: list[tuple[str, str]] = []
    for name, values in BAD_VALUES.items():
        tokens += [(f"{name}={v!r}", _signed(env, {**claims, name: v})) for v in values]
        tokens.append((f"no {name}", _signed(env, {k: v for k, v in claims.items() if k != name})))
    tokens += [
        ("extra claim", _signed(env, {**claims, "admin": True})),
        ("a list", _signed(env, [claims])),
        ("a string", _signed(env, "claims")),
        ("null", _signed(env, None)),
        ("sub of a user that never existed", _signed(env, {**claims, "sub": "424242"})),
        ("old generation", _signed(env, {**claims, "gen": claims["gen"] + 1})),
        ("HS512", jwt.encode(claims, env.key, algorithm="HS512")),
        ("kid header", _signed(env, claims, {"kid": "../../etc/passwd"})),
        ("garbage", "a.b.c"),
        ("dots", "..."),
        ("long", "x" * 10_000),
        ("pxt_ unknown", "pxt_" + "a" * 43),
    ]
    for label, token in tokens:
        r = env.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"] in ("invalid_token", "token_expired"), (
            label,
            r.text,
        )
        r = env.client.post(
            "/api/users", json={"username": "z"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 401, label
    assert env.meta.user_by_name("z") is None


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_CLAIM_NAMES = ("sub", "gen", "role", "typ", "jti", "iat", "exp")


@st.composite
def _mutated_claims(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(changes, removed) to apply to valid claims: values replaced by arbitrary JSON, claims removed,
    claims added."""
    changes = draw(st.dictionaries(st.sampled_from(_CLAIM_NAMES) | st.text(max_size=4), _json, max_size=4))
    removed = draw(st.sets(st.sampled_from(_CLAIM_NAMES), max_size=3))
    return changes, {k: None for k in removed}


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(mutation=_mutated_claims())
def test_malformed_claims_signed_with_the_real_key_are_401(
    env: Env, mutation: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    admin = env.meta.user_by_name("hyp") or env.meta.user(env.user("hyp", "admin"))
    assert admin is not None
    valid = _valid_claims(env, admin["id"])
    changes, removed = mutation
    claims = {k: v for k, v in {**valid, **changes}.items() if k not in removed}
    r = env.client.get("/api/auth/me", headers={"Authorization": f"Bearer {_signed(env, claims)}"})
    same = json.dumps(claims, sort_keys=True) == json.dumps(valid, sort_keys=True)
    assert r.status_code == (200 if same else 401), (claims, r.text)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    token=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300)
)
def test_arbitrary_bearer_strings_are_401(env: Env, token: str) -> None:
    r = env.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (token, r.text)


# -- the upgrade of an existing metadata DB --------------------------------------------------------


def test_migration_keeps_the_data_drops_dead_grants_and_ends_old_sessions(tmp_path: Path) -> None:
    path = tmp_path / "meta.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO sites (id, domain, name, timezone, created_at) VALUES (1, 'a.example', 'A', 'UTC', 5),"
        " (2, 'b.example', 'B', 'Europe/Berlin', 6), (4, 'd.example', 'D', 'UTC', 7)"
    )
    users = [
        (1, "root", "admin", None),
        (2, "viewer", "viewer", json.dumps([2, 3, "x", 4])),  # 3 was deleted; "x" is junk
        (3, "broken", "viewer", "not json"),
        (5, "nothing", "viewer", "[]"),
    ]
    conn.executemany(
        "INSERT INTO users (id, username, password_hash, role, sites, created_at) VALUES (?, ?, 'h', ?, ?, 1)",
        [(i, n, r, s) for i, n, r, s in users],
    )
    conn.execute(
        "INSERT INTO api_tokens (id, user_id, name, hash, prefix, created_at) VALUES (7, 2, 't', 'hh', 'pxt_', 1)"
    )
    conn.execute("INSERT INTO refresh_tokens (hash, user_id, expires_at) VALUES ('r', 2, 1e12)")
    conn.execute("INSERT INTO goals (id, site_id, name, kind, event_name) VALUES (3, 2, 'g', 'event', 'e')")
    conn.execute(
        "INSERT INTO dashboards (id, site_id, name, widgets, created_at, updated_at) VALUES (9, 4, 'd', '[]', 1, 2)"
    )
    conn.close()

    meta = MetaDB(path)
    assert meta.one("PRAGMA user_version") == {"user_version": len(MIGRATIONS)}
    assert [(u["id"], u["username"], u["role"], u["sites"], u["generation"]) for u in meta.users()] == [
        (1, "root", "admin", None, 1),
        (2, "viewer", "viewer", [2, 4], 1),
        (3, "broken", "viewer", [], 1),  # unreadable grants: no site rather than every site
        (5, "nothing", "viewer", [], 1),
    ]
    assert [(s["id"], s["domain"], s["timezone"], s["created_at"]) for s in meta.sites()] == [
        (1, "a.example", "UTC", 5.0),
        (2, "b.example", "Europe/Berlin", 6.0),
        (4, "d.example", "UTC", 7.0),
    ]
    assert [(t["id"], t["user_id"]) for t in meta.all("SELECT * FROM api_tokens")] == [(7, 2)]
    assert meta.all("SELECT * FROM refresh_tokens") == []  # sessions from before the upgrade log in again
    assert [g["id"] for g in meta.all("SELECT * FROM goals")] == [3]
    assert [(d["id"], d["site_id"]) for d in meta.all("SELECT * FROM dashboards")] == [(9, 4)]
    # from now on ids are not reused, and deleting a site deletes its grants, goals and dashboards
    meta.delete_user(5)
    assert meta.create_user("new", "h", "viewer", [4]) == 6
    meta.delete("sites", 4)
    assert meta.user(2)["sites"] == [2]  # type: ignore[index]
    assert meta.user(6)["sites"] == []  # type: ignore[index]
    assert meta.all("SELECT * FROM dashboards") == []
    assert meta.insert("sites", {"domain": "e.example", "name": "E", "timezone": "UTC", "created_at": 0}) == 5
    assert meta.one("PRAGMA foreign_keys") == {"foreign_keys": 1}
    MetaDB(path)  # opening it again is a no-op
    assert meta.one("PRAGMA user_version") == {"user_version": len(MIGRATIONS)}


@settings(max_examples=500, deadline=None, derandomize=True)
@given(payload=_json, header=st.dictionaries(st.text(max_size=5), _json, max_size=2))
def test_decode_access_raises_only_invalid_token_on_any_signed_payload(
    payload: Any, header: dict[str, Any]
) -> None:
    """Any JSON value as the payload, with any extra header fields, signed with the key: decode_access
    raises jwt.InvalidTokenError and nothing else (a 401, never a 500)."""
    key = b"k" * 64
    tokens = Tokens(key, clock=Clock())
    token = jwt.api_jws.encode(json.dumps(payload).encode(), key, algorithm="HS256", headers=header or None)
    with pytest.raises(jwt.InvalidTokenError):
        tokens.decode_access(token)
    valid, _ = tokens.issue_access(7, "viewer", 3)
    assert tokens.decode_access(valid).user_id == 7
