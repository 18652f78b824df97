"""Saved segments: CRUD and the access rules (personal / shared, viewer / admin / API token / other site)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from tests.api.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD, Api

PASSWORD = "segment-user-password-1"
FILTERS = [["country", "is", "DE"], ["page", "contains", "/blog"]]


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, dict[str, str]]:
    """Bearer headers: admin, viewer (site), viewer2 (site), outsider (other site only), and an API token
    of viewer."""
    meta = open_meta(api.settings)
    meta.create_user("viewer2", hash_password(PASSWORD), "viewer", [api.site_id])
    meta.create_user("outsider", hash_password(PASSWORD), "viewer", [api.other_site_id])
    meta.create_user("siteadmin", hash_password(PASSWORD), "admin", [api.other_site_id])
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    token = api.client.post("/api/tokens", json={"name": "segments"}, headers=viewer)
    assert token.status_code == 201, token.text
    return {
        "admin": api.headers("admin", ADMIN_PASSWORD),
        "viewer": viewer,
        "viewer2": api.headers("viewer2", PASSWORD),
        "outsider": api.headers("outsider", PASSWORD),
        "siteadmin": api.headers("siteadmin", PASSWORD),
        "token": {"Authorization": f"Bearer {token.json()['token']}"},
    }


def _create(api: Api, who: dict[str, str], **body: Any) -> Any:
    return api.client.post(f"/api/sites/{api.site_id}/segments", json=body, headers=who)


def _names(api: Api, who: dict[str, str], site_id: int | None = None) -> list[str]:
    r = api.client.get(f"/api/sites/{site_id or api.site_id}/segments", headers=who)
    assert r.status_code == 200, r.text
    return sorted(item["name"] for item in r.json()["items"])


def test_personal_segment_is_its_owners_only(api: Api, people: dict[str, dict[str, str]]) -> None:
    made = _create(api, people["viewer"], name="German blog readers", filters=FILTERS)
    assert made.status_code == 201, made.text
    seg = made.json()
    assert (seg["name"], seg["filters"], seg["shared"], seg["owner"], seg["mine"]) == (
        "German blog readers",
        FILTERS,
        False,
        "viewer",
        True,
    )
    url = f"/api/segments/{seg['id']}"
    assert api.client.get(url, headers=people["viewer"]).json()["filters"] == FILTERS
    # nobody else sees it, not even an admin: a personal segment is personal (404, as if it did not exist)
    for other in ("viewer2", "admin", "outsider", "siteadmin"):
        assert api.client.get(url, headers=people[other]).status_code == 404, other
        assert api.client.delete(url, headers=people[other]).status_code == 404, other
        if other in ("viewer2", "admin"):
            assert "German blog readers" not in _names(api, people[other])
    # the owner's API token reads it (read-only)
    assert api.client.get(url, headers=people["token"]).json()["id"] == seg["id"]
    assert "German blog readers" in _names(api, people["token"])
    assert api.client.delete(url, headers=people["token"]).status_code == 403
    # the owner renames and deletes it
    put = api.client.put(url, json={"name": "DE blog", "filters": FILTERS[:1]}, headers=people["viewer"])
    assert put.status_code == 200, put.text
    assert (put.json()["name"], put.json()["filters"]) == ("DE blog", FILTERS[:1])
    assert api.client.delete(url, headers=people["viewer"]).status_code == 204
    assert api.client.get(url, headers=people["viewer"]).status_code == 404


def test_shared_segments_are_the_sites_users_and_only_admins_share(
    api: Api, people: dict[str, dict[str, str]]
) -> None:
    refused = _create(api, people["viewer"], name="mine for all", filters=FILTERS, shared=True)
    assert (refused.status_code, refused.json()["error"]) == (403, "admins_only")
    made = _create(api, people["admin"], name="Campaign", filters=[["utm_source", "is", "news"]], shared=True)
    assert made.status_code == 201, made.text
    seg = made.json()
    url = f"/api/segments/{seg['id']}"
    for who in ("viewer", "viewer2", "token", "admin"):
        got = api.client.get(url, headers=people[who])
        assert got.status_code == 200, who
        assert (got.json()["shared"], got.json()["owner"], got.json()["mine"]) == (
            True,
            "admin",
            who == "admin",
        )
        assert "Campaign" in _names(api, people[who])
    # users of another site see nothing of it: 404 on the segment, 404 on the site's list
    for who in ("outsider", "siteadmin"):
        assert api.client.get(url, headers=people[who]).status_code == 404
        assert api.client.put(url, json={"name": "x"}, headers=people[who]).status_code == 404
        assert api.client.delete(url, headers=people[who]).status_code == 404
        assert api.client.get(f"/api/sites/{api.site_id}/segments", headers=people[who]).status_code == 404
        assert _create(api, people[who], name="x").status_code == 404
    # a viewer changes or deletes no shared segment; making its own personal one shared is refused too
    assert api.client.put(url, json={"name": "v"}, headers=people["viewer"]).status_code == 403
    assert api.client.delete(url, headers=people["viewer"]).status_code == 403
    own = _create(api, people["viewer2"], name="own").json()
    share = api.client.put(
        f"/api/segments/{own['id']}", json={"name": "own", "shared": True}, headers=people["viewer2"]
    )
    assert share.status_code == 403
    # the admin unshares it: it becomes the admin's personal segment, gone from the viewers' lists
    unshared = api.client.put(url, json={"name": "Campaign", "shared": False}, headers=people["admin"])
    assert unshared.status_code == 200
    assert api.client.get(url, headers=people["viewer"]).status_code == 404
    assert "Campaign" not in _names(api, people["viewer"])
    assert api.client.delete(url, headers=people["admin"]).status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "filters": []},
        {"name": "   ", "filters": []},
        {"name": "bad\ud800", "filters": []},
        {"name": "x" * 201},
        {"name": "x", "filters": [["country", "is"]]},
        {"name": "x", "filters": [["nope", "is", "DE"]]},
        {"name": "x", "filters": [["country", "like", "DE"]]},
        {"name": "x", "filters": [["country", "is", "a\u0000b"]]},
        {"name": "x", "filters": [["country", "is", "DE"]] * 100},
        {"name": "x", "owner_id": 1},
        {"name": "x", "site_id": 2},
    ],
)
def test_invalid_segments_are_refused(
    api: Api, people: dict[str, dict[str, str]], body: dict[str, Any]
) -> None:
    before = _names(api, people["admin"])
    r = api.client.post(  # ASCII JSON: an unpaired surrogate travels as its \\u escape
        f"/api/sites/{api.site_id}/segments",
        content=json.dumps(body),
        headers={**people["admin"], "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert _names(api, people["admin"]) == before


def test_unknown_site_and_segment(api: Api, people: dict[str, dict[str, str]]) -> None:
    assert api.client.get("/api/sites/999999/segments", headers=people["admin"]).status_code == 404
    assert _create(api, people["admin"], name="x").status_code == 201
    assert (
        api.client.post("/api/sites/999999/segments", json={"name": "x"}, headers=people["admin"]).status_code
        == 404
    )
    assert api.client.get("/api/segments/999999", headers=people["admin"]).status_code == 404
    assert api.client.get("/api/segments/0", headers=people["admin"]).status_code == 422
    assert api.client.get(f"/api/sites/{api.site_id}/segments").status_code == 401


def test_deleting_the_site_or_the_owner_deletes_their_segments(
    api: Api, people: dict[str, dict[str, str]]
) -> None:
    meta = open_meta(api.settings)
    temp_site = meta.insert(
        "sites", {"domain": "temp-seg.example", "name": "t", "timezone": "UTC", "created_at": 0.0}
    )
    seg = api.client.post(
        f"/api/sites/{temp_site}/segments", json={"name": "t"}, headers=people["admin"]
    ).json()
    owner = meta.create_user("leaver", hash_password(PASSWORD), "viewer", [api.site_id])
    mine = _create(api, api.headers("leaver", PASSWORD), name="leaver's").json()
    assert api.client.delete(f"/api/sites/{temp_site}", headers=people["admin"]).status_code == 204
    meta.delete_user(owner)
    assert meta.one("SELECT count(*) AS n FROM segments WHERE id IN (?, ?)", seg["id"], mine["id"]) == {
        "n": 0
    }
