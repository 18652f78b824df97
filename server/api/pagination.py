"""Pagination and sorting, the same for every list: `page` (1-based), `limit`, `sort`, `order`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from pixel.server.api.errors import bad_request


@dataclass
class ListParams:
    page: int
    limit: int
    sort: str
    order: str


def list_params(
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: Annotated[str, Query(max_length=40)] = "id",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> ListParams:
    return ListParams(page, limit, sort, order)


Listing = Annotated[ListParams, Depends(list_params)]


def paginate(items: Sequence[dict[str, Any]], params: ListParams, sortable: Sequence[str]) -> dict[str, Any]:
    if params.sort not in sortable:
        raise bad_request(f"sort must be one of {', '.join(sortable)}", "invalid_sort")
    ordered = sorted(
        items, key=lambda r: (r[params.sort] is None, r[params.sort]), reverse=params.order == "desc"
    )
    start = (params.page - 1) * params.limit
    return {
        "items": ordered[start : start + params.limit],
        "total": len(items),
        "page": params.page,
        "limit": params.limit,
    }
