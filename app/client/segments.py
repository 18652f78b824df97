"""Qt-free saved segments over an `ApiClient`: list a site's (shared and the caller's own), save the current
filters as one, rename or re-filter it, share it (admins), delete it.

Contract: the API is the validator and the access rule (a viewer sees its own and the shared segments of the
sites it may see); every refusal reaches the caller as `ApiRequestError` with the API's text. A segment's
filters are the reports' [dimension, operator, value] triples, the same lists the filter bar holds.
"""

from __future__ import annotations

from typing import Any

from pixel.app.client.api import ApiClient
from pixel.app.client.site_admin import EmptyName

Filters = list[list[str]]


def segments(client: ApiClient, site_id: int) -> list[dict[str, Any]]:
    """The site's segments the caller sees, by name."""
    return client.every(f"/api/sites/{site_id}/segments", {"sort": "name"})


def save(
    client: ApiClient, site_id: int, name: str, filters: Filters, shared: bool = False
) -> dict[str, Any]:
    """A new segment of the filters given (a copy: later changes of the list do not reach it)."""
    if not name.strip():
        raise EmptyName("A segment needs a name.")
    body = {"name": name.strip(), "filters": [list(f) for f in filters], "shared": shared}
    return dict(client.request("POST", f"/api/sites/{site_id}/segments", body=body))


def update(
    client: ApiClient, segment: dict[str, Any], *, name: str | None = None, filters: Filters | None = None,
    shared: bool | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The segment with the fields given changed (the API replaces the whole segment)."""
    body = {
        "name": (segment["name"] if name is None else name).strip(),
        "filters": [list(f) for f in (segment["filters"] if filters is None else filters)],
        "shared": segment["shared"] if shared is None else shared,
    }
    if not body["name"]:
        raise EmptyName("A segment needs a name.")
    return dict(client.request("PUT", f"/api/segments/{segment['id']}", body=body))


def delete(client: ApiClient, segment_id: int) -> None:
    client.request("DELETE", f"/api/segments/{segment_id}")
