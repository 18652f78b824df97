"""Share links: a read-only view of one site's reports for people without an account.

The contract this module keeps (the routes are in `routers/share.py`):
- A link's token is `pxs_` + 32 random bytes (256 bits, URL-safe base64). Only a keyed hash of it is stored
  (HMAC-SHA256 with the install's signing key, `security.load_signing_key`), so neither the metadata database
  alone nor a guess names a link; the token is shown once, when the link is created.
- A link names one site, an optional fixed filter set (validated exactly like report filters), the periods its
  viewers may choose (a non-empty subset of `ALLOWED_PERIODS`; `custom` is not one: a viewer picks no dates),
  the origins that may embed it in a frame, an optional expiry and an optional password (argon2).
- `lookup` gives the link a token names only while it is usable: an unknown or revoked token is `Gone(404)`,
  an expired one `Gone(410)`; time comes from the caller (the app's injectable clock).
- A password unlocks a link for `UNLOCK_TTL` seconds through a cookie `<share id>.<expiry>.<mac>`, whose MAC
  covers the link's id, the expiry and the link's password hash: it opens no other link, and changing or
  revoking the link ends it.
- Embed origins are exact `scheme://host[:port]` origins (http or https, lower-case host, no path, no
  wildcard): each is written into a `frame-ancestors` directive as it is, so nothing else may reach it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pixel.server.api import limits
from pixel.server.api.meta import MetaDB
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import PERIODS
from pixel.server.errors import PixelError

TOKEN_PREFIX = "pxs_"
TOKEN_BYTES = 32
# The exact shape `new_token` makes; anything else is refused before any lookup.
TOKEN_RE = re.compile(r"pxs_[A-Za-z0-9_-]{43}")
ALLOWED_PERIODS = tuple(p for p in PERIODS if p != "custom")
DEFAULT_PERIODS = ("7d", "30d")
UNLOCK_TTL = 3600
COOKIE_NAME = "pixel_share"
MAX_ORIGINS = 20
_ORIGIN = re.compile(r"https?://[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?")


class Gone(PixelError):
    """The token names no usable link: 404 (unknown or revoked) or 410 (expired)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(key: bytes, token: str) -> str:
    return hmac.new(key, b"pixel-share-token\0" + token.encode(), hashlib.sha256).hexdigest()


class ShareIn(BaseModel):
    """A new share link, as an admin of the site asks for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    expires_at: float | None = Field(default=None, description="Unix time after which the link is gone")
    filters: list[list[str]] = Field(default_factory=list, description="fixed [dimension, operator, value]s")
    periods: list[str] = Field(default_factory=lambda: list(DEFAULT_PERIODS), min_length=1, max_length=20)
    embed_origins: list[str] = Field(default_factory=list, max_length=MAX_ORIGINS)

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[list[str]]) -> list[list[str]]:
        try:
            return [f.as_list() for f in parse_filters(value)]
        except Exception as exc:  # ApiError: its detail is the reason
            raise ValueError(getattr(exc, "detail", str(exc))) from None

    @field_validator("periods")
    @classmethod
    def _periods(cls, value: list[str]) -> list[str]:
        for period in value:
            if period not in ALLOWED_PERIODS:
                raise ValueError(f"{period!r} is not one of {', '.join(ALLOWED_PERIODS)}")
        return list(dict.fromkeys(value))

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            port = origin.rsplit(":", 1)[-1]
            if not _ORIGIN.fullmatch(origin) or (port.isdigit() and not 0 < int(port) < 65536):
                raise ValueError(f"{origin!r} is not an origin like https://status.example.com")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _expiry(self) -> ShareIn:
        if self.expires_at is not None and not 0 < self.expires_at < 2**40:
            raise ValueError("expires_at must be a Unix time")
        return self


class ShareOut(BaseModel):
    id: int
    site_id: int
    name: str
    prefix: str
    has_password: bool
    filters: list[list[str]]
    periods: list[str]
    embed_origins: list[str]
    expires_at: float | None
    revoked_at: float | None
    created_at: float


class ShareCreated(ShareOut):
    token: str = Field(description="shown once; the link is /share/<token>")
    path: str


@dataclass(frozen=True)
class Share:
    id: int
    site_id: int
    name: str
    password_hash: str | None
    filters: list[list[str]]
    periods: list[str]
    embed_origins: list[str]
    expires_at: float | None
    revoked_at: float | None
    prefix: str
    created_at: float

    @classmethod
    def of(cls, row: dict[str, Any]) -> Share:
        return cls(
            id=row["id"],
            site_id=row["site_id"],
            name=row["name"],
            password_hash=row["password_hash"],
            filters=json.loads(row["filters"]),
            periods=json.loads(row["periods"]),
            embed_origins=json.loads(row["embed_origins"]),
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            prefix=row["prefix"],
            created_at=row["created_at"],
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site_id": self.site_id,
            "name": self.name,
            "prefix": self.prefix,
            "has_password": self.password_hash is not None,
            "filters": self.filters,
            "periods": self.periods,
            "embed_origins": self.embed_origins,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "created_at": self.created_at,
        }

    def frame_ancestors(self) -> str:
        return " ".join(self.embed_origins) if self.embed_origins else "'none'"


def create(
    meta: MetaDB, key: bytes, site_id: int, body: ShareIn, password_hash: str | None, now: float
) -> tuple[Share, str]:
    """A new link of `site_id` and its token (returned only here)."""
    token = new_token()
    share_id = meta.insert(
        "share_links",
        {
            "site_id": site_id,
            "name": body.name,
            "token_hash": token_digest(key, token),
            "prefix": token[:8],
            "password_hash": password_hash,
            "filters": json.dumps(body.filters),
            "periods": json.dumps(body.periods),
            "embed_origins": json.dumps(body.embed_origins),
            "expires_at": body.expires_at,
            "created_at": now,
        },
        limits.share_links(site_id),
    )
    share = get(meta, share_id)
    assert share is not None
    return share, token


def get(meta: MetaDB, share_id: int) -> Share | None:
    row = meta.one("SELECT * FROM share_links WHERE id = ?", share_id)
    return None if row is None else Share.of(row)


def of_site(meta: MetaDB, site_id: int) -> list[Share]:
    return [Share.of(r) for r in meta.all("SELECT * FROM share_links WHERE site_id = ? ORDER BY id", site_id)]


def revoke(meta: MetaDB, share_id: int, now: float) -> None:
    with meta.transaction() as conn:
        conn.execute(
            "UPDATE share_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, share_id)
        )


def lookup(meta: MetaDB, key: bytes, token: str, now: float) -> Share:
    """The usable link `token` names, or `Gone`."""
    if not TOKEN_RE.fullmatch(token):
        raise Gone(404, "This link is not valid: it was revoked or never existed.")
    row = meta.one("SELECT * FROM share_links WHERE token_hash = ?", token_digest(key, token))
    if row is None or row["revoked_at"] is not None:
        raise Gone(404, "This link is not valid: it was revoked or never existed.")
    share = Share.of(row)
    if share.expires_at is not None and now >= share.expires_at:
        raise Gone(410, "This link has expired.")
    return share


def _cookie_mac(key: bytes, share: Share, expires: int) -> str:
    message = f"pixel-share-unlock\0{share.id}\0{expires}\0{share.password_hash or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def unlock_cookie(key: bytes, share: Share, now: float) -> tuple[str, int]:
    """The cookie value that unlocks `share` until now + UNLOCK_TTL, and its max-age."""
    expires = int(now) + UNLOCK_TTL
    return f"{share.id}.{expires}.{_cookie_mac(key, share, expires)}", UNLOCK_TTL


def unlocked(key: bytes, share: Share, cookie: str | None, now: float) -> bool:
    """Whether `share` may be shown: it has no password, or `cookie` is its own unexpired unlock cookie."""
    if share.password_hash is None:
        return True
    if not cookie or len(cookie) > 200:
        return False
    parts = cookie.split(".")
    if len(parts) != 3 or parts[0] != str(share.id) or not parts[1].isdigit() or len(parts[1]) > 12:
        return False
    expires = int(parts[1])
    if now >= expires or expires > now + UNLOCK_TTL + 60:
        return False
    return hmac.compare_digest(parts[2], _cookie_mac(key, share, expires))
