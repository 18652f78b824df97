"""Alert channels in the meta DB (`alert_channels`, a migration in `server/api/metaschema.py`).

The contract: a channel's secret (the webhook's HMAC key, the Slack incoming-webhook URL, the SMTP password)
is written here and read only to deliver; `public` never holds it, only `has_secret`, and the Slack URL is
shown by its host alone. Input is validated by `ChannelIn`: http(s) URLs only, an SMTP port in range, the
sender and recipients as addresses without line breaks (no header injection).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, field_validator, model_validator

from pixel.server.alerts.channels import Channel

if TYPE_CHECKING:  # the API's package imports this module's router: no import of it at run time
    from pixel.server.api.meta import MetaDB

ADDRESS = re.compile(r"^[^\s@<>,;\"]+@[^\s@<>,;\"]+$")


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in value):
        raise ValueError("an http:// or https:// URL")
    return value


class ChannelIn(BaseModel):
    model_config = {"extra": "forbid"}

    kind: Literal["webhook", "slack", "smtp"]
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(default="", max_length=2000)  # webhook only
    secret: str = Field(default="", max_length=2000)  # webhook key, Slack URL, SMTP password
    smtp_host: str = Field(default="", max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = Field(default="", max_length=255)
    sender: str = Field(default="", max_length=255)
    recipients: list[str] = Field(default_factory=list, max_length=20)
    enabled: bool = True

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if v and not ADDRESS.match(v):
            raise ValueError("an e-mail address")
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: list[str]) -> list[str]:
        for r in v:
            if not ADDRESS.match(r) or len(r) > 255:
                raise ValueError(f"not an e-mail address: {r[:50]!r}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> ChannelIn:
        if self.kind == "webhook":
            _http_url(self.url)
            if len(self.secret) < 16:
                raise ValueError("a webhook needs a secret of at least 16 characters to sign with")
        elif self.kind == "slack":
            _http_url(self.secret)
            if self.url:
                raise ValueError("a Slack channel's URL is its secret: give it as `secret`")
        else:
            if not self.smtp_host or any(c.isspace() for c in self.smtp_host):
                raise ValueError("an SMTP channel needs smtp_host")
            if not self.sender or not self.recipients:
                raise ValueError("an SMTP channel needs a sender and at least one recipient")
            if self.smtp_username and not self.secret:
                raise ValueError("an SMTP login needs its password as `secret`")
        return self


class ChannelOut(BaseModel):
    id: int
    kind: str
    name: str
    target: str  # the webhook URL, the Slack URL's host, or the SMTP host:port
    has_secret: bool
    smtp_security: str | None = None
    smtp_username: str | None = None
    sender: str | None = None
    recipients: list[str] | None = None
    enabled: bool
    created_at: float
    last_sent_at: float | None
    last_error: str | None


SETTINGS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "sender", "recipients")


def create(meta: MetaDB, body: ChannelIn, now: float) -> int:
    from pixel.server.api import limits  # at call time: the API's package imports this module

    settings = {k: getattr(body, k) for k in SETTINGS} if body.kind == "smtp" else {}
    return meta.insert(
        "alert_channels",
        {
            "kind": body.kind,
            "name": body.name,
            "url": body.url if body.kind == "webhook" else "",
            "secret": body.secret,
            "settings": json.dumps(settings),
            "enabled": int(body.enabled),
            "created_at": now,
        },
        limits.alert_channels(),
    )


def rows(meta: MetaDB) -> list[dict[str, Any]]:
    return meta.all("SELECT * FROM alert_channels ORDER BY id")


def row(meta: MetaDB, channel_id: int) -> dict[str, Any] | None:
    return meta.one("SELECT * FROM alert_channels WHERE id = ?", channel_id)


def delete(meta: MetaDB, channel_id: int) -> bool:
    return meta.delete("alert_channels", channel_id)


def record(meta: MetaDB, channel_id: int, now: float, error: str | None) -> None:
    with meta.transaction() as conn:
        if error is None:
            conn.execute(
                "UPDATE alert_channels SET last_sent_at = ?, last_error = NULL WHERE id = ?",
                (now, channel_id),
            )
        else:
            conn.execute("UPDATE alert_channels SET last_error = ? WHERE id = ?", (error, channel_id))


def channel(r: dict[str, Any]) -> Channel:
    s = json.loads(r["settings"] or "{}")
    return Channel(
        kind=r["kind"],
        name=r["name"],
        url=r["url"],
        secret=r["secret"],
        smtp_host=s.get("smtp_host", ""),
        smtp_port=int(s.get("smtp_port", 587)),
        smtp_security=s.get("smtp_security", "starttls"),
        smtp_username=s.get("smtp_username", ""),
        sender=s.get("sender", ""),
        recipients=list(s.get("recipients", [])),
    )


def public(r: dict[str, Any]) -> dict[str, Any]:
    """The channel as the API shows it: never the secret."""
    c = channel(r)
    if c.kind == "webhook":
        target = c.url
    elif c.kind == "slack":
        target = urlparse(c.secret).hostname or ""
    else:
        target = f"{c.smtp_host}:{c.smtp_port}"
    out: dict[str, Any] = {
        "id": r["id"],
        "kind": c.kind,
        "name": c.name,
        "target": target,
        "has_secret": bool(c.secret),
        "enabled": bool(r["enabled"]),
        "created_at": r["created_at"],
        "last_sent_at": r["last_sent_at"],
        "last_error": r["last_error"],
    }
    if c.kind == "smtp":
        out.update(
            smtp_security=c.smtp_security,
            smtp_username=c.smtp_username,
            sender=c.sender,
            recipients=c.recipients,
        )
    return out
