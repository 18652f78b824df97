"""Ranked, paged tables for the insight reports (engagement, content, performance, errors, revenue).

Contract: `order_page` validates `sort` (one of the table's sortable names, else a 400 `invalid_sort` naming
them), `order` (asc/desc), `limit` (1..`reports.MAX_LIMIT`) and `page` (at most 100,000 rows deep, else a 400
`invalid_pagination`), and gives the ORDER BY ... LIMIT ... OFFSET clause: the sort expression (NULLs last
either way), then the table's key ascending, so equal values always come in the same order. `percent` is
the share a / b in percent with one decimal, None without a base.
"""

from __future__ import annotations

from pixel.server.api.errors import bad_request
from pixel.server.api.query.reports import MAX_LIMIT, check_limit

MAX_DEPTH = 100_000


def order_clause(sort: str, order: str, sortable: dict[str, str], key: str, limit: int, page: int) -> str:
    """The ORDER BY expressions (without the keywords) after validating the table's parameters."""
    check_limit(limit)
    if page < 1 or (page - 1) * limit > MAX_DEPTH:
        raise bad_request(f"page must be between 1 and {MAX_DEPTH}/limit", "invalid_pagination")
    if order not in ("asc", "desc"):
        raise bad_request("order must be asc or desc", "invalid_sort")
    if sort not in sortable:
        raise bad_request(f"sort must be one of {', '.join(sortable)}", "invalid_sort")
    direction = "DESC" if order == "desc" else "ASC"
    return f"{sortable[sort]} {direction} NULLS LAST, {key} ASC"


def order_page(sort: str, order: str, sortable: dict[str, str], key: str, limit: int, page: int) -> str:
    by = order_clause(sort, order, sortable, key, limit, page)
    return f"ORDER BY {by} LIMIT {int(limit)} OFFSET {int((page - 1) * limit)}"


def deduped(where: str, columns: str) -> str:
    """The events matching `where` (which holds the event-name condition), each once: copies of an event (one
    `event_id` on one day, the events table's key) collapse to one row, as `events FINAL` collapses them, but
    only among the matching rows, so a report on a few event kinds does not merge the whole range first."""
    return f"(SELECT {columns}, timestamp, event_id FROM events WHERE {where} LIMIT 1 BY toDate(timestamp), event_id)"


def percent(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 1) if whole else None


def paged(rows: list[dict[str, object]], limit: int, page: int, sort: str, order: str) -> dict[str, object]:
    """The paging fields of an answer (`total_rows` from the query's `count() OVER ()`)."""
    total = int(str(rows[0]["total_rows"])) if rows else 0
    return {"page": page, "limit": limit, "sort": sort, "order": order, "total_rows": total}


__all__ = ["MAX_LIMIT", "deduped", "order_clause", "order_page", "paged", "percent"]
