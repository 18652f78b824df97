"""Annotations through the API: manual CRUD, dates in the site's time zone, access rules, and the automatic
annotation a change of a site's rules writes (with what changed and who changed it)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.annotations import add_auto
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from tests.api import dataset
from tests.api.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD, Api

PASSWORD = "annotation-user-password-1"
T0 = 1_790_000_000.0  # a fixed moment (2026-09-21 14:13:20 UTC); times in these tests never read the clock


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, dict[str, str]]:
    meta = open_meta(api.settings)
    meta.create_user("writer", hash_password(PASSWORD), "viewer", [api.site_id])
    meta.create_user("stranger", hash_password(PASSWORD), "viewer", [api.other_site_id])
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    token = api.client.post("/api/tokens", json={"name": "notes"}, headers=viewer).json()["token"]
    return {
        "admin": api.headers("admin", ADMIN_PASSWORD),
        "viewer": viewer,
        "writer": api.headers("writer", PASSWORD),
        "stranger": api.headers("stranger", PASSWORD),
        "token": {"Authorization": f"Bearer {token}"},
    }


def _post(api: Api, who: dict[str, str], site_id: int | None = None, **body: Any) -> Any:
    return api.client.post(f"/api/sites/{site_id or api.site_id}/annotations", json=body, headers=who)


def _list(api: Api, who: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = api.client.get(f"/api/sites/{api.site_id}/annotations", params={"limit": 1000, **params}, headers=who)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_note_on_a_date_range_covers_whole_days_in_the_sites_zone(
    api: Api, people: dict[str, dict[str, str]]
) -> None:
    made = _post(api, people["viewer"], text="Spring sale", date="2026-03-28", end_date="2026-03-30")
    assert made.status_code == 201, made.text
    note = made.json()
    tz = ZoneInfo(dataset.TZ)
    start = dt.datetime(2026, 3, 28, tzinfo=tz).timestamp()
    end = dt.datetime(2026, 3, 31, tzinfo=tz).timestamp()
    assert (note["starts_at"], note["ends_at"]) == (start, end)
    assert (note["date"], note["end_date"], note["text"]) == ("2026-03-28", "2026-03-30", "Spring sale")
    assert (note["kind"], note["automatic"], note["author"], note["details"]) == (
        "manual",
        False,
        "viewer",
        {},
    )
    one_day = _post(api, people["viewer"], text="Launch", date="2026-03-29").json()
    assert (one_day["date"], one_day["end_date"]) == ("2026-03-29", "2026-03-29")
    moment = _post(api, people["viewer"], text="Deploy", starts_at=T0).json()
    assert (moment["starts_at"], moment["ends_at"], moment["end_date"]) == (T0, None, None)
    # the range filter: overlapping annotations only
    inside = {n["text"] for n in _list(api, people["viewer"], since=end - 1, until=end + 10)}
    assert {"Spring sale"} <= inside and "Launch" not in inside and "Deploy" not in inside
    for note_id in (note["id"], one_day["id"], moment["id"]):
        assert api.client.delete(f"/api/annotations/{note_id}", headers=people["viewer"]).status_code == 204


def test_authors_admins_and_other_sites(api: Api, people: dict[str, dict[str, str]]) -> None:
    note = _post(api, people["writer"], text="Newsletter", date="2026-04-02").json()
    url = f"/api/annotations/{note['id']}"
    assert api.client.get(url, headers=people["token"]).json()["author"] == "writer"
    assert "Newsletter" in {n["text"] for n in _list(api, people["token"])}
    # another user of the site reads it but does not change it; an admin does; the API token writes nothing
    change = {"text": "Newsletter #12", "date": "2026-04-02"}
    refused = api.client.put(url, json=change, headers=people["viewer"])
    assert (refused.status_code, refused.json()["error"]) == (403, "not_the_author")
    assert api.client.delete(url, headers=people["viewer"]).status_code == 403
    assert api.client.put(url, json=change, headers=people["token"]).status_code == 403
    assert _post(api, people["token"], text="x", date="2026-04-02").status_code == 403
    assert api.client.put(url, json=change, headers=people["writer"]).json()["text"] == "Newsletter #12"
    assert (
        api.client.put(url, json={**change, "text": "by admin"}, headers=people["admin"]).status_code == 200
    )
    # a user of another site: 404 everywhere (the note, the site's list, writing on the site)
    assert api.client.get(url, headers=people["stranger"]).status_code == 404
    assert api.client.put(url, json=change, headers=people["stranger"]).status_code == 404
    assert api.client.delete(url, headers=people["stranger"]).status_code == 404
    assert (
        api.client.get(f"/api/sites/{api.site_id}/annotations", headers=people["stranger"]).status_code == 404
    )
    assert _post(api, people["stranger"], text="x", date="2026-04-02").status_code == 404
    assert api.client.get(f"/api/sites/{api.site_id}/annotations").status_code == 401
    assert api.client.delete(url, headers=people["admin"]).status_code == 204
    assert api.client.get(url, headers=people["writer"]).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"text": "x"},
        {"text": "", "date": "2026-01-01"},
        {"text": "  ", "date": "2026-01-01"},
        {"text": "bad\ud800", "date": "2026-01-01"},
        {"text": "x" * 2001, "date": "2026-01-01"},
        {"text": "x", "date": "2026-01-02", "end_date": "2026-01-01"},
        {"text": "x", "date": "2026-02-30"},
        {"text": "x", "date": "2026-01-01", "starts_at": T0},
        {"text": "x", "end_date": "2026-01-01", "starts_at": T0},
        {"text": "x", "starts_at": T0, "ends_at": T0 - 1},
        {"text": "x", "starts_at": -1},
        {"text": "x", "starts_at": 1e300},
        {"text": "x", "starts_at": T0, "kind": "upgrade"},
        {"text": "x", "starts_at": T0, "author": "someone else"},
    ],
)
def test_invalid_annotations_are_refused(
    api: Api, people: dict[str, dict[str, str]], body: dict[str, Any]
) -> None:
    before = len(_list(api, people["admin"]))
    r = api.client.post(
        f"/api/sites/{api.site_id}/annotations",
        content=json.dumps(body),
        headers={**people["admin"], "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert len(_list(api, people["admin"])) == before


def test_a_change_of_the_sites_rules_is_annotated_once_with_what_changed(
    api: Api, people: dict[str, dict[str, str]]
) -> None:
    def rules_notes() -> list[dict[str, Any]]:
        return [n for n in _list(api, people["viewer"], automatic=True) if n["kind"] == "site_rules"]

    before = len(rules_notes())
    url = f"/api/sites/{api.site_id}"
    change = {
        "honour_dnt": False,
        "excluded_paths": ["/admin/*", "/preview/*"],
        "excluded_ips": ["10.0.0.0/8"],
        "allowed_origins": ["https://shop.example"],
        "retention_days": 400,
    }
    assert api.client.patch(url, json=change, headers=people["admin"]).status_code == 200
    notes = rules_notes()
    assert len(notes) == before + 1
    note = notes[-1]
    assert (note["automatic"], note["author"], note["site_id"]) == (True, "admin", api.site_id)
    assert note["details"] == {
        "honour_dnt": {"from": True, "to": False},
        "excluded_paths": {"added": ["/admin/*", "/preview/*"], "removed": []},
        "excluded_ips": {"added": ["10.0.0.0/8"], "removed": []},
        "allowed_origins": {"added": ["https://shop.example"], "removed": []},
        "retention_days": {"from": 0, "to": 400},
    }
    assert note["text"] == (
        "Site rules changed — Do Not Track honoured: True → False; excluded paths: +/admin/*, +/preview/*; "
        "excluded IPs: +10.0.0.0/8; allowed origins: +https://shop.example; retention (days, 0 = forever): 0 → 400"
    )
    # the same values again, a reordered list, or a change of the name only: no rule changed, nothing written
    same = {**change, "excluded_paths": ["/preview/*", "/admin/*"], "name": "Shop (renamed)"}
    assert api.client.patch(url, json=same, headers=people["admin"]).status_code == 200
    assert len(rules_notes()) == before + 1
    # one path removed, DNT back: one more annotation naming just that
    back = {"honour_dnt": True, "excluded_paths": ["/admin/*"], "retention_days": 0}
    assert api.client.patch(url, json=back, headers=people["admin"]).status_code == 200
    last = rules_notes()[-1]
    assert last["details"] == {
        "honour_dnt": {"from": False, "to": True},
        "excluded_paths": {"added": [], "removed": ["/preview/*"]},
        "retention_days": {"from": 400, "to": 0},
    }
    # automatic annotations are not edited; an admin may delete a site's one, a viewer may not
    auto_url = f"/api/annotations/{last['id']}"
    refused = api.client.put(auto_url, json={"text": "x", "starts_at": T0}, headers=people["admin"])
    assert (refused.status_code, refused.json()["error"]) == (403, "automatic_annotation")
    assert api.client.delete(auto_url, headers=people["viewer"]).status_code == 403
    assert api.client.delete(auto_url, headers=people["admin"]).status_code == 204
    restore = {"excluded_paths": [], "excluded_ips": [], "allowed_origins": [], "name": "Shop"}
    assert api.client.patch(url, json=restore, headers=people["admin"]).status_code == 200


def test_stack_wide_annotations_are_on_every_site_and_written_once(
    api: Api, people: dict[str, dict[str, str]]
) -> None:
    meta = open_meta(api.settings)
    kwargs: dict[str, Any] = {
        "kind": "upgrade",
        "key": "test:upgrade:1",
        "text": "Pixel upgraded",
        "starts_at": T0,
    }
    first = add_auto(meta, now=T0, **kwargs)
    assert first is not None
    assert add_auto(meta, now=T0 + 60, **kwargs) is None  # the same cause again: nothing written
    for who in ("viewer", "stranger"):
        site = api.site_id if who == "viewer" else api.other_site_id
        r = api.client.get(f"/api/sites/{site}/annotations", params={"automatic": True}, headers=people[who])
        assert [n["text"] for n in r.json()["items"] if n["id"] == first] == ["Pixel upgraded"]
    got = api.client.get(f"/api/annotations/{first}", headers=people["stranger"]).json()
    assert (got["site_id"], got["date"], got["author"], got["kind"]) == (
        None,
        "2026-09-21",
        "pixel",
        "upgrade",
    )
    # nobody deletes a stack-wide one through the API, not even an admin
    assert api.client.delete(f"/api/annotations/{first}", headers=people["admin"]).status_code == 403
    assert (
        add_auto(meta, now=T0, kind="geoip", key="test:gone-site", text="x", starts_at=T0, site_id=999_999)
        is None
    )
    with pytest.raises(ValueError):
        add_auto(meta, now=T0, kind="manual", key="test:manual", text="x", starts_at=T0)
