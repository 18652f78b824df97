"""Users (admins only) and each user's own read-only API tokens."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Response

from pixel.server.api.deps import Admin, Auth, PathId, State
from pixel.server.api.errors import ApiError, bad_request, not_found
from pixel.server.api.meta import Conflict
from pixel.server.api.models import (
    ApiTokenCreated,
    ApiTokenIn,
    Page,
    UserCreated,
    UserIn,
    UserOut,
    UserPatch,
)
from pixel.server.api.pagination import Listing, paginate
from pixel.server.api.routers.auth import user_out
from pixel.server.api.security import API_TOKEN_PREFIX, generate_password, hash_password, token_hash

router = APIRouter(tags=["users"])


def _check_sites(state: State, sites: list[int] | None) -> None:
    known = {s["id"] for s in state.meta.sites()}
    unknown = sorted(set(sites or []) - known)
    if unknown:
        raise bad_request(f"unknown site ids: {unknown}", "invalid_sites")


@router.get("/users", response_model=Page)
def list_users(_: Admin, state: State, listing: Listing) -> dict[str, Any]:
    users = [user_out(u) for u in state.meta.all("SELECT * FROM users")]
    return paginate(users, listing, ("id", "username", "role"))


@router.post("/users", response_model=UserCreated, status_code=201)
def create_user(body: UserIn, _: Admin, state: State) -> dict[str, Any]:
    _check_sites(state, body.sites)
    password = body.password or generate_password()
    try:
        user_id = state.meta.create_user(body.username, hash_password(password), body.role, body.sites)
    except Conflict:
        raise ApiError(409, "user_exists", f"user {body.username!r} exists") from None
    user = state.meta.user(user_id)
    assert user is not None
    return {**user_out(user), "password": None if body.password else password}


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: PathId, _: Admin, state: State) -> dict[str, Any]:
    user = state.meta.user(user_id)
    if user is None:
        raise not_found("user")
    return user_out(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: PathId, body: UserPatch, principal: Admin, state: State) -> dict[str, Any]:
    user = state.meta.user(user_id)
    if user is None:
        raise not_found("user")
    changes: dict[str, Any] = {}
    if body.role is not None:
        changes["role"] = body.role
    if body.all_sites:
        changes["sites"] = None
    elif body.sites is not None:
        _check_sites(state, body.sites)
        changes["sites"] = body.sites
    if body.disabled is not None:
        changes["disabled"] = int(body.disabled)
    if body.password is not None:
        changes["password_hash"] = hash_password(body.password)
    losing_admin = user["role"] == "admin" and (changes.get("role") == "viewer" or changes.get("disabled"))
    if losing_admin and state.meta.count_admins(exclude=user_id) == 0:
        raise ApiError(409, "last_admin", "this is the last active admin")
    state.meta.update("users", user_id, changes)
    if changes.get("disabled") or "password_hash" in changes:
        with state.meta.transaction() as conn:
            conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?", (user_id,))
    updated = state.meta.user(user_id)
    assert updated is not None
    return user_out(updated)


@router.delete("/users/{user_id}", status_code=204)
def delete_user(user_id: PathId, principal: Admin, state: State) -> Response:
    user = state.meta.user(user_id)
    if user is None:
        raise not_found("user")
    if user["role"] == "admin" and state.meta.count_admins(exclude=user_id) == 0:
        raise ApiError(409, "last_admin", "this is the last active admin")
    state.meta.delete("users", user_id)
    return Response(status_code=204)


# -- API tokens ----------------------------------------------------------------------------------

_TOKEN_COLUMNS = "id, name, prefix, created_at, last_used_at"


@router.get("/tokens", response_model=Page)
def list_tokens(principal: Auth, state: State, listing: Listing) -> dict[str, Any]:
    rows = state.meta.all(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ?", principal.user_id)
    return paginate(rows, listing, ("id", "name", "created_at"))


@router.post("/tokens", response_model=ApiTokenCreated, status_code=201)
def create_token(body: ApiTokenIn, principal: Auth, state: State) -> dict[str, Any]:
    """A read-only API token for scripts (GET requests only), shown once."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = state.meta.insert(
        "api_tokens",
        {
            "user_id": principal.user_id,
            "name": body.name,
            "hash": token_hash(token),
            "prefix": token[:10],
            "created_at": time.time(),
        },
    )
    row = state.meta.one(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?", token_id)
    assert row is not None
    return {**row, "token": token}


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(token_id: PathId, principal: Auth, state: State) -> Response:
    with state.meta.transaction() as conn:
        gone = conn.execute(
            "DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, principal.user_id)
        ).rowcount
    if not gone:
        raise not_found("token")
    return Response(status_code=204)
