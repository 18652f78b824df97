"""The journeys query reads the session hash the store keeps (`events.session_hash`, store migration 16), never
the session id text, in every mode, with filters and an anchor page, collapsed or not (the known answers on both
engines are in test_journeys.py); the filters' set of sessions comes from the sessions table when it holds the
answer (session-level dimensions, a window of whole slots), else from the events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import Range
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore

RANGE = Range(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 31, tzinfo=UTC), "UTC", "30d")
ROWS_SET = "session_hash IN (SELECT sid FROM session_rows"
EVENTS_SET = "session_hash IN (SELECT session_hash FROM events"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryRunner]:
    """A new store (its sessions table complete: nothing to backfill)."""
    store = ChdbStore(Path(tmp_path_factory.mktemp("journeys-sql")) / "store")
    store.migrate()
    yield QueryRunner(store)
    store.close()


@pytest.mark.parametrize(
    "q",
    [
        jq.JourneyQuery(steps=4),
        jq.JourneyQuery(steps=4, start="/a"),
        jq.JourneyQuery(steps=3, end="/b", collapse_repeats=False),
        jq.JourneyQuery(steps=6, start="/blog/*", end="/b", groups=["/blog/*"]),
    ],
)
@pytest.mark.parametrize("filters", [[], [Filter("country", "is", "DE")]])
def test_sessions_are_grouped_by_the_stored_hash(
    runner: QueryRunner, q: jq.JourneyQuery, filters: list[Filter]
) -> None:
    scope = Scope(runner=runner, site="s.example", range=RANGE, filters=filters)
    sql = jq.sessions_sql(scope, q.check(), SqlParams())
    assert "session_id" not in sql
    assert re.search(r"GROUP BY session_hash\b", sql)
    # each chosen set (the filter's sessions, the anchor page's) is a set of stored hashes too
    assert sql.count(ROWS_SET) == len(filters)
    assert sql.count(EVENTS_SET) == (1 if q.start or q.end else 0)


@pytest.mark.parametrize(
    "filters,rng,from_rows",
    [
        ([Filter("country", "is", "DE")], RANGE, True),
        ([Filter("country", "is", "DE"), Filter("source", "is_not", "Google")], RANGE, True),
        ([Filter("page", "is", "/a")], RANGE, False),  # an event-level dimension
        ([Filter("country", "is", "DE"), Filter("page", "is", "/a")], RANGE, False),
        (  # a window that does not start on a 15-minute slot
            [Filter("country", "is", "DE")],
            Range(
                datetime(2026, 5, 1, 10, 7, tzinfo=UTC),
                datetime(2026, 5, 1, 10, 37, tzinfo=UTC),
                "UTC",
                "realtime",
            ),
            False,
        ),
    ],
)
def test_filters_set_from_the_sessions_table_only_when_it_answers(
    runner: QueryRunner, filters: list[Filter], rng: Range, from_rows: bool
) -> None:
    scope = Scope(runner=runner, site="s.example", range=rng, filters=filters)
    assert jq.filters_from_session_rows(scope) is from_rows
    sql = jq.sessions_sql(scope, jq.JourneyQuery(steps=4).check(), SqlParams())
    assert (sql.count(ROWS_SET), sql.count(EVENTS_SET)) == ((1, 0) if from_rows else (0, 1))
