"""Journeys of one site's sessions: top paths of N steps and their flow (`/journeys`), the pages after or
before a page (`/journeys/next`, `/journeys/previous`). Definitions in `server/api/query/journeys.py`.

The period, filter and bot parameters are the reports' (routers/reports.py); `groups` is a JSON list of page
patterns (`["/blog/*", "/docs/*"]`). Bad input is a 400 (`invalid_journey`, `invalid_pattern`,
`invalid_filter`, `invalid_range`); a start or end page the site has no pageview of in the period is a 404
`unknown_page`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pixel.server.api.errors import bad_request
from pixel.server.api.query import journeys as q
from pixel.server.api.routers.reports import ScopeDep, _range

router = APIRouter(prefix="/sites/{site_id}/reports/journeys", tags=["journeys"])

PageParam = Annotated[
    str, Query(min_length=1, max_length=q.MAX_PAGE, description="a path, or a pattern /blog/*")
]
GroupsParam = Annotated[
    str | None,
    Query(
        max_length=20_000,
        description='JSON list of page patterns grouped into one node each, e.g. ["/blog/*"] (* = any '
        "characters; first match wins)",
    ),
]
Collapse = Annotated[
    bool,
    Query(description="a page repeated right after itself (a reload) is one step; false counts each view"),
]


class RangeOut(BaseModel):
    site: str
    period: str
    timezone: str
    from_: str = Field(alias="from")
    to: str


class JourneyPath(BaseModel):
    pages: list[str] = Field(description="the path's steps (pages or group patterns)")
    sessions: int
    complete: bool = Field(
        description="the session left the site after the last step (start/all/both) or entered on the first (end)"
    )


class JourneyNode(BaseModel):
    page: str | None = Field(description="null: the step's other pages together")
    sessions: int
    dropoff: int = Field(description="sessions whose complete path ends here (end mode: starts here)")


class JourneyColumn(BaseModel):
    step: int
    nodes: list[JourneyNode]


class JourneyLink(BaseModel):
    step: int = Field(description="the source's step; the target is at step + 1")
    source: str | None
    target: str | None
    sessions: int


class JourneysOut(RangeOut):
    mode: str = Field(description="all, start, end or both")
    steps: int
    start: str | None
    end: str | None
    groups: list[str]
    collapse_repeats: bool
    sessions: int = Field(description="sessions counted (those with the start/end page in their path)")
    paths: list[JourneyPath]
    columns: list[JourneyColumn]
    links: list[JourneyLink]


class NeighbourPage(BaseModel):
    page: str
    sessions: int
    percent: float


class NeighbourOther(BaseModel):
    sessions: int
    percent: float


class NeighboursOut(RangeOut):
    page: str
    direction: str
    groups: list[str]
    collapse_repeats: bool
    sessions: int = Field(description="sessions that viewed the page")
    pages: list[NeighbourPage]
    other: NeighbourOther | None
    dropoff: int = Field(
        description="sessions that left the site at the page (next) or entered there (previous)"
    )
    dropoff_rate: float


def parse_groups(raw: str | None) -> list[str]:
    if raw is None or raw == "":
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request("groups must be a JSON list of page patterns", "invalid_pattern") from None
    if not (isinstance(value, list) and all(isinstance(g, str) for g in value)):
        raise bad_request("groups must be a JSON list of page patterns", "invalid_pattern")
    return value


@router.get("", response_model=JourneysOut)
def journeys(
    s: ScopeDep,
    steps: Annotated[int, Query(description=f"{q.MIN_STEPS} to {q.MAX_STEPS}")] = 4,
    start: Annotated[str | None, Query(max_length=q.MAX_PAGE, description="paths from this page")] = None,
    end: Annotated[str | None, Query(max_length=q.MAX_PAGE, description="paths to this page")] = None,
    groups: GroupsParam = None,
    collapse_repeats: Collapse = True,
    limit: Annotated[int, Query(description=f"top paths, 1 to {q.MAX_LIMIT}")] = 10,
    per_step: Annotated[int, Query(description=f"nodes per step, 1 to {q.MAX_PER_STEP}")] = 8,
) -> dict[str, Any]:
    """The top paths of `steps` pages across all sessions (from their entry page), from a `start` page, to an
    `end` page, or from `start` to `end`; and their flow: per step the busiest pages (the rest as one node)
    with their drop-off, and the links between consecutive steps."""
    query = q.JourneyQuery(
        steps=steps,
        start=start or None,
        end=end or None,
        groups=parse_groups(groups),
        collapse_repeats=collapse_repeats,
        limit=limit,
        per_step=per_step,
    )
    return {**_range(s), **q.journeys(s, query)}


def _neighbours(
    s: Any, page: str, direction: str, groups: str | None, collapse: bool, limit: int
) -> dict[str, Any]:
    query = q.JourneyQuery(groups=parse_groups(groups), collapse_repeats=collapse, limit=limit)
    return {**_range(s), **q.neighbours(s, page, direction, query)}


@router.get("/next", response_model=NeighboursOut)
def next_pages(
    s: ScopeDep,
    page: PageParam,
    groups: GroupsParam = None,
    collapse_repeats: Collapse = True,
    limit: Annotated[int, Query(description=f"1 to {q.MAX_LIMIT}")] = 10,
) -> dict[str, Any]:
    """The pages sessions view right after their first view of `page`, with the drop-off (left the site)."""
    return _neighbours(s, page, "next", groups, collapse_repeats, limit)


@router.get("/previous", response_model=NeighboursOut)
def previous_pages(
    s: ScopeDep,
    page: PageParam,
    groups: GroupsParam = None,
    collapse_repeats: Collapse = True,
    limit: Annotated[int, Query(description=f"1 to {q.MAX_LIMIT}")] = 10,
) -> dict[str, Any]:
    """The pages sessions view right before their first view of `page`, with the sessions that entered the
    site there (the drop-off of this direction)."""
    return _neighbours(s, page, "previous", groups, collapse_repeats, limit)
