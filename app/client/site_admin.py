"""Qt-free owner tasks on sites and goals, over an `ApiClient`: add, rename, delete a site; its time zone and
rules (DNT/GPC, excluded paths, excluded IPs/ranges, allowed origins, retention); its snippet for both builds;
goals (page glob, event, event + property) and a funnel's conversion for a list of steps.

Contract: the API is the validator. Every refusal reaches the caller as `ApiRequestError` whose `detail` is the
API's own text, and a refused change changes nothing (the API validates a whole body before writing). Two checks
happen here before any request, because the API would accept what an owner cannot mean: a site's or goal's name
that is empty or only spaces (`EmptyName`). A goal is edited in place with one PATCH (same id, same place in the
list); the API validates the whole edited goal first, so a refused edit leaves the goal as it was."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pixel.app.client.api import ApiClient, ApiRequestError

GoalKind = Literal["page", "event", "event_property"]
GOAL_FIELDS = ("name", "kind", "page_pattern", "event_name", "prop_key", "prop_value")
RULE_FIELDS = (
    "honour_dnt",
    "honour_gpc",
    "excluded_paths",
    "excluded_ips",
    "allowed_origins",
    "retention_days",
)


class EmptyName(ApiRequestError):
    """A name that is empty or only spaces, refused before any request."""

    def __init__(self, what: str) -> None:
        super().__init__(422, "empty_name", f"{what} needs a name")


def lines(text: str) -> list[str]:
    """A multi-line box's entries: one per line, spaces around each trimmed, empty lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def site_label(site: dict[str, Any]) -> str:
    return site["domain"] if site["name"] == site["domain"] else f"{site['name']} ({site['domain']})"


def deletion_text(site: dict[str, Any]) -> str:
    """What the confirmation before deleting `site` says (names the site, and what goes with it)."""
    return (
        f"Delete the site {site_label(site)}?\n\nIts settings, goals, saved dashboards and every user's access "
        "to it are removed. Its events stay stored until retention drops them, but are no longer shown."
    )


def goal_kind(goal: dict[str, Any]) -> GoalKind:
    if goal["kind"] == "page":
        return "page"
    return "event_property" if goal.get("prop_key") else "event"


def goal_body(
    kind: GoalKind,
    name: str | None,
    *,
    page_pattern: str = "",
    event_name: str = "",
    prop_key: str = "",
    prop_value: str = "",
) -> dict[str, Any]:
    """The API body of a goal (or of a funnel step when `name` is None) of `kind`; other kinds' fields left out."""
    body: dict[str, Any] = {} if name is None else {"name": name.strip()}
    if kind == "page":
        body.update(kind="page", page_pattern=page_pattern.strip())
    else:
        body.update(kind="event", event_name=event_name.strip())
        if kind == "event_property":
            body.update(prop_key=prop_key.strip(), prop_value=prop_value)
    return body


def describe_goal(goal: dict[str, Any]) -> str:
    """One line saying what a goal (or a funnel step) counts."""
    if goal["kind"] == "page":
        return f"visits a page matching {goal['page_pattern']}"
    text = f"sends the event {goal['event_name']}"
    if goal.get("prop_key"):
        text += f" with {goal['prop_key']} = {goal.get('prop_value') or ''}"
    return text


@dataclass
class SiteAdmin:
    """The owner's tasks on sites and goals of one API (an `ApiClient`, logged in on first use)."""

    client: ApiClient

    # ------------------------------------------------------------------ sites
    def sites(self) -> list[dict[str, Any]]:
        return self.client.every("/api/sites")

    def site(self, site_id: int) -> dict[str, Any]:
        return dict(self.client.get(f"/api/sites/{site_id}"))

    def add_site(self, domain: str, name: str = "", timezone: str = "UTC") -> dict[str, Any]:
        """A new site; an empty name means the domain (the API's default)."""
        body: dict[str, Any] = {"domain": domain, "timezone": timezone}
        if name.strip():
            body["name"] = name.strip()
        return dict(self.client.request("POST", "/api/sites", body=body))

    def update_site(self, site_id: int, **fields: Any) -> dict[str, Any]:
        """Change any of the site's fields (name, timezone and the rules); the others stay."""
        if "name" in fields:
            if not str(fields["name"]).strip():
                raise EmptyName("a site")
            fields["name"] = str(fields["name"]).strip()
        return dict(self.client.request("PATCH", f"/api/sites/{site_id}", body=fields))

    def rename_site(self, site_id: int, name: str) -> dict[str, Any]:
        return self.update_site(site_id, name=name)

    def set_timezone(self, site_id: int, timezone: str) -> dict[str, Any]:
        return self.update_site(site_id, timezone=timezone)

    def set_rules(self, site_id: int, **rules: Any) -> dict[str, Any]:
        unknown = set(rules) - set(RULE_FIELDS)
        if unknown:
            raise ValueError(f"not a site rule: {', '.join(sorted(unknown))}")
        return self.update_site(site_id, **rules)

    def delete_site(self, site_id: int) -> None:
        self.client.request("DELETE", f"/api/sites/{site_id}")

    def snippet(self, site_id: int, collector_url: str | None = None) -> dict[str, Any]:
        """Both builds' `<script>` tags (`html`, `extended_html`) and the `difference` between them."""
        params = {"collector_url": collector_url} if collector_url else None
        return dict(self.client.get(f"/api/sites/{site_id}/snippet", params))

    # ------------------------------------------------------------------ goals
    def goals(self, site_id: int) -> list[dict[str, Any]]:
        return self.client.every(f"/api/sites/{site_id}/goals")

    def create_goal(self, site_id: int, body: dict[str, Any]) -> dict[str, Any]:
        if not str(body.get("name", "")).strip():
            raise EmptyName("a goal")
        return dict(self.client.request("POST", f"/api/sites/{site_id}/goals", body=body))

    def edit_goal(self, site_id: int, goal_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Change a goal in place to `body` (a `goal_body`): the fields of the other kinds are sent as null,
        so a page goal turned into an event goal loses its page pattern. One request; a refusal changes nothing."""
        if not str(body.get("name", "")).strip():
            raise EmptyName("a goal")
        full = {key: body.get(key) for key in GOAL_FIELDS}
        return dict(self.client.request("PATCH", f"/api/sites/{site_id}/goals/{goal_id}", body=full))

    def delete_goal(self, site_id: int, goal_id: int) -> None:
        self.client.request("DELETE", f"/api/sites/{site_id}/goals/{goal_id}")

    # ------------------------------------------------------------------ funnels
    def funnel(
        self, site_id: int, steps: list[dict[str, Any]], window: int = 3600, period: str = "30d"
    ) -> dict[str, Any]:
        """The funnel report of `steps` (goal bodies without names) within `window` seconds of the first."""
        params = {"steps": json.dumps(steps, separators=(",", ":")), "window": window, "period": period}
        return dict(self.client.get(f"/api/sites/{site_id}/reports/funnel", params))
