"""The SQL console (admins only): read-only SQL over one site's events; see `sqlguard`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pixel.server.api import sqlguard
from pixel.server.api.deps import Admin, State, site_for
from pixel.server.api.errors import ApiError
from pixel.server.api.models import SqlIn

router = APIRouter(tags=["sql"])


@router.post("/sql")
def run_sql(body: SqlIn, principal: Admin, state: State) -> dict[str, Any]:
    """Runs one SELECT over `events`, limited to the site named by `site_id`. Refusals answer 400
    with the reason; results are cut at `max_rows` rows and at the time limit (`truncated`); a query
    still running past the hard limit is cancelled and answers 400 at that moment. One console query
    runs at a time: while one runs or is still being stopped, the next answers 503 with Retry-After."""
    site = site_for(state, principal, body.site_id)
    limits = sqlguard.Limits(max_rows=body.max_rows, max_seconds=state.sql_seconds)
    try:
        return sqlguard.run(state.store, body.query, site["domain"], limits)
    except sqlguard.ConsoleBusy as exc:
        raise ApiError(503, "sql_busy", str(exc), {"Retry-After": "2"}) from None
    except sqlguard.SqlRefused as exc:
        raise ApiError(400, "sql_refused", str(exc)) from None
