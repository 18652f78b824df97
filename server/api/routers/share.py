"""Share links: their management under /api (admins of the site) and the shared view under /share.

- `admin_router` (mounted under /api with the principal): `GET/POST /api/sites/{id}/shares`,
  `DELETE /api/sites/{id}/shares/{share_id}` (revoke; the row stays, listed with `revoked_at`).
- `router` (no account): `GET /share/{token}` the read-only page (server-rendered HTML that loads
  `/share/assets/share.js` and `share.css`, nothing inline, nothing from another host), `POST /share/{token}`
  the password form, `GET /share/{token}/data?period=` the only data it reads: the dashboard of the link's
  site, with the link's fixed filters, for one of the link's periods, and every country's visitors (`map`) for
  the page's choropleth, drawn from `/share/assets/countries.json` (share_map.py; no outside tiles or fonts).
  Any other query parameter is a 400.
- Every answer of the shared view carries a strict Content-Security-Policy (`default-src 'none'`, scripts,
  styles and fetches from this origin only) whose `frame-ancestors` lists the link's embed origins
  (`'none'` without any), `Referrer-Policy: no-referrer` (the token is in the URL) and `Cache-Control: no-store`.
- An unknown or revoked link is a plain 404 page, an expired one a plain 410 page; a locked link shows the
  password form (401) and its data route answers 401. Password attempts count against the app's
  `LoginLimiter` (per client and link); a right password sets an HttpOnly, SameSite=Strict cookie scoped to
  `/share/<token>` (Secure when the request came over HTTPS) that unlocks the link for `UNLOCK_TTL`.
- Time (expiry, the unlock cookie, what "7d" means) comes from the app's clock (`state.tokens.now`).
"""

from __future__ import annotations

import html
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from pixel.server.api import share_links, share_map
from pixel.server.api.client_address import client_address
from pixel.server.api.deps import Admin, AppState, PathId, State, get_state, site_for
from pixel.server.api.errors import ApiError, bad_request, not_found
from pixel.server.api.query import dashboard as dashboard_query
from pixel.server.api.query import reports
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password, load_signing_key, verify_password
from pixel.server.api.share_links import COOKIE_NAME, Gone, Share, ShareCreated, ShareIn, ShareOut

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"share.js": "text/javascript; charset=utf-8", "share.css": "text/css; charset=utf-8"}
BREAKDOWNS = ("page", "source", "country", "browser", "device")
PERIOD_LABELS = {
    "realtime": "Last 30 minutes",
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last_month": "Last month",
    "12mo": "Last 12 months",
}
MAX_FORM_BYTES = 4096
MAP_LIMIT = 300  # more than there are country codes

admin_router = APIRouter(prefix="/sites/{site_id}/shares", tags=["share links"])
router = APIRouter(prefix="/share", tags=["shared view"])

_key_lock = threading.Lock()


def share_key(request: Request, state: AppState) -> bytes:
    """The install's signing key, read once per app."""
    with _key_lock:
        key = getattr(request.app.state, "share_key", None)
        if key is None:
            key = load_signing_key(state.settings.state_dir)
            request.app.state.share_key = key
        return key


# -- management -------------------------------------------------------------------------------------


@admin_router.get("", response_model=list[ShareOut])
def list_shares(site_id: PathId, principal: Admin, state: State) -> list[dict[str, Any]]:
    site_for(state, principal, site_id)
    return [s.public() for s in share_links.of_site(state.meta, site_id)]


@admin_router.post("", response_model=ShareCreated, status_code=201)
def create_share(
    site_id: PathId, body: ShareIn, principal: Admin, state: State, request: Request
) -> dict[str, Any]:
    """A new link; its token is in this answer only."""
    site_for(state, principal, site_id)
    now = state.tokens.now()
    if body.expires_at is not None and body.expires_at <= now:
        raise bad_request("expires_at is in the past", "invalid_share")
    password_hash = hash_password(body.password) if body.password else None
    share, token = share_links.create(
        state.meta, share_key(request, state), site_id, body, password_hash, now
    )
    return {**share.public(), "token": token, "path": f"/share/{token}"}


@admin_router.delete("/{share_id}", status_code=204)
def revoke_share(site_id: PathId, share_id: PathId, principal: Admin, state: State) -> Response:
    site_for(state, principal, site_id)
    share = share_links.get(state.meta, share_id)
    if share is None or share.site_id != site_id:
        raise not_found("share link")
    share_links.revoke(state.meta, share_id, state.tokens.now())
    return Response(status_code=204)


# -- the shared view --------------------------------------------------------------------------------


def csp(frame_ancestors: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )


def _headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    out = {
        "Content-Security-Policy": csp(frame_ancestors),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if frame_ancestors == "'none'":
        out["X-Frame-Options"] = "DENY"
    return out


def _page(title: str, body: str, status: int = 200, frame_ancestors: str = "'none'") -> HTMLResponse:
    doc = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="icon" href="data:,">'  # no favicon request
        '<link rel="stylesheet" href="/share/assets/share.css">'
        '<script src="/share/assets/share.js" defer></script>'
        f"</head><body>{body}</body></html>"
    )
    return HTMLResponse(doc, status, headers=_headers(frame_ancestors))


def _gone(exc: Gone) -> HTMLResponse:
    return _page(
        "Pixel", f'<main class="message"><p id="message">{html.escape(exc.message)}</p></main>', exc.status
    )


def _share(request: Request, state: AppState, token: str) -> Share:
    return share_links.lookup(state.meta, share_key(request, state), token, state.tokens.now())


def _unlocked(request: Request, state: AppState, share: Share) -> bool:
    return share_links.unlocked(
        share_key(request, state), share, request.cookies.get(COOKIE_NAME), state.tokens.now()
    )


@router.get("/assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"}
    if name == "countries.json":  # the map's outlines (share_map.py), built from the desktop's shapes
        try:
            body = share_map.countries_json()
        except share_map.MapDataMissing as exc:
            return Response(str(exc), 404, media_type="text/plain", headers=headers)
        headers["Cache-Control"] = "public, max-age=86400"
        return Response(body, media_type="application/json", headers=headers)
    if name not in ASSETS:
        return Response("not found", 404, media_type="text/plain")
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name], headers=headers)


def _form(share: Share, token: str, message: str = "", status: int = 401) -> HTMLResponse:
    note = f'<p class="error" id="message">{html.escape(message)}</p>' if message else ""
    body = (
        '<main class="gate"><h1>This view is protected</h1>'
        f'<form method="post" action="/share/{html.escape(token)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<button type="submit">Open</button></form>{note}</main>'
    )
    return _page("Protected view", body, status, share.frame_ancestors())


@router.get("/{token}", response_class=HTMLResponse, include_in_schema=False)
def view(token: str, request: Request, state: State) -> HTMLResponse:
    try:
        share = _share(request, state, token)
    except Gone as exc:
        return _gone(exc)
    if not _unlocked(request, state, share):
        return _form(share, token)
    site = state.meta.site(share.site_id) or {}
    options = "".join(
        f'<option value="{p}">{html.escape(PERIOD_LABELS.get(p, p))}</option>' for p in share.periods
    )
    filters = "".join(
        f"<li>{html.escape(d)} {html.escape(o.replace('_', ' '))} {html.escape(v)}</li>"
        for d, o, v in share.filters
    )
    body = (
        f'<main id="share" data-src="/share/{html.escape(token)}/data">'
        f'<header><h1 id="title">{html.escape(share.name)}</h1>'
        f'<p class="site">{html.escape(str(site.get("domain", "")))}</p>'
        f'<label>Period <select id="period">{options}</select></label></header>'
        + (f'<ul class="filters" id="filters">{filters}</ul>' if filters else "")
        + '<p id="status" role="status">Loading…</p>'
        '<section id="summary" class="cards"></section>'
        '<section class="chart"><h2>Visitors and pageviews</h2><div id="chart"></div></section>'
        '<section class="map"><h2>Visitors by country</h2><div id="map" data-src="/share/assets/countries.json">'
        '</div><p id="map-caption" class="caption"></p><p id="map-missing" class="caption"></p></section>'
        '<section id="breakdowns" class="grid"></section>'
        "<noscript><p>This view needs JavaScript to draw its figures.</p></noscript>"
        "<footer>Read-only view by Pixel</footer></main>"
    )
    return _page(f"{share.name} · Pixel", body, 200, share.frame_ancestors())


@router.post("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unlock(token: str, request: Request) -> Response:
    state = get_state(request)
    try:
        share = _share(request, state, token)
    except Gone as exc:
        return _gone(exc)
    if share.password_hash is None:
        return RedirectResponse(f"/share/{token}", 303, headers=_headers())
    client = client_address(request)
    who = f"share:{share.id}"
    wait = state.limiter.retry_after(client, who)
    if wait:
        minutes = max(1, (wait + 59) // 60)
        refused = _form(share, token, f"Too many attempts. Try again in {minutes} minutes.", 429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            return _form(share, token, "The form was too large.", 413)
    password = (parse_qs(raw.decode("utf-8", "replace")).get("password") or [""])[0]
    # argon2 takes a noticeable slice of CPU: off the event loop, as the (sync) login route runs in the pool too
    if not await run_in_threadpool(verify_password, share.password_hash, password):
        state.limiter.failed(client, who)
        return _form(share, token, "Wrong password.")
    state.limiter.succeeded(client, who)
    value, max_age = share_links.unlock_cookie(share_key(request, state), share, state.tokens.now())
    response = RedirectResponse(f"/share/{token}", 303, headers=_headers())
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age,
        path=f"/share/{token}",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers=_headers())


@router.get("/{token}/data", include_in_schema=False)
def data(token: str, request: Request, state: State) -> JSONResponse:
    try:
        share = _share(request, state, token)
    except Gone as exc:
        return _json({"error": "gone", "detail": exc.message}, exc.status)
    if not _unlocked(request, state, share):
        return _json({"error": "password_required", "detail": "this view needs its password"}, 401)
    extra = sorted(set(request.query_params) - {"period"})
    if extra or len(request.query_params.getlist("period")) > 1:
        detail = f"this view takes only a period, not {', '.join(extra) or 'several periods'}"
        return _json({"error": "not_allowed", "detail": detail}, 400)
    chosen = request.query_params.get("period") or share.periods[0]
    if chosen not in share.periods:
        detail = f"this view shows only {', '.join(share.periods)}"
        return _json({"error": "period_not_allowed", "detail": detail}, 400)
    site = state.meta.site(share.site_id)
    if site is None:
        return _json({"error": "gone", "detail": "This link is not valid."}, 404)
    now = datetime.fromtimestamp(state.tokens.now(), UTC)
    rng = resolve(chosen, site["timezone"], now=now)
    scope = Scope(
        state.runner,
        site["domain"],
        rng,
        parse_filters(share.filters),
        False,
        retention_days=int(site.get("retention_days") or 0),
        cache=state.report_cache,
    )
    try:
        board = dashboard_query.dashboard(
            scope,
            compare=True,
            interval=rng.default_interval(),
            metrics=["visitors", "pageviews"],
            breakdowns=list(BREAKDOWNS),
            limit=10,
        )
        countries = reports.breakdown(scope, "country", limit=MAP_LIMIT)
    except ApiError as exc:
        return _json({"error": exc.code, "detail": exc.detail}, exc.status)
    body = {
        "name": share.name,
        "site": site["domain"],
        "period": chosen,
        "periods": share.periods,
        "timezone": rng.tz,
        "from": rng.start.isoformat(),
        "to": rng.end.isoformat(),
        "filters": share.filters,
        "summary": board["summary"],
        "timeseries": board["timeseries"],
        "breakdowns": board["breakdowns"],
        # every country's visitors for the map (no "other" row at this limit; "" is an unknown country)
        "map": [{"country": r["value"], "visitors": r["visitors"]} for r in countries["rows"] if r["value"]],
    }
    return _json(json.loads(json.dumps(body, default=str)))
