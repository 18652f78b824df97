"""A closed store refuses every statement with `StoreClosed` and never opens its engine again.

The class of problem: a thread that outlives its process's `close()` (an observer not joined, the report
cache's background worker, an import job) calls the store once more. On chDB that call used to open a new
session on the closed folder, which held the process's one embedded chDB on that folder: every later store
on another folder in that process failed ("EmbeddedServer already initialized with path …").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pixel.server.store.base import Store, StoreClosed, StoreUnavailable
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.store.conftest import open_engine

ROW = b'{"site": "example.org", "event_id": "e1", "event_name": "pageview", "timestamp": "2026-01-02 03:04:05"}\n'

CALLS: dict[str, Callable[[Store], object]] = {
    "query": lambda s: s.query("SELECT 1"),
    "scalar": lambda s: s.scalar("SELECT 1"),
    "command": lambda s: s.command("SELECT 1"),
    "insert_json": lambda s: s.insert_json("events", ROW),
    "insert_json with a token": lambda s: s.insert_json("events", ROW, token="t1"),
    "insert_rows": lambda s: s.insert_rows("events", [{"site": "example.org", "event_id": "e2"}]),
    "console_query": lambda s: s.console_query(f"SELECT 1 AS {s.console_tag()}", "", 10.0),
    "migrate": lambda s: s.migrate(),
}


@pytest.fixture(params=["chdb", "clickhouse"])
def closed(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A migrated store on each engine (`open_engine`, as the `store` fixture), closed."""
    url = request.getfixturevalue("clickhouse_url") if request.param == "clickhouse" else None
    store, database = open_engine(request.param, tmp_path, url)
    store.migrate()
    store.close()
    if database:  # dropped through a store of its own: the closed one refuses
        request.addfinalizer(lambda: _drop(ClickHouseStore(str(url), database=database)))
    return store


def _drop(server: ClickHouseStore) -> None:
    try:
        server.command(f"DROP DATABASE IF EXISTS `{server.database}`")
    finally:
        server.close()


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_every_statement_on_a_closed_store_is_refused(closed: Store, call: str) -> None:
    with pytest.raises(StoreClosed, match="is closed$") as info:
        CALLS[call](closed)
    # unavailable, not refused: a writer (the shipper) keeps its batch for the next store process
    assert isinstance(info.value, StoreUnavailable)
    assert info.value.retryable is True


def test_closing_twice_is_harmless(closed: Store) -> None:
    closed.close()
    with pytest.raises(StoreClosed):
        closed.scalar("SELECT 1")


def test_a_thread_outliving_the_close_does_not_hold_chdb_on_the_closed_folder(tmp_path: Path) -> None:
    """After a call on the closed store from another thread (as a background worker makes), a store on
    another folder opens in the same process: the closed folder's chDB was not opened again."""
    first = ChdbStore(tmp_path / "first")
    first.migrate()
    first.insert_json("events", ROW)
    first.close()
    seen: list[BaseException] = []

    def late_worker() -> None:
        for call in CALLS.values():
            try:
                call(first)
            except BaseException as exc:
                seen.append(exc)

    worker = threading.Thread(target=late_worker)
    worker.start()
    worker.join(timeout=60)
    assert [type(e) for e in seen] == [StoreClosed] * len(CALLS)
    second = ChdbStore(tmp_path / "second")
    try:
        assert second.scalar("SELECT 2") == 2
    finally:
        second.close()
    again = ChdbStore(tmp_path / "first")  # the closed folder opens again on a new store, its row kept
    try:
        assert again.scalar("SELECT count() FROM events") == 1
    finally:
        again.close()
