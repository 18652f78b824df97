"""`GET /api/health`: open, for load balancers and the desktop app's connection check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pixel.server.api.deps import State
from pixel.server.store import StoreError

router = APIRouter(tags=["health"])


@router.get("/health")
def health(state: State) -> dict[str, Any]:
    try:
        state.store.scalar("SELECT 1")
        store_ok = True
    except StoreError:
        store_ok = False
    return {"status": "ok" if store_ok else "degraded", "store": state.store.engine, "store_ok": store_ok}
