"""How many goals, dashboards, share links, segments, notes, API tokens and alert channels one holder may keep
(`server/api/limits.py`): up to the bound every create is a 201, past it a 409 `limit_reached` that says what to
do and writes nothing; a delete frees a place; another holder's rows never count; two writers racing cannot both
take the last place; the system's own notes are not a person's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixel.server.annotations.records import add_auto
from pixel.server.api import limits
from pixel.server.api.app import open_meta
from pixel.server.api.meta import Bound, LimitReached, MetaDB
from pixel.server.api.security import hash_password
from tests.api.conftest import VIEWER_PASSWORD, Api

PASSWORD = "limits-user-password-1"
BOUND = 3


@dataclass(frozen=True)
class Kind:
    """One bounded thing: the constant that bounds it, where it is created, listed and deleted, a body."""

    name: str
    constant: str
    create: str  # URL template: {site}
    body: Callable[[int], dict[str, Any]]
    listing: str
    delete: str  # URL template: {site}, {id}
    who: str  # "admin" or "viewer": who creates it
    per_person: bool  # bounded per person (another person still creates) rather than per site / server
    per_site: bool  # bounded per site (another site still takes them)
    items_of: Callable[[Any], list[dict[str, Any]]] = lambda body: list(body["items"])
    detail: str = ""


KINDS = [
    Kind(
        "goals",
        "GOALS_PER_SITE",
        "/api/sites/{site}/goals",
        lambda i: {"name": f"Goal {i}", "kind": "event", "event_name": f"e{i}"},
        "/api/sites/{site}/goals",
        "/api/sites/{site}/goals/{id}",
        "admin",
        False,
        True,
        detail="a site holds at most 3 goals; delete one before adding another",
    ),
    Kind(
        "dashboards",
        "DASHBOARDS_PER_SITE",
        "/api/sites/{site}/dashboards",
        lambda i: {"name": f"Board {i}"},
        "/api/sites/{site}/dashboards",
        "/api/dashboards/{id}",
        "admin",
        False,
        True,
        detail="a site holds at most 3 dashboards; delete one before adding another",
    ),
    Kind(
        "share links",
        "SHARE_LINKS_PER_SITE",
        "/api/sites/{site}/shares",
        lambda i: {"name": f"Link {i}"},
        "/api/sites/{site}/shares",
        "/api/sites/{site}/shares/{id}",
        "admin",
        False,
        True,
        items_of=lambda body: [
            link for link in body if link["revoked_at"] is None
        ],  # a revoked one holds none
        detail="a site holds at most 3 share links; delete one before adding another",
    ),
    Kind(
        "segments",
        "SEGMENTS_PER_PERSON_AND_SITE",
        "/api/sites/{site}/segments",
        lambda i: {"name": f"Segment {i}", "filters": [["country", "is", "DE"]]},
        "/api/sites/{site}/segments",
        "/api/segments/{id}",
        "viewer",
        True,
        True,
        detail="each person on a site holds at most 3 segments; delete one before adding another",
    ),
    Kind(
        "notes",
        "ANNOTATIONS_PER_PERSON_AND_SITE",
        "/api/sites/{site}/annotations",
        lambda i: {"text": f"Note {i}", "date": f"2024-03-{i % 28 + 1:02d}"},
        "/api/sites/{site}/annotations",
        "/api/annotations/{id}",
        "viewer",
        True,
        True,
        detail="each person on a site holds at most 3 notes; delete one before adding another",
    ),
    Kind(
        "API tokens",
        "API_TOKENS_PER_PERSON",
        "/api/tokens",
        lambda i: {"name": f"Token {i}"},
        "/api/tokens",
        "/api/tokens/{id}",
        "viewer",
        True,
        False,
        detail="each person holds at most 3 API tokens; delete one before adding another",
    ),
    Kind(
        "alert channels",
        "ALERT_CHANNELS",
        "/api/alerts/channels",
        lambda i: {
            "kind": "webhook",
            "name": f"hook {i}",
            "url": f"http://127.0.0.1:9/h{i}",
            "secret": "s" * 16,
        },
        "/api/alerts/channels",
        "/api/alerts/channels/{id}",
        "admin",
        False,
        False,
        items_of=lambda body: list(body),
        detail="the server holds at most 3 alert channels; delete one before adding another",
    ),
]


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, dict[str, str]]:
    meta = open_meta(api.settings)
    meta.create_user("viewer-b", hash_password(PASSWORD), "viewer", [api.site_id, api.other_site_id])
    meta.create_user("viewer-c", hash_password(PASSWORD), "viewer", [api.site_id, api.other_site_id])
    return {
        "admin": api.admin,
        "viewer": api.headers("viewer-b", PASSWORD),
        "other person": api.headers("viewer-c", PASSWORD),
        "first viewer": api.headers("viewer", VIEWER_PASSWORD),
    }


def _url(template: str, site: int, item: int = 0) -> str:
    return template.format(site=site, id=item)


def _listed(api: Api, kind: Kind, who: dict[str, str], site: int) -> list[dict[str, Any]]:
    r = api.client.get(_url(kind.listing, site), headers=who)
    assert r.status_code == 200, r.text
    return kind.items_of(r.json())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_creates_up_to_the_bound_then_409_and_nothing_written(
    api: Api, people: dict[str, dict[str, str]], kind: Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, kind.constant, BOUND)
    who = people[kind.who]
    site = api.site_id
    before = _listed(api, kind, who, site)
    made = []
    for i in range(BOUND - len(before)):
        r = api.client.post(_url(kind.create, site), json=kind.body(i), headers=who)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    held = _listed(api, kind, who, site)
    assert len(held) == BOUND
    for attempt in range(3):  # refused each time, the same words, nothing written
        r = api.client.post(_url(kind.create, site), json=kind.body(10 + attempt), headers=who)
        assert (r.status_code, r.json()) == (409, {"error": "limit_reached", "detail": kind.detail})
        assert _listed(api, kind, who, site) == held

    # a delete frees one place, and only one
    gone = held[-1]["id"]
    assert api.client.delete(_url(kind.delete, site, gone), headers=who).status_code == 204
    r = api.client.post(_url(kind.create, site), json=kind.body(20), headers=who)
    assert r.status_code == 201, r.text
    made.append(r.json()["id"])
    assert api.client.post(_url(kind.create, site), json=kind.body(21), headers=who).status_code == 409

    # another holder's rows never count
    if kind.per_person:
        r = api.client.post(_url(kind.create, site), json=kind.body(30), headers=people["other person"])
        assert r.status_code == 201, r.text
        assert api.client.delete(_url(kind.delete, site, r.json()["id"]), headers=people["other person"])
    if kind.per_site:
        r = api.client.post(_url(kind.create, api.other_site_id), json=kind.body(31), headers=who)
        assert r.status_code == 201, r.text
        api.client.delete(_url(kind.delete, api.other_site_id, r.json()["id"]), headers=who)

    for item in _listed(api, kind, who, site):  # leave the module's store as it was
        if item["id"] not in {b["id"] for b in before}:
            assert api.client.delete(_url(kind.delete, site, item["id"]), headers=who).status_code == 204


def test_the_readme_states_the_bounds_the_code_holds() -> None:
    """README's Security section names each bound: a bound changed in code and not there fails here."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    said = " ".join(
        readme.split("**Nothing a caller creates grows without end.**")[1].split("\n- ")[0].split()
    )
    assert said.startswith(
        f"A site holds at most {limits.GOALS_PER_SITE} goals, {limits.DASHBOARDS_PER_SITE} dashboards and "
        f"{limits.SHARE_LINKS_PER_SITE} live share links; each person at most "
        f"{limits.SEGMENTS_PER_PERSON_AND_SITE} segments and {limits.ANNOTATIONS_PER_PERSON_AND_SITE:,} notes a "
        f"site and {limits.API_TOKENS_PER_PERSON} API tokens; the server {limits.ALERT_CHANNELS} alert channels"
    ), said


def test_the_real_goal_bound_through_the_api(api: Api) -> None:
    """The 200th goal is taken, the 201st refused: the bound is the constant, not an off-by-one of it."""
    meta = open_meta(api.settings)
    site = api.other_site_id
    held = len(meta.all("SELECT id FROM goals WHERE site_id = ?", site))
    for i in range(limits.GOALS_PER_SITE - 1 - held):
        meta.insert("goals", {"site_id": site, "name": f"g{i}", "kind": "event", "event_name": f"e{i}"})
    last = {"name": "Last", "kind": "page", "page_pattern": "/last"}
    assert api.client.post(f"/api/sites/{site}/goals", json=last, headers=api.admin).status_code == 201
    r = api.client.post(f"/api/sites/{site}/goals", json=last, headers=api.admin)
    assert r.status_code == 409 and r.json()["detail"].startswith("a site holds at most 200 goals")
    listed = api.client.get(f"/api/sites/{site}/goals", params={"limit": 1000}, headers=api.admin).json()
    assert listed["total"] == 200
    report = api.client.get(f"/api/sites/{site}/reports/goals", params={"period": "30d"}, headers=api.admin)
    assert report.status_code == 200 and len(report.json()["goals"]) == 200
    with meta.transaction() as conn:
        conn.execute("DELETE FROM goals WHERE site_id = ?", (site,))


def test_racing_writers_never_pass_the_bound(tmp_path: Path) -> None:
    """Twelve threads, each with its own connection, racing for five places: five rows, seven refusals."""
    meta = MetaDB(tmp_path / "meta.db")
    site = meta.insert("sites", {"domain": "race.test", "name": "race", "timezone": "UTC", "created_at": 0.0})
    bound = Bound("goals", "a site", 5, {"site_id": site})
    start = threading.Barrier(12)
    outcomes: list[str] = []

    def write(i: int) -> None:
        start.wait()
        try:
            meta.insert(
                "goals", {"site_id": site, "name": f"g{i}", "kind": "event", "event_name": "e"}, bound
            )
            outcomes.append("written")
        except LimitReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["written"] * 5
    assert len(meta.all("SELECT id FROM goals WHERE site_id = ?", site)) == 5


def test_the_systems_notes_are_not_a_persons(
    api: Api, people: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Automatic notes (a site's rules changed by this person, an upgrade) are written whatever the bound, and
    do not take the person's places."""
    monkeypatch.setattr(limits, "ANNOTATIONS_PER_PERSON_AND_SITE", 2)
    meta = open_meta(api.settings)
    me = meta.one("SELECT id FROM users WHERE username = 'viewer-c'")
    assert me is not None
    for i in range(4):
        written = add_auto(
            meta,
            kind="site_rules",
            key=f"limits-test-{i}",
            text=f"rules {i}",
            starts_at=1_700_000_000.0 + i,
            now=1_700_000_000.0 + i,
            site_id=api.site_id,
            author="viewer-c",
            author_id=me["id"],
        )
        assert written is not None
    who = people["other person"]
    url = f"/api/sites/{api.site_id}/annotations"
    made = [
        api.client.post(url, json={"text": f"mine {i}", "date": f"2024-04-0{i + 1}"}, headers=who)
        for i in range(3)
    ]
    assert [r.status_code for r in made] == [201, 201, 409]
    for r in made[:2]:
        assert api.client.delete(f"/api/annotations/{r.json()['id']}", headers=who).status_code == 204
    with meta.transaction() as conn:
        conn.execute("DELETE FROM annotations WHERE auto_key LIKE 'limits-test-%'")
