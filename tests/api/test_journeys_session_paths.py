"""Journeys' per-day cache of session paths (`query/path_cache.py`: one row per session and local day of its
first pageview, its collapsed path and its session-level dimensions as columns, a session whose events disagree
on one marked `mixed` and read through the route's set) held to the Python reference of
tests/api/test_journeys_top_paths.py on random sites (hypothesis): sessions that started the day before the
range or cross local midnight out of it (in Europe/Berlin), reloads, back-and-forth, two views at one instant,
copies of an event, every mode, with and without a filter on a dimension that changes within the session (mixed
rows) or does not. Repeats collapsed and no page groups: what the cache carries. And what it does not carry, its
validity and its worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.api.query import journeys as jq
from pixel.server.api.query import path_cache
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.report_cache import ReportCache
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore
from tests.api.test_journeys_top_paths import MODES, ZONE, reference, session, site_events


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    s = ChdbStore(tmp_path_factory.mktemp("journeys-paths") / "store")
    s.migrate()
    yield s
    s.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sessions=st.lists(session, min_size=1, max_size=25),
    mode=st.sampled_from(MODES),
    limit=st.integers(1, 4),
    per_step=st.integers(1, 3),
    filters=st.sampled_from([[], [("country", "DE")], [("country", "FR")], [("browser", "")]]),
)
def test_cached_paths_equal_the_reference(
    store: ChdbStore,
    sessions: list[tuple[int, list[tuple[str, int, bool]], str]],
    mode: tuple[int, str | None, str | None],
    limit: int,
    per_step: int,
    filters: list[tuple[str, str]],
) -> None:
    site = f"paths-{uuid.uuid4().hex[:12]}.example"
    events = site_events(site, sessions)
    store.insert_rows("events", events)
    steps, start, end = mode
    q = jq.JourneyQuery(steps, start, end, [], True, limit, per_step).check()
    sc = Scope(
        runner=QueryRunner(store),
        site=site,
        range=resolve("custom", ZONE, date_from="2024-03-05", date_to="2024-03-05"),
        filters=[Filter(d, "is", v) for d, v in filters],
    )
    country = dict(filters).get("country")
    # a browser filter on '' keeps every session (the events carry no browser), as no filter does
    want = reference(events, q, country)
    assert jq.answer(q, jq.path_tallies(sc, q)) == want  # the events
    # the store's cache: the day built on the request, then read
    cache = ReportCache(sc.runner, rebuild_min_seconds=0.0, background_min_rows=0)
    with_cache = replace(sc, cache=cache)
    params = SqlParams()
    assert path_cache.TABLES[0] in (path_cache.rows_sql(with_cache, q, params) or "")
    assert jq.answer(q, jq.path_tallies(with_cache, q)) == want


def route(store: ChdbStore, site: str, cache: ReportCache | None, **kw: object) -> jq.Tallies:
    q = jq.JourneyQuery(
        **{"steps": 4, "start": None, "end": None, "groups": [], "collapse_repeats": True, **kw}
    )
    sc = Scope(
        runner=cache.runner if cache else QueryRunner(store),
        site=site,
        range=resolve("custom", ZONE, date_from="2024-03-05", date_to="2024-03-05"),
        cache=cache,
    )
    return jq.path_tallies(sc, q.check())


def cache_rows(store: ChdbStore, site: str) -> list[tuple[str, list[str]]]:
    return [
        (str(day), list(seq))
        for day, seq in store.query(
            f"""SELECT day, seq FROM {path_cache.TABLES[0]} WHERE site = {{s:String}}
            AND build IN (SELECT max(build) FROM {path_cache.TABLES[1]} WHERE site = {{s:String}} GROUP BY day)
            ORDER BY day, first_view""",
            {"s": site},
        ).rows
    ]


def test_a_page_viewed_hours_after_midnight_rebuilds_the_day_the_session_started(store: ChdbStore) -> None:
    """A session starting at 23:50 (Berlin) on 5 March: its day is built with its pages so far; a page it views
    at 02:30 the next day (past the report cache's edge of half an hour) is an event the day's build depends on,
    so the next journeys request rebuilds the 5th and the path holds the page. With the report cache's count
    (the day's hours and half an hour either side) the cached path would stay two pages long."""
    site = f"late-{uuid.uuid4().hex[:12]}.example"
    events = site_events(site, [(1430, [("/a", 0, False), ("/b", 5, False)], "DE")])
    store.insert_rows("events", events)
    cache = ReportCache(QueryRunner(store), rebuild_min_seconds=0.0, background_min_rows=0)
    first = route(store, site, cache)
    assert first.top == [(("/a", "/b"), True, 1)]
    assert cache_rows(store, site) == [("2024-03-05", ["/a", "/b"])]
    late = dict(events[-1], event_id=f"{site}-late", path="/日本", timestamp="2024-03-06 01:30:00.000")
    store.insert_rows("events", [dict(late, received_at=late["timestamp"])])
    again = route(store, site, cache)
    assert again.top == [(("/a", "/b", "/日本"), True, 1)] == route(store, site, None).top
    assert cache_rows(store, site) == [("2024-03-05", ["/a", "/b", "/日本"])]


def test_requests_the_cache_does_not_carry_read_the_events(store: ChdbStore) -> None:
    """Page groups, repeats kept, bots, a filter on an event-level dimension (the page) or a range that is not
    whole days read the events, with the same answers as the Python reference."""
    site = f"route-{uuid.uuid4().hex[:12]}.example"
    events = site_events(site, [(30, [("/a", 0, False), ("/a", 1, True), ("/b", 2, False)], "DE")])
    store.insert_rows("events", events)
    runner = QueryRunner(store)
    cache = ReportCache(runner, rebuild_min_seconds=0.0, background_min_rows=0)
    whole = resolve("custom", ZONE, date_from="2024-03-05", date_to="2024-03-05")
    cases: list[tuple[jq.JourneyQuery, Scope]] = [
        (jq.JourneyQuery(4, None, None, ["/a*"], True), Scope(runner, site, whole, cache=cache)),
        (jq.JourneyQuery(4, None, None, [], False), Scope(runner, site, whole, cache=cache)),
        (jq.JourneyQuery(4), Scope(runner, site, whole, include_bots=True, cache=cache)),
        (jq.JourneyQuery(4), Scope(runner, site, whole, [Filter("page", "is", "/b")], cache=cache)),
        (
            jq.JourneyQuery(4),
            Scope(runner, site, replace(whole, end=whole.end - timedelta(hours=1)), cache=cache),
        ),
    ]
    for q, sc in cases:
        assert path_cache.rows_sql(sc, q.check(), SqlParams()) is None, q
        assert jq.answer(q, jq.path_tallies(sc, q)) == jq.answer(
            q, jq.path_tallies(replace(sc, cache=None), q)
        )
    assert not cache_rows(store, site)
    # a filter on a session-level dimension reads the cache, the day built on the request
    sc = Scope(runner, site, whole, [Filter("country", "is", "DE")], cache=cache)
    assert path_cache.rows_sql(sc, jq.JourneyQuery(4).check(), SqlParams()) is not None
    assert cache_rows(store, site) == [("2024-03-05", ["/a", "/b"])]


def test_days_holding_many_events_are_built_by_the_worker_while_the_events_answer(store: ChdbStore) -> None:
    site = f"worker-{uuid.uuid4().hex[:12]}.example"
    sessions = [(30 + 10 * k, [("/a", 0, False), ("/é", 1, False)], "DE") for k in range(6)]
    store.insert_rows("events", site_events(site, sessions))
    cache = ReportCache(QueryRunner(store), rebuild_min_seconds=0.0, background_min_rows=5)
    paths = path_cache.for_cache(cache)
    started: list[object] = []
    paths._start = started.append  # type: ignore[method-assign]  # the worker is run by hand below
    first = route(store, site, cache)
    assert len(started) == 1 and not cache_rows(store, site)
    paths.build_pending()
    assert [day for day, _ in cache_rows(store, site)] == ["2024-03-05"] * 6
    assert route(store, site, cache).top == first.top == [(("/a", "/é"), True, 6)]
