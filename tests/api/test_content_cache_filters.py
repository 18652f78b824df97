"""The outbound-link and download reports with filters: a filter on a dimension the link cache carries
(`content_cache.CARRIED`) is answered from the cache, with exactly the raw events' answer and the Python
count; any other filter (or one such filter among carried ones) reads the raw events.

Each site holds `insights_dataset`'s generated events plus clicks one second before and at each local
midnight, in three zones (a DST change inside the range, a :30 offset). Every event gets an OS and a channel,
and a share of the events a country other than their session's (filters apply to events, not sessions).
A client-retry copy of every seventh event is stored in a part of its own: never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pixel.server.api.query import content_cache
from pixel.server.store.schema import UTM_DIMENSIONS
from tests.api import insights_dataset as data
from tests.api.conftest import RAW_ONLY, Api, add_site
from tests.api.test_content_cache import DAYS, RANGE, REPORTS, count, got, midnight_clicks

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.linkfilters": "Europe/Berlin",
    "newyork.linkfilters": "America/New_York",
    "kolkata.linkfilters": "Asia/Kolkata",
}
OSES = ["Windows", "macOS", "Android", ""]
CHANNELS = ["Organic Search", "Direct", "Email"]
# Filters every event passes that no cache answers: the raw events, same rows.
EVERYTHING = RAW_ONLY
# The API's dimension -> the event field it filters.
FIELDS = {
    "country": "country",
    "device": "device_type",
    "browser": "browser",
    "os": "os",
    "source": "source",
    "channel": "channel",
}
# dimension -> a value for `is` / `is_not`, a fragment for `contains` / `not_contains` (case-insensitive),
# a pattern for `matches` / `not_matches`.
VALUES = {
    "country": ("DE", "d", "^(US|IN)$"),
    "device": ("mobile", "TAB", "^desk"),
    "browser": ("Chrome", "fire", "ari$"),
    "os": ("", "WIN", "^(mac|And)"),
    "source": ("Google", "news", "^$"),
    "channel": ("Direct", "search", "^(Direct|Email)$"),
}


# The other dimensions of store migration 32 (carried by the engagement cache by dimension and keyed by value in
# the link cache) -> the event field; the values events get (`OTHER_CHOICES`) and those filters use, as above.
OTHER_FIELDS = {
    "hostname": "host",
    "referrer": "ref_host",
    "medium": "medium",
    "region": "region",
    "city": "city",
    "browser_version": "browser_version",
    "os_version": "os_version",
    "screen": "screen",
    "language": "language",
}
OTHER_CHOICES = {
    "host": ["www.example", "shop.example", "example"],
    "ref_host": ["google.com", "", "news.ycombinator.com"],
    "medium": ["organic", "referral", ""],
    "region": ["DE-BE", "US-NY", ""],
    "city": ["Berlin", "New York", "Hamburg"],
    "browser_version": ["120.0", "17.1", ""],
    "os_version": ["14", "10", "11.2"],
    "screen": ["1920x1080", "390x844", ""],
    "language": ["de-DE", "en-US", "fr"],
}
OTHER_VALUES = {
    "hostname": ("www.example", "SHOP", "^(www|shop)\\."),
    "referrer": ("google.com", "NEWS", "^$"),
    "medium": ("organic", "REF", "^(organic|)$"),
    "region": ("DE-BE", "us-", "^DE"),
    "city": ("Berlin", "YORK", "burg$"),
    "browser_version": ("120.0", "17.", "^1"),
    "os_version": ("14", ".2", "^1[01]"),
    "screen": ("390x844", "X10", "^1920"),
    "language": ("en-US", "DE", "^(de|fr)"),
}
# The dimensions `content_links_by_value` keys (one filter alone) -> the event field, and their values as above.
BY_VALUE_FIELDS = {"page": "path", **{u: u for u in UTM_DIMENSIONS}, **OTHER_FIELDS}
BY_VALUE_VALUES = {
    "page": ("/docs", "DOC", "^/(blog|checkout)"),
    "utm_source": ("newsletter", "GOO", "^$"),
    "utm_medium": ("email", "CP", "^e"),
    "utm_campaign": ("spring", "LAUN", "^$"),
    "utm_term": ("", "HAT", "^s"),
    "utm_content": ("banner", "TEXT", "^b"),
    **OTHER_VALUES,
}
# (test_engagement_dims_cache imports these, VALUES, OSES and CHANNELS)
UTM_SOURCES = ["newsletter", "google", ""]
UTM_MEDIUMS = ["email", "cpc", ""]
UTM_TERMS = ["shoes", "", "hats"]
UTM_CONTENTS = ["banner", "text-link"]


def operators_of(values: tuple[str, str, str]) -> list[tuple[str, str]]:
    """Every operator with its value from a `VALUES` entry (value, fragment, pattern)."""
    value, fragment, pattern = values
    return [
        ("is", value),
        ("is_not", value),
        ("contains", fragment),
        ("not_contains", fragment),
        ("matches", pattern),
        ("not_matches", pattern),
    ]


def passes(operator: str, value: str) -> Callable[[str], bool]:
    """The filter's meaning on one event's value, written from `filters.filter_sql`."""
    import re

    return {
        "is": lambda v: v == value,
        "is_not": lambda v: v != value,
        "contains": lambda v: value.lower() in v.lower(),
        "not_contains": lambda v: value.lower() not in v.lower(),
        "matches": lambda v: re.search(value, v) is not None,
        "not_matches": lambda v: re.search(value, v) is None,
    }[operator]


def with_dimensions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event an OS, a channel and a source, UTM fields and the other dimensions' values (`OTHER_CHOICES`);
    every fifth a country of its own (event-level)."""
    for i, e in enumerate(rows):
        e["os"] = OSES[i % len(OSES)]
        e["channel"] = CHANNELS[(i // 2) % len(CHANNELS)]
        e.setdefault("source", data.SOURCES[i % len(data.SOURCES)])
        e.setdefault("browser", data.BROWSERS[i % len(data.BROWSERS)])
        e.setdefault("device_type", data.DEVICES[i % len(data.DEVICES)])
        if i % 5 == 0:
            e["country"] = data.COUNTRIES[(i // 5) % len(data.COUNTRIES)]
        e["utm_source"] = UTM_SOURCES[i % len(UTM_SOURCES)]
        e["utm_medium"] = UTM_MEDIUMS[(i // 3) % len(UTM_MEDIUMS)]
        e["utm_term"] = UTM_TERMS[(i // 2) % len(UTM_TERMS)]
        e["utm_content"] = UTM_CONTENTS[i % len(UTM_CONTENTS)]
        for n, (field, choices) in enumerate(OTHER_CHOICES.items()):
            e[field] = choices[(i + n) % len(choices)]
    return rows


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    out = {}
    for domain, tz in ZONES.items():
        rows = with_dimensions(data.generate(domain, seed=31) + midnight_clicks(domain, tz))
        site_id = add_site(api, domain, tz, rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies, in a part of their own
        out[domain] = (site_id, tz, rows)
    yield out


def expected(
    rows: list[dict[str, Any]], domain: str, tz: str, report: str, filters: list[list[str]]
) -> dict[str, tuple[int, int]]:
    def keep(e: dict[str, Any]) -> bool:
        return all(
            passes(op, value)(str(e.get(FIELDS[dim], ""))) for dim, op, value in filters if dim in FIELDS
        )

    chosen = data.select(rows, domain, tz, data.FIRST_DAY, data.LAST_DAY, keep)
    return data.counted(chosen, REPORTS[report][0], lambda e: e["props"]["url"])


def read_events(sql: list[str]) -> bool:
    return any("FROM events" in s for s in sql)


def test_every_carried_dimension_and_operator_from_the_cache_equals_raw_and_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    assert set(FIELDS) == content_cache.CARRIED
    for domain, (site_id, tz, rows) in sites.items():
        for report in REPORTS:
            got(api, site_id, report, **RANGE)  # the first build
        assert count(api, "content_links_builds", domain) == DAYS
        for dim, values in VALUES.items():
            for op, v in operators_of(values):
                for report in REPORTS:
                    want = expected(rows, domain, tz, report, [[dim, op, v]])
                    queries.clear()
                    cached = got(api, site_id, report, filters=json.dumps([[dim, op, v]]), **RANGE)
                    assert not read_events(queries), (domain, report, dim, op)  # the cache answered
                    raw = got(api, site_id, report, filters=json.dumps([[dim, op, v], *EVERYTHING]), **RANGE)
                    assert read_events(queries), (domain, report, dim, op)
                    assert cached == raw == want, (domain, report, dim, op, v)
        assert count(api, "content_links_builds", domain) == DAYS, domain  # read, not built again


def test_one_filter_on_a_dimension_keyed_by_value_from_the_sums_by_value_equals_raw_and_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    """One filter on the page, a UTM field or another dimension of migration 32 (any operator) reads the
    clicks summed per value of its dimension: equal to the raw events and to the Python count of the clicks it keeps, in every zone, and
    each `is` filter keeps some clicks and drops others."""
    assert set(BY_VALUE_FIELDS) == set(content_cache.BY_VALUE_FILTERS) == set(BY_VALUE_VALUES)
    for domain, (site_id, tz, rows) in sites.items():
        for report in REPORTS:
            got(api, site_id, report, **RANGE)  # the first build
        for dim, values in BY_VALUE_VALUES.items():
            field = BY_VALUE_FIELDS[dim]
            for op, v in operators_of(values):
                for report in REPORTS:
                    chosen = data.select(
                        rows,
                        domain,
                        tz,
                        data.FIRST_DAY,
                        data.LAST_DAY,
                        lambda e, op=op, v=v, field=field: passes(op, v)(str(e.get(field, ""))),
                    )
                    want = data.counted(chosen, REPORTS[report][0], lambda e: e["props"]["url"])
                    if op == "is":
                        assert (
                            0
                            < sum(c for c, _ in want.values())
                            < sum(c for c, _ in expected(rows, domain, tz, report, []).values())
                        ), (domain, report, dim)
                    queries.clear()
                    cached = got(api, site_id, report, filters=json.dumps([[dim, op, v]]), **RANGE)
                    assert not read_events(queries), (domain, report, dim, op)  # the cache answered
                    assert any(f"FROM {content_cache.BY_VALUE}" in q for q in queries), (domain, report, dim)
                    raw = got(api, site_id, report, filters=json.dumps([[dim, op, v], *EVERYTHING]), **RANGE)
                    assert read_events(queries), (domain, report, dim, op)
                    assert cached == raw == want, (domain, report, dim, op, v)
        assert count(api, "content_links_builds", domain) == DAYS, domain  # read, not built again


def test_each_filter_keeps_some_clicks_and_drops_others(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    """The data set makes each `is` filter above meaningful for both reports."""
    domain, (_, tz, rows) = next(iter(sites.items()))
    for report in REPORTS:
        every = sum(c for c, _ in expected(rows, domain, tz, report, []).values())
        for dim, (value, _, _) in VALUES.items():
            kept = sum(c for c, _ in expected(rows, domain, tz, report, [[dim, "is", value]]).values())
            assert 0 < kept < every, (report, dim)


def test_several_carried_filters_and_sorting_from_the_cache(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    site_id, tz, rows = sites["newyork.linkfilters"]
    filters = [["country", "is_not", "IN"], ["device", "is", "desktop"], ["channel", "contains", "e"]]
    for report, (_, link, clicks) in REPORTS.items():
        want = expected(rows, "newyork.linkfilters", tz, report, filters)
        queries.clear()
        assert got(api, site_id, report, filters=json.dumps(filters), **RANGE) == want and want
        assert not read_events(queries)
        for sort in (clicks, "visitors", link):
            for order in ("asc", "desc"):
                params = {**RANGE, "sort": sort, "order": order, "limit": 1, "page": 2}
                url = f"/api/sites/{site_id}/reports/{report}"
                cached = api.client.get(
                    url, params={**params, "filters": json.dumps(filters)}, headers=api.admin
                )
                raw = api.client.get(
                    url, params={**params, "filters": json.dumps([*filters, *EVERYTHING])}, headers=api.admin
                )
                assert cached.json()["rows"] == raw.json()["rows"], (report, sort, order)
                assert cached.json()["total_rows"] == raw.json()["total_rows"] == len(want)


@pytest.mark.parametrize(
    "filters",
    [
        [["utm_campaign", "is", "spring"], ["page", "is", "/docs"]],  # two keyed by value: not carried
        [["country", "is", "DE"], ["page", "contains", "doc"]],  # one keyed by value beside a carried one
        [["utm_source", "is_not", "google"], ["utm_source", "contains", "e"]],
        [["prop:url", "contains", "github"], ["utm_source", "is_not", "google"]],  # a property beside another
        [["region", "is", "DE-BE"], ["city", "is_not", "Berlin"]],  # two keyed by value (migration 32)
        [["device", "is", "mobile"], ["language", "contains", "de"]],
        [["prop:url", "contains", "/"], ["country", "is", "DE"]],  # a property beside a carried dimension
    ],
)
def test_a_filter_the_cache_does_not_carry_reads_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    domain = "kolkata.linkfilters"
    site_id, tz, rows = sites[domain]

    def keep(e: dict[str, Any]) -> bool:
        for dim, op, value in filters:
            field = BY_VALUE_FIELDS.get(dim, FIELDS.get(dim, dim))
            got_value = e["props"].get("url", "") if dim == "prop:url" else str(e.get(field or "", ""))
            if not passes(op, value)(got_value):
                return False
        return True

    for report in REPORTS:
        chosen = data.select(rows, domain, tz, data.FIRST_DAY, data.LAST_DAY, keep)
        want = data.counted(chosen, REPORTS[report][0], lambda e: e["props"]["url"])
        queries.clear()
        assert got(api, site_id, report, filters=json.dumps(filters), **RANGE) == want, (report, filters)
        assert read_events(queries) and not any("content_links" in s for s in queries)
