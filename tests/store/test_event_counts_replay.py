"""`event_counts`, the report cache's change detector, follows the `events` table's deduplication.

A batch the shipper delivers again under the same insert token is dropped by `events`; its copy must not
reach `event_counts` either (else the cached days look changed and are rebuilt for nothing). A different batch
whose per-hour counts happen to equal an earlier one's (same site, hour and number of rows) is new data and
must be counted: the view's blocks are deduplicated by the source insert's token, never by their own content.
On both engines, fresh stores and a store migrated from before the change.
"""

from __future__ import annotations

from typing import Any

from pixel.server.store import Store
from pixel.server.store.base import SCHEMA_MIGRATIONS_DDL
from pixel.server.store.schema import migrations


def _event(event_id: str, hour: int = 7, site: str = "example.org") -> dict[str, Any]:
    stamp = f"2024-05-06 {hour:02d}:08:09.123"
    return {
        "timestamp": stamp,
        "received_at": stamp,
        "site": site,
        "event_id": event_id,
        "event_name": "pageview",
        "visitor_id": "v1",
        "session_id": "s1",
        "path": "/a",
    }


def _counts(store: Store) -> dict[tuple[str, str], int]:
    rows = store.query(
        "SELECT site, toString(hour), sum(rows) FROM event_counts GROUP BY site, hour ORDER BY site, hour"
    ).rows
    return {(site, hour): int(n) for site, hour, n in rows}


def _events(store: Store) -> int:
    return int(store.query("SELECT count() FROM events").rows[0][0])


def test_a_replayed_batch_is_not_counted_again(store: Store) -> None:
    batch = [_event("a1"), _event("a2"), _event("a3", hour=9)]
    for _ in range(3):
        store.insert_rows("events", batch, token="batch1")
    assert _events(store) == 3
    assert _counts(store) == {
        ("example.org", "2024-05-06 07:00:00"): 2,
        ("example.org", "2024-05-06 09:00:00"): 1,
    }


def test_new_batches_with_equal_counts_are_all_counted(store: Store) -> None:
    # Each batch's view block is ("example.org", 07:00, 1): equal content, different source inserts.
    store.insert_rows("events", [_event("b1")], token="t1")
    store.insert_rows("events", [_event("b2")], token="t2")
    store.insert_rows("events", [_event("b3")])
    store.insert_rows("events", [_event("b4")])
    assert _events(store) == 4
    assert _counts(store) == {("example.org", "2024-05-06 07:00:00"): 4}
    store.insert_rows("events", [_event("b2")], token="t2")  # t2 again: dropped from both
    assert _events(store) == 4
    assert _counts(store) == {("example.org", "2024-05-06 07:00:00"): 4}


def test_a_client_retry_copy_under_a_new_token_is_still_counted(store: Store) -> None:
    """A copy of an event sent again by the client is a new insert: `events` keeps it (FINAL hides it) and the
    count changes, which is what tells the cache a day's rows changed."""
    store.insert_rows("events", [_event("c1")], token="first")
    store.insert_rows("events", [_event("c1")], token="second")
    assert _events(store) == 2
    assert _counts(store) == {("example.org", "2024-05-06 07:00:00"): 2}


def _migrate_before(store: Store, version: int) -> None:
    """The store as `migrate()` left it before `version` existed."""
    store.command(SCHEMA_MIGRATIONS_DDL)
    for m in migrations():
        if m.version >= version:
            break
        store.apply_migration(m)


def test_a_store_from_before_the_change_gets_it(bare_store: Store) -> None:
    store = bare_store
    fixing = next(m.version for m in migrations() if m.name.startswith("event_counts deduplicated"))
    _migrate_before(store, fixing)
    hour = ("example.org", "2024-05-06 07:00:00")
    store.insert_rows("events", [_event("d1")], token="old")
    store.insert_rows("events", [_event("d1")], token="old")
    assert _counts(store) == {hour: 2}  # what the change mends: the replay was counted
    assert fixing in store.migrate()
    store.insert_rows("events", [_event("d2")], token="new")
    store.insert_rows("events", [_event("d2")], token="new")
    assert _events(store) == 2
    assert _counts(store) == {hour: 3}
