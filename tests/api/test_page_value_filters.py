"""The engagement, outbound-link and download reports filtered on the event name, the title or a property read
the per-day caches (`query/page_value_filters.py`) and give exactly the Python computation of `insights_dataset`
over the events the filters keep; where the caches cannot tell (a path whose titles or property values a filter
splits, a path with more titles than the cache keeps, such a filter beside a filter on another dimension) the
raw events answer, with the same figures.

Data: `insights_dataset`'s events plus sessions across every local midnight, client-retry copies of every
seventh event, in three zones (whole-hour DST inside the range, a :30 offset); each event carries its page's
title, but `/pricing`'s alternate between two titles; every event on `/pricing` has the property `tier` (paid),
the pageviews on `/docs` the property `section` (docs; their engagement and scroll events none), the pageviews
on `/blog/a` a `variant` (a or b, alternating), every event on `/` and the pageviews on `/checkout` a `mark`
(x); the links' `url` and `ext` as the dataset gives them, `plan` on no event. A fourth site gives `/checkout` one
title per event and each pageview on `/docs` property keys of its own (more titles and keys than the cache
keeps). Which path answered is seen by `raw_events.run` (the raw path's only runner): made to
fail where the cache must answer, counted where the raw events must.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from pixel.server.api.query import engagement_cache, page_value_filters, raw_events
from pixel.server.api.query.filters import SqlParams, parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import KEYS_UNKNOWN, VALUES_KEPT
from tests.api import insights_dataset as data
from tests.api.conftest import RAW_ONLY, Api, add_site, report_cache
from tests.api.test_content_cache_filters import passes
from tests.api.test_engagement_cache import RANGE, event, midnight_sessions, rows_of
from tests.api.test_engagement_raw import links

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.pagevalues": "Europe/Berlin",
    "newyork.pagevalues": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.pagevalues": "Asia/Kolkata",
}
MANY = "many.pagevalues"  # `/checkout` with a title per event, `/docs`' pageviews property keys of their own

# Filters the caches answer: (filters, what they keep is not everything and not nothing)
CACHED = [
    [["title", "contains", "page /d"]],  # one path
    [["title", "is", "Page /"]],
    [["title", "contains", "pricing"]],  # both of /pricing's titles pass
    [["title", "not_matches", "^Page /(blog|docs)"]],  # both pass, and every title of two other paths
    [["title", "is_not", "Page /checkout"], ["title", "not_contains", "blog"]],  # two title filters
    [["title", "contains", "page"], ["page", "contains", "o"]],  # beside a page filter (set of pages)
    [["title", "is", "Page /docs"], ["page", "is", "/docs"]],  # beside `page is`
    [["title", "is", "Page /docs"], ["page", "is", "/"]],  # nothing left
    [["title", "contains", "no such title"]],  # no path
    [["event", "is", "pageview"]],  # engaged time and scroll gone
    [["event", "is_not", "engagement"]],
    [["event", "matches", "^(page|eng)"]],  # scroll gone
    [["event", "not_contains", "scroll"], ["event", "is_not", "signup"]],
    [["event", "is", "engagement"]],  # no pageview: empty
    [["event", "is", "signup"]],  # no page event at all
    [["event", "contains", "e"]],  # every page event but scroll ("pageview", "engagement")
    [["event", "is", "pageview"], ["country", "is", "DE"]],  # with the cache by dimension
    [["event", "is_not", "scroll"], ["page", "contains", "doc"]],
    [["event", "is", "pageview"], ["title", "contains", "page"], ["page", "is_not", "/"]],
    [["prop:tier", "is", "paid"]],  # every event on /pricing has it: one path
    [["prop:tier", "is_not", "paid"], ["title", "contains", "page"]],  # two dimensions with values per path
    [["prop:plan", "is_not", "pro"]],  # on no page event: '' everywhere, every path kept
    [["prop:plan", "is", "pro"]],  # ... no path
    [["prop:tier", "matches", "^p"], ["event", "is", "pageview"]],
    [["prop:section", "is", "docs"]],  # /docs' pageviews: its engagement and scroll events (none) dropped
    [["prop:section", "is", "docs"], ["title", "contains", "docs"], ["page", "contains", "d"]],
    [["prop:mark", "is_not", "x"]],  # the other paths, their engagement and scroll events kept
]
# Filters that keep every event the report reads
EVERYTHING = [[["prop:plan", "is_not", "pro"]]]
# Filters the raw events answer
RAW = [
    [["title", "is", "Pricing"]],  # /pricing's two titles split
    [["title", "contains", "page"], ["country", "is", "DE"]],  # beside a dimension of the cache by dimension
    [["event", "is", "pageview"], ["title", "is_not", "Pricing plans"]],
    [["prop:variant", "is", "a"]],  # /blog/a's pageviews split
    [["prop:mark", "is", "x"]],  # engagement kept on / (it has the mark), dropped on /checkout
    [["prop:tier", "is", "paid"], ["country", "is", "DE"]],  # beside a dimension of the cache by dimension
]


def titled(rows: list[dict[str, Any]], *, many: bool = False) -> list[dict[str, Any]]:
    """Each event its page's title, `/pricing`'s alternating between two; `/checkout`'s one of
    its own with `many`, and then each pageview on `/docs` keys of its own; the properties (see the module's
    doc)."""
    for i, e in enumerate(rows):
        e["title"] = f"Page {e['path']}"
        if e["path"] == "/pricing":
            e["title"] = ("Pricing", "Pricing plans")[i % 2]
            e["props"] = {**e.get("props", {}), "tier": "paid"}
        pageview = e["event_name"] == "pageview"
        if e["path"] == "/docs" and pageview:
            e["props"] = {**e.get("props", {}), "section": "docs"}
        if e["path"] == "/blog/a" and pageview:
            e["props"] = {**e.get("props", {}), "variant": ("a", "b")[i % 2]}
        if e["path"] == "/" or (e["path"] == "/checkout" and pageview):
            e["props"] = {**e.get("props", {}), "mark": "x"}
        if many and e["path"] == "/checkout":
            e["title"] = f"Checkout {i}"
        if many and e["path"] == "/docs" and pageview:
            e["props"] = {**e.get("props", {}), **{f"k{i}-{j}": "x" for j in range(12)}}
    return rows


def value(e: dict[str, Any], dimension: str) -> str:
    """An event's value of a filter's dimension, as the store holds it."""
    if dimension.startswith("prop:"):
        return str(e.get("props", {}).get(dimension[len("prop:") :], ""))
    field = {"page": "path", "event": "event_name", "device": "device_type"}.get(dimension, dimension)
    return str(e.get(field, ""))


def keeps(filters: list[list[str]]) -> Callable[[dict[str, Any]], bool]:
    return lambda e: all(passes(op, v)(value(e, dim)) for dim, op, v in filters)


@pytest.fixture(scope="module")
def sites(api: Api) -> dict[str, tuple[int, str, list[dict[str, Any]]]]:
    """domain -> (site id, zone, its events), each site's cache built (the report without filters)."""
    out = {}
    for domain, tz in {**ZONES, MANY: "Europe/Berlin"}.items():
        rows = titled(
            data.generate(domain, seed=29) + midnight_sessions(domain, tz, seed=31),
            many=domain == MANY,
        )
        site_id = add_site(api, domain, tz, rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies (same event ids): counted once
        out[domain] = (site_id, tz, rows)
        assert rows_of(api, site_id, **RANGE) == data.engagement(data.select(rows, domain, tz))
    return out


@pytest.fixture
def raw_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], list[int]]]:
    """`allow(False)`: reading the raw events fails the test; `allow(True)`: counted (the list returned)."""
    original = raw_events.run
    state = {"allowed": False}
    calls: list[int] = []

    def run(*args: Any, **kwargs: Any) -> Any:
        assert state["allowed"], "the raw events were read where the caches answer"
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(raw_events, "run", run)

    def allow(allowed: bool) -> list[int]:
        state["allowed"] = allowed
        calls.clear()
        return calls

    yield allow


def expected(rows: list[dict[str, Any]], domain: str, tz: str, filters: list[list[str]]) -> dict[str, Any]:
    return data.engagement(data.select(rows, domain, tz, pred=keeps(filters)))


@pytest.mark.parametrize("filters", CACHED, ids=json.dumps)
def test_filters_on_the_event_title_or_a_property_read_the_caches_and_equal_python(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
    filters: list[list[str]],
) -> None:
    raw_reads(False)
    for domain in ZONES:
        site_id, tz, rows = sites[domain]
        want = expected(rows, domain, tz, filters)
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == want, (domain, filters)


def test_the_cases_keep_something_and_drop_something(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    """Each filter of the tables above changes the answer (the empty ones: to nothing)."""
    domain = "berlin.pagevalues"
    _, tz, rows = sites[domain]
    everything = expected(rows, domain, tz, [])
    empty = [f for f in CACHED if not expected(rows, domain, tz, f)]
    assert [json.dumps(f) for f in empty] == [
        json.dumps(f)
        for f in (
            [["title", "is", "Page /docs"], ["page", "is", "/"]],
            [["title", "contains", "no such title"]],
            [["event", "is", "engagement"]],
            [["event", "is", "signup"]],
            [["prop:plan", "is", "pro"]],
        )
    ]
    for filters in CACHED + RAW:
        assert (expected(rows, domain, tz, filters) != everything) == (filters not in EVERYTHING), filters
    # dropping the engagement or scroll events leaves the pages and pageviews, and no engaged time or scroll
    pageviews = expected(rows, domain, tz, [["event", "is", "pageview"]])
    assert {p: r["pageviews"] for p, r in pageviews.items()} == {
        p: r["pageviews"] for p, r in everything.items()
    }
    assert all(r["engaged_visits"] == 0 and r["scroll"]["visits"] == 0 for r in pageviews.values())
    assert any(r["engaged_visits"] > 0 and r["scroll"]["visits"] > 0 for r in everything.values())


@pytest.mark.parametrize("filters", RAW, ids=json.dumps)
def test_values_the_cache_cannot_tell_read_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
    filters: list[list[str]],
) -> None:
    for domain in ZONES:
        site_id, tz, rows = sites[domain]
        calls = raw_reads(True)
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(
            rows, domain, tz, filters
        )
        assert calls, (domain, filters)


def test_a_path_with_more_titles_than_kept_reads_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
) -> None:
    site_id, tz, rows = sites[MANY]
    chosen = data.select(rows, MANY, tz)
    titles = {e["title"] for e in chosen if e["path"] == "/checkout" and e["event_name"] == "pageview"}
    assert len(titles) > VALUES_KEPT  # more titles than kept on the pageviews of one page
    for filters in ([["title", "contains", "page /d"]], [["title", "contains", "checkout"]]):
        calls = raw_reads(True)
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(
            rows, MANY, tz, filters
        )
        assert calls, filters
    # an event filter does not need the titles
    calls = raw_reads(True)
    filters = [["event", "is", "pageview"]]
    assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(rows, MANY, tz, filters)
    assert not calls


def test_a_title_arriving_late_is_seen_by_the_rebuilt_day(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
) -> None:
    """A new title of a path on a day already built rebuilds that day's titles: the filter `title is` its old
    title now splits the path, and the raw events answer (with the late events); a filter both titles pass
    stays on the cache."""
    domain = "newyork.pagevalues"
    site_id, tz, rows = sites[domain]
    split = [["title", "is", "Page /docs"]]
    raw_reads(False)
    assert rows_of(api, site_id, filters=json.dumps(split), **RANGE) == expected(rows, domain, tz, split)
    noon = data.local_midnight(data.FIRST_DAY + timedelta(days=3), tz) + timedelta(hours=12)
    late = [
        event(domain, 95_001, noon, "late-t1", "pageview", "/docs", title="Docs, renamed"),
        event(
            domain,
            95_002,
            noon + timedelta(seconds=30),
            "late-t1",
            "engagement",
            "/docs",
            engaged_ms=4000,
            title="Docs, renamed",
        ),
    ]
    api.store.insert_rows("events", late)
    rows = rows + late
    calls = raw_reads(True)
    assert rows_of(api, site_id, filters=json.dumps(split), **RANGE) == expected(rows, domain, tz, split)
    assert calls
    both = [["title", "contains", "docs"]]
    raw_reads(False)
    got = rows_of(api, site_id, filters=json.dumps(both), **RANGE)
    assert got == expected(rows, domain, tz, both) and got["/docs"]["engaged_visits"] > 0


def test_more_property_keys_on_a_page_than_kept_read_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
) -> None:
    """A client sending new property keys on each pageview of `/docs`: the cache keeps one row standing for
    them (its rows per day, path and event name stay within a title and `VALUES_KEPT` keys), and a filter on
    any property, one of those keys or one no event has, reads the raw events."""
    site_id, tz, rows = sites[MANY]
    docs = [e for e in data.select(rows, MANY, tz) if e["path"] == "/docs" and e["event_name"] == "pageview"]
    days = Counter(data.local_day(e, tz) for e in docs)
    assert max(days.values()) * 12 > VALUES_KEPT  # more keys than kept on one day at least
    per_key = """SELECT max(c) FROM (SELECT count() AS c FROM page_values WHERE site = {s:String}
        GROUP BY build, day, path, event_name)"""
    assert 0 < int(api.store.scalar(per_key, {"s": MANY})) <= VALUES_KEPT + 1
    marked = "SELECT count() FROM page_values WHERE site = {s:String} AND dimension = {d:String}"
    assert int(api.store.scalar(marked, {"s": MANY, "d": KEYS_UNKNOWN})) > 0
    key = sorted(docs[0]["props"])[0]
    for filters in ([[f"prop:{key}", "is", "x"]], [["prop:plan", "is_not", "pro"]]):
        calls = raw_reads(True)
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(
            rows, MANY, tz, filters
        )
        assert calls, filters


def test_kept_events_evaluates_the_filters_as_the_events_would(api: Api) -> None:
    """Every operator, on the three names, as `filters.filter_sql` means it (case-insensitive contains, re2)."""
    rng = resolve("custom", "UTC", date_from="2024-03-01", date_to="2024-03-02")
    cases = {
        '[["event", "is", "scroll"]]': {"scroll"},
        '[["event", "is", "Scroll"]]': set(),
        '[["event", "is_not", "scroll"]]': {"pageview", "engagement"},
        '[["event", "contains", "VIEW"]]': {"pageview"},
        '[["event", "not_contains", "E"]]': {"scroll"},
        '[["event", "matches", "^[ps]"]]': {"pageview", "scroll"},
        '[["event", "not_matches", "l{2}"]]': {"pageview", "engagement"},
        '[["event", "contains", ""], ["event", "is_not", "pageview"]]': {"engagement", "scroll"},
    }
    for raw, want in cases.items():
        scope = Scope(QueryRunner(api.store), "x", rng, parse_filters(raw))
        assert page_value_filters.kept_events(scope, scope.filters) == frozenset(want), raw


# The link reports: filters their cache answers, and those the raw events answer
LINK_CACHED = [
    [["title", "contains", "page /d"]],
    [["title", "contains", "pricing"]],  # both of /pricing's titles pass
    [["title", "not_matches", "^Page /(blog|docs)"]],
    [["title", "contains", "no such title"]],
    [["event", "is", "outbound"]],  # the outbound report whole, no download
    [["event", "is_not", "outbound"]],
    [["event", "contains", "O"]],  # both
    [["event", "is", "pageview"]],  # neither
    [["event", "is", "download"], ["country", "is", "DE"]],  # beside a dimension the cache carries
    [["event", "matches", "^(out|down)"], ["utm_campaign", "is", "spring"]],  # beside one it keys by value
    [["prop:tier", "is", "paid"]],  # the clicks on /pricing
    [["prop:plan", "is_not", "pro"]],  # on no click: every path
    [["prop:plan", "is", "pro"], ["title", "contains", "page"]],  # no path
    [["prop:mark", "is", "x"]],  # the clicks on /
    [["prop:variant", "is", "a"]],  # on no click ('' there; the pageviews of /blog/a split: not read here)
    [["title", "contains", "page"], ["page", "contains", "o"]],  # beside page filters
    [["prop:plan", "is_not", "pro"], ["page", "matches", "^/(d|p)"], ["page", "is_not", "/docs"]],
]
LINK_RAW = [
    [["title", "is", "Pricing"]],  # /pricing's two titles split
    [["title", "contains", "page"], ["country", "is", "DE"]],  # a title beside another dimension
    [["prop:tier", "is", "paid"], ["utm_campaign", "is", "spring"]],  # beside a dimension keyed by value
]
# ... for the outbound report only (the downloads' URLs never contain github: none kept, from the cache)
OUTBOUND_RAW = [["prop:url", "contains", "github"]]  # one URL among others on a path
LINK_REPORTS = (("outbound", "outbound"), ("downloads", "download"))


def url(e: dict[str, Any]) -> str:
    return str(e["props"]["url"])


@pytest.mark.parametrize("filters", LINK_CACHED, ids=json.dumps)
def test_link_reports_filtered_on_the_event_title_or_a_property_read_their_cache_and_equal_python(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
    filters: list[list[str]],
) -> None:
    raw_reads(False)
    for domain in ZONES:
        site_id, tz, rows = sites[domain]
        kept = data.select(rows, domain, tz, pred=keeps(filters))
        for report, name in LINK_REPORTS:
            got = links(api, site_id, report, filters=json.dumps(filters), **RANGE)
            assert got == data.counted(kept, name, url), (domain, report, filters)


@pytest.mark.parametrize("filters", [*LINK_RAW, OUTBOUND_RAW], ids=json.dumps)
def test_link_reports_read_the_raw_events_where_their_cache_cannot_tell(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
    filters: list[list[str]],
) -> None:
    for domain in ZONES:
        site_id, tz, rows = sites[domain]
        kept = data.select(rows, domain, tz, pred=keeps(filters))
        for report, name in LINK_REPORTS:
            calls = raw_reads(True)
            got = links(api, site_id, report, filters=json.dumps(filters), **RANGE)
            assert got == data.counted(kept, name, url), (domain, report, filters)
            assert bool(calls) == (filters in LINK_RAW or report == "outbound"), (domain, report, filters)


def test_the_link_cases_keep_something_and_drop_something(
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
) -> None:
    """The link clicks on /pricing carry both of its titles (the split case splits them), and each filter of
    the link tables changes one report's answer or empties it."""
    domain = "kolkata.pagevalues"
    _, tz, rows = sites[domain]
    chosen = data.select(rows, domain, tz)
    for _, name in LINK_REPORTS:
        assert {e["title"] for e in chosen if e["event_name"] == name and e["path"] == "/pricing"} == {
            "Pricing",
            "Pricing plans",
        }, name
    everything = {name: data.counted(chosen, name, url) for _, name in LINK_REPORTS}
    for filters in [*LINK_CACHED, *LINK_RAW, OUTBOUND_RAW]:
        kept = data.select(rows, domain, tz, pred=keeps(filters))
        changed = any(data.counted(kept, name, url) != everything[name] for _, name in LINK_REPORTS)
        keeps_all = filters in ([["event", "contains", "O"]], [["prop:plan", "is_not", "pro"]])
        assert changed == (not keeps_all), filters


def test_the_raw_only_filters_of_the_other_tests_read_the_raw_events(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
) -> None:
    """`conftest.RAW_ONLY`, which other tests use to compare a cache with the raw path, reaches the raw path of
    each report answered here (alone and beside a page filter), with every event kept."""
    domain = "berlin.pagevalues"
    site_id, tz, rows = sites[domain]
    for extra in ([], [["page", "contains", "o"]]):
        filters = [*extra, *RAW_ONLY]
        calls = raw_reads(True)
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(
            rows, domain, tz, extra
        )
        assert calls, filters
        kept = data.select(rows, domain, tz, pred=keeps(extra))
        for report, name in LINK_REPORTS:
            calls = raw_reads(True)
            assert links(api, site_id, report, filters=json.dumps(filters), **RANGE) == data.counted(
                kept, name, url
            )
            assert calls, (report, filters)


@pytest.mark.parametrize("inline_bytes", [0, page_value_filters.INLINE_BYTES], ids=["subquery", "parameter"])
def test_the_kept_paths_as_a_subquery_or_a_parameter_give_the_same_answer(
    api: Api,
    sites: dict[str, tuple[int, str, list[dict[str, Any]]]],
    raw_reads: Callable[[bool], list[int]],
    monkeypatch: pytest.MonkeyPatch,
    inline_bytes: int,
) -> None:
    """Past `INLINE_BYTES` of kept paths (a site with many pages) the report's query selects them itself: the
    same figures as with the paths given as a parameter, from the cache."""
    monkeypatch.setattr(page_value_filters, "INLINE_BYTES", inline_bytes)
    raw_reads(False)
    domain = "kolkata.pagevalues"
    site_id, tz, rows = sites[domain]
    cache = report_cache(api)
    rng = resolve("custom", tz, date_from=data.FIRST_DAY.isoformat(), date_to=data.LAST_DAY.isoformat())
    scope = Scope(cache.runner, domain, rng, parse_filters('[["title", "contains", "page"]]'), cache=cache)
    days = engagement_cache.for_cache(cache).days(Scope(cache.runner, domain, rng, cache=cache))
    assert days is not None
    found = page_value_filters.value_paths(scope, days, scope.filters, SqlParams())
    assert found is not None and (found.listed is None) == (inline_bytes == 0)
    for filters in (
        [["title", "contains", "page"], ["page", "contains", "o"]],
        [["prop:section", "is", "docs"]],
        [["prop:tier", "is_not", "paid"], ["title", "contains", "page"]],
    ):
        assert rows_of(api, site_id, filters=json.dumps(filters), **RANGE) == expected(
            rows, domain, tz, filters
        )
        kept = data.select(rows, domain, tz, pred=keeps(filters))
        for report, name in LINK_REPORTS:
            got = links(api, site_id, report, filters=json.dumps(filters), **RANGE)
            assert got == data.counted(kept, name, url), (report, filters)
