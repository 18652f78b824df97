"""The per-day cache of session paths evaluated by bench/bench_journeys_cache.py (one row per session and
local day of its first pageview: its collapsed path and its session-level dimensions as columns, a session
whose events disagree on one marked `mixed` and read through the sessions table's set) held to the Python
reference of tests/api/test_journeys_top_paths.py on random sites (hypothesis): sessions that started the day
before the range or cross local midnight out of it (in Europe/Berlin), reloads, back-and-forth, two views at
one instant, copies of an event, every mode, with and without a filter on a dimension that changes within the
session (mixed rows) or does not. Repeats collapsed and no page groups: what the cache carries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_journeys_cache import DDL, build_day, cached_rows_sql
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore
from tests.api.test_journeys_top_paths import MODES, ZONE, reference, session, site_events


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    s = ChdbStore(tmp_path_factory.mktemp("journeys-paths") / "store")
    s.migrate()
    s.command(DDL)
    yield s
    s.close()


def cached_tallies(scope: Scope, q: jq.JourneyQuery) -> jq.Tallies:
    route = jq.session_rows_sql
    jq.session_rows_sql = cached_rows_sql  # type: ignore[assignment]
    try:
        return jq.path_tallies(scope, q)
    finally:
        jq.session_rows_sql = route  # type: ignore[assignment]


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
    for d in (4, 5, 6):  # the range's day and both neighbours: rows of the other days are not read
        build_day(store, site, date(2024, 3, d), ZoneInfo(ZONE))
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
    assert jq.answer(q, cached_tallies(sc, q)) == want
    assert jq.answer(q, jq.path_tallies(sc, q)) == want
