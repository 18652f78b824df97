"""The engagement report with filters on the dimensions the engagement cache by dimension carries
(`query/engagement_dims_cache.py`) is answered from that cache, with exactly the raw events' answer and the
Python computation of `insights_dataset.engagement` over the events the filters keep; any other filter reads
the raw events, and a report without filters reads the plain engagement cache.

Each site holds `insights_dataset`'s generated events plus sessions across every local midnight of the range
(`test_engagement_cache.midnight_sessions`), in three zones (a DST change inside the range, a :30 offset).
Every session gets an OS, a channel, a browser, a device, a source, UTM fields and a value of each other
dimension of store migration 32 (hostname, referrer, medium, region, city, versions, screen, language); every
eleventh event has a country and an OS of its own, every third event of every fourth session values of the others
of its own, and every fifth pageview after a session's first carries no UTM fields (as a landing page's UTMs are not on the
next pages), so some sessions mix values (filters apply to events: such a session is cut by a filter); every
third session's later pages are internal navigation (two channels, sources, mediums and referrers), every second
of those comes back from a social network on its last page (three).
A client-retry copy of every seventh event is stored in a part of its own: never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pixel.server.api.query import engagement, engagement_cache, engagement_dims_cache
from pixel.server.api.query.content_cache import CARRIED
from pixel.server.api.query.filters import SqlParams, parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import UTM_DIMENSIONS
from tests.api import insights_dataset as data
from tests.api.conftest import Api, report_cache
from tests.api.test_content_cache_filters import (
    CHANNELS,
    EVERYTHING,
    FIELDS,
    OSES,
    OTHER_CHOICES,
    OTHER_FIELDS,
    OTHER_VALUES,
    UTM_CONTENTS,
    UTM_MEDIUMS,
    UTM_SOURCES,
    UTM_TERMS,
    VALUES,
    operators_of,
    passes,
)
from tests.api.test_engagement_cache import DAYS, RANGE, count, midnight_sessions, rows_of

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.engdims": "Europe/Berlin",
    "newyork.engdims": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.engdims": "Asia/Kolkata",
}
# The UTM fields (filter dimension = event column), carried by the engagement cache by dimension only.
UTM_VALUES = {
    "utm_source": ("newsletter", "LETTER", "^(google|)$"),
    "utm_medium": ("email", "CP", "^e"),
    "utm_campaign": ("spring", "aun", "^$"),
    "utm_term": ("", "shoe", "s$"),
    "utm_content": ("banner", "TEXT", "^(banner|text)$"),
}
# Every carried dimension (API name) -> the event field.
CARRIED_FIELDS = {**FIELDS, **{u: u for u in UTM_DIMENSIONS}, **OTHER_FIELDS}


def with_dimensions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per session an OS, a channel, a browser, a device, a source and the other dimensions' values
    (`OTHER_CHOICES`); every eleventh event a country and an OS of its own, every third event of every fourth
    session values of the other dimensions of its own."""
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
        for n, (field, choices) in enumerate(OTHER_CHOICES.items()):
            # per session; in every fourth session every third event a value of its own (it mixes values)
            e[field] = choices[(k + n + (1 if k % 4 == 1 and i % 3 == 0 else 0)) % len(choices)]
    return rows


def with_internal_navigation(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every third session's events on pages other than its landing page (its first pageview's) come from the
    site itself, as the enrichment stores a same-site referrer: channel `Internal`, medium `internal`, no source,
    the site's host as the referrer. Those sessions hold two values of these four dimensions only (unless others
    mix too), as on a real site. In every second of those sessions, the events on its last page (if not its
    landing page) come from a social network instead: three values."""
    landing: dict[str, str] = {}
    last: dict[str, str] = {}
    for e in sorted(rows, key=lambda e: (e["timestamp"], e["path"])):
        if e["event_name"] == "pageview":
            landing.setdefault(e["session_id"], e["path"])
            last[e["session_id"]] = e["path"]
    index = {s: i for i, s in enumerate(sorted({e["session_id"] for e in rows}))}
    for e in rows:
        session, k = e["session_id"], index[e["session_id"]]
        if k % 3 != 2 or e["path"] == landing.get(session):
            continue
        if k % 6 == 5 and e["path"] == last[session]:
            e.update(channel="Organic Social", source="Twitter", medium="social", ref_host="t.co")
        else:
            e.update(channel="Internal", source="", medium="internal", ref_host=e["site"])
    return rows


def with_utm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per session UTM fields; every fifth pageview after the session's first none."""
    sessions = sorted({e["session_id"] for e in rows})
    index = {s: i for i, s in enumerate(sessions)}
    seen: set[str] = set()
    for i, e in enumerate(rows):
        k = index[e["session_id"]]
        e["utm_source"] = UTM_SOURCES[k % len(UTM_SOURCES)]
        e["utm_medium"] = UTM_MEDIUMS[(k // 3) % len(UTM_MEDIUMS)]
        e["utm_term"] = UTM_TERMS[(k // 2) % len(UTM_TERMS)]
        e["utm_content"] = UTM_CONTENTS[(k // 5) % len(UTM_CONTENTS)]
        e.setdefault("utm_campaign", "")
        if e["event_name"] == "pageview" and e["session_id"] in seen and i % 5 == 0:
            for name in UTM_DIMENSIONS:
                e[name] = ""
        seen.add(e["session_id"])
    return rows


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for domain, tz in ZONES.items():
        rows = with_utm(
            with_internal_navigation(
                with_dimensions(data.generate(domain, seed=41) + midnight_sessions(domain, tz, seed=9))
            )
        )
        api.store.insert_rows("events", rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies, in a part of their own
        site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0})
        out[domain] = (site_id, tz, rows)
    yield out


def expected(rows: list[dict[str, Any]], domain: str, tz: str, filters: list[list[str]]) -> dict[str, Any]:
    def keep(e: dict[str, Any]) -> bool:
        return all(
            passes(op, value)(str(e.get(CARRIED_FIELDS.get(dim, dim), ""))) for dim, op, value in filters
        )

    return data.engagement(data.select(rows, domain, tz, pred=keep))


def read_events(sql: list[str]) -> bool:
    return any("FROM events" in s for s in sql)


def read_by_value(sql: list[str]) -> bool:
    """The report read the visits summed per value of one dimension, not the visits one by one."""
    return any(f"FROM {engagement_dims_cache.BY_VALUE} " in s for s in sql) and not any(
        "FROM page_engagement_dims WHERE" in s for s in sql
    )


def test_every_carried_dimension_and_operator_from_the_cache_equals_raw_and_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    assert set(VALUES) == set(FIELDS) == CARRIED
    assert (
        CARRIED | set(UTM_VALUES) | set(OTHER_VALUES)
        == set(CARRIED_FIELDS)
        == engagement_dims_cache.EngagementDimsCache.carried
    )
    for domain, (site_id, tz, rows) in sites.items():
        for dim, values in {**VALUES, **UTM_VALUES, **OTHER_VALUES}.items():
            for op, v in operators_of(values):
                want = expected(rows, domain, tz, [[dim, op, v]])
                queries.clear()
                cached = rows_of(api, site_id, filters=json.dumps([[dim, op, v]]), **RANGE)
                assert not read_events(queries), (domain, dim, op)  # the cache answered
                assert read_by_value(queries), (domain, dim, op)  # one dimension: its values' sums
                raw = rows_of(api, site_id, filters=json.dumps([[dim, op, v], *EVERYTHING]), **RANGE)
                assert read_events(queries), (domain, dim, op)
                assert cached == raw == want, (domain, dim, op, v)
        assert count(api, "page_engagement_dims_builds", domain) == DAYS, domain  # built once
        # the sessions that mix values (and those across midnight) were kept apart, per part
        mixed = count(api, "page_engagement_dims_edges", domain)
        assert mixed > count(api, "page_engagement_edges", domain), domain


INTERNAL_NAVIGATION = [
    [["channel", "is_not", "Internal"]],
    [["channel", "is", "Internal"]],
    [["medium", "is", "internal"]],
    [["source", "is", ""]],
    [["referrer", "contains", "ENGDIMS"]],  # the site's own host
    [["referrer", "not_matches", "engdims$"]],
]


@pytest.mark.parametrize("filters", INTERNAL_NAVIGATION, ids=json.dumps)
def test_a_filter_on_what_internal_navigation_changes_cuts_those_sessions_exactly(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    """Sessions whose later pages are internal navigation hold two channels, mediums, sources and referrers: a
    filter on one of those keeps only some of their pages, so their landing page or their later pages are cut
    off (entries or exits move). Answered from the sums by value and the parts of the sessions that mix the
    filter's dimension, equal to the raw events and the Python computation in every zone."""
    for domain, (site_id, tz, rows) in sites.items():
        want = expected(rows, domain, tz, filters)
        queries.clear()
        got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
        assert not read_events(queries) and read_by_value(queries), domain
        raw = rows_of(api, site_id, filters=json.dumps([*filters, *EVERYTHING]), **RANGE)
        assert got == raw == want and got, (domain, filters)
        every = expected(rows, domain, tz, [])
        assert any(
            (want[p]["entries"], want[p]["exits"]) != (every[p]["entries"], every[p]["exits"]) for p in want
        ), domain


def test_a_session_is_summed_by_value_for_each_dimension_it_holds_one_value_of(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    """The edges say on which dimensions their session holds two values or more (`mixed`, a bit per dimension
    of the cache) and more than two (`many`): a session navigating internally holds two channels and (often)
    one country, one with an event of another country the reverse, one coming back from a social network three
    channels, and a session across midnight every bit of both. A one-filter report reads the parts of the
    sessions with more than two values of its dimension only (the others are in its sums by value or by pair),
    and the sessions with two values of the channel are summed by pair."""
    dims = engagement_dims_cache.EngagementDimsCache.dims
    country, channel = dims.index("country"), dims.index("channel")
    for domain, (site_id, _tz, _rows) in sites.items():
        rows_of(api, site_id, filters=json.dumps([["country", "is", "DE"]]), **RANGE)  # built
        got = api.store.query(
            f"""SELECT countIf(bitTest(mixed, {country}) AND NOT bitTest(mixed, {channel})) AS country_only,
                countIf(bitTest(mixed, {channel}) AND NOT bitTest(mixed, {country})) AS channel_only,
                countIf(bitTest(mixed, {channel}) AND NOT bitTest(many, {channel})) AS two_channels,
                countIf(bitTest(many, {channel}) AND many != {engagement_cache.ALL_MIXED}) AS three_channels,
                countIf(mixed = {engagement_cache.ALL_MIXED}) AS across_days,
                countIf(many = {engagement_cache.ALL_MIXED}) AS many_across_days,
                countIf(mixed = 0) AS none, count() AS parts
            FROM {engagement_dims_cache.TABLES[1]} WHERE site = {{s:String}}""",
            {"s": domain},
        ).dicts()[0]
        assert all(got[k] > 0 for k in ("country_only", "channel_only", "two_channels", "three_channels")), (
            domain,
            got,
        )
        assert 0 < got["across_days"] == got["many_across_days"] < got["parts"], (domain, got)
        assert got["none"] == 0, (domain, got)  # an edge mixes something
        pairs = api.store.query(
            f"""SELECT value, other, whole, sum(visits) AS visits FROM {engagement_dims_cache.BY_PAIR}
            WHERE site = {{s:String}} AND dimension = 'channel' GROUP BY value, other, whole""",
            {"s": domain},
        ).dicts()
        assert {(p["value"], p["other"]) for p in pairs if p["whole"]} >= {("Direct", "Internal")}, domain
        assert all(p["value"] < p["other"] for p in pairs if p["whole"]), domain
        assert {"Internal", "Direct"} <= {p["value"] for p in pairs if not p["whole"]}, domain


def test_each_filter_keeps_some_page_visits_and_drops_others(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    """The data set makes each `is` filter above meaningful, and cuts some sessions (their entry changes)."""
    domain, (_, tz, rows) = next(iter(sites.items()))
    every = expected(rows, domain, tz, [])
    for dim, (value, _, _) in {**VALUES, **UTM_VALUES, **OTHER_VALUES}.items():
        kept = expected(rows, domain, tz, [[dim, "is", value]])
        assert 0 < sum(r["pageviews"] for r in kept.values()) < sum(r["pageviews"] for r in every.values())
    for dim, value in (("country", "US"), ("utm_source", ""), ("region", "DE-BE"), ("language", "fr")):
        cut = expected(rows, domain, tz, [[dim, "is_not", value]])
        assert any(cut[p]["entries"] != every[p]["entries"] for p in cut), dim


def test_several_carried_filters_sorted_and_paged_from_the_cache(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], queries: list[str]
) -> None:
    domain = "kolkata.engdims"
    site_id, tz, rows = sites[domain]
    filters = [
        ["country", "is_not", "IN"],
        ["os", "not_contains", "mac"],
        ["channel", "contains", "e"],
        ["utm_medium", "is_not", "cpc"],
    ]
    want = expected(rows, domain, tz, filters)
    queries.clear()
    assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == want and len(want) > 2
    assert not read_events(queries)
    assert not read_by_value(queries) and any("FROM page_engagement_dims WHERE" in q for q in queries)
    url = f"/api/sites/{site_id}/reports/engagement"
    for sort in ("visitors", "median_engaged_ms", "bounce_rate", "exit_rate", "scroll_75", "page"):
        for order in ("asc", "desc"):
            params = {**RANGE, "sort": sort, "order": order, "limit": 2, "page": 2}
            cached = api.client.get(url, params={**params, "filters": json.dumps(filters)}, headers=api.admin)
            raw = api.client.get(
                url, params={**params, "filters": json.dumps([*filters, *EVERYTHING])}, headers=api.admin
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


PAGE_FILTERS = [
    [["page", "is", "/docs"]],
    [["page", "is", "/checkout"], ["page", "not_contains", "pric"]],  # `is` beside another page filter
    [["page", "contains", "DOC"]],
    [["page", "not_matches", "^/(blog|checkout)"]],
    [["page", "is_not", "/"], ["page", "not_contains", "pric"]],
]


@pytest.mark.parametrize("filters", PAGE_FILTERS, ids=json.dumps)
def test_page_filters_read_the_plain_cache_and_its_session_paths(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    """A page's visit figures come from the plain engagement cache, its entries, bounces and exits from its
    ordered session paths cut by the filters, or with a filter `page is` from the cache's visit counts (no
    event read either way): every zone equals the Python computation over the kept events and the raw query's answer;
    the filters cut sessions, so entries differ from the unfiltered report's."""
    cut = False
    for domain, (site_id, tz, rows) in sites.items():

        def keep(e: dict[str, Any]) -> bool:
            return all(passes(op, value)(e["path"]) for _, op, value in filters)

        want = data.engagement(data.select(rows, domain, tz, pred=keep))
        rows_of(api, site_id, **RANGE)  # the plain cache built
        queries.clear()
        got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
        assert not read_events(queries), domain
        ordered = any("FROM page_sessions " in q for q in queries)
        # with `page is`, the cache's visit counts place the entries, bounces and exits; else the session paths
        assert ordered != any(op == "is" for _, op, _ in filters), domain
        assert any("page_engagement_edges" in q for q in queries), domain
        raw = rows_of(
            api, site_id, filters=json.dumps([*filters, ["country", "not_contains", "never"]]), **RANGE
        )
        assert got == raw == want and got, (domain, filters)
        every = expected(rows, domain, tz, [])
        cut = cut or any(want[p]["entries"] != every[p]["entries"] for p in want)
        assert all(want[p]["pageviews"] == every[p]["pageviews"] for p in want)
    assert cut, filters


PAGE_IS_WITH_CARRIED = [
    [["country", "is", "DE"], ["page", "is", "/docs"]],
    [["utm_source", "is_not", "newsletter"], ["page", "is", "/"]],
    [["device", "contains", "TAB"], ["page", "is", "/checkout"], ["page", "contains", "check"]],
    [["os", "is_not", "Windows"], ["channel", "matches", "^(Direct|Email)$"], ["page", "is", "/pricing"]],
]


@pytest.mark.parametrize("filters", PAGE_IS_WITH_CARRIED, ids=json.dumps)
def test_a_page_is_filter_beside_carried_ones_reads_the_cache_by_dimension(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    queries: list[str],
    filters: list[list[str]],
) -> None:
    """`page is X` keeps whole visits of X, so beside filters on the carried dimensions the cache by
    dimension answers: the visits the other filters keep, merged per session, are X's entries and exits,
    and those with one pageview its bounces. Equal to the Python computation and the raw events in every
    zone, no event read; the other filters cut sessions of X, so its figures differ from `page is X` alone."""
    field = {**CARRIED_FIELDS, "page": "path"}
    alone = [f for f in filters if f[0] == "page"]
    for domain, (site_id, tz, rows) in sites.items():

        def keep(e: dict[str, Any], flts: list[list[str]] = filters) -> bool:
            return all(passes(op, value)(str(e.get(field[dim], ""))) for dim, op, value in flts)

        want = data.engagement(data.select(rows, domain, tz, pred=keep))
        queries.clear()
        got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
        assert not read_events(queries) and any("page_engagement_dims" in q for q in queries), domain
        carried = [f for f in filters if f[0] != "page"]
        assert read_by_value(queries) == (len(carried) == 1), domain  # one dimension: its values' sums
        raw = rows_of(api, site_id, filters=json.dumps([*filters, *EVERYTHING]), **RANGE)
        assert got == raw == want and len(got) == 1, (domain, filters)
        page_only = data.engagement(data.select(rows, domain, tz, pred=lambda e: keep(e, alone)))
        assert got != page_only, (domain, filters)


def test_page_filters_leave_out_the_days_the_cache_reads_as_expired(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    """Days past the retention read as empty in the cache (build 0) while their events may still be stored
    (a site's retention applies to the events hourly): the session paths of those days are left out too, so
    the answer is that of the live days alone."""
    domain = "kolkata.engdims"
    site_id, tz, rows = sites[domain]
    filters = [["page", "contains", "DOC"]]
    rows_of(api, site_id, **RANGE)  # the plain cache built
    cache = report_cache(api)
    rng = resolve("custom", tz, date_from=data.FIRST_DAY.isoformat(), date_to=data.LAST_DAY.isoformat())
    scope = Scope(cache.runner, domain, rng, parse_filters(json.dumps(filters)), cache=cache)
    days = engagement_cache.for_cache(cache).days(Scope(cache.runner, domain, rng, cache=cache))
    assert days is not None
    live_from = data.FIRST_DAY + timedelta(days=4)
    days = replace(days, builds=tuple((d, b if d >= live_from else 0) for d, b in days.builds))
    params = SqlParams()
    sql = engagement.page_filtered_sql(days, params, scope.filters, "ORDER BY page")
    got = {r["page"]: engagement._row(r) for r in scope.run_cached(sql, params)}
    want = data.engagement(
        data.select(rows, domain, tz, first=live_from, pred=lambda e: "doc" in e["path"].lower())
    )
    everything = data.engagement(data.select(rows, domain, tz, pred=lambda e: "doc" in e["path"].lower()))
    assert got == want and want != everything


@pytest.mark.parametrize(
    "filters",
    [
        [["country", "is", "DE"], ["page", "contains", "doc"]],  # one filter not carried among carried ones
        [["utm_campaign", "is", "spring"], ["title", "is", ""]],  # a UTM field beside one not carried
        [["region", "is", "DE-BE"], ["prop:plan", "is_not", "pro"]],  # migration 32's beside a property
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
    field = {**CARRIED_FIELDS, "page": "path", "title": "title"}

    def keep(e: dict[str, Any]) -> bool:
        return all(
            passes(op, value)(
                e["props"].get("plan", "") if dim == "prop:plan" else str(e.get(field[dim], ""))
            )
            for dim, op, value in filters
        )

    queries.clear()
    got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
    assert got == data.engagement(data.select(rows, domain, tz, pred=keep)) and got
    assert read_events(queries) and not any("page_engagement" in s for s in queries)
