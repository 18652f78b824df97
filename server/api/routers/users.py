"""Users (admins only) and each user's own read-only API tokens.

Who may do what to whom (the rules; `tests/api/test_accounts.py` checks the whole matrix):
- Only admins manage users. An admin limited to some sites ("limited admin") sees and manages only the
  users whose access is within its own: limited users whose sites it all holds. Other users, including
  every user of all sites, are invisible to it (404), so it cannot reset an unrestricted admin's
  password, disable it or delete it. Only an admin of all sites manages users of all sites.
- Nobody grants more than they hold: a limited admin creates users, and sets grants, only with sites it
  holds (403 otherwise), never "all sites" (403), and cannot create sites.
- Nobody changes their own role, grants or disabled flag (403); a user changes its own password only
  through `POST /api/auth/password`, with the current one.
- Site ids that name no site are refused (400, `invalid_sites`).
- The last active admin of all sites cannot be demoted, limited, disabled or deleted (409).
- Every change to a user ends all its sessions at once (see `meta.py`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Response

from pixel.server.api import limits
from pixel.server.api.deps import Admin, Auth, PathId, Principal, State
from pixel.server.api.errors import ApiError, bad_request, not_found
from pixel.server.api.meta import KEEP, Conflict, Keep, LastAdmin, UnknownSites
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


def _beyond(principal: Principal, sites: list[int] | None) -> ApiError:
    if sites is None:
        return ApiError(403, "beyond_your_access", "only an admin of all sites grants all sites")
    extra = sorted(set(sites) - (principal.sites or set()))
    return ApiError(
        403, "beyond_your_access", f"you cannot grant sites you do not hold: {', '.join(map(str, extra))}"
    )


def _grantable(principal: Principal, sites: list[int] | None) -> None:
    """403 if `sites` (None = all) goes beyond what the principal holds."""
    if not principal.holds(sites):
        raise _beyond(principal, sites)


def _managed_user(state: State, principal: Principal, user_id: int) -> dict[str, Any]:
    """The user if the principal may manage it; 404 otherwise (no existence leak to limited admins)."""
    user = state.meta.user(user_id)
    if user is None or not principal.holds(user["sites"]):
        raise not_found("user")
    return user


def _unknown(exc: UnknownSites) -> ApiError:
    return bad_request(str(exc), "invalid_sites")


@router.get("/users", response_model=Page)
def list_users(principal: Admin, state: State, listing: Listing) -> dict[str, Any]:
    users = [user_out(u) for u in state.meta.users() if principal.holds(u["sites"])]
    return paginate(users, listing, ("id", "username", "role"))


@router.post("/users", response_model=UserCreated, status_code=201)
def create_user(body: UserIn, principal: Admin, state: State) -> dict[str, Any]:
    """A new user. `sites` null (the default) means every site: only an admin of all sites gives that;
    a limited admin names sites it holds."""
    _grantable(principal, body.sites)
    password = body.password or generate_password()
    try:
        user_id = state.meta.create_user(body.username, hash_password(password), body.role, body.sites)
    except UnknownSites as exc:
        raise _unknown(exc) from None
    except Conflict:
        raise ApiError(409, "user_exists", f"user {body.username!r} exists") from None
    user = state.meta.user(user_id)
    assert user is not None
    return {**user_out(user), "password": None if body.password else password}


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: PathId, principal: Admin, state: State) -> dict[str, Any]:
    return user_out(_managed_user(state, principal, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: PathId, body: UserPatch, principal: Admin, state: State) -> dict[str, Any]:
    """Changes a user and ends all its sessions (access and refresh tokens) at once."""
    _managed_user(state, principal, user_id)
    grants: list[int] | None | Keep = KEEP
    if body.all_sites:
        grants = None
    elif body.sites is not None:
        grants = body.sites
    if user_id == principal.user_id:
        if body.role is not None or grants is not KEEP or body.disabled is not None:
            raise ApiError(403, "own_account", "you cannot change your own role, sites or disabled flag")
        if body.password is not None:
            raise ApiError(
                403,
                "own_account",
                "change your own password with POST /api/auth/password and your current one",
            )
    if not isinstance(grants, Keep):
        _grantable(principal, grants)
    try:
        state.meta.update_user(
            user_id,
            role=body.role,
            sites=grants,
            disabled=body.disabled,
            password_hash=hash_password(body.password) if body.password is not None else None,
        )
    except UnknownSites as exc:
        raise _unknown(exc) from None
    except LastAdmin as exc:
        raise ApiError(409, "last_admin", str(exc)) from None
    updated = state.meta.user(user_id)
    if updated is None:
        raise not_found("user")
    return user_out(updated)


@router.delete("/users/{user_id}", status_code=204)
def delete_user(user_id: PathId, principal: Admin, state: State) -> Response:
    """Deletes the user with its sessions, grants and API tokens; its id is never given again."""
    _managed_user(state, principal, user_id)
    try:
        state.meta.delete_user(user_id)
    except LastAdmin as exc:
        raise ApiError(409, "last_admin", str(exc)) from None
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
        limits.api_tokens(principal.user_id),
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
