"""PATCH /api/sites/{id}/goals/{goal_id}: a goal edited in place, validated and guarded as create is."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import VIEWER_PASSWORD, Api

PAGE_GOAL = {"name": "Signup", "kind": "page", "page_pattern": "/signup*"}


def _goal(api: Api, body: dict[str, Any] | None = None, site: int | None = None) -> dict[str, Any]:
    r = api.client.post(f"/api/sites/{site or api.site_id}/goals", json=body or PAGE_GOAL, headers=api.admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _stored(api: Api, goal_id: int, site: int | None = None) -> list[dict[str, Any]]:
    listed = api.client.get(f"/api/sites/{site or api.site_id}/goals", headers=api.admin).json()["items"]
    return [g for g in listed if g["id"] == goal_id]


def test_patch_changes_the_goal_in_place(api: Api) -> None:
    goal = _goal(api)
    url = f"/api/sites/{api.site_id}/goals/{goal['id']}"
    r = api.client.patch(url, json={"name": "Sign-up page", "page_pattern": "/join/*"}, headers=api.admin)
    assert r.status_code == 200, r.text
    expected = {
        "id": goal["id"],
        "site_id": api.site_id,
        "name": "Sign-up page",
        "kind": "page",
        "page_pattern": "/join/*",
        "event_name": None,
        "prop_key": None,
        "prop_value": None,
    }
    assert r.json() == expected
    assert _stored(api, goal["id"]) == [expected]
    # a page goal becomes an event goal with a property: the page pattern is cleared with null
    change = {
        "kind": "event",
        "page_pattern": None,
        "event_name": "signup",
        "prop_key": "plan",
        "prop_value": "pro",
    }
    r = api.client.patch(url, json=change, headers=api.admin)
    assert r.status_code == 200, r.text
    assert _stored(api, goal["id"]) == [{**expected, **change}]
    # an empty body changes nothing and answers the goal
    assert api.client.patch(url, json={}, headers=api.admin).json() == {**expected, **change}


def test_patch_refuses_what_create_refuses_and_writes_nothing(api: Api) -> None:
    goal = _goal(api)
    url = f"/api/sites/{api.site_id}/goals/{goal['id']}"
    refused = [
        {"name": ""},
        {"name": None},
        {"name": "x" * 201},
        {"kind": "visit"},
        {"page_pattern": "signup"},  # no leading slash
        {"page_pattern": None},  # a page goal without its pattern
        {"kind": "event"},  # an event goal needs event_name
        {"event_name": "buy"},  # a page goal takes no event_name
        {"prop_key": "plan"},
        {"id": 99},
        {"site_id": api.other_site_id},
        {"unknown": 1},
        {"page_pattern": "/" + "a" * 500},
    ]
    for body in refused:
        r = api.client.patch(url, json=body, headers=api.admin)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_request"), (body, r.text)
        assert r.json()["detail"], body
        assert _stored(api, goal["id"]) == [goal], body
    r = api.client.patch(url, json=[1], headers=api.admin)
    assert r.status_code == 422


def test_patch_access_rules(api: Api) -> None:
    goal = _goal(api)
    other_goal = _goal(api, site=api.other_site_id)
    url = f"/api/sites/{api.site_id}/goals/{goal['id']}"
    # a viewer of the site may read goals but never change them
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    r = api.client.patch(url, json={"name": "mine"}, headers=viewer)
    assert (r.status_code, r.json()["error"]) == (403, "admins_only")
    # no token
    assert api.client.patch(url, json={"name": "mine"}).status_code == 401
    # a goal of another site through this site's path: not found, and it is unchanged
    r = api.client.patch(
        f"/api/sites/{api.site_id}/goals/{other_goal['id']}", json={"name": "moved"}, headers=api.admin
    )
    assert (r.status_code, r.json()) == (404, {"error": "not_found", "detail": "goal not found"})
    assert _stored(api, other_goal["id"], api.other_site_id) == [other_goal]
    for path in (f"/api/sites/{api.site_id}/goals/999999", f"/api/sites/999999/goals/{goal['id']}"):
        assert api.client.patch(path, json={"name": "x"}, headers=api.admin).status_code == 404, path
    # an admin limited to the other site does not see this site's goal
    r = api.client.post(
        "/api/users",
        json={"username": "limited-goal-admin", "role": "admin", "sites": [api.other_site_id]},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    limited = api.headers("limited-goal-admin", r.json()["password"])
    assert api.client.patch(url, json={"name": "x"}, headers=limited).status_code == 404
    other_url = f"/api/sites/{api.other_site_id}/goals/{other_goal['id']}"
    r = api.client.patch(other_url, json={"name": "Theirs"}, headers=limited)
    assert r.status_code == 200 and r.json()["name"] == "Theirs"
    assert _stored(api, goal["id"]) == [goal]


_text = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["/", "/a*", "*", "buy", "/x/*"]))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.sampled_from(["name", "kind", "page_pattern", "event_name", "prop_key", "prop_value"]),
        st.one_of(_text, st.sampled_from(["page", "event"])),
        max_size=6,
    )
)
def test_patch_equals_create_of_the_merged_goal(api: Api, change: dict[str, Any]) -> None:
    """Any PATCH is accepted exactly when creating the merged goal would be, and then stores that goal;
    when refused, the goal is unchanged."""
    goal = _goal(api)
    fields = ("name", "kind", "page_pattern", "event_name", "prop_key", "prop_value")
    merged = {k: goal[k] for k in fields} | change
    created = api.client.post(f"/api/sites/{api.site_id}/goals", json=merged, headers=api.admin)
    r = api.client.patch(f"/api/sites/{api.site_id}/goals/{goal['id']}", json=change, headers=api.admin)
    assert r.status_code == (200 if created.status_code == 201 else 422), (change, r.text, created.text)
    if r.status_code == 200:
        assert r.json() == {**created.json(), "id": goal["id"]}
        assert _stored(api, goal["id"]) == [r.json()]
    else:
        assert _stored(api, goal["id"]) == [goal]
