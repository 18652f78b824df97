"""Journeys for the desktop: the API's journeys reports through a `ReportSource` (live when the host answers,
else the cached answer "as of" when it was fetched), and a path turned into funnel steps.

`journeys` asks `/reports/journeys` (top paths and their flow), `neighbours` `/journeys/next` or `/previous`;
the parameters are the API's (`steps`, `start`, `end`, `groups` as a list, `collapse_repeats`, `period`,
`filters` ...). `funnel_steps` gives the funnel editor one page step per page of a path (a group pattern such
as `/blog/*` is a page glob already)."""

from __future__ import annotations

import json
from typing import Any

from pixel.app.client.source import Fetched, ReportSource


def api_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` as the API takes them: `groups` (a list of patterns) as JSON text."""
    out = dict(params)
    groups = out.pop("groups", None)
    if groups:
        out["groups"] = json.dumps(list(groups), separators=(",", ":"))
    return out


def journeys(source: ReportSource, site_id: int, **params: Any) -> Fetched:
    """Top paths and the flow per step for the site (cached for offline use like every report)."""
    return source.get(f"/api/sites/{site_id}/reports/journeys", api_params(params))


def neighbours(source: ReportSource, site_id: int, page: str, direction: str, **params: Any) -> Fetched:
    """The pages after (`direction` "next") or before ("previous") the sessions' first view of `page`."""
    if direction not in ("next", "previous"):
        raise ValueError("direction is next or previous")
    return source.get(
        f"/api/sites/{site_id}/reports/journeys/{direction}", api_params({"page": page, **params})
    )


def funnel_steps(pages: list[str]) -> list[dict[str, Any]]:
    """A journey's pages as funnel steps (kind page, the page or group pattern as its glob)."""
    return [{"kind": "page", "name": page[:200], "page_pattern": page} for page in pages]
