"""The FastAPI application: every route under /api, the OpenAPI schema at /api/openapi.json.

No documentation page is served (FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN, and Pixel works
offline): point any OpenAPI viewer at /api/openapi.json. Nothing the API serves references another host."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from pixel.server.api import errors
from pixel.server.api.deps import AppState, current_principal
from pixel.server.api.meta import MetaDB
from pixel.server.api.query.report_cache import ReportCache
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.routers import (
    alerts,
    auth,
    dashboards,
    exports,
    geoip,
    health,
    imports,
    insights,
    journeys,
    plausible_v2,  # POST /api/v2/query, its own auth and error shape
    reports,
    segments,
    share,
    sites,
    sql,
    users,
)
from pixel.server.api.routers import annotations as annotation_routes  # `annotations`: the __future__ name
from pixel.server.api.security import LoginLimiter, Tokens, load_signing_key
from pixel.server.settings import Settings
from pixel.server.store import Store

# Routes reachable without a token. Everything else depends on `current_principal`.
OPEN_PATHS = {"/api/health", "/api/auth/login", "/api/auth/refresh", "/api/openapi.json"}


def open_meta(settings: Settings) -> MetaDB:
    return MetaDB(settings.meta_db_path)


def create_app(
    settings: Settings, store: Store, *, limiter: LoginLimiter | None = None, sql_seconds: float = 10.0
) -> FastAPI:
    """The API over `store` (shared with the shipper in `pixel serve`); metadata in the data folder. The
    app's query runner and report cache are made here, once per app, and reached through the request
    (`deps.query_runner`, `deps.report_cache`)."""
    app = FastAPI(
        title="Pixel Analytics API",
        version="1",
        docs_url=None,  # Swagger UI and ReDoc would load from a CDN: none served (module docstring)
        openapi_url="/api/openapi.json",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    runner = QueryRunner(store)
    app.state.pixel = AppState(
        settings=settings,
        store=store,
        meta=open_meta(settings),
        tokens=Tokens(load_signing_key(settings.state_dir)),
        runner=runner,
        report_cache=ReportCache(runner),
        limiter=limiter or LoginLimiter(),
        sql_seconds=sql_seconds,
    )
    errors.install(app)

    public = APIRouter(prefix="/api")
    public.include_router(health.router)
    public.include_router(auth.router)  # login/refresh open; logout/me/password take the principal
    app.include_router(public)

    private = APIRouter(prefix="/api", dependencies=[Depends(current_principal)])
    for module in (users, sites, reports, insights, journeys, dashboards, sql, geoip, exports, imports):
        private.include_router(module.router)
    private.include_router(share.admin_router)
    private.include_router(segments.router)
    private.include_router(annotation_routes.router)
    private.include_router(alerts.router)
    app.include_router(private)
    app.include_router(share.router)  # /share/{token}: the shared view, its token is the credential
    app.include_router(plausible_v2.router)
    return app
