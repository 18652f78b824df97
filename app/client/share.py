"""Qt-free share links over an `ApiClient`: list a site's links, create one, revoke one, and the texts a person
copies (the link, an iframe embed snippet).

Contract: the API is the validator and the access rule (admins only; `ApiRequestError` carries its text, e.g. a
bad embed origin or an expiry in the past). A link's token is in the create answer only: `create` returns it with
the rest, `links` never has it (the dialog keeps the tokens it made in this session to copy them later).
The public address of a link (`link_url`) is the stack's HTTPS edge when it has one (the collector's address is
`https://...`: the edge forwards `/share/*` to the API), else the API's own address (this computer or LAN only).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from pixel.app.client.api import ApiClient
from pixel.app.client.site_admin import EmptyName

Filters = list[list[str]]

# What a viewer may pick, in the order the API knows them ("custom" is never one: a viewer picks no dates).
PERIODS: dict[str, str] = {
    "realtime": "Last 30 minutes",
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last_month": "Last month",
    "12mo": "Last 12 months",
}


def links(client: ApiClient, site_id: int) -> list[dict[str, Any]]:
    """The site's links, oldest first, revoked ones included (with `revoked_at`)."""
    return list(client.get(f"/api/sites/{int(site_id)}/shares"))


def create(
    client: ApiClient,
    site_id: int,
    name: str,
    *,
    periods: list[str],
    filters: Filters | None = None,
    expires_at: float | None = None,
    password: str | None = None,
    embed_origins: list[str] | None = None,
) -> dict[str, Any]:
    """A new link: the API's answer, with `token` and `path` (shown once)."""
    if not name.strip():
        raise EmptyName("A share link needs a name.")
    body: dict[str, Any] = {
        "name": name.strip(),
        "periods": list(periods),
        "filters": [list(f) for f in (filters or [])],
        "embed_origins": [o.strip() for o in (embed_origins or []) if o.strip()],
        "expires_at": expires_at,
    }
    if password:
        body["password"] = password
    return dict(client.request("POST", f"/api/sites/{int(site_id)}/shares", body=body))


def revoke(client: ApiClient, site_id: int, share_id: int) -> None:
    client.request("DELETE", f"/api/sites/{int(site_id)}/shares/{int(share_id)}")


def public_base(api_url: str, collector_url: str = "") -> str:
    """Where a viewer opens links: the HTTPS edge's origin if the stack has one, else the API's address."""
    parts = urlsplit(collector_url.strip())
    if parts.scheme == "https" and parts.netloc:
        return f"https://{parts.netloc}"
    return api_url.rstrip("/")


def link_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/share/{token}"


def embed_snippet(url: str, title: str, width: int = 800, height: int = 600) -> str:
    """An iframe for a page on one of the link's embed origins (the view refuses any other origin)."""
    return (
        f'<iframe src="{html.escape(url)}" title="{html.escape(title)}" width="{int(width)}" '
        f'height="{int(height)}" style="border:0" loading="lazy" referrerpolicy="no-referrer"></iframe>'
    )


def parse_origins(text: str) -> list[str]:
    """Origins typed one per line or separated by commas/spaces (the API checks each)."""
    return [o for o in text.replace(",", " ").split() if o]
