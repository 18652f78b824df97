# ruff: noqa: F811  (owner_api is a fixture imported from owner_server)
"""Qt-free saved-dashboard tasks (pixel.app.client.dashboards_admin) against a real `pixel serve`: every
change read back through an independent HTTP client; refusals carry the API's words and change nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.app.client import ApiClient, ApiRequestError
from pixel.app.client.dashboards_admin import (
    CHARTS,
    DashboardsAdmin,
    deletion_text,
    describe_widget,
    widget_body,
)
from pixel.app.client.site_admin import EmptyName
from tests.desktop.owner_server import SHOP, owner_api, owner_client, ref  # noqa: F401 (fixtures)


@pytest.fixture
def admin(owner_client: ApiClient) -> DashboardsAdmin:
    return DashboardsAdmin(owner_client)


def stored(ref: httpx.Client, dashboard_id: int) -> dict[str, Any]:
    r = ref.get(f"/api/dashboards/{dashboard_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_widget_bodies_have_each_reports_parameters() -> None:
    steps = [{"kind": "page", "page_pattern": "/"}, {"kind": "event", "event_name": "signup"}]
    assert widget_body("summary", metric="pageviews", title=" Views ") == {
        "title": "Views",
        "report": "summary",
        "params": {"metric": "pageviews"},
        "filters": [],
        "chart": "number",
    }
    assert widget_body("timeseries", metric="sessions")["params"] == {"metrics": "sessions"}
    assert widget_body("breakdown", "table", dimension=" country ", limit=5)["params"] == {
        "dimension": "country",
        "limit": 5,
    }
    assert widget_body("breakdown", "table")["chart"] == "table"
    assert widget_body("funnel", steps=steps, window=600, period="7d")["params"] == {
        "steps": '[{"kind":"page","page_pattern":"/"},{"kind":"event","event_name":"signup"}]',
        "window": 600,
        "period": "7d",
    }
    for report in ("realtime", "goals", "retention"):
        assert widget_body(report)["params"] == {}
        assert widget_body(report)["chart"] == CHARTS[report][0]
    assert describe_widget({**widget_body("breakdown", dimension="country"), "title": ""}) == (
        "breakdown — breakdown by country as bar"
    )
    assert describe_widget(widget_body("funnel", steps=steps, period="7d", title="Signup")) == (
        "Signup — funnel of 2 steps, 7d as funnel"
    )


def test_create_rename_widgets_reorder_delete(admin: DashboardsAdmin, ref: httpx.Client, owner_api) -> None:
    site_id = owner_api.sites[SHOP]
    created = admin.create(site_id, "  Weekly  ")
    assert created["name"] == "Weekly" and created["widgets"] == []
    assert [d["name"] for d in admin.dashboards(site_id)].count("Weekly") == 1

    steps = [{"kind": "page", "page_pattern": "/"}, {"kind": "page", "page_pattern": "/pricing"}]
    for body in (
        widget_body("summary", title="Visitors"),
        widget_body("breakdown", "table", title="Sources", dimension="source"),
        widget_body("funnel", title="Pricing", steps=steps),
    ):
        admin.add_widget(created["id"], body)
    data = stored(ref, created["id"])
    assert [(w["title"], w["report"], w["chart"]) for w in data["widgets"]] == [
        ("Visitors", "summary", "number"),
        ("Sources", "breakdown", "table"),
        ("Pricing", "funnel", "funnel"),
    ]
    assert [w["position"] for w in data["widgets"]] == [
        {"x": 0, "y": 0, "w": 2, "h": 1},
        {"x": 0, "y": 1, "w": 2, "h": 1},
        {"x": 0, "y": 2, "w": 2, "h": 1},
    ]
    assert json.loads(data["widgets"][2]["params"]["steps"]) == steps
    ids = [w["id"] for w in data["widgets"]]
    assert all(ids) and len(set(ids)) == 3  # the API gave each widget an id, kept across writes

    admin.move_widget(created["id"], ids[2], -1)
    data = stored(ref, created["id"])
    assert [w["id"] for w in data["widgets"]] == [ids[0], ids[2], ids[1]]
    assert [w["position"]["y"] for w in data["widgets"]] == [0, 1, 2]
    before = data["updated_at"]
    # at either end nothing is written
    assert admin.move_widget(created["id"], ids[0], -1)["updated_at"] == before
    assert admin.move_widget(created["id"], ids[1], 1)["updated_at"] == before
    assert stored(ref, created["id"])["updated_at"] == before

    admin.remove_widget(created["id"], ids[2])
    assert [w["id"] for w in stored(ref, created["id"])["widgets"]] == [ids[0], ids[1]]
    with pytest.raises(LookupError):
        admin.remove_widget(created["id"], ids[2])

    renamed = admin.rename(created["id"], "Monday report")
    assert stored(ref, created["id"])["name"] == renamed["name"] == "Monday report"
    assert [w["id"] for w in stored(ref, created["id"])["widgets"]] == [ids[0], ids[1]]

    assert deletion_text(renamed) == (
        "Delete the saved dashboard Monday report?\n\nIts 2 widgets go with it. The data they show stay."
    )
    admin.delete(created["id"])
    assert ref.get(f"/api/dashboards/{created['id']}").status_code == 404


def test_refusals_carry_the_apis_words_and_change_nothing(
    admin: DashboardsAdmin, ref: httpx.Client, owner_api
) -> None:
    site_id = owner_api.sites[SHOP]
    created = admin.create(site_id, "Refusals")
    admin.add_widget(created["id"], widget_body("summary"))
    before = stored(ref, created["id"])

    with pytest.raises(EmptyName) as empty:
        admin.rename(created["id"], "   ")
    assert empty.value.detail == "a dashboard needs a name"
    with pytest.raises(EmptyName):
        admin.create(site_id, "")

    too_long = "x" * 201
    with pytest.raises(ApiRequestError) as refused:
        admin.rename(created["id"], too_long)
    api = ref.put(f"/api/dashboards/{created['id']}", json={"name": too_long, "widgets": []})
    assert api.status_code == refused.value.status == 422
    assert refused.value.detail == api.json()["detail"]

    bad_filter = {**widget_body("summary"), "filters": [["nonsense", "is", "x"]]}
    with pytest.raises(ApiRequestError) as refused:
        admin.add_widget(created["id"], bad_filter)
    assert refused.value.status == 422 and refused.value.detail
    assert stored(ref, created["id"]) == before

    with pytest.raises(ApiRequestError) as missing:
        admin.rename(999_999, "Nobody")
    assert missing.value.status == 404
    assert missing.value.detail == ref.get("/api/dashboards/999999").json()["detail"]
    admin.delete(created["id"])


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([-1, 1])), max_size=6))
def test_moves_keep_every_widget_once_and_positions_a_permutation(
    admin: DashboardsAdmin, owner_api, moves: list[tuple[int, int]]
) -> None:
    site_id = owner_api.sites[SHOP]
    created = admin.create(site_id, "Moves")
    try:
        for title in "abcde":
            admin.add_widget(created["id"], widget_body("realtime", title=title))
        start = admin.dashboard(created["id"])
        order = [w["title"] for w in start["widgets"]]
        positions = [w["position"] for w in start["widgets"]]
        for index, delta in moves:
            admin.move_widget(created["id"], start["widgets"][index]["id"], delta)
            i = order.index(start["widgets"][index]["title"])
            j = i + delta
            if 0 <= j < len(order):
                order[i], order[j] = order[j], order[i]
        end = admin.dashboard(created["id"])
        assert [w["title"] for w in end["widgets"]] == order
        assert [w["position"] for w in end["widgets"]] == positions
    finally:
        admin.delete(created["id"])
