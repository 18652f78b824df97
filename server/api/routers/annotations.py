"""Annotations: notes on a date, a range of dates or a moment of a site's timeline, drawn on its charts.

Manual annotations have a site and an author (the user who wrote it). Automatic ones are written by Pixel
itself (`server/annotations/`): `kind` says what happened (upgrade, restore, site_rules, geoip, tracker,
ingestion_gap, shipper_degraded), `details` what changed; a stack-wide one (no site) is listed on every site.

Access: everything of a site the principal may not see answers 404. Anyone who sees the site writes
annotations on it; the author or an admin changes or deletes a manual one; automatic ones are not edited, an
admin may delete one of a site (stack-wide ones stay). Times are epoch seconds; a note given as `date` (and
`end_date`) covers those whole days in the site's time zone, and is listed with its dates in that zone.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from pixel.server.api import limits
from pixel.server.api.deps import Auth, PathId, Principal, State, site_for
from pixel.server.api.errors import ApiError, bad_request, not_found
from pixel.server.api.models import Page, Strict
from pixel.server.api.pagination import Listing, paginate
from pixel.server.api.query.filters import text_problem

router = APIRouter(tags=["annotations"])

EPOCH_MAX = 4102444800.0  # 2100-01-01: later (or negative) times are refused


class AnnotationIn(Strict):
    text: str = Field(min_length=1, max_length=2000)
    date: dt.date | None = None
    end_date: dt.date | None = None
    starts_at: float | None = Field(default=None, ge=0, le=EPOCH_MAX)
    ends_at: float | None = Field(default=None, ge=0, le=EPOCH_MAX)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = value.strip()
        problem = text_problem(value)
        if problem or not value:
            raise ValueError(f"the text cannot be used: {problem or 'it is blank'}")
        return value

    @model_validator(mode="after")
    def _when(self) -> AnnotationIn:
        if (self.date is None) == (self.starts_at is None):
            raise ValueError("give either date (and end_date) or starts_at (and ends_at)")
        if self.date is None and self.end_date is not None:
            raise ValueError("end_date goes with date")
        if self.starts_at is None and self.ends_at is not None:
            raise ValueError("ends_at goes with starts_at")
        if self.date and self.end_date and self.end_date < self.date:
            raise ValueError("end_date is before date")
        if self.starts_at is not None and self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self

    def span(self, tz: ZoneInfo) -> tuple[float, float | None]:
        """(starts_at, ends_at) in epoch seconds; a date range ends at the start of the day after end_date."""
        if self.date is None:
            assert self.starts_at is not None
            return self.starts_at, self.ends_at
        start = dt.datetime.combine(self.date, dt.time(), tz).timestamp()
        last = self.end_date or self.date
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz).timestamp()
        return start, end


class AnnotationOut(BaseModel):
    id: int
    site_id: int | None
    starts_at: float
    ends_at: float | None
    date: str
    end_date: str | None
    text: str
    kind: str
    automatic: bool
    author: str
    author_id: int | None
    details: dict[str, Any]
    created_at: float
    updated_at: float


def _out(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    start = dt.datetime.fromtimestamp(row["starts_at"], tz)
    end = None
    if row["ends_at"] is not None:
        end = dt.datetime.fromtimestamp(max(row["starts_at"], row["ends_at"] - 0.001), tz).date().isoformat()
    return {
        **row,
        "date": start.date().isoformat(),
        "end_date": end,
        "automatic": row["kind"] != "manual",
        "details": json.loads(row["details"] or "{}"),
    }


def _zone(site: dict[str, Any] | None) -> ZoneInfo:
    return ZoneInfo(site["timezone"] if site else "UTC")


def _annotation(state: State, principal: Principal, annotation_id: int) -> tuple[dict[str, Any], ZoneInfo]:
    row = state.meta.one("SELECT * FROM annotations WHERE id = ?", annotation_id)
    if row is None or (row["site_id"] is not None and not principal.can_see(row["site_id"])):
        raise not_found("annotation")
    site = state.meta.site(row["site_id"]) if row["site_id"] is not None else None
    return row, _zone(site)


@router.get("/sites/{site_id}/annotations", response_model=Page)
def list_annotations(
    site_id: PathId,
    principal: Auth,
    state: State,
    listing: Listing,
    since: Annotated[float | None, Query(ge=0, le=EPOCH_MAX)] = None,
    until: Annotated[float | None, Query(ge=0, le=EPOCH_MAX)] = None,
    automatic: bool | None = None,
) -> dict[str, Any]:
    """The site's annotations and the stack-wide ones that overlap [since, until] (epoch seconds)."""
    site = site_for(state, principal, site_id)
    if since is not None and until is not None and until < since:
        raise bad_request("until is before since", "invalid_range")
    sql = "SELECT * FROM annotations WHERE (site_id = ? OR site_id IS NULL)"
    args: list[Any] = [site_id]
    if since is not None:
        sql += " AND coalesce(ends_at, starts_at) >= ?"
        args.append(since)
    if until is not None:
        sql += " AND starts_at <= ?"
        args.append(until)
    if automatic is not None:
        sql += " AND kind " + ("!=" if automatic else "=") + " 'manual'"
    tz = _zone(site)
    items = [_out(r, tz) for r in state.meta.all(sql, *args)]
    return paginate(items, listing, ("id", "starts_at", "created_at", "kind"))


@router.post("/sites/{site_id}/annotations", response_model=AnnotationOut, status_code=201)
def create_annotation(site_id: PathId, body: AnnotationIn, principal: Auth, state: State) -> dict[str, Any]:
    site = site_for(state, principal, site_id)
    tz = _zone(site)
    start, end = body.span(tz)
    now = time.time()
    annotation_id = state.meta.insert(
        "annotations",
        {
            "site_id": site_id,
            "starts_at": start,
            "ends_at": end,
            "text": body.text,
            "kind": "manual",
            "author_id": principal.user_id,
            "author": principal.username,
            "details": "{}",
            "created_at": now,
            "updated_at": now,
        },
        limits.manual_annotations(site_id, principal.user_id),
    )
    row, tz = _annotation(state, principal, annotation_id)
    return _out(row, tz)


@router.get("/annotations/{annotation_id}", response_model=AnnotationOut)
def get_annotation(annotation_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    return _out(*_annotation(state, principal, annotation_id))


@router.put("/annotations/{annotation_id}", response_model=AnnotationOut)
def replace_annotation(
    annotation_id: PathId, body: AnnotationIn, principal: Auth, state: State
) -> dict[str, Any]:
    row, tz = _annotation(state, principal, annotation_id)
    if row["kind"] != "manual":
        raise ApiError(403, "automatic_annotation", "an automatic annotation is not edited")
    if not principal.is_admin and row["author_id"] != principal.user_id:
        raise ApiError(403, "not_the_author", "only its author or an admin changes an annotation")
    start, end = body.span(tz)
    state.meta.update(
        "annotations",
        annotation_id,
        {"starts_at": start, "ends_at": end, "text": body.text, "updated_at": time.time()},
    )
    return _out(*_annotation(state, principal, annotation_id))


@router.delete("/annotations/{annotation_id}", status_code=204)
def delete_annotation(annotation_id: PathId, principal: Auth, state: State) -> Response:
    row, _ = _annotation(state, principal, annotation_id)
    if row["kind"] != "manual":
        if not principal.is_admin or row["site_id"] is None:
            raise ApiError(
                403, "automatic_annotation", "only an admin deletes an automatic annotation of a site"
            )
    elif not principal.is_admin and row["author_id"] != principal.user_id:
        raise ApiError(403, "not_the_author", "only its author or an admin deletes an annotation")
    state.meta.delete("annotations", annotation_id)
    return Response(status_code=204)
