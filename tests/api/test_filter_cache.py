"""The filtered dashboard with filters on one dimension of `filter_cache.FILTERS` reads its numbers (summary,
both series, sessions, bounces, durations, the event-level breakdowns the cache keeps, entry / exit pages)
from the per-day cache by filter value (`query/filter_cache.py`), with exactly the raw path's answer (the
same dashboard with a filter that keeps every event and forces the raw events), and the pageviews, events
and sessions the Python count of the kept events gives; filters on two dimensions read rows split by both
values (a joint).

The events are `test_engagement_dims_cache`'s (insights_dataset plus sessions across every local midnight,
three zones with a DST change and a :30 offset, every eleventh event with a country and an OS of its own so
some sessions change a dimension mid-session, every third session's later pages internal navigation (two
channels and sources, three when it comes back from a social network), UTM fields per session but on every
fifth later pageview, a client-retry copy of every seventh event in a part of its own).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.api.query import filter_cache
from tests.api import insights_dataset as data
from tests.api.conftest import Api
from tests.api.test_content_cache_filters import BY_VALUE_VALUES, FIELDS, operators_of, passes
from tests.api.test_engagement_cache import DAYS, RANGE, count, event, midnight_sessions
from tests.api.test_engagement_dims_cache import (
    UTM_VALUES,
    VALUES,
    ZONES,
    with_dimensions,
    with_internal_navigation,
    with_utm,
)

pytestmark = pytest.mark.usefixtures("rebuild_at_once", "joints_at_once")


@pytest.fixture
def joints_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new joint takes an older one's place whenever asked (in service, at most every ASK_SECONDS)."""
    monkeypatch.setattr(filter_cache, "ASK_SECONDS", 0.0)


ENGINES = ("chdb", "clickhouse")

EVERYTHING = [
    "region",
    "not_contains",
    "never-in-any-region",
]  # a second dimension: the raw path, same events
# Each filter dimension of the cache -> the event field, and its values (value, fragment, pattern).
FILTER_FIELDS = {**FIELDS, "page": "path", **{u: u for u in UTM_VALUES}, "event": "event_name"}
FILTER_VALUES = {
    **VALUES,
    "page": BY_VALUE_VALUES["page"],
    **UTM_VALUES,
    "event": ("purchase", "FORM", "^(error|scroll)$"),
}
BREAKDOWNS = "page,entry_page,exit_page,referrer,source,country,browser,os,device,event,channel,utm_source"


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for domain, tz in ZONES.items():
        domain = domain.replace("engdims", "filtercache")
        rows = with_utm(
            with_internal_navigation(
                with_dimensions(data.generate(domain, seed=43) + midnight_sessions(domain, tz, seed=11))
            )
        )
        api.store.insert_rows("events", rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies, in a part of their own
        site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0})
        out[domain] = (site_id, tz, rows)
    yield out


def dashboard(api: Api, site_id: int, filters: list[list[str]], interval: str = "day") -> dict[str, Any]:
    params = {
        **RANGE,
        "interval": interval,
        "breakdowns": BREAKDOWNS,
        "limit": 5,
        "previous_series": "true",
        "metrics": "visitors,pageviews,events,sessions,bounce_rate,visit_duration",
        "filters": json.dumps(filters),
    }
    r = api.client.get(f"/api/sites/{site_id}/reports/dashboard", params=params, headers=api.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def session_numbers(kept: list[dict[str, Any]]) -> dict[str, float]:
    """Bounce rate and visit duration of the sessions of the kept events, from those events only (a session
    of one kept pageview or none bounces; its duration spans its kept events)."""
    sessions: dict[str, list[dict[str, Any]]] = {}
    for e in kept:
        sessions.setdefault(e["session_id"], []).append(e)
    bounces = sum(sum(e["event_name"] == "pageview" for e in es) <= 1 for es in sessions.values())
    spans = [max(map(data.ts, es)) - min(map(data.ts, es)) for es in sessions.values()]
    duration_ms = sum(span // timedelta(milliseconds=1) for span in spans)
    n = len(sessions)
    return {
        "bounce_rate": round(bounces * 100.0 / n, 1) if n else 0.0,
        "visit_duration": round(duration_ms * 0.001 / n, 1) if n else 0.0,
    }


def read_cache(sql: list[str]) -> bool:
    """Whether the dashboard's numbers were read from the cache (not its checks of the markers of property keys
    and joints)."""
    markers = (filter_cache.KEY_CACHED, filter_cache.JOINT_CACHED)
    return any(
        "day_filter_dims" in s and "SELECT" in s and "INSERT" not in s and not any(m in s for m in markers)
        for s in sql
    )


def test_every_dimension_and_operator_from_the_cache_equals_raw_and_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    assert set(FILTER_VALUES) == set(FILTER_FIELDS) == set(filter_cache.FILTERS)
    for domain, (site_id, tz, rows) in sites.items():
        for dim, values in FILTER_VALUES.items():
            for op, v in operators_of(values):
                queries.clear()
                cached = dashboard(api, site_id, [[dim, op, v]])
                assert read_cache(queries), (domain, dim, op)
                queries.clear()
                raw = dashboard(api, site_id, [[dim, op, v], EVERYTHING])
                assert not read_cache(queries), (domain, dim, op)
                assert cached == raw, (domain, dim, op, v)
                keeps, field = passes(op, v), FILTER_FIELDS[dim]
                kept = data.select(rows, domain, tz, pred=lambda e, k=keeps, f=field: k(str(e.get(f, ""))))
                metrics = cached["summary"]["metrics"]
                assert metrics["pageviews"]["value"] == sum(e["event_name"] == "pageview" for e in kept)
                assert sum(p["events"] for p in cached["timeseries"]["points"]) == len(kept), (domain, dim)
                assert metrics["sessions"]["value"] == len({e["session_id"] for e in kept}), (domain, dim)
                expected = session_numbers(kept)
                assert metrics["bounce_rate"]["value"] == expected["bounce_rate"], (domain, dim, op)
                assert metrics["visit_duration"]["value"] == expected["visit_duration"], (domain, dim, op)
        # every day of both periods built once
        assert count(api, "day_filter_builds", domain) == 2 * DAYS, domain


@pytest.mark.parametrize(
    "filters",
    [
        [["channel", "is_not", "Internal"]],
        [["channel", "is", "Internal"]],
        [["source", "is_not", ""]],
        [["channel", "not_contains", "social"]],
        [["channel", "is_not", "Internal"], ["channel", "is_not", "Organic Social"]],
        [["page", "is_not", "/"]],
    ],
)
def test_a_filter_on_what_internal_navigation_changes_equals_raw_and_python(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    """A session navigating internally holds two channels and sources (three when it comes back from a social
    network): a filter on one of them keeps its landing page or its later pages only (its part of the pair), or
    all of it; entry and exit pages, bounces and durations move with what is kept."""
    checks = [(passes(op, v), FILTER_FIELDS[dim]) for dim, op, v in filters]
    for domain, (site_id, tz, rows) in sites.items():
        queries.clear()
        cached = dashboard(api, site_id, filters)
        assert read_cache(queries) and any("day_filter_sessions" in q and "pair" in q for q in queries)
        assert cached == dashboard(api, site_id, [*filters, EVERYTHING]), (domain, filters)
        kept = data.select(rows, domain, tz, pred=lambda e: all(k(str(e.get(f, ""))) for k, f in checks))
        metrics = cached["summary"]["metrics"]
        assert metrics["pageviews"]["value"] == sum(e["event_name"] == "pageview" for e in kept)
        assert metrics["sessions"]["value"] == len({e["session_id"] for e in kept}), (domain, filters)
        expected = session_numbers(kept)
        assert metrics["bounce_rate"]["value"] == expected["bounce_rate"], (domain, filters)
        assert metrics["visit_duration"]["value"] == expected["visit_duration"], (domain, filters)


@pytest.mark.parametrize("dim", ["channel", "country", "page", "utm_source"])
def test_sessions_with_two_values_of_a_dimension_are_summed_by_pair_not_kept_as_edges(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], dim: str
) -> None:
    """Per day and pair of values of a filter dimension, the one-day sessions holding exactly those two are
    summed (their part with each value, and whole once); the edges keep only the sessions with more than two
    values or on more than one day. Known answers from the events, per local day in three zones."""
    field = FILTER_FIELDS[dim]
    for domain, (site_id, tz, rows) in sites.items():
        dashboard(api, site_id, [[dim, "is", "built"]])
        by_session: dict[str, list[dict[str, Any]]] = {}
        for e in rows:
            if e["site"] == domain and not e.get("is_bot"):
                by_session.setdefault(e["session_id"], []).append(e)
        wholes: Counter[tuple[str, str, str]] = Counter()
        parts: Counter[tuple[str, str, str]] = Counter()
        edges: Counter[str] = Counter()
        middle = data.days()[1:-1]  # the edges' windows reach past the first and last day
        for events in by_session.values():
            days = {data.local_day(e, tz) for e in events}
            values = sorted({str(e.get(field, "")) for e in events})
            if len(days) == 1 and len(values) == 2:
                (day,) = days
                wholes[(day, values[0], values[1])] += 1
                parts[(day, values[0], values[1])] += 1
                parts[(day, values[1], values[0])] += 1
            elif len(days) * len(values) > 1:
                edges.update(d for d in days if d in middle)
        assert wholes and edges, (domain, dim)
        if dim == "channel":
            assert any("Internal" in pair for pair in wholes), domain
        got = api.store.query(
            """SELECT toString(day), filter_value, other, pair, sum(sessions) FROM day_filter_sessions
            WHERE site = {s:String} AND filter = {f:String} AND dimension = '#sessions' AND pair > 0
                AND build IN (SELECT build FROM day_filter_builds FINAL WHERE site = {s:String})
                AND day >= {lo:Date} AND day <= {hi:Date}
            GROUP BY day, filter_value, other, pair""",
            {"s": domain, "f": dim, "lo": data.FIRST_DAY.isoformat(), "hi": data.LAST_DAY.isoformat()},
        )
        kinds = (filter_cache.PART_OF_PAIR, filter_cache.WHOLE_PAIR)
        got_by_kind: dict[int, Counter[tuple[str, str, str]]] = {k: Counter() for k in kinds}
        for day, value, other, pair, n in got.rows:
            got_by_kind[pair][(day, value, other)] += n
        in_range = set(data.days())
        assert got_by_kind[filter_cache.WHOLE_PAIR] == +Counter(
            {k: n for k, n in wholes.items() if k[0] in in_range}
        )
        assert got_by_kind[filter_cache.PART_OF_PAIR] == +Counter(
            {k: n for k, n in parts.items() if k[0] in in_range}
        )
        got_edges = api.store.query(
            """SELECT toString(day), uniqExact(sid) FROM day_filter_session_edges
            WHERE site = {s:String} AND filter = {f:String} AND has({days:Array(Date)}, day)
                AND build IN (SELECT build FROM day_filter_builds FINAL WHERE site = {s:String})
            GROUP BY day""",
            {"s": domain, "f": dim, "days": middle},
        )
        assert {day: n for day, n in got_edges.rows} == dict(edges), (domain, dim)


KEEP_NOTHING = [
    [["prop:url", "contains", "example"], ["prop:url", "not_contains", "example"]],
    [["prop:nowhere", "is", "x"]],
]


def prop_of(e: dict[str, Any], key: str) -> str:
    """An event's value of a custom property, as `props[key]` reads it ('' without the key)."""
    return str((e.get("props") or {}).get(key, ""))


@pytest.mark.parametrize(
    ("filters", "cached"),
    [
        ([["prop:ext", "is", "pdf"]], True),
        ([["prop:url", "contains", "GITHUB"]], True),
        ([["prop:id", "is", "signup"]], True),
        ([["prop:action", "matches", "(signup|search)$"]], True),
        ([["prop:url", "contains", "example"], ["prop:url", "not_contains", "news"]], True),
        # these keep the empty value, which every event without the key has: the key's whole split
        ([["prop:ext", "is_not", "pdf"]], True),
        ([["prop:id", "is", ""]], True),
        ([["prop:url", "not_matches", "zip$"]], True),
        ([["prop:url", "contains", "example"], ["prop:url", "not_contains", "example"]], True),
        ([["prop:nowhere", "is", "x"]], True),
        # a key no day split: its events without it are in no row
        ([["prop:nowhere", "is_not", "x"]], False),
    ],
)
def test_a_custom_property_filter_from_the_cache_equals_raw_and_python(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
    cached: bool,
) -> None:
    """Custom properties split the cache by their values too (`prop:<key>`): a filter keeping only values an
    event must carry reads those rows; one that keeps the empty value (events without the key) reads the key's
    whole split (asked for then: every event, '' without the key). The same answer as the raw events, and the
    Python count of the kept events."""
    checks = [(passes(op, v), dim.removeprefix("prop:")) for dim, op, v in filters]
    for domain, (site_id, tz, rows) in sites.items():
        queries.clear()
        got = dashboard(api, site_id, filters)
        assert read_cache(queries) == cached, (domain, filters)
        assert got == dashboard(api, site_id, [*filters, EVERYTHING]), (domain, filters)
        kept = data.select(rows, domain, tz, pred=lambda e: all(k(prop_of(e, key)) for k, key in checks))
        assert (len(kept) > 0) == (filters not in KEEP_NOTHING), filters
        metrics = got["summary"]["metrics"]
        assert sum(p["events"] for p in got["timeseries"]["points"]) == len(kept), (domain, filters)
        assert metrics["sessions"]["value"] == len({e["session_id"] for e in kept}), (domain, filters)
        expected = session_numbers(kept)
        assert metrics["bounce_rate"]["value"] == expected["bounce_rate"], (domain, filters)
        assert metrics["visit_duration"]["value"] == expected["visit_duration"], (domain, filters)


def test_property_keys_with_too_many_values_or_past_the_most_used_read_the_raw_events(
    api: Api, queries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build splits by at most PROP_KEYS keys (the most used) with at most PROP_VALUES values each: a key
    holding an id per event, or one past the most used, is left out of the day's build, and a filter on it reads
    the raw events (the same numbers). Events carrying a key each of their own (a hostile client) add no more
    than one marker row a day."""
    from pixel.server.api.app import open_meta

    monkeypatch.setattr(filter_cache, "PROP_VALUES", 3)
    monkeypatch.setattr(filter_cache, "PROP_KEYS", 1)
    domain, tz = "props.filtercache", "Europe/Berlin"
    start = datetime(2024, 3, 10, 9, 0, tzinfo=UTC)
    rows = []
    for n in range(60):
        props = {"plan": ["free", "pro"][n % 2], "order": str(n), f"junk{n}": "x"}
        if n % 10 == 0:
            props["coupon"] = "spring"
        t = start + timedelta(minutes=7 * n)
        rows.append(event(domain, n, t, f"v{n // 3}-s", "signup" if n % 3 else "pageview", "/p", props=props))
    api.store.insert_rows("events", rows)
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0}
    )
    for key, op, value, cached in (
        ("plan", "is", "pro", True),
        ("order", "is", "7", False),
        ("coupon", "is", "spring", False),
        ("plan", "is_not", "pro", True),  # the whole split of a key the builds split
        ("order", "is_not", "7", False),  # never for a key with too many values, nor one left out
        ("coupon", "not_contains", "spring", False),
    ):
        filters = [[f"prop:{key}", op, value]]
        queries.clear()
        got = dashboard(api, site_id, filters)
        assert read_cache(queries) == cached, key
        assert got == dashboard(api, site_id, [*filters, EVERYTHING]), key
        kept = [e for e in rows if passes(op, value)(e["props"].get(key, ""))]
        assert sum(p["events"] for p in got["timeseries"]["points"]) == len(kept) > 0, key
        assert got["summary"]["metrics"]["sessions"]["value"] == len({e["session_id"] for e in kept}), key
    markers = api.store.query(
        """SELECT toString(day), filter, dimension FROM day_filter_dims
        WHERE site = {s:String} AND dimension IN ({cached:String}, {left:String}) ORDER BY filter""",
        {"s": domain, "cached": filter_cache.KEY_CACHED, "left": filter_cache.KEYS_LEFT_OUT},
    ).rows
    # each day of a build that saw the keys: its one split key (the most used), one row for all the keys left out
    by_day: dict[str, list[tuple[str, str]]] = {}
    for day, name, mark in markers:
        by_day.setdefault(day, []).append((name, mark))
    assert "2024-03-10" in by_day, by_day
    expected = [("", filter_cache.KEYS_LEFT_OUT), ("prop:plan", filter_cache.KEY_CACHED)]
    assert all(marks == expected for marks in by_day.values()), by_day


def test_property_keys_spelled_like_the_cache_names_are_only_keys(api: Api, queries: list[str]) -> None:
    """Keys spelled like the cache's own names (the property prefix, a whole split's name, two dimensions) or
    with the other characters the API takes are keys like any other: their filters read their rows (the key's
    whole split for one keeping ''), the same numbers as the raw events and Python."""
    from pixel.server.api.app import open_meta

    domain, tz = "oddkeys.filtercache", "Asia/Kolkata"
    start = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
    keys = ["prop:x", "whole:prop:x", "country device", "$key@x.y-z", "日本"]  # what the API takes
    rows = []
    for n in range(40):
        props = {key: ["a", "b&c", ""][(n + i) % 3] for i, key in enumerate(keys) if (n + i) % 4}
        t = start + timedelta(minutes=11 * n)
        rows.append(event(domain, n, t, f"v{n // 4}-s", "pageview" if n % 2 else "signup", "/p", props=props))
    api.store.insert_rows("events", rows)
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0}
    )
    for key in keys:
        for op, value in (("is", "b&c"), ("is_not", "a"), ("not_contains", "&")):
            filters = [[f"prop:{key}", op, value]]
            queries.clear()
            got = dashboard(api, site_id, filters)
            assert read_cache(queries), (key, op)
            assert got == dashboard(api, site_id, [*filters, EVERYTHING]), (key, op)
            kept = [e for e in rows if passes(op, value)(str(e["props"].get(key, "")))]
            assert sum(p["events"] for p in got["timeseries"]["points"]) == len(kept) > 0, (key, op)


def test_each_filter_keeps_some_events_and_drops_others(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    domain, (_, tz, rows) = next(iter(sites.items()))
    every = data.select(rows, domain, tz)
    for dim, values in FILTER_VALUES.items():
        field = FILTER_FIELDS[dim]
        for op, v in operators_of(values):
            keeps = passes(op, v)
            kept = data.select(rows, domain, tz, pred=lambda e, k=keeps, f=field: k(str(e.get(f, ""))))
            assert 0 < len(kept) < len(every), (dim, op)
    # some sessions change a dimension mid-session
    countries: dict[str, set[str]] = {}
    for e in every:
        countries.setdefault(e["session_id"], set()).add(str(e.get("country", "")))
    assert any(len(c) > 1 for c in countries.values())


def test_week_buckets_and_several_filters_on_one_dimension(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    site_id = sites["newyork.filtercache"][0]
    filters = [["country", "is_not", "US"], ["country", "not_contains", "i"]]
    queries.clear()
    cached = dashboard(api, site_id, filters, interval="week")
    assert read_cache(queries)
    assert cached == dashboard(api, site_id, [*filters, EVERYTHING], interval="week")


@pytest.mark.parametrize("flt", [["os", "is", ""], ["page", "contains", "doc"]])
def test_the_kept_breakdowns_read_no_event(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str], flt: list[str]
) -> None:
    """With only the breakdowns the cache keeps (and entry / exit pages), no query reads the events."""
    site_id = sites["berlin.filtercache"][0]
    params = {**RANGE, "breakdowns": "page,entry_page,exit_page,source,country", "filters": json.dumps([flt])}
    url = f"/api/sites/{site_id}/reports/dashboard"
    r = api.client.get(url, params=params, headers=api.admin)
    assert r.status_code == 200, r.text
    queries.clear()
    again = api.client.get(url, params=params, headers=api.admin)
    assert again.json() == r.json()
    assert read_cache(queries) and not any("FROM events" in q for q in queries)


def test_three_dimensions_a_property_beside_a_dimension_or_bots_read_the_raw_path(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    site_id = sites["kolkata.filtercache"][0]
    for filters in (
        [["source", "is", "Google"], ["device", "is", "mobile"], ["country", "is", "DE"]],
        [["source", "is", "Google"], ["prop:ext", "is", "pdf"]],
        [["source", "is", "Google"], ["region", "is", "x"]],
    ):
        queries.clear()
        dashboard(api, site_id, filters)
        assert not read_cache(queries), filters
    assert filter_cache.one_dimension([]) is None
    assert filter_cache.cached_filter([]) is None


def kept_by(
    rows: list[dict[str, Any]], domain: str, tz: str, filters: list[list[str]]
) -> list[dict[str, Any]]:
    """The events of `domain` the filters keep (each on its event field), in the test range."""
    checks = [(passes(op, v), FILTER_FIELDS[dim]) for dim, op, v in filters]
    return data.select(rows, domain, tz, pred=lambda e: all(k(str(e.get(f, ""))) for k, f in checks))


JOINT_FILTERS = [
    [["source", "is", "Google"], ["device", "is", "mobile"]],
    [
        ["device", "is", "mobile"],
        ["source", "is", "Google"],
    ],  # the same joint, the filters the other way round
    [["country", "is", "DE"], ["channel", "is_not", "Internal"]],
    [["channel", "is", "Internal"], ["browser", "contains", "fire"]],
    [["page", "contains", "DOC"], ["source", "is_not", ""]],
    [["page", "is_not", "/"], ["country", "matches", "^(US|IN)$"]],
    [["event", "is", "purchase"], ["country", "not_contains", "d"]],
    [["utm_source", "is", "newsletter"], ["channel", "not_matches", "^(Direct|Email)$"]],
    [["os", "is", ""], ["utm_campaign", "is_not", "spring"]],
    # several filters on one of the two dimensions
    [["country", "is_not", "US"], ["country", "not_contains", "i"], ["device", "matches", "^desk"]],
]


@pytest.mark.parametrize("filters", JOINT_FILTERS)
def test_two_filter_dimensions_from_the_cache_equal_raw_and_python(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    """Filters on two dimensions of FILTERS read rows split by the pair of both values (a joint): exactly the
    events both keep, sessions cut where either changes (internal navigation, a page, a country changing
    mid-session), the same answer as the raw events and the Python count of the kept events."""
    for domain, (site_id, tz, rows) in sites.items():
        queries.clear()
        cached = dashboard(api, site_id, filters)
        assert read_cache(queries), (domain, filters)
        queries.clear()
        raw = dashboard(api, site_id, [*filters, EVERYTHING])
        assert not read_cache(queries)
        assert cached == raw, (domain, filters)
        kept = kept_by(rows, domain, tz, filters)
        assert kept, (domain, filters)
        metrics = cached["summary"]["metrics"]
        assert metrics["pageviews"]["value"] == sum(e["event_name"] == "pageview" for e in kept)
        assert sum(p["events"] for p in cached["timeseries"]["points"]) == len(kept), (domain, filters)
        assert metrics["sessions"]["value"] == len({e["session_id"] for e in kept}), (domain, filters)
        expected = session_numbers(kept)
        assert metrics["bounce_rate"]["value"] == expected["bounce_rate"], (domain, filters)
        assert metrics["visit_duration"]["value"] == expected["visit_duration"], (domain, filters)


def split_joints(api: Api, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each pair made into a joint value by the store (`_joint_value`) and split back (`_joint_part`)."""
    joint = (
        filter_cache._joint_value("country&device")
        .replace("CAST(country AS String)", "p.1")
        .replace("CAST(device_type AS String)", "p.2")
    )
    got = api.store.query(
        f"""SELECT {filter_cache._joint_part("j", 0)}, {filter_cache._joint_part("j", 1)}
        FROM (SELECT {joint} AS j FROM system.one ARRAY JOIN {{pairs:Array(Tuple(String, String))}} AS p)""",
        {"pairs": pairs},
    ).rows
    return [(first, second) for first, second in got]


def test_a_joint_value_splits_back_into_its_two_values(api: Api) -> None:
    """The joint value (the first value's length, then both) gives back each value, whatever they hold: empty,
    digits, the separator-like characters, multi-byte text."""
    values = ["", "0", "0000000012", "a&b", "/p?q=1&r=2", "Zürich", "東京", "x" * 300, "\\x00'\""]
    pairs = [(first, second) for first in values for second in values]
    assert split_joints(api, pairs) == pairs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.text(max_size=40), st.text(max_size=40)), min_size=1, max_size=30))
def test_any_pair_of_texts_splits_back_from_its_joint_value(api: Api, pairs: list[tuple[str, str]]) -> None:
    assert split_joints(api, pairs) == pairs


def test_a_joint_asked_first_on_many_days_is_added_by_the_worker(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A joint asked for the first time on days already built holding more than `background_min_rows` events:
    the raw path answers while a worker adds it to each day (its own build, under a marker of the day's build);
    then the cache answers, the same. Days built after it build the joint with them."""
    from tests.api.conftest import report_cache

    domain = "berlin.filtercache"
    site_id, tz, rows = sites[domain]
    cache = filter_cache.for_cache(report_cache(api))
    filters = [["os", "is_not", ""], ["browser", "matches", "ari$"]]
    name = filter_cache.joint_name({"os", "browser"})
    dashboard(api, site_id, [["os", "is", "built"]])  # every day built without the joint
    started: list[Any] = []
    monkeypatch.setattr(cache.joint_adder, "_start", started.append)  # the worker is run by hand below
    monkeypatch.setattr(report_cache(api), "background_min_rows", 10)
    queries.clear()
    first = dashboard(api, site_id, filters)
    assert not read_cache(queries) and len(started) == 1
    assert name in cache.wanted(domain)
    for _ in range(2):  # the period, then the previous one (asked once the period reads the cache)
        cache.joint_adder.build_pending()
        queries.clear()
        again = dashboard(api, site_id, filters)
    assert read_cache(queries) and again == first
    assert len(started) == 2
    kept = kept_by(rows, domain, tz, filters)
    assert sum(p["events"] for p in again["timeseries"]["points"]) == len(kept) > 0
    marks = api.store.query(
        """SELECT m.day, m.build = b.build, toUInt64(m.value) > b.build FROM day_filter_dims AS m
        JOIN (SELECT day, max(build) AS build FROM day_filter_builds WHERE site = {s:String} AND tz = {tz:String}
            GROUP BY day) AS b ON m.day = b.day
        WHERE m.site = {s:String} AND m.tz = {tz:String} AND m.filter = {f:String}
            AND m.dimension = {mark:String}""",
        {"s": domain, "tz": tz, "f": name, "mark": filter_cache.JOINT_CACHED},
    ).rows
    assert len(marks) == 2 * DAYS and all(under and own for _, under, own in marks), marks
    # a day changed is rebuilt with the joint in its own build
    api.store.insert_rows("events", [dict(rows[0], event_id="joint-late-copy")])
    queries.clear()
    third = dashboard(api, site_id, filters)
    assert read_cache(queries) and len(started) == 2
    assert third == dashboard(api, site_id, [*filters, EVERYTHING])


def test_the_joints_built_are_the_most_recently_asked_and_survive_a_restart(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api.conftest import report_cache

    domain = "newyork.filtercache"
    site_id = sites[domain][0]
    cache = filter_cache.for_cache(report_cache(api))
    monkeypatch.setattr(filter_cache, "MAX_JOINTS", 2)
    asked = [["country", "device"], ["device", "os"], ["country", "source"], ["device", "os"]]
    for a, b in asked:
        dashboard(api, site_id, [[a, "is_not", "zz"], [b, "is_not", "zz"]])
    assert cache.wanted(domain) == ["device&os", "country&source"]
    fresh = filter_cache.FilterCache(report_cache(api))  # another process, or after a restart
    # the store's markers: the joints whose rows were added last (country&device was added first)
    assert fresh.wanted(domain) == ["country&source", "device&os"]
    with pytest.raises(ValueError):
        filter_cache._filter_join(base=False, joints=("country&nowhere",))
    with pytest.raises(ValueError):
        filter_cache._filter_join(base=False, joints=("device&country",))  # not in sorted order


def test_a_new_joint_takes_an_older_ones_place_at_most_every_ask_seconds(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client asking for ever new pairs would keep a background build of their days running: once a site has
    MAX_JOINTS, a new one replaces the least recently asked at most every ASK_SECONDS (a pinned clock here);
    asked sooner, it reads the raw events, the same numbers, and the joints built stay as they were."""
    from tests.api.conftest import report_cache

    domain = "kolkata.filtercache"
    site_id = sites[domain][0]
    cache = filter_cache.for_cache(report_cache(api))
    monkeypatch.setattr(filter_cache, "MAX_JOINTS", 2)
    monkeypatch.setattr(filter_cache, "ASK_SECONDS", 600.0)
    now = [1_000_000.0]
    monkeypatch.setattr(report_cache(api), "clock", lambda: now[0])
    monkeypatch.setitem(cache._joints, domain, [])
    monkeypatch.delitem(cache._replaced, domain, raising=False)  # (earlier tests' replacements, real clock)

    def ask(a: str, b: str) -> bool:
        filters = [[a, "is_not", "zz"], [b, "is_not", "zz"]]
        queries.clear()
        got = dashboard(api, site_id, filters)
        assert got == dashboard(api, site_id, [*filters, EVERYTHING]), (a, b)
        return read_cache(queries)

    assert ask("country", "device") and ask("device", "os")  # room for both
    assert ask("country", "source")  # the first replacement
    assert cache.wanted(domain) == ["country&source", "device&os"]
    now[0] += 599.0
    assert not ask("browser", "os")  # too soon: raw, nothing replaced
    assert ask("device", "os")  # a joint built is read whenever asked
    assert cache.wanted(domain) == ["device&os", "country&source"]
    now[0] += 1.0
    assert ask("browser", "os")
    assert cache.wanted(domain) == ["browser&os", "device&os"]
