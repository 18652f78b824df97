"""Goals, funnels and retention, known answers computed in Python, with copies of events in other parts.

Funnels read the events as stored (not `events FINAL`): a copy changes no funnel. Retention reads the sessions
table where it holds the range exactly, else the events as stored: which weeks a visitor was active does not
change with a copy. Goals read `events FINAL`. Each is checked against Python over the unique events, with copies
of goal, step and other events stored in later inserts (so in other parts, as a client retry's are, merges
stopped), on sites in four zones (one a quarter-hour off UTC, one with a DST change inside the range), with
filters the sessions table answers and ones it does not. Funnel chains (one event is one step, each step
strictly later, the window's edge) table-driven, and a property test: any events, any of them copied, give
Python's funnel of the events stored once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.api.app import open_meta
from pixel.server.api.query import reports, session_dashboard
from pixel.server.api.query.filters import Filter
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from tests.api import dataset
from tests.api.conftest import Api

ENGINES = ("chdb", "clickhouse")
ZONES = ("UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kathmandu")
FIRST, LAST = date(2024, 2, 26), date(2024, 3, 24)  # four Monday weeks; the US changes to DST on 10 March
RANGE = {"period": "custom", "from": FIRST.isoformat(), "to": LAST.isoformat()}
Event = dict[str, Any]


def _domain(zone: str) -> str:
    return zone.lower().replace("/", "-").replace("_", "-") + ".example"


def _events(domain: str) -> list[Event]:
    """The standard data set moved to `domain`, with a second visit a week later for every third visitor
    (returns for the cohorts) and events just inside and outside the range's ends in every zone."""
    base = dataset.generate()
    later = []
    for e in base:
        if int(e["visitor_id"][1:]) % 3 == 0:
            t = dataset.ts(e) + timedelta(days=8, minutes=7)
            later.append(
                {
                    **e,
                    "event_id": e["event_id"] + "w",
                    "timestamp": dataset.ch(t),
                    "received_at": dataset.ch(t),
                }
            )
    edges = []
    moments = (
        datetime(2024, 2, 25, 10, 30, tzinfo=UTC),  # before the range in every zone
        datetime(2024, 2, 26, 0, 5, tzinfo=UTC),  # inside but in Los Angeles (still Sunday 25 February there)
        datetime(2024, 3, 24, 23, 55, tzinfo=UTC),  # Monday 25 March in Kathmandu and Berlin: outside there
        datetime(2024, 3, 25, 6, 0, tzinfo=UTC),  # still Sunday 24 March in Los Angeles
    )
    for n, moment in enumerate(moments):
        edges.append(
            {
                **base[0],
                "event_id": f"edge{n}",
                "visitor_id": f"edge{n}",
                "session_id": f"edge{n}-s",
                "timestamp": dataset.ch(moment),
                "received_at": dataset.ch(moment),
            }
        )
    return [{**e, "site": domain} for e in base + later + edges]


@pytest.fixture(scope="module")
def zoned(api: Api) -> Iterator[dict[str, tuple[int, list[Event]]]]:
    """Per zone: its site id and its unique events (copies of a tenth of them, goal and step events included,
    stored after them in two more inserts, merges stopped so that they stay in their own parts)."""
    meta = open_meta(api.settings)
    api.store.command("SYSTEM STOP MERGES events")  # the copies stay in their own parts, as before a merge
    out: dict[str, tuple[int, list[Event]]] = {}
    for zone in ZONES:
        domain = _domain(zone)
        events = _events(domain)
        api.store.insert_rows("events", events)
        copies = [e for i, e in enumerate(events) if i % 10 == 0 or e["event_name"] == "signup"]
        api.store.insert_rows("events", copies)
        api.store.insert_rows("events", copies[::2])
        site_id = meta.insert("sites", {"domain": domain, "name": zone, "timezone": zone, "created_at": 0.0})
        out[zone] = (site_id, events)
    yield out
    api.store.command("SYSTEM START MERGES events")


def _in_range(events: list[Event], zone: str) -> list[Event]:
    return dataset.select(events, FIRST, LAST, site=_domain(zone), tz=zone)


def _get(api: Api, site_id: int, report: str, **params: Any) -> dict[str, Any]:
    r = api.client.get(
        f"/api/sites/{site_id}/reports/{report}", headers=api.admin, params={**RANGE, **params}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _retention(events: list[Event], zone: str) -> dict[str, list[int]]:
    return dataset.retention(events, [(FIRST + timedelta(days=7 * k)).isoformat() for k in range(4)], zone)


FILTERS: list[tuple[list[list[str]], Callable[[Event], bool], bool]] = [
    # (filters, the events they keep, whether the sessions table answers them)
    ([], lambda e: True, True),
    ([["country", "is", "DE"]], lambda e: e["country"] == "DE", True),
    (
        [["source", "is_not", "Google"], ["device", "is", "desktop"]],
        lambda e: e["source"] != "Google" and e["device_type"] == "desktop",
        True,
    ),
    ([["page", "contains", "/blog"]], lambda e: "/blog" in e["path"], False),
    ([["event", "is", "signup"]], lambda e: e["event_name"] == "signup", False),
]


@pytest.mark.parametrize("zone", ZONES)
def test_retention_in_every_zone_from_the_sessions_table_or_the_events(
    api: Api, zoned: dict[str, tuple[int, list[Event]]], zone: str
) -> None:
    site_id, events = zoned[zone]
    for filters, keep, from_sessions in FILTERS:
        body = _get(api, site_id, "retention", filters=json.dumps(filters))
        expected = _retention([e for e in _in_range(events, zone) if keep(e)], zone)
        assert {c["cohort"]: c["weeks"] for c in body["cohorts"]} == expected, (zone, filters)
        assert all(c["visitors"] == c["weeks"][0] for c in body["cohorts"])
        rng = resolve("custom", zone, date_from=FIRST.isoformat(), date_to=LAST.isoformat())
        scope = Scope(QueryRunner(api.store), _domain(zone), rng, [Filter(*f) for f in filters])
        assert session_dashboard.usable([scope], "week") is from_sessions, filters
    returns = _retention(_in_range(events, zone), zone)
    assert sum(sum(w[1:]) for w in returns.values()) > 0  # the data has returning visitors to count


@pytest.mark.parametrize("zone", ZONES)
def test_goals_count_each_event_once(api: Api, zoned: dict[str, tuple[int, list[Event]]], zone: str) -> None:
    site_id, events = zoned[zone]
    goals = [
        (
            {"name": "Read blog", "kind": "page", "page_pattern": "/blog/*"},
            lambda e: e["event_name"] == "pageview" and e["path"].startswith("/blog/"),
        ),
        (
            {
                "name": "Pro signup",
                "kind": "event",
                "event_name": "signup",
                "prop_key": "plan",
                "prop_value": "pro",
            },
            lambda e: e["event_name"] == "signup" and e["props"].get("plan") == "pro",
        ),
        (
            {"name": "Any signup", "kind": "event", "event_name": "signup"},
            lambda e: e["event_name"] == "signup",
        ),
        (
            {"name": "Home", "kind": "page", "page_pattern": "/"},
            lambda e: e["event_name"] == "pageview" and e["path"] == "/",
        ),
    ]
    made = []
    for goal, _ in goals:
        r = api.client.post(f"/api/sites/{site_id}/goals", json=goal, headers=api.admin)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    try:
        for filters, keep, _ in FILTERS:
            body = _get(api, site_id, "goals", filters=json.dumps(filters))
            kept = [e for e in _in_range(events, zone) if keep(e)]
            total = len({e["visitor_id"] for e in kept})
            assert body["total_visitors"] == total, (zone, filters)
            for row, (_, pred) in zip(body["goals"], goals, strict=True):
                hits = [e for e in kept if pred(e)]
                visitors = len({e["visitor_id"] for e in hits})
                assert (row["visitors"], row["conversions"]) == (visitors, len(hits)), (zone, filters, row)
                assert row["conversion_rate"] == (round(visitors * 100.0 / total, 2) if total else 0.0)
        assert any(row["conversions"] for row in _get(api, site_id, "goals")["goals"])
    finally:
        for goal_id in made:
            api.client.delete(f"/api/sites/{site_id}/goals/{goal_id}", headers=api.admin)
    assert _get(api, site_id, "goals")["goals"] == []  # no goal: the range's visitors alone


@pytest.mark.parametrize("zone", ZONES)
def test_funnel_counts_each_event_once(
    api: Api, zoned: dict[str, tuple[int, list[Event]]], zone: str
) -> None:
    site_id, events = zoned[zone]
    steps = [
        {"kind": "page", "page_pattern": "/"},
        {"kind": "page", "page_pattern": "/signup"},
        {"kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "pro"},
    ]
    conditions = [
        lambda e: e["event_name"] == "pageview" and e["path"] == "/",
        lambda e: e["event_name"] == "pageview" and e["path"] == "/signup",
        lambda e: e["event_name"] == "signup" and e["props"].get("plan") == "pro",
    ]
    for filters, keep, _ in FILTERS[:3]:
        kept = [e for e in _in_range(events, zone) if keep(e)]
        for window in (600, 86400 * 30):
            body = _get(
                api, site_id, "funnel", steps=json.dumps(steps), window=window, filters=json.dumps(filters)
            )
            assert [s["visitors"] for s in body["steps"]] == dataset.funnel(kept, conditions, window), (
                zone,
                filters,
            )
    whole = _get(api, site_id, "funnel", steps=json.dumps(steps), window=86400 * 30)
    assert whole["steps"][0]["visitors"] > whole["steps"][-1]["visitors"] > 0


_RUNS = itertools.count()  # each example's own sites
_START = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
_DAY = resolve("custom", "UTC", date_from="2024-03-04", date_to="2024-03-04")
_WHATS = ["/", "/pricing", "/signup", "/blog/a", "/blog/a/comments", "signup"]
_STEPS = ["/", "/pricing", "/signup", "/blog/*", "/blog/*/comments", "/*", "signup"]


def _step_goal(step: str) -> dict[str, Any]:
    if step == "signup":
        return {"kind": "event", "event_name": "signup"}
    return {"kind": "page", "page_pattern": step}


def _step_matches(step: str) -> Callable[[Event], bool]:
    """The step in Python: `fnmatchcase`'s `*` is the goal glob's (no step here has `?` or `[`)."""
    if step == "signup":
        return lambda e: e["event_name"] == "signup"
    return lambda e: e["event_name"] == "pageview" and fnmatchcase(e["path"], step)


def _hits(run: int, drawn: list[tuple[int, int, str]]) -> list[Event]:
    """Events of visitors v0.. at `_START` + milliseconds: (visitor, ms, a page path or "signup")."""
    return [
        {
            "timestamp": dataset.ch(_START + timedelta(milliseconds=ms)),
            "site": "",
            "event_id": f"h{run}-{i}",
            "event_name": "signup" if what == "signup" else "pageview",
            "visitor_id": f"v{visitor}",
            "session_id": f"v{visitor}-s",
            "path": "/signup" if what == "signup" else what,
            "is_bot": 0,
        }
        for i, (visitor, ms, what) in enumerate(drawn)
    ]


def _funnel(api: Api, site: str, steps: list[str], window: int) -> list[int]:
    scope = Scope(QueryRunner(api.store), site, _DAY)
    return [s["visitors"] for s in reports.funnel(scope, [_step_goal(s) for s in steps], window)["steps"]]


CHAINS: list[tuple[str, list[tuple[int, int, str]], list[str], int, list[int]]] = [
    # (case, events (visitor, ms, what), steps, window in seconds, visitors reaching each step)
    ("one event matches two steps", [(0, 0, "/blog/a")], ["/blog/*", "/blog/*"], 60, [1, 0]),
    ("a journey's group twice", [(0, 0, "/blog/a"), (0, 5, "/blog/a")], ["/blog/*", "/blog/*"], 60, [1, 1]),
    ("overlapping patterns", [(0, 0, "/blog/a/comments")], ["/blog/*", "/blog/*/comments"], 60, [1, 0]),
    ("two events, one instant", [(0, 7, "/"), (0, 7, "/pricing")], ["/", "/pricing"], 60, [1, 0]),
    ("a millisecond later", [(0, 7, "/"), (0, 8, "/pricing")], ["/", "/pricing"], 60, [1, 1]),
    ("in order by time, not by insert", [(0, 9, "/pricing"), (0, 8, "/")], ["/", "/pricing"], 60, [1, 1]),
    ("the wrong order", [(0, 8, "/pricing"), (0, 9, "/")], ["/", "/pricing"], 60, [1, 0]),
    (
        "an event that is both a start and the next step",
        [(0, 0, "/blog/a"), (0, 10, "/blog/a/comments")],
        ["/blog/*", "/blog/*/comments"],
        60,
        [1, 1],
    ),
    (
        "the same event can't be steps 2 and 3",
        [(0, 0, "/"), (0, 10, "/blog/a")],
        ["/", "/blog/*", "/*"],
        60,
        [1, 1, 0],
    ),
    ("the window's last millisecond", [(0, 0, "/"), (0, 60_000, "signup")], ["/", "signup"], 60, [1, 1]),
    ("one millisecond past it", [(0, 0, "/"), (0, 60_001, "signup")], ["/", "signup"], 60, [1, 0]),
    (
        "a later start inside the window",
        [(0, 0, "/"), (0, 100_000, "/"), (0, 150_000, "signup")],
        ["/", "signup"],
        60,
        [1, 1],
    ),
    (
        "ten steps of one pattern, ten pages",
        [(0, ms, "/blog/a") for ms in range(0, 100, 10)],
        ["/blog/*"] * 10,
        60,
        [1] * 10,
    ),
    (
        "nine pages for ten steps",
        [(0, ms, "/blog/a") for ms in range(0, 90, 10)],
        ["/blog/*"] * 10,
        60,
        [1] * 9 + [0],
    ),
    (
        "visitors apart",
        [(0, 0, "/"), (1, 5, "/pricing"), (2, 0, "/"), (2, 1, "/pricing"), (2, 1, "signup")],
        ["/", "/pricing", "signup"],
        60,
        [2, 1, 0],
    ),
]


@pytest.mark.parametrize(("case", "drawn", "steps", "window", "expected"), CHAINS, ids=[c[0] for c in CHAINS])
def test_funnel_chains(
    api: Api,
    zoned: dict[str, tuple[int, list[Event]]],
    case: str,
    drawn: list[tuple[int, int, str]],
    steps: list[str],
    window: int,
    expected: list[int],
) -> None:
    """One event stands for one step of a chain, each step strictly later than the one before, within the window
    of the first; the same with every event stored twice (merges stopped by `zoned`)."""
    run = next(_RUNS)
    events = _hits(run, drawn)
    assert (
        dataset.funnel(events, [_step_matches(s) for s in steps], window) == expected
    )  # the reference agrees
    once, twice = f"once{run}.example", f"twice{run}.example"
    api.store.insert_rows("events", [{**e, "site": once} for e in events])
    for _ in range(2):
        api.store.insert_rows("events", [{**e, "site": twice} for e in events])
    assert _funnel(api, once, steps, window) == expected, case
    assert _funnel(api, twice, steps, window) == expected, case


_events_drawn = st.lists(
    st.tuples(
        st.integers(0, 2), st.integers(0, 40).map(lambda s: s * 500), st.sampled_from(_WHATS), st.booleans()
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(st.sampled_from(_STEPS), min_size=2, max_size=4),
    drawn=_events_drawn,
    window=st.sampled_from([1, 5, 20, 3600]),
)
def test_funnel_matches_python(
    api: Api,
    zoned: dict[str, tuple[int, list[Event]]],
    steps: list[str],
    drawn: list[tuple[int, int, str, bool]],
    window: int,
) -> None:
    """Any events (ties at one instant, one event matching several steps, steps repeated, patterns overlapping),
    any of them stored again in a later insert (merges stopped by `zoned`): the funnel is Python's, of the events
    stored once."""
    run = next(_RUNS)
    events = _hits(run, [(visitor, ms, what) for visitor, ms, what, _ in drawn])
    once, twice = f"once{run}.example", f"twice{run}.example"
    api.store.insert_rows("events", [{**e, "site": once} for e in events])
    api.store.insert_rows("events", [{**e, "site": twice} for e in events])
    again = [e for e, (*_, copied) in zip(events, drawn, strict=True) if copied]
    if again:
        api.store.insert_rows("events", [{**e, "site": twice} for e in again])
    expected = dataset.funnel(events, [_step_matches(s) for s in steps], window)
    assert _funnel(api, once, steps, window) == expected
    assert _funnel(api, twice, steps, window) == expected
