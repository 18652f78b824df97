"""The journeys query reads the session hash the store keeps (`events.session_hash`, store migration 16), never
the session id text, in every mode, with filters and an anchor page, collapsed or not (the known answers on both
engines are in test_journeys.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import cast

import pytest

from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import Range
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope

RANGE = Range(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 31, tzinfo=UTC), "UTC", "30d")


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
def test_sessions_are_grouped_by_the_stored_hash(q: jq.JourneyQuery, filters: list[Filter]) -> None:
    scope = Scope(runner=cast(QueryRunner, None), site="s.example", range=RANGE, filters=filters)
    sql = jq.sessions_sql(scope, q.check(), SqlParams())
    assert "session_id" not in sql
    assert re.search(r"GROUP BY session_hash\b", sql)
    # each chosen set (the filter's sessions, the anchor page's) is a set of stored hashes too
    assert sql.count("session_hash IN (SELECT session_hash FROM events") == len(filters) + (
        1 if q.start or q.end else 0
    )
