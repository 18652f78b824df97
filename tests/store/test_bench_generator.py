"""bench_api's event generator (the figures of bench/README.md are measured on what it makes): the chunks inserted
two at a time make the same events as the layout's rows say, `time_ordered` puts sessions in insert order, and a
failing chunk on either session stops the generation with its error."""

from __future__ import annotations

import pytest

from bench.bench_api import SESSION_MEAN, generate, insert_chunks
from pixel.server.store.base import StoreError
from pixel.server.store.chdb_engine import ChdbStore


@pytest.fixture
def store(chdb_store: ChdbStore) -> ChdbStore:
    return chdb_store  # chDB only (this directory's `store` runs on both engines)


def _sessions(store: ChdbStore) -> list[tuple[int, int]]:
    """(session number, first event's time in ms) of every generated session, by number."""
    rows = store.query(
        "SELECT toUInt64(splitByChar('-', session_id)[2]) AS s, toUnixTimestamp64Milli(min(timestamp)) "
        "FROM events GROUP BY s ORDER BY s"
    ).rows
    return [(int(s), int(ts)) for s, ts in rows]


@pytest.mark.parametrize("time_ordered", [False, True])
def test_every_chunk_lands_once_from_both_sessions(store: ChdbStore, time_ordered: bool) -> None:
    # 9 chunks (an odd number: the store's session takes one more than the second one)
    generate(store, 9_000, 10, 1, chunk=1_000, internal_navigation=True, time_ordered=time_ordered)
    sessions = _sessions(store)
    total = int(9_000 / SESSION_MEAN)
    assert [s for s, _ in sessions] == list(range(total))  # each session once, none missing
    assert store.scalar("SELECT count() FROM events") == store.scalar(
        "SELECT count(DISTINCT event_id) FROM events"
    )
    span_ms = 10 * 86_400_000
    firsts = [ts for _, ts in sessions]
    assert max(firsts) - min(firsts) < span_ms
    ordered = sum(a <= b for a, b in zip(firsts, firsts[1:], strict=False))
    if time_ordered:
        assert ordered == total - 1  # session k starts at about k/N of the range
    else:
        assert ordered < total * 0.6  # spread at random over the range


def test_the_flat_generator_makes_exactly_the_events_asked(store: ChdbStore) -> None:
    generate(store, 5_500, 3, 1, chunk=1_000, flat=True)
    assert store.scalar("SELECT count() FROM events") == 5_500


@pytest.mark.parametrize("failing", [0, 1, 4, 5])
def test_a_failing_chunk_on_either_session_is_raised(store: ChdbStore, failing: int) -> None:
    # even chunks run on the store's session, odd ones on the second
    chunks = [{"n": i, "bad": int(i == failing)} for i in range(6)]
    with pytest.raises((StoreError, RuntimeError), match="chunk failed"):
        insert_chunks(
            store,
            "INSERT INTO events (site, event_id) SELECT 'gen.example', toString({n:UInt8}) "
            "WHERE throwIf({bad:UInt8} = 1, 'chunk failed') = 0",
            chunks,
        )
    assert store.scalar(f"SELECT count() FROM events WHERE event_id = '{failing}'") == 0
    store.command(
        "INSERT INTO events (site, event_id) VALUES ('after.example', 'x')"
    )  # the store still works
    assert store.scalar("SELECT count() FROM events WHERE site = 'after.example'") == 1


def test_a_failure_stops_the_other_session_too(store: ChdbStore) -> None:
    # the store's session fails on its first chunk: the second one stops after the statement under way
    # instead of running its other 199 chunks
    chunks = [{"n": i, "bad": int(i == 0)} for i in range(400)]
    with pytest.raises((StoreError, RuntimeError), match="chunk failed"):
        insert_chunks(
            store,
            "INSERT INTO events (site, event_id) SELECT 'gen.example', toString({n:UInt16}) "
            "WHERE throwIf({bad:UInt8} = 1, 'chunk failed') = 0",
            chunks,
        )
    assert store.scalar("SELECT count() FROM events WHERE site = 'gen.example'") < 100
