"""How many of each thing a site, a person or the server may hold.

Without a bound, any caller allowed to create a thing could add rows without end — a viewer too, for segments
and annotations — and some of those rows are read whole on every request: each of a site's goals is a column of
the goals report's one statement, each alert channel is sent every alert, each share link is listed in one
answer. Every bound is checked in the same write transaction as the insert (`MetaDB.insert(bound=...)`), so two
requests racing for the last place cannot both pass; past it the API answers 409 `limit_reached` and says what
to do. The bounds are far above what a person keeps by hand, and low enough that what reads them stays cheap.

Rows the system writes itself (automatic annotations) are not counted against a person's bound.
"""

from __future__ import annotations

from pixel.server.api.meta import Bound

GOALS_PER_SITE = 200
DASHBOARDS_PER_SITE = 100
SHARE_LINKS_PER_SITE = 100
SEGMENTS_PER_PERSON_AND_SITE = 200
ANNOTATIONS_PER_PERSON_AND_SITE = 5000
API_TOKENS_PER_PERSON = 50
ALERT_CHANNELS = 50


def goals(site_id: int) -> Bound:
    return Bound("goals", "a site", GOALS_PER_SITE, {"site_id": site_id})


def dashboards(site_id: int) -> Bound:
    return Bound("dashboards", "a site", DASHBOARDS_PER_SITE, {"site_id": site_id})


def share_links(site_id: int) -> Bound:
    """The site's links not revoked: a revoked link stays listed (when and that it was revoked) but holds no place."""
    return Bound("share links", "a site", SHARE_LINKS_PER_SITE, {"site_id": site_id, "revoked_at": None})


def segments(site_id: int, user_id: int) -> Bound:
    return Bound(
        "segments",
        "each person on a site",
        SEGMENTS_PER_PERSON_AND_SITE,
        {"site_id": site_id, "owner_id": user_id},
    )


def manual_annotations(site_id: int, user_id: int) -> Bound:
    """A person's own notes on a site (kind 'manual'); the automatic ones are the system's."""
    return Bound(
        "notes",
        "each person on a site",
        ANNOTATIONS_PER_PERSON_AND_SITE,
        {"site_id": site_id, "author_id": user_id, "kind": "manual"},
    )


def api_tokens(user_id: int) -> Bound:
    return Bound("API tokens", "each person", API_TOKENS_PER_PERSON, {"user_id": user_id})


def alert_channels() -> Bound:
    return Bound("alert channels", "the server", ALERT_CHANNELS, {})
