"""POST /api/v2/query with goals: `event:goal` as a dimension and a filter, and `conversion_rate` (Plausible's
"Goal conversions" examples) on the fixed data set with goals made through the API, against numbers computed
here by plain loops (a page goal: pageviews whose path matches its glob; an event goal: that event with its
property value). Both store engines; the clock is pinned."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest

from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_plausible_v2 import FIRST, LAST, NOW, events_in, ok, post

ENGINES = ("chdb", "clickhouse")
GOALS = [
    {"name": "Pricing visit", "kind": "page", "page_pattern": "/pricing"},
    {"name": "Blog", "kind": "page", "page_pattern": "/blog/*"},
    {"name": "Signup pro", "kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "pro"},
    {"name": "Any signup", "kind": "event", "event_name": "signup"},
    {"name": "Never", "kind": "event", "event_name": "no-such-event"},
]
Event = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def goals(api: Api) -> None:
    for goal in GOALS:
        r = api.client.post(f"/api/sites/{api.site_id}/goals", json=goal, headers=api.admin)
        assert r.status_code == 201, r.text


@pytest.fixture(autouse=True)
def pinned(api: Api) -> None:
    api.client.app.state.pixel.report_cache.clock = NOW.timestamp  # type: ignore[attr-defined]


def completes(goal: dict[str, Any], e: Event) -> bool:
    if goal["kind"] == "page":
        pattern = "^" + ".*".join(re.escape(p) for p in goal["page_pattern"].split("*")) + "$"
        return e["event_name"] == "pageview" and re.match(pattern, e["path"]) is not None
    if e["event_name"] != goal["event_name"]:
        return False
    return not goal.get("prop_key") or e["props"].get(goal["prop_key"]) == goal["prop_value"]


def rate(part: int, whole: int) -> float:
    """Percent with two decimals, rounded as ClickHouse's round of a float (halves to even)."""
    return round(part * 100 / whole * 100) / 100 if whole else 0.0


def test_goal_breakdown_with_conversion_rate(api: Api) -> None:
    events = events_in(FIRST, LAST)
    total = len({e["visitor_id"] for e in events})
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "events", "conversion_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["event:goal"],
        },
    )
    want = {}
    for goal in GOALS:
        done = [e for e in events if completes(goal, e)]
        if done:
            visitors = len({e["visitor_id"] for e in done})
            want[(goal["name"],)] = [visitors, len(done), rate(visitors, total)]
    assert {tuple(r["dimensions"]): r["metrics"] for r in body["results"]} == want
    assert len(want) == 4 and ("Never",) not in want  # a goal nobody completed has no row
    # the signup-pro events are in two rows (both goals), as in Plausible
    assert want[("Any signup",)][1] > want[("Signup pro",)][1] > 0


def test_goal_filter_by_country_conversion_rate(api: Api) -> None:
    """Docs: conversion rate of one goal per visit property: group_conversion_rate is the part of each country's
    visitors converting; conversion_rate the part of all visitors (Plausible's total has no dimensions)."""
    events = events_in(FIRST, LAST)
    goal = GOALS[2]
    everyone: dict[str, set[str]] = defaultdict(set)
    converted: dict[str, set[str]] = defaultdict(set)
    for e in events:
        everyone[e["country"]].add(e["visitor_id"])
        if completes(goal, e):
            converted[e["country"]].add(e["visitor_id"])
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "group_conversion_rate", "conversion_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:country"],
            "filters": [["is", "event:goal", ["Signup pro"]]],
        },
    )
    total = len({e["visitor_id"] for e in events})
    want = {(c,): [len(v), rate(len(v), len(everyone[c])), rate(len(v), total)] for c, v in converted.items()}
    assert {tuple(r["dimensions"]): r["metrics"] for r in body["results"]} == want and want


def test_goal_contains_filter_case_insensitive_aggregate(api: Api) -> None:
    events = events_in(FIRST, LAST)
    picked = [g for g in GOALS if "signup" in g["name"].lower()]
    done = [e for e in events if any(completes(g, e) for g in picked)]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "events", "conversion_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "filters": [["contains", "event:goal", ["SIGNUP"], {"case_sensitive": False}]],
        },
    )
    visitors = len({e["visitor_id"] for e in done})
    total = len({e["visitor_id"] for e in events})
    assert body["results"] == [{"metrics": [visitors, len(done), rate(visitors, total)], "dimensions": []}]
    # a name no goal has: nothing converts
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "conversion_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "filters": [["is", "event:goal", ["No such goal"]]],
        },
    )
    assert body["results"] == [{"metrics": [0, 0.0], "dimensions": []}]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"metrics": ["conversion_rate"]}, "Metric `conversion_rate` can only be queried with event:goal"),
        (
            {"metrics": ["group_conversion_rate"]},
            "Metric `group_conversion_rate` can only be queried with event:goal filters or dimensions.",
        ),
        ({"filters": [["is_not", "event:goal", ["Blog"]]]}, "Unsupported filter"),
        ({"filters": [["or", [["is", "event:goal", ["Blog"]], ["is", "event:page", ["/"]]]]]}, "top level"),
        (
            {
                "metrics": ["conversion_rate"],
                "dimensions": ["event:goal"],
                "include": {"comparisons": {"mode": "previous_period"}},
            },
            "Unsupported include.comparisons with conversion_rate",
        ),
    ],
)
def test_goal_errors(api: Api, patch: dict[str, Any], message: str) -> None:
    r = post(api, {"site_id": dataset.SITE, "metrics": ["visitors"], "date_range": "7d", **patch})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_conversion_rate_leaves_custom_property_filters_out_of_its_total(api: Api) -> None:
    """Plausible's totals drop the top-level goal and event:props filters: signups with plan "pro" in percent of
    every visitor, per device (group) and of all (conversion_rate)."""
    events = events_in(FIRST, LAST)
    goal = GOALS[3]  # Any signup
    everyone: dict[str, set[str]] = defaultdict(set)
    converted: dict[str, set[str]] = defaultdict(set)
    for e in events:
        everyone[e["device_type"]].add(e["visitor_id"])
        if completes(goal, e) and e["props"].get("plan") == "pro":
            converted[e["device_type"]].add(e["visitor_id"])
    total = len({e["visitor_id"] for e in events})
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "conversion_rate", "group_conversion_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:device"],
            "filters": [["is", "event:goal", ["Any signup"]], ["is", "event:props:plan", ["pro"]]],
        },
    )
    want = {(d,): [len(v), rate(len(v), total), rate(len(v), len(everyone[d]))] for d, v in converted.items()}
    assert {tuple(r["dimensions"]): r["metrics"] for r in body["results"]} == want and want
