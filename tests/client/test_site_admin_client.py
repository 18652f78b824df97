# ruff: noqa: F811  (owner_api is a fixture imported from owner_server)
"""The Qt-free site and goal tasks (pixel.app.client.site_admin) against a real `pixel serve`: every change read
back through an independent HTTP client, every refusal the API's own text with nothing changed, and a funnel's
counts equal to the known traffic of tests/desktop/owner_server.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pixel.app.client import ApiClient, ApiRequestError
from pixel.app.client.site_admin import (
    EmptyName,
    SiteAdmin,
    deletion_text,
    describe_goal,
    goal_body,
    goal_kind,
    lines,
)
from tests.desktop.owner_server import SHOP, owner_api, owner_client, ref  # noqa: F401 (fixtures)


@pytest.fixture
def admin(owner_client: ApiClient) -> SiteAdmin:
    return SiteAdmin(owner_client)


def get_site(ref: httpx.Client, site_id: int) -> dict[str, Any]:
    r = ref.get(f"/api/sites/{site_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_site_lifecycle_read_back_through_the_api(admin: SiteAdmin, ref: httpx.Client) -> None:
    site = admin.add_site("  Second.Test ", name="   ", timezone="Europe/Berlin")
    assert (site["domain"], site["name"], site["timezone"]) == ("second.test", "second.test", "Europe/Berlin")
    sid = site["id"]
    assert admin.rename_site(sid, "  Second shop ")["name"] == "Second shop"
    admin.set_timezone(sid, "Asia/Tokyo")
    admin.set_rules(
        sid,
        honour_dnt=False,
        honour_gpc=True,
        excluded_paths=["/admin/*", "/preview"],
        excluded_ips=["10.1.2.3", "192.168.0.0/16", "2001:db8::/32", "10.9.8.7/24"],
        allowed_origins=["https://second.test", "https://www.second.test:8443"],
        retention_days=400,
    )
    stored = get_site(ref, sid)
    assert {k: v for k, v in stored.items() if k not in ("id", "created_at")} == {
        "domain": "second.test",
        "name": "Second shop",
        "timezone": "Asia/Tokyo",
        "honour_dnt": False,
        "honour_gpc": True,
        "excluded_paths": ["/admin/*", "/preview"],
        "excluded_ips": ["10.1.2.3/32", "192.168.0.0/16", "2001:db8::/32", "10.9.8.0/24"],
        "allowed_origins": ["https://second.test", "https://www.second.test:8443"],
        "retention_days": 400,
        "currency": "",  # the site's reporting currency (insight reports): not set here
    }
    assert admin.site(sid) == stored
    assert [s["domain"] for s in admin.sites()] == [
        s["domain"] for s in ref.get("/api/sites").json()["items"]
    ]

    snippet = admin.snippet(sid)
    assert snippet == ref.get(f"/api/sites/{sid}/snippet").json()
    assert "/pixel.js" in snippet["html"] and "/pixel.ext.js" in snippet["extended_html"]
    assert admin.snippet(sid, "https://stats.second.test")["html"] == (
        '<script defer src="https://stats.second.test/pixel.js" data-site="second.test" '
        'data-endpoint="https://stats.second.test/track"></script>'
    )

    admin.delete_site(sid)
    assert ref.get(f"/api/sites/{sid}").status_code == 404


REFUSED = [
    (
        "add_site",
        {"domain": "bad domain!"},
        "body.domain: Value error, a host name such as example.com (letters, digits, dots, dashes)",
    ),
    (
        "add_site",
        {"domain": "ok.test", "timezone": "Mars/Base"},
        "body.timezone: Value error, unknown time zone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
    ),
    ("add_site", {"domain": SHOP}, "a site for shop.test exists"),
    (
        "set_rules",
        {"excluded_ips": ["10.0.0.0/8", "10.0.0.0/33"]},
        "body.excluded_ips: Value error, '10.0.0.0/33' is not an IP address or CIDR range",
    ),
    (
        "set_rules",
        {"excluded_ips": ["300.1.1.1"]},
        "body.excluded_ips: Value error, '300.1.1.1' is not an IP address or CIDR range",
    ),
    (
        "set_rules",
        {"excluded_paths": ["/ok", "admin*"]},
        "body.excluded_paths: Value error, 'admin*' must be a path (glob) starting with /",
    ),
    (
        "set_rules",
        {"allowed_origins": ["example.com"]},
        "body.allowed_origins: Value error, 'example.com' is not an origin like https://example.com",
    ),
    ("set_rules", {"retention_days": -1}, "body.retention_days: Input should be greater than or equal to 0"),
    (
        "set_rules",
        {"retention_days": 36501},
        "body.retention_days: Input should be less than or equal to 36500",
    ),
    (
        "set_timezone",
        {"timezone": "Europe/Atlantis"},
        "body.timezone: Value error, unknown time zone 'Europe/Atlantis' (use an IANA name such as Europe/Berlin)",
    ),
    ("rename_site", {"name": "   "}, "a site needs a name"),
    ("rename_site", {"name": "x" * 201}, "body.name: String should have at most 200 characters"),
]


@pytest.mark.parametrize(("method", "kwargs", "detail"), REFUSED)
def test_refusals_are_the_apis_text_and_change_nothing(
    admin: SiteAdmin,
    ref: httpx.Client,
    owner_api,
    method: str,
    kwargs: dict[str, Any],
    detail: str,
) -> None:
    sid = owner_api.sites[SHOP]
    before = ref.get("/api/sites").json()["items"]
    with pytest.raises(ApiRequestError) as err:
        if method == "add_site":
            admin.add_site(**kwargs)
        else:
            getattr(admin, method)(sid, **kwargs)
    assert err.value.detail == detail
    assert ref.get("/api/sites").json()["items"] == before


def test_empty_names_are_refused_before_any_request(admin: SiteAdmin) -> None:
    admin.client.close()  # a request would raise Unreachable/RuntimeError, not EmptyName
    with pytest.raises(EmptyName, match="a site needs a name"):
        admin.rename_site(1, " \t ")
    with pytest.raises(EmptyName, match="a goal needs a name"):
        admin.create_goal(1, goal_body("page", "  ", page_pattern="/x"))
    with pytest.raises(ValueError, match="not a site rule: name"):
        admin.set_rules(1, name="x")


def test_goals_create_edit_delete(admin: SiteAdmin, ref: httpx.Client, owner_api) -> None:
    sid = owner_api.sites[SHOP]
    page = admin.create_goal(sid, goal_body("page", "Pricing", page_pattern="/pricing*"))
    event = admin.create_goal(sid, goal_body("event", "Signed up", event_name=" signup "))
    pro = admin.create_goal(
        sid, goal_body("event_property", "Pro plan", event_name="signup", prop_key="plan", prop_value="pro")
    )
    listed = ref.get(f"/api/sites/{sid}/goals").json()["items"]
    assert [
        (g["name"], g["kind"], g["page_pattern"], g["event_name"], g["prop_key"], g["prop_value"])
        for g in listed
    ] == [
        ("Pricing", "page", "/pricing*", None, None, None),
        ("Signed up", "event", None, "signup", None, None),
        ("Pro plan", "event", None, "signup", "plan", "pro"),
    ]
    assert admin.goals(sid) == listed
    assert [goal_kind(g) for g in listed] == ["page", "event", "event_property"]
    report = ref.get(f"/api/sites/{sid}/reports/goals", params={"period": "30d"}).json()
    assert [(g["name"], g["visitors"]) for g in report["goals"]] == [
        ("Pricing", 4),
        ("Signed up", 3),
        ("Pro plan", 2),
    ]

    # a refused edit keeps the goal; an accepted one changes it in place (same id, same place)
    with pytest.raises(ApiRequestError) as err:
        admin.edit_goal(sid, page["id"], goal_body("page", "Pricing", page_pattern="pricing"))
    assert (
        err.value.detail
        == "body: Value error, a page goal needs page_pattern starting with / (* matches anything)"
    )
    with pytest.raises(EmptyName):
        admin.edit_goal(sid, page["id"], goal_body("page", "  ", page_pattern="/"))
    assert ref.get(f"/api/sites/{sid}/goals").json()["items"] == listed
    edited = admin.edit_goal(sid, page["id"], goal_body("page", "Home", page_pattern="/"))
    assert edited["id"] == page["id"]
    names = [g["name"] for g in ref.get(f"/api/sites/{sid}/goals").json()["items"]]
    assert names == ["Home", "Signed up", "Pro plan"]
    # a kind change clears the other kind's fields; an event + property goal becomes a plain event goal
    admin.edit_goal(sid, page["id"], goal_body("event", "Home", event_name="home"))
    admin.edit_goal(sid, pro["id"], goal_body("event", "Pro plan", event_name="signup"))
    assert [
        (g["id"], g["kind"], g["page_pattern"], g["event_name"], g["prop_key"], g["prop_value"])
        for g in ref.get(f"/api/sites/{sid}/goals").json()["items"]
    ] == [
        (page["id"], "event", None, "home", None, None),
        (event["id"], "event", None, "signup", None, None),
        (pro["id"], "event", None, "signup", None, None),
    ]
    with pytest.raises(ApiRequestError) as err:
        admin.create_goal(sid, goal_body("event", "No event", event_name="  "))
    assert err.value.detail == "body: Value error, an event goal needs event_name"
    for goal in (event, pro, edited):
        admin.delete_goal(sid, goal["id"])
    assert ref.get(f"/api/sites/{sid}/goals").json()["items"] == []
    with pytest.raises(ApiRequestError) as err:
        admin.delete_goal(sid, event["id"])
    assert (err.value.status, err.value.detail) == (404, "goal not found")


def test_funnel_counts_the_known_traffic(admin: SiteAdmin, owner_api) -> None:
    sid = owner_api.sites[SHOP]
    home, pricing = goal_body("page", None, page_pattern="/"), goal_body("page", None, page_pattern="/pri*")
    signup = goal_body("event", None, event_name="signup")
    pro = goal_body("event_property", None, event_name="signup", prop_key="plan", prop_value="pro")
    counts = [s["visitors"] for s in admin.funnel(sid, [home, pricing, signup])["steps"]]
    assert counts == [6, 4, 3]
    result = admin.funnel(sid, [home, pricing, pro])["steps"]
    assert [(s["visitors"], s["conversion_rate"], s["dropoff"]) for s in result] == [
        (6, 100.0, 0),
        (4, 66.67, 2),
        (2, 33.33, 2),
    ]
    with pytest.raises(ApiRequestError) as err:
        admin.funnel(sid, [home])
    assert err.value.detail == "a funnel has 2 to 10 steps"


def test_pure_helpers() -> None:
    assert lines("  /a \n\n/b/*\r\n   \n") == ["/a", "/b/*"]
    assert goal_body(
        "event_property", " Pro ", page_pattern="/x", event_name=" e ", prop_key=" k ", prop_value=" v"
    ) == {
        "name": "Pro",
        "kind": "event",
        "event_name": "e",
        "prop_key": "k",
        "prop_value": " v",
    }
    assert goal_body("page", None, page_pattern=" /p* ", event_name="ignored") == {
        "kind": "page",
        "page_pattern": "/p*",
    }
    assert describe_goal({"kind": "page", "page_pattern": "/p*"}) == "visits a page matching /p*"
    assert describe_goal(
        {"kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "pro"}
    ) == ("sends the event signup with plan = pro")
    assert deletion_text({"domain": "a.test", "name": "Shop"}).startswith(
        "Delete the site Shop (a.test)?\n\n"
    )
    assert deletion_text({"domain": "a.test", "name": "a.test"}).startswith("Delete the site a.test?\n\n")


def test_a_site_full_of_goals_is_listed_whole_and_the_next_refused_in_the_apis_words(
    admin: SiteAdmin, ref: httpx.Client
) -> None:
    """The API holds at most 200 goals a site (`server/api/limits.py`): the app lists all of them (not the
    API's default page of 100) and shows the API's refusal of one more."""
    sid = admin.add_site("full-of-goals.test")["id"]
    made = [admin.create_goal(sid, goal_body("event", f"Goal {i}", event_name=f"e{i}")) for i in range(200)]
    with pytest.raises(ApiRequestError) as err:
        admin.create_goal(sid, goal_body("page", "One more", page_pattern="/more"))
    assert (err.value.status, err.value.code, err.value.detail) == (
        409,
        "limit_reached",
        "a site holds at most 200 goals; delete one before adding another",
    )
    assert [g["id"] for g in admin.goals(sid)] == [g["id"] for g in made]
    admin.delete_goal(sid, made[0]["id"])
    assert admin.create_goal(sid, goal_body("page", "One more", page_pattern="/more"))["name"] == "One more"
    assert len(admin.goals(sid)) == 200
    admin.delete_site(sid)
    assert ref.get(f"/api/sites/{sid}").status_code == 404
