"""`Store.writes`, the write counter of the store interface, on every engine.

The report cache skips its change check while the count of a store that is its tables' only writer
(`sole_writer`) stands still, so every engine must count every statement that may write: inserts and
commands, refused ones too, from any thread; reads never.
"""

from __future__ import annotations

import threading

import pytest

from pixel.server.store import Store, StoreError
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore

EVENT = {
    "timestamp": "2024-05-06 07:08:09.123",
    "received_at": "2024-05-06 07:08:09.456",
    "site": "example.org",
    "event_id": "ev-1",
    "event_name": "pageview",
    "visitor_id": "v1",
    "session_id": "s1",
    "path": "/a",
}


def test_the_counter_is_part_of_the_interface() -> None:
    assert Store.writes == 0 and Store.sole_writer is False  # declared (and documented) on Store
    engines = {cls.engine: cls for cls in Store.__subclasses__() if cls.__module__.startswith("pixel.")}
    assert engines == {"chdb": ChdbStore, "clickhouse": ClickHouseStore}
    # the embedded engine locks its folder to one process; a server may have other writers
    assert ChdbStore.sole_writer is True and ClickHouseStore.sole_writer is False


def test_every_engine_counts_inserts_and_commands_not_reads(store: Store) -> None:
    start = store.writes
    assert isinstance(start, int) and start > 0  # the migrations wrote
    store.insert_rows("events", [EVENT])
    assert store.writes == start + 1
    store.insert_rows("events", [{**EVENT, "event_id": f"ev-{i}"} for i in range(2, 12)])  # one batch
    assert store.writes == start + 2
    store.insert_json("events", b'{"site": "example.org", "event_id": "ev-99"}', token="tok1")
    assert store.writes == start + 3
    store.command("OPTIMIZE TABLE events FINAL")
    assert store.writes == start + 4
    store.query("SELECT count() FROM events")
    store.scalar("SELECT 1")
    assert store.writes == start + 4
    store.insert_rows("events", [])  # nothing sent
    assert store.writes == start + 4
    with pytest.raises(StoreError):
        store.insert_rows("no_such_table", [EVENT])
    with pytest.raises(StoreError):
        store.command("DROP TABLE no_such_table")
    assert store.writes == start + 6  # counted before they run: a refused write may have changed something
    assert int(store.scalar("SELECT count() FROM events")) == 12


def test_concurrent_writes_are_all_counted(store: Store) -> None:
    start = store.writes

    def insert_five(thread: int) -> None:
        for i in range(5):
            store.insert_rows("events", [{**EVENT, "event_id": f"t{thread}-{i}"}])

    threads = [threading.Thread(target=insert_five, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.writes == start + 30
    assert int(store.scalar("SELECT count() FROM events FINAL")) == 30
