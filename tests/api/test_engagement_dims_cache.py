"""The engagement report with filters on the dimensions the engagement cache by dimension carries
(`query/engagement_dims_cache.py`) is answered from that cache, with exactly the raw events' answer and the
Python computation of `insights_dataset.engagement` over the events the filters keep; any other filter reads
the raw events, and a report without filters reads the plain engagement cache.

Each site holds `insights_dataset`'s generated events plus sessions across every local midnight of the range
(`test_engagement_cache.midnight_sessions`), in three zones (a DST change inside the range, a :30 offset).
Every session gets an OS, a channel, a browser, a device and a source; every eleventh event has a country and
an OS of its own, so some sessions mix values (filters apply to events: such a session is cut by a filter).
A client-retry copy of every seventh event is stored in a part of its own: never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pixel.server.api.query import engagement_dims_cache
from pixel.server.api.query.content_cache import CARRIED
from tests.api import insights_dataset as data
from tests.api.conftest import Api
from tests.api.test_content_cache_filters import FIELDS, operators_of, passes
from tests.api.test_engagement_cache import DAYS, RANGE, count, midnight_sessions, rows_of

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.engdims": "Europe/Berlin",
    "newyork.engdims": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.engdims": "Asia/Kolkata",
}
OSES = ["Windows", "macOS", "Android", ""]
CHANNELS = ["Organic Search", "Direct", "Email"]
EVERYTHING = ["page", "not_contains", "never-in-any-path"]  # not carried: forces the raw events, same rows
VALUES = {
    "country": ("DE", "d", "^(US|IN)$"),
    "device": ("mobile", "TAB", "^desk"),
    "browser": ("Chrome", "fire", "ari$"),
    "os": ("", "WIN", "^(mac|And)"),
    "source": ("Google", "news", "^$"),
    "channel": ("Direct", "search", "^(Direct|Email)$"),
}


def with_dimensions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per session an OS, a channel, a browser, a device and a source; every eleventh event a country and an
    OS of its own."""
    sessions = sorted({e["session_id"] for e in rows})
    index = {s: i for i, s in enumerate(sessions)}
    for i, e in enumerate(rows):
        k = index[e["session_id"]]
        e["os"] = OSES[k % len(OSES)]
        e["channel"] = CHANNELS[(k // 2) % len(CHANNELS)]
        e.setdefault("source", data.SOURCES[k % len(data.SOURCES)])
        e.setdefault("browser", data.BROWSERS[(k // 3) % len(data.BROWSERS)])
        e.setdefault("device_type", data.DEVICES[(k // 4) % len(data.DEVICES)])
        if i % 11 == 0:
            e["country"] = data.COUNTRIES[(i // 11) % len(data.COUNTRIES)]
            e["os"] = OSES[(k + 1) % len(OSES)]
    return rows


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for domain, tz in ZONES.items():
        rows = with_dimensions(data.generate(domain, seed=41) + midnight_sessions(domain, tz, seed=9))
        api.store.insert_rows("events", rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies, in a part of their own
        site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0})
        out[domain] = (site_id, tz, rows)
    yield out


def expected(rows: list[dict[str, Any]], domain: str, tz: str, filters: list[list[str]]) -> dict[str, Any]:
    def keep(e: dict[str, Any]) -> bool:
        return all(passes(op, value)(str(e.get(FIELDS[dim], ""))) for dim, op, value in filters)

    return data.engagement(data.select(rows, domain, tz, pred=keep))


def read_events(sql: list[str]) -> bool:
    return any("FROM events" in s for s in sql)


def test_every_carried_dimension_and_operator_from_the_cache_equals_raw_and_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    assert set(VALUES) == set(FIELDS) == CARRIED == engagement_dims_cache.EngagementDimsCache.carried
    for domain, (site_id, tz, rows) in sites.items():
        for dim, values in VALUES.items():
            for op, v in operators_of(values):
                want = expected(rows, domain, tz, [[dim, op, v]])
                queries.clear()
                cached = rows_of(api, site_id, filters=json.dumps([[dim, op, v]]), **RANGE)
                assert not read_events(queries), (domain, dim, op)  # the cache answered
                raw = rows_of(api, site_id, filters=json.dumps([[dim, op, v], EVERYTHING]), **RANGE)
                assert read_events(queries), (domain, dim, op)
                assert cached == raw == want, (domain, dim, op, v)
        assert count(api, "page_engagement_dims_builds", domain) == DAYS, domain  # built once
        # the sessions that mix values (and those across midnight) were kept apart, per part
        mixed = count(api, "page_engagement_dims_edges", domain)
        assert mixed > count(api, "page_engagement_edges", domain), domain


def test_each_filter_keeps_some_page_visits_and_drops_others(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    """The data set makes each `is` filter above meaningful, and cuts some sessions (their entry changes)."""
    domain, (_, tz, rows) = next(iter(sites.items()))
    every = expected(rows, domain, tz, [])
    for dim, (value, _, _) in VALUES.items():
        kept = expected(rows, domain, tz, [[dim, "is", value]])
        assert 0 < sum(r["pageviews"] for r in kept.values()) < sum(r["pageviews"] for r in every.values())
    cut = expected(rows, domain, tz, [["country", "is_not", "US"]])
    assert any(cut[p]["entries"] != every[p]["entries"] for p in cut)


def test_several_carried_filters_sorted_and_paged_from_the_cache(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    domain = "kolkata.engdims"
    site_id, tz, rows = sites[domain]
    filters = [["country", "is_not", "IN"], ["os", "not_contains", "mac"], ["channel", "contains", "e"]]
    want = expected(rows, domain, tz, filters)
    queries.clear()
    assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == want and len(want) > 2
    assert not read_events(queries)
    url = f"/api/sites/{site_id}/reports/engagement"
    for sort in ("visitors", "median_engaged_ms", "bounce_rate", "exit_rate", "scroll_75", "page"):
        for order in ("asc", "desc"):
            params = {**RANGE, "sort": sort, "order": order, "limit": 2, "page": 2}
            cached = api.client.get(url, params={**params, "filters": json.dumps(filters)}, headers=api.admin)
            raw = api.client.get(
                url, params={**params, "filters": json.dumps([*filters, EVERYTHING])}, headers=api.admin
            )
            assert cached.json()["rows"] == raw.json()["rows"] and len(cached.json()["rows"]) == 2, (
                sort,
                order,
            )
            assert cached.json()["total_rows"] == raw.json()["total_rows"] == len(want)


def test_without_filters_the_plain_cache_answers(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    domain = "newyork.engdims"
    site_id, tz, rows = sites[domain]
    queries.clear()
    assert rows_of(api, site_id, **RANGE) == expected(rows, domain, tz, [])
    assert not read_events(queries) and not any("page_engagement_dims" in s for s in queries)


@pytest.mark.parametrize(
    "filters",
    [
        [["page", "is", "/docs"]],
        [["country", "is", "DE"], ["page", "contains", "doc"]],  # one filter not carried among carried ones
        [["utm_campaign", "is", "spring"]],
    ],
)
def test_a_filter_the_cache_does_not_carry_reads_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    domain = "berlin.engdims"
    site_id, tz, rows = sites[domain]
    field = {**FIELDS, "page": "path", "utm_campaign": "utm_campaign"}

    def keep(e: dict[str, Any]) -> bool:
        return all(passes(op, value)(str(e.get(field[dim], ""))) for dim, op, value in filters)

    queries.clear()
    got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
    assert got == data.engagement(data.select(rows, domain, tz, pred=keep)) and got
    assert read_events(queries) and not any("page_engagement" in s for s in queries)
