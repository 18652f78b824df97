"""Login, token refresh (rotating), logout (revocation), the current user, password change.

A refresh token works only under the session generation it was issued with: any change that ends the
user's sessions (see `meta.py`) ends its refresh tokens too, at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from pixel.server.api.client_address import client_address
from pixel.server.api.deps import Auth, State
from pixel.server.api.errors import ApiError, bad_request, forbidden, unauthorized
from pixel.server.api.models import LoginIn, LogoutIn, PasswordIn, RefreshIn, TokenPair, UserOut
from pixel.server.api.security import REFRESH_TTL, hash_password, token_hash, verify_password

router = APIRouter(prefix="/auth", tags=["auth"])


def user_out(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user[k] for k in ("id", "username", "role", "sites", "disabled")}


def issue_pair(state: State, user: dict[str, Any]) -> dict[str, Any]:
    """A new access token and refresh token under the user's current session generation."""
    access, _ = state.tokens.issue_access(user["id"], user["role"], user["generation"])
    refresh = secrets.token_urlsafe(32)
    now = state.tokens.now()
    with state.meta.transaction() as conn:
        conn.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now,))
        conn.execute("DELETE FROM revoked_access WHERE expires_at < ?", (now,))
        # Only if the generation is still the one the access token carries (a concurrent change of the
        # user ends it): otherwise the refresh token would outlive the change.
        inserted = conn.execute(
            "INSERT INTO refresh_tokens (hash, user_id, generation, expires_at)"
            " SELECT ?, id, generation, ? FROM users WHERE id = ? AND generation = ? AND disabled = 0",
            (token_hash(refresh), now + REFRESH_TTL, user["id"], user["generation"]),
        ).rowcount
    if not inserted:
        raise unauthorized("this session was ended; log in again", "invalid_token")
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": state.tokens.access_ttl,
        "user": user_out(user),
    }


@router.post("/login", response_model=TokenPair)
def login(body: LoginIn, request: Request, state: State) -> dict[str, Any]:
    client = client_address(request)
    wait = state.limiter.retry_after(client, body.username)
    if wait:
        raise ApiError(
            429, "too_many_attempts", f"too many failed logins; retry in {wait} s", {"Retry-After": str(wait)}
        )
    user = state.meta.user_by_name(body.username)
    ok = verify_password(user["password_hash"] if user else None, body.password)
    if not ok or user is None or user["disabled"]:
        state.limiter.failed(client, body.username)
        raise unauthorized("wrong username or password", "invalid_credentials")
    state.limiter.succeeded(client, body.username)
    return issue_pair(state, user)


@router.post("/refresh", response_model=TokenPair)
def refresh(state: State, body: RefreshIn | None = None) -> dict[str, Any]:
    """Trade a refresh token for a new pair; the old refresh token stops working."""
    if body is None or not body.refresh_token:
        raise unauthorized("missing refresh token", "missing_token")
    digest = token_hash(body.refresh_token)
    with state.meta.transaction() as conn:
        row = conn.execute("SELECT * FROM refresh_tokens WHERE hash = ?", (digest,)).fetchone()
        if row is None or row["expires_at"] < state.tokens.now():
            raise unauthorized("invalid or expired refresh token", "invalid_token")
        if row["revoked"]:
            # A used token came back: it was stolen or replayed. End every session of the user.
            conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?", (row["user_id"],))
            replayed = True
        else:
            conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE hash = ?", (digest,))
            replayed = False
    if replayed:
        raise unauthorized(
            "refresh token already used; all sessions of this user were ended", "invalid_token"
        )
    user = state.meta.user(row["user_id"])
    if user is None or user["disabled"]:
        raise unauthorized("user no longer exists or is disabled", "invalid_token")
    if user["generation"] != row["generation"]:
        raise unauthorized("this session was ended; log in again", "invalid_token")
    return issue_pair(state, user)


@router.post("/logout", status_code=204)
def logout(principal: Auth, state: State, body: LogoutIn | None = None) -> Response:
    """Ends this access token (and the refresh token given); with `all`, every session of the user:
    all its access and refresh tokens (its API tokens are kept: delete them with /api/tokens)."""
    body = body or LogoutIn()
    if body.all:
        state.meta.end_sessions(principal.user_id)
    with state.meta.transaction() as conn:
        if principal.jti:
            conn.execute(
                "INSERT OR IGNORE INTO revoked_access (jti, expires_at) VALUES (?, ?)",
                (principal.jti, principal.exp or state.tokens.now() + state.tokens.access_ttl),
            )
        if body.refresh_token:
            conn.execute(
                "UPDATE refresh_tokens SET revoked = 1 WHERE hash = ? AND user_id = ?",
                (token_hash(body.refresh_token), principal.user_id),
            )
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(principal: Auth, state: State) -> dict[str, Any]:
    user = state.meta.user(principal.user_id)
    assert user is not None
    return user_out(user)


@router.post("/password", status_code=204)
def change_password(body: PasswordIn, principal: Auth, state: State) -> Response:
    """The caller's own password, given the current one. Ends every session of the user (this one too:
    log in again with the new password) and deletes its API tokens."""
    if principal.via != "jwt":
        raise forbidden("log in with your password to change it")
    user = state.meta.user(principal.user_id)
    if user is None or not verify_password(user["password_hash"], body.current_password):
        raise bad_request("the current password is wrong", "invalid_credentials")
    state.meta.update_user(principal.user_id, password_hash=hash_password(body.new_password))
    return Response(status_code=204)
