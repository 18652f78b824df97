"""The desktop's calls for digests and alerts: a site's digest numbers for a period (the same report routes
the dashboard reads: summary compared with the previous period, top sources and pages, goals, visitors and
pageviews per day), the traffic verdict, the stack's alert channels (whose secrets the API never returns), and
the stack-health alerts' rules and findings.
Blocking: called from worker threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pixel.app.client.api import ApiClient

TOP = 5


@dataclass
class DigestData:
    site: str
    site_id: int
    kind: str  # "weekly" | "monthly"
    first: date  # inclusive, in the site's zone
    last: date
    metrics: dict[str, dict[str, Any]]  # name -> {"value", "previous", "change"}
    sources: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)  # {"bucket", "visitors", "pageviews"}


def digest_data(client: ApiClient, site: dict[str, Any], kind: str, first: date, last: date) -> DigestData:
    params: dict[str, Any] = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
    sid = int(site["id"])
    summary = client.report(sid, "summary", {**params, "compare": "previous"})
    sources = client.report(sid, "breakdown/source", {**params, "limit": TOP})
    pages = client.report(sid, "breakdown/page", {**params, "limit": TOP})
    goals = client.report(sid, "goals", params)
    series = client.report(sid, "timeseries", {**params, "interval": "day"})
    return DigestData(
        site=str(site["domain"]),
        site_id=sid,
        kind=kind,
        first=first,
        last=last,
        metrics=summary["metrics"],
        sources=list(sources["rows"]),
        pages=list(pages["rows"]),
        goals=list(goals["goals"]),
        points=list(series["points"]),
    )


def traffic(client: ApiClient, site_id: int) -> dict[str, Any]:
    return dict(client.get(f"/api/sites/{site_id}/alerts/traffic"))


def channels(client: ApiClient) -> list[dict[str, Any]]:
    return list(client.get("/api/alerts/channels"))


def create_channel(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.request("POST", "/api/alerts/channels", body=body))


def delete_channel(client: ApiClient, channel_id: int) -> None:
    client.request("DELETE", f"/api/alerts/channels/{channel_id}")


def send_test(client: ApiClient, channel_id: int) -> dict[str, Any]:
    """Send a test alert now: {"ok", "error"}, the error in the receiver's or SMTP server's own words."""
    return dict(client.request("POST", f"/api/alerts/channels/{channel_id}/test"))


def rules(client: ApiClient) -> dict[str, Any]:
    """The stack-health kinds' settings: {"ingestion", "disk", "certificate", "backup"} (admins)."""
    return dict(client.get("/api/alerts/rules"))


def save_rules(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.request("PUT", "/api/alerts/rules", body=body))


def health(client: ApiClient) -> list[dict[str, Any]]:
    """The stack's health judged now: ingestion stopped, disk filling, certificate near expiry (admins)."""
    return list(client.get("/api/alerts/health"))
