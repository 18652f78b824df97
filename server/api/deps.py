"""Request dependencies: the app's shared state, the query runner and report cache of its store, the
authenticated principal, roles, site access.

`current_principal` answers 401 for every credential it cannot use: missing, malformed in any way,
signed with another key, expired, revoked, of a user that is gone or disabled, or issued under an
older session generation of the user (see `security.py`). The principal's role and sites are the
user's as stored now, never what the token says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pixel.server.api.errors import ApiError, forbidden, not_found, unauthorized
from pixel.server.api.meta import MetaDB
from pixel.server.api.query.report_cache import ReportCache
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.security import (
    API_TOKEN_PREFIX,
    MAX_TOKEN_LENGTH,
    AccessClaims,
    LoginLimiter,
    Tokens,
    token_hash,
)
from pixel.server.settings import Settings
from pixel.server.store import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    meta: MetaDB
    tokens: Tokens
    runner: QueryRunner  # report SQL on `store`
    report_cache: ReportCache  # the per-day report cache of `store`, run through `runner`
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    sql_seconds: float = 10.0  # the SQL console's max_execution_time


def get_state(request: Request) -> AppState:
    return request.app.state.pixel


State = Annotated[AppState, Depends(get_state)]


def query_runner(state: State) -> QueryRunner:
    return state.runner


def report_cache(state: State) -> ReportCache:
    return state.report_cache


Runner = Annotated[QueryRunner, Depends(query_runner)]
Cache = Annotated[ReportCache, Depends(report_cache)]


@dataclass
class Principal:
    user_id: int
    username: str
    role: str
    sites: set[int] | None  # None = every site
    via: str  # "jwt" | "api_token"
    jti: str | None = None
    exp: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see(self, site_id: int) -> bool:
        return self.sites is None or site_id in self.sites

    def holds(self, sites: list[int] | None) -> bool:
        """Whether `sites` (None = every site) is within what this principal may see."""
        if self.sites is None:
            return True
        return sites is not None and set(sites) <= self.sites


_bearer = HTTPBearer(auto_error=False, description="An access token from /api/auth/login, or an API token")


def current_principal(
    request: Request,
    state: State,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None or not creds.credentials:
        raise unauthorized("missing bearer token", "missing_token")
    token = creds.credentials
    meta = state.meta
    if len(token) > MAX_TOKEN_LENGTH:
        raise unauthorized("invalid access token", "invalid_token")
    if token.startswith(API_TOKEN_PREFIX):
        row = meta.one("SELECT id, user_id FROM api_tokens WHERE hash = ?", token_hash(token))
        if row is None:
            raise unauthorized("unknown or revoked API token", "invalid_token")
        user = meta.user(row["user_id"])
        if user is None or user["disabled"]:
            raise unauthorized("the token's user is disabled", "invalid_token")
        if request.method not in ("GET", "HEAD"):
            raise forbidden("API tokens are read-only")
        with meta.transaction() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (time.time(), row["id"]))
        return _principal(user, "api_token")
    try:
        claims = state.tokens.decode_access(token)
    except jwt.ExpiredSignatureError:
        raise unauthorized("access token expired; refresh it", "token_expired") from None
    except jwt.InvalidTokenError:
        raise unauthorized("invalid access token", "invalid_token") from None
    if meta.one("SELECT jti FROM revoked_access WHERE jti = ?", claims.jti):
        raise unauthorized("access token revoked", "invalid_token")
    user = meta.user(claims.user_id)
    if user is None or user["disabled"]:
        raise unauthorized("user no longer exists or is disabled", "invalid_token")
    if user["generation"] != claims.generation:
        raise unauthorized("this session was ended; log in again", "invalid_token")
    return _principal(user, "jwt", claims)


def _principal(user: dict[str, Any], via: str, claims: AccessClaims | None = None) -> Principal:
    sites = None if user["sites"] is None else {int(s) for s in user["sites"]}
    return Principal(
        user["id"],
        user["username"],
        user["role"],
        sites,
        via,
        claims.jti if claims else None,
        claims.exp if claims else None,
    )


Auth = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: Auth) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "admins_only", "this needs the admin role")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]


def site_for(state: AppState, principal: Principal, site_id: int) -> dict[str, Any]:
    """The site row if it exists and the principal may see it; 404 otherwise (no existence leak)."""
    site = state.meta.site(site_id)
    if site is None or not principal.can_see(site_id):
        raise not_found("site")
    return site


# Ids in paths: positive and small enough for SQLite's 64-bit integers.
PathId = Annotated[int, Path(ge=1, le=2**53)]
