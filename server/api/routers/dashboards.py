"""Saved dashboards: named lists of widgets (report + params + filters + chart kind + position) per site.

Everyone who can see the site can read its dashboards; only admins create, change or delete them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Response

from pixel.server.api import limits
from pixel.server.api.deps import Admin, Auth, PathId, State, site_for
from pixel.server.api.errors import not_found
from pixel.server.api.models import DashboardIn, DashboardOut, Page
from pixel.server.api.pagination import Listing, paginate

router = APIRouter(tags=["dashboards"])


def _widgets(body: DashboardIn) -> list[dict[str, Any]]:
    out = []
    for widget in body.widgets:
        data = widget.model_dump()
        data["id"] = data["id"] or secrets.token_hex(6)
        out.append(data)
    return out


def _dashboard(state: State, principal: Auth, dashboard_id: PathId) -> dict[str, Any]:
    row = state.meta.one("SELECT * FROM dashboards WHERE id = ?", dashboard_id)
    if row is None or not principal.can_see(row["site_id"]):
        raise not_found("dashboard")
    return row


@router.get("/sites/{site_id}/dashboards", response_model=Page)
def list_dashboards(site_id: PathId, principal: Auth, state: State, listing: Listing) -> dict[str, Any]:
    site_for(state, principal, site_id)
    rows = state.meta.all("SELECT * FROM dashboards WHERE site_id = ?", site_id)
    return paginate(rows, listing, ("id", "name", "created_at", "updated_at"))


@router.post("/sites/{site_id}/dashboards", response_model=DashboardOut, status_code=201)
def create_dashboard(site_id: PathId, body: DashboardIn, principal: Admin, state: State) -> dict[str, Any]:
    site_for(state, principal, site_id)
    now = time.time()
    dashboard_id = state.meta.insert(
        "dashboards",
        {
            "site_id": site_id,
            "name": body.name,
            "widgets": _widgets(body),
            "created_at": now,
            "updated_at": now,
        },
        limits.dashboards(site_id),
    )
    return _dashboard(state, principal, dashboard_id)


@router.get("/dashboards/{dashboard_id}", response_model=DashboardOut)
def get_dashboard(dashboard_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    return _dashboard(state, principal, dashboard_id)


@router.put("/dashboards/{dashboard_id}", response_model=DashboardOut)
def replace_dashboard(
    dashboard_id: PathId, body: DashboardIn, principal: Admin, state: State
) -> dict[str, Any]:
    _dashboard(state, principal, dashboard_id)
    state.meta.update(
        "dashboards", dashboard_id, {"name": body.name, "widgets": _widgets(body), "updated_at": time.time()}
    )
    return _dashboard(state, principal, dashboard_id)


@router.delete("/dashboards/{dashboard_id}", status_code=204)
def delete_dashboard(dashboard_id: PathId, principal: Admin, state: State) -> Response:
    _dashboard(state, principal, dashboard_id)
    state.meta.delete("dashboards", dashboard_id)
    return Response(status_code=204)
