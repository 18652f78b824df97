"""Saved segments: a named set of filters (the reports' [dimension, operator, value] triples) on one site.

A segment is personal (only its owner sees it) or shared (everyone who may see the site sees it). Access
follows the dashboards' rules: nothing of a site the principal may not see is readable, and a segment the
principal may not see answers 404 as one that does not exist. Any user who sees the site saves personal
segments; sharing one, and changing or deleting a shared one, is for admins; a personal segment is changed
or deleted only by its owner. API tokens read as their user (they are read-only).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from pixel.server.api import limits
from pixel.server.api.deps import Auth, PathId, Principal, State, site_for
from pixel.server.api.errors import ApiError, not_found
from pixel.server.api.models import Page, Strict
from pixel.server.api.pagination import Listing, paginate
from pixel.server.api.query.filters import parse_filters, text_problem

router = APIRouter(tags=["segments"])


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    filters: list[list[str]] = Field(default_factory=list)
    shared: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        problem = text_problem(value)
        if problem or not value:
            raise ValueError(f"the name cannot be used: {problem or 'it is blank'}")
        return value

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[list[str]]) -> list[list[str]]:
        try:
            parse_filters(value)
        except ApiError as exc:
            raise ValueError(exc.detail) from None
        return value


class SegmentOut(BaseModel):
    id: int
    site_id: int
    name: str
    filters: list[list[str]]
    shared: bool
    owner_id: int
    owner: str | None
    mine: bool
    created_at: float
    updated_at: float


def _out(row: dict[str, Any], principal: Principal) -> dict[str, Any]:
    return {**row, "shared": bool(row["shared"]), "mine": row["owner_id"] == principal.user_id}


_SELECT = (
    "SELECT s.id, s.site_id, s.name, s.filters, s.shared, s.owner_id, u.username AS owner, s.created_at,"
    " s.updated_at FROM segments s LEFT JOIN users u ON u.id = s.owner_id"
)


def _decode(row: dict[str, Any]) -> dict[str, Any]:

    row["filters"] = json.loads(row["filters"])
    return row


def _segment(state: State, principal: Principal, segment_id: int) -> dict[str, Any]:
    row = state.meta.one(f"{_SELECT} WHERE s.id = ?", segment_id)
    if (
        row is None
        or not principal.can_see(row["site_id"])
        or not (row["shared"] or row["owner_id"] == principal.user_id)
    ):
        raise not_found("segment")
    return _decode(row)


def _may_change(principal: Principal, row: dict[str, Any], shared: bool) -> None:
    if (row["shared"] or shared) and not principal.is_admin:
        raise ApiError(
            403, "admins_only", "sharing a segment, or changing a shared one, needs the admin role"
        )
    if not row["shared"] and row["owner_id"] != principal.user_id:
        raise not_found("segment")


@router.get("/sites/{site_id}/segments", response_model=Page)
def list_segments(site_id: PathId, principal: Auth, state: State, listing: Listing) -> dict[str, Any]:
    """The site's shared segments and the caller's own."""
    site_for(state, principal, site_id)
    rows = state.meta.all(
        f"{_SELECT} WHERE s.site_id = ? AND (s.shared = 1 OR s.owner_id = ?)", site_id, principal.user_id
    )
    items = [_out(_decode(r), principal) for r in rows]
    return paginate(items, listing, ("id", "name", "created_at", "updated_at"))


@router.post("/sites/{site_id}/segments", response_model=SegmentOut, status_code=201)
def create_segment(site_id: PathId, body: SegmentIn, principal: Auth, state: State) -> dict[str, Any]:
    site_for(state, principal, site_id)
    if body.shared and not principal.is_admin:
        raise ApiError(403, "admins_only", "sharing a segment needs the admin role")
    now = time.time()

    segment_id = state.meta.insert(
        "segments",
        {
            "site_id": site_id,
            "owner_id": principal.user_id,
            "name": body.name,
            "filters": json.dumps(body.filters),
            "shared": int(body.shared),
            "created_at": now,
            "updated_at": now,
        },
        limits.segments(site_id, principal.user_id),
    )
    return _out(_segment(state, principal, segment_id), principal)


@router.get("/segments/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    return _out(_segment(state, principal, segment_id), principal)


@router.put("/segments/{segment_id}", response_model=SegmentOut)
def replace_segment(segment_id: PathId, body: SegmentIn, principal: Auth, state: State) -> dict[str, Any]:

    row = _segment(state, principal, segment_id)
    _may_change(principal, row, body.shared)
    state.meta.update(
        "segments",
        segment_id,
        {
            "name": body.name,
            "filters": json.dumps(body.filters),
            "shared": int(body.shared),
            "updated_at": time.time(),
        },
    )
    return _out(_segment(state, principal, segment_id), principal)


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(segment_id: PathId, principal: Auth, state: State) -> Response:
    row = _segment(state, principal, segment_id)
    _may_change(principal, row, False)
    state.meta.delete("segments", segment_id)
    return Response(status_code=204)
