"""Sites (admins write, everyone reads the sites they may see), their tracker snippet and goals."""

from __future__ import annotations

import html
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from pixel.server.annotations import note_site_rules
from pixel.server.api import limits
from pixel.server.api.deps import Admin, Auth, PathId, State, site_for
from pixel.server.api.errors import ApiError, not_found
from pixel.server.api.meta import Conflict
from pixel.server.api.models import GoalIn, GoalOut, GoalPatch, Page, SiteFields, SiteIn, SiteOut, Snippet
from pixel.server.api.pagination import Listing, paginate
from pixel.server.collector.script import extended_name
from pixel.server.installcheck import check_installation
from pixel.server.proxyrecipes import RecipeError, recipes

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=Page)
def list_sites(principal: Auth, state: State, listing: Listing) -> dict[str, Any]:
    sites = [s for s in state.meta.sites() if principal.can_see(s["id"])]
    return paginate(sites, listing, ("id", "domain", "name", "created_at"))


@router.post("", response_model=SiteOut, status_code=201)
def create_site(body: SiteIn, principal: Admin, state: State) -> dict[str, Any]:
    """A new site (admins of all sites only: a site-limited admin would not hold it). Its id is never
    one a deleted site had, so no grant, goal or dashboard of a deleted site applies to it."""
    if principal.sites is not None:
        raise ApiError(403, "beyond_your_access", "only an admin of all sites creates sites")
    values = body.model_dump()
    defaults = {
        "name": body.domain,
        "timezone": "UTC",
        "allowed_origins": [],
        "honour_dnt": True,
        "honour_gpc": True,
        "excluded_paths": [],
        "excluded_ips": [],
        "retention_days": 0,
        "currency": "",
    }
    for key, default in defaults.items():
        if values.get(key) is None:
            values[key] = default
    values["created_at"] = time.time()
    try:
        site_id = state.meta.insert("sites", values)
    except Conflict:
        raise ApiError(409, "site_exists", f"a site for {body.domain} exists") from None
    site = state.meta.site(site_id)
    assert site is not None
    return site


@router.get("/{site_id}", response_model=SiteOut)
def get_site(site_id: PathId, principal: Auth, state: State) -> dict[str, Any]:
    return site_for(state, principal, site_id)


@router.patch("/{site_id}", response_model=SiteOut)
def update_site(site_id: PathId, body: SiteFields, principal: Admin, state: State) -> dict[str, Any]:
    before = site_for(state, principal, site_id)
    state.meta.update("sites", site_id, body.model_dump(exclude_none=True))
    after = site_for(state, principal, site_id)
    # a change of the rules (DNT/GPC, exclusions, origins, retention) is annotated on the site's charts
    note_site_rules(
        state.meta,
        site_id,
        before,
        after,
        now=time.time(),
        author=principal.username,
        author_id=principal.user_id,
    )
    return after


@router.delete("/{site_id}", status_code=204)
def delete_site(site_id: PathId, principal: Admin, state: State) -> Response:
    """Removes the site's settings, goals, dashboards and every user's grant to it; its events stay
    until retention drops them."""
    site_for(state, principal, site_id)
    state.meta.delete("sites", site_id)
    return Response(status_code=204)


@router.get("/{site_id}/snippet", response_model=Snippet)
def snippet(
    site_id: PathId,
    principal: Auth,
    state: State,
    collector_url: Annotated[str | None, Query(max_length=500, pattern=r"^https?://[^\s\"'<>]+$")] = None,
) -> dict[str, Any]:
    """The `<script>` tag to paste into the site's pages: `html` with the consent-free default build,
    `extended_html` with the extended one, `difference` says which to choose. `collector_url` is where
    visitors reach the collector (default: the configured host and port)."""
    site = site_for(state, principal, site_id)
    settings = state.settings
    base = (collector_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    endpoint = html.escape(f"{base}{settings.track_path}", quote=True)
    domain = html.escape(site["domain"], quote=True)
    tags = [
        f'<script defer src="{html.escape(f"{base}/{name}", quote=True)}" data-site="{domain}" '
        f'data-endpoint="{endpoint}"></script>'
        for name in (settings.script_name, extended_name(settings.script_name))
    ]
    return {
        "site_id": site_id,
        "domain": site["domain"],
        "html": tags[0],
        "extended_html": tags[1],
        "difference": SNIPPET_DIFFERENCE,
    }


SNIPPET_DIFFERENCE = (
    "html: the default build, consent-free (no device signals, nothing stored but pending events); "
    "extended_html: adds web vitals, JavaScript errors, click tagging and, only after "
    "_pixel.push(['consent', true]), a device id that needs the visitor's consent."
)


CollectorUrl = Annotated[str | None, Query(max_length=500, pattern=r"^https?://[^\s\"'<>]+$")]


@router.get("/{site_id}/proxy-recipes")
def proxy_recipes(
    site_id: PathId,
    principal: Auth,
    state: State,
    collector_url: CollectorUrl = None,
    prefix: Annotated[str, Query(max_length=100)] = "/stats",
) -> dict[str, Any]:
    """How to serve Pixel under the site's own domain (`/stats/pixel.js`, `/stats/track`): the snippet and the
    nginx, Caddy, Apache, Cloudflare Worker, Netlify, Vercel and Next.js configuration (server/proxyrecipes.py).
    `collector_url` is where the proxy reaches the collector (default: the configured host and port)."""
    site = site_for(state, principal, site_id)
    settings = state.settings
    base = collector_url or f"http://{settings.host}:{settings.port}"
    try:
        out = recipes(site["domain"], base, settings.script_name, settings.track_path, prefix)
    except RecipeError as exc:
        raise ApiError(422, "invalid_recipe_input", str(exc)) from None
    out["trusted_proxies"] = [str(n) for n in settings.trusted_proxies]
    return {"site_id": site_id, **out}


class InstallationCheckIn(BaseModel):
    page_url: str = Field(min_length=1, max_length=2000)


@router.post("/{site_id}/check-installation")
def check_site_installation(
    site_id: PathId, body: InstallationCheckIn, principal: Admin, state: State
) -> dict[str, Any]:
    """Fetches the page, finds the snippet, loads the script and asks the collector through it which visitor
    address it sees; findings in plain words with codes (server/installcheck.py). Admins only: it makes this
    server fetch the address given (http and https only)."""
    site = site_for(state, principal, site_id)
    return {"site_id": site_id, **check_installation(body.page_url, site["domain"], state.settings)}


# -- goals ----------------------------------------------------------------------------------------


@router.get("/{site_id}/goals", response_model=Page)
def list_goals(site_id: PathId, principal: Auth, state: State, listing: Listing) -> dict[str, Any]:
    site_for(state, principal, site_id)
    goals = state.meta.all("SELECT * FROM goals WHERE site_id = ?", site_id)
    return paginate(goals, listing, ("id", "name"))


@router.post("/{site_id}/goals", response_model=GoalOut, status_code=201)
def create_goal(site_id: PathId, body: GoalIn, principal: Admin, state: State) -> dict[str, Any]:
    site_for(state, principal, site_id)
    goal_id = state.meta.insert("goals", {"site_id": site_id, **body.model_dump()}, limits.goals(site_id))
    goal = state.meta.one("SELECT * FROM goals WHERE id = ?", goal_id)
    assert goal is not None
    return goal


@router.patch("/{site_id}/goals/{goal_id}", response_model=GoalOut)
def update_goal(
    site_id: PathId, goal_id: PathId, body: GoalPatch, principal: Admin, state: State
) -> dict[str, Any]:
    """Changes a goal in place (same id): the fields sent are merged over the stored goal and the whole
    result must be a valid goal, as for create (422 otherwise, nothing written); the same access rules."""
    site_for(state, principal, site_id)
    goal = state.meta.one("SELECT * FROM goals WHERE id = ? AND site_id = ?", goal_id, site_id)
    if goal is None:
        raise not_found("goal")
    merged = {k: goal[k] for k in GoalIn.model_fields} | body.model_dump(exclude_unset=True)
    if merged.get("name") is None:
        merged.pop("name")  # null is no name: reported as missing, as create would
    try:
        valid = GoalIn.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
        ) from None
    with state.meta.transaction() as conn:
        sets = ", ".join(f"{k} = ?" for k in GoalIn.model_fields)
        conn.execute(
            f"UPDATE goals SET {sets} WHERE id = ? AND site_id = ?",
            (*valid.model_dump().values(), goal_id, site_id),
        )
    after = state.meta.one("SELECT * FROM goals WHERE id = ?", goal_id)
    if after is None:  # deleted between the read and the write
        raise not_found("goal")
    return after


@router.delete("/{site_id}/goals/{goal_id}", status_code=204)
def delete_goal(site_id: PathId, goal_id: PathId, principal: Admin, state: State) -> Response:
    site_for(state, principal, site_id)
    with state.meta.transaction() as conn:
        gone = conn.execute("DELETE FROM goals WHERE id = ? AND site_id = ?", (goal_id, site_id)).rowcount
    if not gone:
        raise not_found("goal")
    return Response(status_code=204)
