"""`POST /api/v2/query`: the Plausible Stats API v2, so that Plausible's clients and integrations work against
Pixel.

The body is Plausible's query (see `plausible.schema` for what is supported); the answer is Plausible's
`{"results": [...], "meta": {...}, "query": {...}}`. Errors have Plausible's shape, `{"error": "<message>"}` (plus
`detail`, the same text, which every error of the API has):
400 for a query it cannot answer (malformed, unknown or unsupported metric, dimension, filter), 401 without a
valid credential (the API's usual `{"error": code, "detail": ...}`, as on every route), 404 when the site
does not exist or the caller may not see it (no existence leak).

Credentials: an access token or one of Pixel's API tokens (`Authorization: Bearer pxt_...`). API tokens are
read-only elsewhere (GET only); this POST reads nothing but statistics, so they are accepted here, with the
token user's sites as the limit.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pixel.server.api.deps import Principal, State, _principal, current_principal
from pixel.server.api.errors import ApiError
from pixel.server.api.plausible.run import execute
from pixel.server.api.plausible.schema import QueryError, parse
from pixel.server.api.security import API_TOKEN_PREFIX, MAX_TOKEN_LENGTH, token_hash

router = APIRouter(prefix="/api/v2", tags=["plausible"])
_bearer = HTTPBearer(auto_error=False, description="An access token or an API token")
MAX_BODY = 256 * 1024


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # `error` is Plausible's message; `detail` repeats it, as every error of the API has both keys
    return JSONResponse({"error": message, "detail": message}, status_code=status, headers=headers)


def _principal_for(request: Request, state: Any, creds: HTTPAuthorizationCredentials | None) -> Principal:
    """As `current_principal`, except that an API token may make this read-only POST."""
    token = creds.credentials if creds is not None else ""
    if token.startswith(API_TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH:
        row = state.meta.one("SELECT id, user_id FROM api_tokens WHERE hash = ?", token_hash(token))
        user = state.meta.user(row["user_id"]) if row is not None else None
        if row is None or user is None or user["disabled"]:
            raise ApiError(
                401, "invalid_token", "unknown or revoked API token", {"WWW-Authenticate": "Bearer"}
            )
        with state.meta.transaction() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (time.time(), row["id"]))
        return _principal(user, "api_token")
    return current_principal(request, state, creds)


@router.post("/query")
async def query(
    request: Request,
    state: State,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> JSONResponse:
    """A Plausible Stats API v2 query, in the schema of Plausible's Stats API documentation."""
    try:
        principal = _principal_for(request, state, creds)
    except ApiError as exc:
        # the API's own credential answer (`error` is its code, as on every other route)
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail}, status_code=exc.status, headers=exc.headers
        )
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(413, f"The query is larger than {MAX_BODY // 1024} KiB")
    try:
        body = json.loads(raw)
    except (
        ValueError,
        RecursionError,
    ):  # undecodable (UnicodeDecodeError is a ValueError) or nested too deep
        return _error(400, "Invalid JSON body")
    try:
        q = parse(body)
    except QueryError as exc:
        return _error(400, str(exc))
    site = state.meta.one("SELECT * FROM sites WHERE domain = ?", q.site_id)
    if site is None or not principal.can_see(int(site["id"])):
        return _error(404, f"Site {q.site_id[:200]!r} not found")
    try:
        answer = await _run(state, q, site)
    except QueryError as exc:
        return _error(400, str(exc))
    return JSONResponse(answer)


async def _run(state: Any, q: Any, site: dict[str, Any]) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    goals = state.meta.all("SELECT * FROM goals WHERE site_id = ? ORDER BY id", site["id"])
    return await run_in_threadpool(execute, state.runner, q, site, state.report_cache.now(), goals)
