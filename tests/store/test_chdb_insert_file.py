"""The embedded engine's insert path (`ChdbStore.insert_json`): rows handed to chDB as an in-memory file.

Each test compares what was stored with values written out here, and checks that no descriptor is left
open after an insert, whether it succeeded or was refused.
"""

from __future__ import annotations

import os

import orjson
import pytest

from pixel.server.store.base import StoreError
from pixel.server.store.chdb_engine import ChdbStore, _memfd_with


@pytest.fixture
def store(chdb_store: ChdbStore) -> ChdbStore:
    return chdb_store  # chDB only (this directory's `store` runs on both engines)


def _insert_files() -> set[str]:
    """The process's descriptors of the inserts' in-memory files (`_memfd_with`'s, named `pixel-insert`), and
    of chDB's reopening of them through /proc/self/fd: what an insert must not leave open. Other descriptors
    are not compared: chDB's pools open and close files of their own at any time (parts, per-thread statistics)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if "memfd:pixel-insert" in target:
            out.add(fd)
    return out


needs_memfd = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux-only")


@needs_memfd
def test_memfd_holds_the_bytes_and_is_not_inherited() -> None:
    data = b'{"a": "x"}\n' * 100_000  # larger than a pipe or one write may take at once
    fd = _memfd_with(data)
    assert fd is not None
    try:
        assert not os.get_inheritable(fd)
        assert _insert_files() == {str(fd)}  # what the other tests look for after an insert
        with open(f"/proc/self/fd/{fd}", "rb") as f:  # a fresh open reads from the start, as chDB does
            assert f.read() == data
    finally:
        os.close(fd)


@needs_memfd
def test_rows_stored_with_defaults_and_token_and_no_descriptor_left(store: ChdbStore) -> None:
    store.command(
        "CREATE TABLE d (a String, n UInt32 DEFAULT length(a) + 100, m Map(String, String)) "
        "ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100"
    )
    rows = [{"a": "xyz", "m": {"k": "v\tw"}}, {"a": "q\n\\é", "n": 7}]
    assert not _insert_files()
    store.insert_json("d", orjson.dumps(rows), token="tok1")
    store.insert_json("d", orjson.dumps(rows), token="tok1")  # a replay under its token: dropped
    assert not _insert_files()
    got = store.query("SELECT a, n, m FROM d ORDER BY a")
    assert [tuple(r) for r in got.rows] == [("q\n\\é", 7, {}), ("xyz", 103, {"k": "v\tw"})]
    store.insert_json("d", orjson.dumps(rows), token="tok2")
    assert store.scalar("SELECT count() FROM d") == 4


@needs_memfd
def test_refused_rows_raise_the_parse_error_and_leave_no_descriptor(store: ChdbStore) -> None:
    assert not _insert_files()
    bad = b'{"timestamp": "not a time", "site": "example.org", "event_id": "e1"}'
    with pytest.raises(StoreError, match=r"Code: 41\b"):  # CANNOT_PARSE_DATETIME: a refusal of the data
        store.insert_json("events", bad, token="bad1")
    assert not _insert_files()
    store.insert_json("events", b'{"site": "example.org", "event_id": "e2"}', token="good1")
    assert store.scalar("SELECT count() FROM events") == 1  # the session goes on after the refusal


def test_bad_token_is_refused_before_anything_is_written(store: ChdbStore) -> None:
    assert not _insert_files()
    with pytest.raises(ValueError, match="dedup token"):
        store.insert_json("events", b"{}", token="x' SETTINGS y=1")
    assert not _insert_files()
