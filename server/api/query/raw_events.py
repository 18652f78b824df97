"""The matching raw events, each once, for the insight reports that read `events` (a filter the per-day caches
do not carry, or no cache): copies of an event (client retries: one `event_id` on one day, the table's key)
are dropped only where two parts of `events` could hold them (`copy_windows`, as the raw dashboard does).

Contract: `once` gives the rows of `where` with `columns`, each event once, given the copies condition of
`raw_dashboard.DashboardParams.copies` (true on every row that may have a copy). `run` runs a query built
on it and reads the parts again after it: if an insert came close enough to the windows to hide a copy from
them, it runs the query again with copies dropped everywhere.
"""

from __future__ import annotations

from typing import Any

from pixel.server.api.query.raw_dashboard import DashboardParams
from pixel.server.api.query.scope import Scope


def once(where: str, columns: dict[str, str], params: DashboardParams, scope: Scope) -> str:
    """A subquery of the rows matching `where`, each event once, with `columns` (alias -> expression): the rows
    outside the windows as they are (the event id is not read), the rows inside grouped by the hash of the
    table's key (the copies of an event are the same row: `any` keeps it)."""
    copies = params.copies(scope.runner.store)
    cols = ", ".join(f"{expr} AS {alias}" for alias, expr in columns.items())
    # inner names of their own: an alias named as a column would stand for the aggregate in the WHERE
    inner = ", ".join(f"any({expr}) AS one_{alias}" for alias, expr in columns.items())
    outer = ", ".join(f"one_{alias} AS {alias}" for alias in columns)
    return f"""(SELECT {cols} FROM events WHERE ({where}) AND NOT {copies}
        UNION ALL
        SELECT {outer} FROM (SELECT {inner} FROM events WHERE ({where}) AND {copies}
            GROUP BY cityHash64(toDate(timestamp), event_id)))"""


def run(scope: Scope, sql: str, params: DashboardParams) -> list[dict[str, Any]]:
    """`sql` (built with `once` and `params`) over the raw events; the parts are read again after it, and if an
    insert came close enough to the windows to hide a copy from them, it runs again with copies dropped
    everywhere."""
    rows = scope.run(sql, params)
    if params.held(scope.runner.store):
        return rows
    params.drop_everywhere()
    return scope.run(sql, params)
