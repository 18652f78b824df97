"""Login, token refresh (rotating), logout (revocation), the current user, password change."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from pixel.server.api.deps import Auth, State
from pixel.server.api.errors import ApiError, bad_request, unauthorized
from pixel.server.api.models import LoginIn, LogoutIn, PasswordIn, RefreshIn, TokenPair, UserOut
from pixel.server.api.security import REFRESH_TTL, hash_password, token_hash, verify_password

router = APIRouter(prefix="/auth", tags=["auth"])


def user_out(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user[k] for k in ("id", "username", "role", "sites", "disabled")}


def issue_pair(state: State, user: dict[str, Any]) -> dict[str, Any]:
    access, _ = state.tokens.issue_access(user["id"], user["role"])
    refresh = secrets.token_urlsafe(32)
    now = time.time()
    with state.meta.transaction() as conn:
        conn.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now,))
        conn.execute("DELETE FROM revoked_access WHERE expires_at < ?", (now,))
        conn.execute(
            "INSERT INTO refresh_tokens (hash, user_id, expires_at) VALUES (?, ?, ?)",
            (token_hash(refresh), user["id"], now + REFRESH_TTL),
        )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": state.tokens.access_ttl,
        "user": user_out(user),
    }


@router.post("/login", response_model=TokenPair)
def login(body: LoginIn, request: Request, state: State) -> dict[str, Any]:
    client = request.client.host if request.client else "?"
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
        if row is None or row["expires_at"] < time.time():
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
    return issue_pair(state, user)


@router.post("/logout", status_code=204)
def logout(principal: Auth, state: State, body: LogoutIn | None = None) -> Response:
    body = body or LogoutIn()
    with state.meta.transaction() as conn:
        if principal.jti:
            conn.execute(
                "INSERT OR IGNORE INTO revoked_access (jti, expires_at) VALUES (?, ?)",
                (principal.jti, principal.exp or time.time() + 3600),
            )
        if body.all:
            conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?", (principal.user_id,))
        elif body.refresh_token:
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
    user = state.meta.user(principal.user_id)
    if user is None or not verify_password(user["password_hash"], body.current_password):
        raise bad_request("the current password is wrong", "invalid_credentials")
    state.meta.update("users", principal.user_id, {"password_hash": hash_password(body.new_password)})
    with state.meta.transaction() as conn:
        conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?", (principal.user_id,))
    return Response(status_code=204)
