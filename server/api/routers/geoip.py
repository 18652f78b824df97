"""`GET /api/geoip`: the GeoIP database in place and its refresher's last check (admins): what the stack page
shows — type, build date, source and the attribution its licence asks for, last check, success and error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pixel.server.api.deps import Admin, State
from pixel.server.enrich.geo_refresh import geoip_status

router = APIRouter(tags=["geoip"])


@router.get("/geoip")
def geoip(principal: Admin, state: State) -> dict[str, Any]:
    return geoip_status(state.settings)
