"""The stored session hash (store migration 16, `schema.DERIVED_COLUMNS`): `events.session_hash` is
`cityHash64(session_id)`, computed by the store for every row whichever way it was written, stored in the parts
of a store upgraded from before, the same for every copy of an event, and never part of `SELECT *`. On both
engines (chDB, and clickhouse-connect against chDB behind tests/chfront.py)."""

from __future__ import annotations

import orjson

from pixel.server.store.base import Store
from pixel.server.store.schema import EVENT_COLUMNS, migrations

try:
    from test_schema_v6 import make_v5_store
except ImportError:  # tests/ made a package
    from tests.store.test_schema_v6 import make_v5_store

# ClickHouse's cityHash64 (CityHash64 v1.0.2) of these texts, as the engine computes them (pinned, so a change of
# the column's expression or of the function shows).
KNOWN = {"": 11160318154034397263, "s-1": 13162659078926236385, "s-2": 7387820565517287774}
HASHES = "SELECT event_id, session_hash, session_hash = cityHash64(session_id) FROM events ORDER BY event_id"


def _parts_without_column(store: Store) -> int:
    """The active parts of `events` that do not store `session_hash` (it is computed on read there)."""
    return int(
        store.scalar(
            "SELECT count() FROM system.parts p WHERE p.database = currentDatabase() AND p.table = 'events' "
            "AND p.active AND p.name NOT IN (SELECT part_name FROM system.parts_columns WHERE database = "
            "currentDatabase() AND table = 'events' AND column = 'session_hash' AND active)"
        )
    )


def _row(event_id: str, session_id: str | None) -> dict[str, object]:
    row: dict[str, object] = {
        "site": "h.example",
        "timestamp": "2026-05-01 10:00:00.000",
        "event_id": event_id,
    }
    if session_id is not None:
        row["session_id"] = session_id
    return row


def test_every_row_holds_its_session_ids_hash(store: Store) -> None:
    store.insert_rows("events", [_row("e1", "s-1"), _row("e2", "s-2"), _row("e3", None)])
    # a row carrying a value of its own for the column does not set it: the store computes it
    store.insert_json("events", orjson.dumps([{**_row("e4", "s-1"), "session_hash": 42}]))
    assert store.query(HASHES).rows == [
        ["e1", KNOWN["s-1"], 1],
        ["e2", KNOWN["s-2"], 1],
        ["e3", KNOWN[""], 1],  # no session id: the hash of the empty text, like cityHash64('') in a query
        ["e4", KNOWN["s-1"], 1],
    ]
    assert _parts_without_column(store) == 0


def test_copies_and_replays_have_the_same_hash(store: Store) -> None:
    batch = orjson.dumps([_row("e1", "s-1"), _row("e2", "s-2")])
    store.insert_json("events", batch, token="batch1")
    store.insert_json("events", batch, token="batch1")  # a shipper replay under its token: dropped whole
    store.insert_rows("events", [_row("e1", "s-1")])  # a client retry: a copy until merged
    assert store.query(HASHES).rows == [
        ["e1", KNOWN["s-1"], 1],
        ["e1", KNOWN["s-1"], 1],
        ["e2", KNOWN["s-2"], 1],
    ]
    assert store.query("SELECT event_id, session_hash FROM events FINAL ORDER BY event_id").rows == [
        ["e1", KNOWN["s-1"]],
        ["e2", KNOWN["s-2"]],
    ]


def test_select_star_leaves_it_out(store: Store) -> None:
    store.insert_rows("events", [_row("e1", "s-1")])
    assert store.query("SELECT * FROM events").columns == list(EVENT_COLUMNS)


def test_a_store_from_before_gets_it_stored_for_its_old_rows(bare_store: Store) -> None:
    make_v5_store(bare_store)
    bare_store.insert_rows("events", [_row("old-1", "s-1"), _row("old-2", "s-2")])
    bare_store.insert_rows("events", [_row("old-3", None)])  # a second part
    assert bare_store.migrate() == [m.version for m in migrations() if m.version > 5]
    assert bare_store.query(HASHES).rows == [
        ["old-1", KNOWN["s-1"], 1],
        ["old-2", KNOWN["s-2"], 1],
        ["old-3", KNOWN[""], 1],
    ]
    assert _parts_without_column(bare_store) == 0  # stored by the migration, not computed on each read
    bare_store.insert_rows("events", [_row("new-1", "s-2")])
    assert bare_store.query(HASHES).rows[-1] == ["old-3", KNOWN[""], 1]
    assert bare_store.scalar("SELECT session_hash FROM events WHERE event_id = 'new-1'") == KNOWN["s-2"]
    assert bare_store.migrate() == []  # idempotent
