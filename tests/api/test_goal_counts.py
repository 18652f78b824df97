"""The goals report from the report cache and from the events (`goal_counts`), on both engines.

Sites in three zones (Los Angeles with the DST change inside the range, Kathmandu a quarter-hour off UTC), each
with 1,800 visitors (past the exact range of both sketches), bots, events just outside the range's ends, and copies
of a tenth of the events and of every signup in two later inserts (merges stopped: their own parts, as a client
retry's). For each site the same scope is asked with the cache and without it: the same numbers; conversions equal
Python's count of the unique events, visitors Python's where the sets are small and the sketch's estimate (the
same on both paths) where they are not; the range's visitors equal the dashboard's. The cached path reads no
`events FINAL`: pages and events from the report cache, an event with a property value from the filter cache, the
others (the event `pageview`, an empty value) from their matching events only. Imported aggregate days add to the
cached page and total numbers as in every cached report.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pixel.server.api.query import filter_cache, goal_counts
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.scope import Scope
from tests.api import dataset
from tests.api.conftest import Api, add_site, report, report_cache

ENGINES = ("chdb", "clickhouse")
ZONES = ("UTC", "America/Los_Angeles", "Asia/Kathmandu")
FIRST, LAST = date(2024, 3, 4), date(2024, 3, 13)  # the US changes to DST on 10 March
VISITORS = 1_800
Event = dict[str, Any]

GOALS: list[tuple[dict[str, Any], Any]] = [
    (
        {"id": 1, "name": "Pricing", "kind": "page", "page_pattern": "/pricing/*"},
        lambda e: e["event_name"] == "pageview" and e["path"].startswith("/pricing/"),
    ),
    ({"id": 2, "name": "Home", "kind": "page", "page_pattern": "/"}, lambda e: _page(e, "/")),
    ({"id": 3, "name": "Signup", "kind": "event", "event_name": "signup"}, lambda e: e["event_name"] == "signup"),
    (
        {"id": 4, "name": "Pro", "kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "pro"},
        lambda e: e["event_name"] == "signup" and e["props"].get("plan") == "pro",
    ),
    ({"id": 5, "name": "Views", "kind": "event", "event_name": "pageview"}, lambda e: e["event_name"] == "pageview"),
    ({"id": 6, "name": "Rare", "kind": "page", "page_pattern": "/rare*"}, lambda e: _page(e, "/rare")),
    ({"id": 7, "name": "Never", "kind": "event", "event_name": "never"}, lambda e: False),
    (
        {"id": 8, "name": "Free", "kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "free"},
        lambda e: e["event_name"] == "signup" and e["props"].get("plan") == "free",
    ),
    (
        {"id": 9, "name": "Team", "kind": "event", "event_name": "pageview", "prop_key": "tier", "prop_value": "team"},
        lambda e: e["event_name"] == "pageview" and e["props"].get("tier") == "team",
    ),
]  # fmt: skip


def _page(e: Event, path: str) -> bool:
    return bool(e["event_name"] == "pageview" and e["path"] == path)


def _domain(zone: str) -> str:
    return "goals-" + zone.lower().replace("/", "-").replace("_", "-") + ".example"


def _event(n: int, t: datetime, visitor: str, name: str, path: str, **extra: Any) -> Event:
    return {
        "timestamp": dataset.ch(t),
        "received_at": dataset.ch(t),
        "event_id": f"g{n:06d}",
        "event_name": name,
        "visitor_id": visitor,
        "session_id": f"{visitor}-s",
        "path": path,
        "props": {},
        "is_bot": 0,
        **extra,
    }


def _events(domain: str, zone: str, seed: int) -> list[Event]:
    """VISITORS visitors over the range (a few pages each, a third signing up), three visitors on /rare, bots on
    every goal, and events an hour outside both ends of the range in `zone`."""
    rnd = random.Random(seed)
    lo = dataset.local_midnight(FIRST, zone)
    span = int((dataset.local_midnight(LAST + timedelta(days=1), zone) - lo).total_seconds()) - 3600
    events: list[Event] = []
    for v in range(VISITORS):
        t = lo + timedelta(seconds=rnd.randrange(span))
        for _ in range(rnd.randint(1, 4)):
            path = rnd.choice(["/", "/pricing/pro", "/pricing/team", "/blog/a", "/pricing"])
            props = {"tier": "team"} if path == "/pricing/team" else {}
            events.append(_event(len(events), t, f"v{v}", "pageview", path, props=props))
            t += timedelta(seconds=rnd.randint(5, 200))
        if v % 3 == 0:
            plan = rnd.choice(["pro", "free"])
            events.append(_event(len(events), t, f"v{v}", "signup", "/signup", props={"plan": plan}))
            if v % 9 == 0:  # another event with the same property values
                events.append(_event(len(events), t, f"v{v}", "upgrade", "/account", props={"plan": plan}))
    for v in range(3):
        events.append(_event(len(events), lo + timedelta(days=v, hours=5), f"r{v}", "pageview", "/rare"))
    for name, path in (("pageview", "/pricing/pro"), ("pageview", "/"), ("signup", "/signup")):
        events.append(_event(len(events), lo + timedelta(hours=3), "bot", name, path, is_bot=1,
                             props={"plan": "pro"}))  # fmt: skip
    for moment in (
        lo - timedelta(hours=1),
        dataset.local_midnight(LAST + timedelta(days=1), zone) + timedelta(hours=1),
    ):
        events.append(_event(len(events), moment, "outside", "signup", "/signup", props={"plan": "pro"}))
        events.append(_event(len(events), moment, "outside", "pageview", "/pricing/pro"))
    return [{**e, "site": domain, "host": domain} for e in events]


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, list[Event]]]]:
    """Per zone: the site's id and its unique events (their copies stored after them, merges stopped)."""
    api.store.command("SYSTEM STOP MERGES events")
    out = {}
    for n, zone in enumerate(ZONES):
        events = _events(_domain(zone), zone, n)
        site_id = add_site(api, _domain(zone), zone, events)
        copies = [e for i, e in enumerate(events) if i % 10 == 0 or e["event_name"] == "signup"]
        api.store.insert_rows("events", copies)
        api.store.insert_rows("events", copies[::2])
        out[zone] = (site_id, events)
    yield out
    api.store.command("SYSTEM START MERGES events")


def _scope(api: Api, zone: str, cached: bool) -> Scope:
    cache = report_cache(api)
    rng = resolve("custom", zone, date_from=FIRST.isoformat(), date_to=LAST.isoformat())
    return Scope(cache.runner, _domain(zone), rng, cache=cache if cached else None)


def _goals() -> list[dict[str, Any]]:
    return [goal for goal, _ in GOALS]


@pytest.mark.parametrize("zone", ZONES)
def test_cache_and_events_give_the_same_goals(
    api: Api, sites: dict[str, tuple[int, list[Event]]], zone: str, queries: list[str]
) -> None:
    site_id, events = sites[zone]
    kept = dataset.select(events, FIRST, LAST, site=_domain(zone), tz=zone)
    goal_counts.goals(_scope(api, zone, True), _goals())  # the caches' days built (from `events FINAL`)
    queries.clear()
    cached = goal_counts.goals(_scope(api, zone, True), _goals())
    read = "\n".join(queries)
    assert "day_dimensions" in read and "FINAL" not in read
    raw = goal_counts.goals(_scope(api, zone, False), _goals())
    assert cached == raw

    by_id = {row["goal_id"]: row for row in cached["goals"]}
    for goal, pred in GOALS:
        hits = [e for e in kept if pred(e)]
        assert by_id[goal["id"]]["conversions"] == len(hits), goal  # each event once, copies or not
        visitors = len({e["visitor_id"] for e in hits})
        if visitors <= 100:  # the sketch's exact range
            assert by_id[goal["id"]]["visitors"] == visitors, goal
        else:
            assert abs(by_id[goal["id"]]["visitors"] - visitors) <= visitors * 0.05, goal
    assert by_id[6]["visitors"] == 3 and by_id[7] == {**by_id[7], "visitors": 0, "conversions": 0}
    total = len({e["visitor_id"] for e in kept})
    assert abs(cached["total_visitors"] - total) <= total * 0.03 and total > 1_000
    for row in cached["goals"]:
        assert row["conversion_rate"] == round(row["visitors"] * 100.0 / cached["total_visitors"], 2)
    # the range's visitors are the dashboard's
    body = report(api, site_id, "summary", period="custom", compare="false",
                  **{"from": FIRST.isoformat(), "to": LAST.isoformat()})  # fmt: skip
    assert body["metrics"]["visitors"]["value"] == cached["total_visitors"]


def test_each_goal_is_read_where_it_is_kept(
    api: Api, sites: dict[str, tuple[int, list[Event]]], queries: list[str]
) -> None:
    """Pages and events from the report cache, an event with a property value from the filter cache's rows of
    that property, the others (the event `pageview`, an empty property value) from their matching events only:
    one read of the events for all of them, never `events FINAL`."""
    scope = _scope(api, "UTC", True)
    goal_counts.goals(scope, _goals())  # builds the days
    empty = {
        "id": 10,
        "name": "No plan",
        "kind": "event",
        "event_name": "signup",
        "prop_key": "plan",
        "prop_value": "",
    }
    for goals, tables in (
        (GOALS[:3], {"day_dimensions"}),
        ([GOALS[0], GOALS[3]], {"day_dimensions", "day_filter_dims"}),
        ([GOALS[4], GOALS[7], GOALS[2]], {"day_dimensions", "day_filter_dims", "events"}),
        ([GOALS[8], GOALS[0]], {"day_dimensions", "events"}),  # pageviews are kept by page
    ):
        queries.clear()
        got = goal_counts.goals(scope, [goal for goal, _ in goals])
        read = {
            t for q in queries for t in ("day_dimensions", "day_filter_dims", "events") if f"FROM {t}" in q
        }
        assert read == tables and not any("FINAL" in q for q in queries), goals
        assert got == goal_counts.goals(_scope(api, "UTC", False), [goal for goal, _ in goals])
    queries.clear()
    got = goal_counts.goals(scope, [GOALS[4][0], empty])
    assert len([q for q in queries if "FROM events" in q]) == 1  # both goals in one read of their events
    signups = [e for e in dataset.select(sites["UTC"][1], FIRST, LAST, site=_domain("UTC"), tz="UTC")
               if e["event_name"] == "signup"]  # fmt: skip
    assert got["goals"][1]["conversions"] == 0 < len(signups)  # every signup carries a plan
    # an empty value is not asked of the filter cache: that would queue a build of the key's whole split
    wanted = filter_cache.for_cache(report_cache(api)).wanted(_domain("UTC"))
    assert not any(name.startswith(filter_cache.WHOLE) for name in wanted)


def test_goals_through_the_api_take_the_cache_without_filters(
    api: Api, sites: dict[str, tuple[int, list[Event]]], queries: list[str]
) -> None:
    site_id, events = sites["Asia/Kathmandu"]
    made = []
    for goal, _ in GOALS[:4]:
        r = api.client.post(f"/api/sites/{site_id}/goals", json={k: v for k, v in goal.items() if k != "id"},
                            headers=api.admin)  # fmt: skip
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    span = {"period": "custom", "from": FIRST.isoformat(), "to": LAST.isoformat()}
    try:
        queries.clear()
        plain = report(api, site_id, "goals", **span)
        assert any("day_dimensions" in q for q in queries)
        expected = goal_counts.goals(_scope(api, "Asia/Kathmandu", False), [g for g, _ in GOALS[:4]])
        assert [(g["visitors"], g["conversions"]) for g in plain["goals"]] == [
            (g["visitors"], g["conversions"]) for g in expected["goals"]
        ]
        # a filter reads the events: its numbers are Python's on the events it keeps
        filtered = report(api, site_id, "goals", filters='[["page", "is", "/rare"]]', **span)
        assert filtered["total_visitors"] == 3
        assert [(g["visitors"], g["conversions"]) for g in filtered["goals"]] == [(0, 0)] * 4
    finally:
        for goal_id in made:
            api.client.delete(f"/api/sites/{site_id}/goals/{goal_id}", headers=api.admin)


def test_imported_aggregate_days_add_to_the_cached_goals(api: Api) -> None:
    """A day of imported aggregates (no live events) in the range: the cached total and page goals add its
    figures, as the dashboard does; event goals have no imported rows; the events' path leaves them out."""
    domain, zone = "goals-imported.example", "Europe/Berlin"
    live = [
        {
            **_event(n, datetime(2024, 3, 5, 9, n, tzinfo=UTC), f"v{n}", "pageview", "/pricing/pro"),
            "site": domain,
        }
        for n in range(4)
    ]
    add_site(api, domain, zone, live)
    api.store.insert_rows(
        "imported_aggregates",
        [
            {"site": domain, "import_id": "i1", "date": "2024-03-06", "dimension": dim, "value": value,
             "visitors": visitors, "pageviews": pageviews, "visits": visitors, "bounces": 0, "visit_duration": 0,
             "with_live": 0}
            for dim, value, visitors, pageviews in (("", "", 70, 90), ("page", "/pricing/pro", 40, 55),
                                                    ("page", "/", 30, 35))
        ],
    )  # fmt: skip
    cache = report_cache(api)
    rng = resolve("custom", zone, date_from="2024-03-04", date_to="2024-03-07")
    goals = [GOALS[0][0], GOALS[1][0], GOALS[2][0]]
    cached = goal_counts.goals(Scope(cache.runner, domain, rng, cache=cache), goals)
    raw = goal_counts.goals(Scope(cache.runner, domain, rng), goals)
    assert (cached["total_visitors"], raw["total_visitors"]) == (74, 4)
    assert [(g["visitors"], g["conversions"]) for g in cached["goals"]] == [(44, 59), (30, 35), (0, 0)]
    assert [(g["visitors"], g["conversions"]) for g in raw["goals"]] == [(4, 4), (0, 0), (0, 0)]


def test_property_goals_on_many_keys_ask_the_filter_cache_a_bounded_number_of_times(
    api: Api, sites: dict[str, tuple[int, list[Event]]], queries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Goals on more property keys than any day splits: the filter cache's days are asked once per key and for
    at most `PROP_KEYS` keys, its rows read in one statement; the goals past those keys from their events in one
    more; the numbers those of the events' path."""
    keys = [f"k{n}" for n in range(filter_cache.PROP_KEYS + 5)]
    goals = [
        {
            "id": n,
            "name": f"g{n}",
            "kind": "event",
            "event_name": "signup",
            "prop_key": key,
            "prop_value": value,
        }
        for n, (key, value) in enumerate((key, value) for key in keys for value in ("a", "b"))
    ]
    goals.append({**GOALS[3][0], "id": len(goals)})  # plan = pro, past the bound: from its events
    asked: list[str] = []
    real = filter_cache.days

    def days(scope: Scope, interval: str) -> Any:
        asked.append(scope.filters[0].dimension)
        return real(scope, interval)

    monkeypatch.setattr(filter_cache, "days", days)
    scope = _scope(api, "UTC", True)
    goal_counts.goals(scope, goals)  # the caches' days built
    asked.clear()
    queries.clear()
    got = goal_counts.goals(scope, goals)
    assert asked == [f"prop:{key}" for key in keys[: filter_cache.PROP_KEYS]]
    reads = [q for q in queries if "AS i, u, c FROM" in q]  # the goals' rows (the lookups read markers)
    assert len(reads) == 1 and reads[0].count("AS i, u, c FROM") == 2 * filter_cache.PROP_KEYS
    assert len([q for q in queries if "FROM events" in q]) == 1
    assert got == goal_counts.goals(_scope(api, "UTC", False), goals)
    pro = [
        e
        for e in dataset.select(sites["UTC"][1], FIRST, LAST, site=_domain("UTC"), tz="UTC")
        if GOALS[3][1](e)
    ]
    assert got["goals"][-1]["conversions"] == len(pro) > 0
