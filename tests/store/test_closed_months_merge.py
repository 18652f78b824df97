"""Migration 37: `events` and the sessions table merge every part of a month into one once all of them are a day
old (`schema.MERGE_CLOSED_MONTHS`), so the raw dashboard finds no window where copies could sit in a closed
month (`copy_windows`) and reads its rows as they are.

Both engines: the migrated tables carry the settings. On chDB, the same settings with an age of one second (a
day cannot be waited for): a month inserted in three parts, on both tables, becomes one part, and its windows
are gone while the current month's parts are left as they are.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pixel.server.api.query import copy_windows
from pixel.server.store.base import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.schema import MERGE_CLOSED_MONTHS
from tests.api.test_daycache import _row

TABLES = (copy_windows.EVENTS, copy_windows.SESSIONS)


def test_the_migrated_tables_merge_closed_months(store: Store) -> None:
    found = dict(
        store.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN "
            "('events', 'session_rows')"
        ).rows
    )
    assert sorted(found) == sorted(TABLES)
    for table in TABLES:
        for setting in MERGE_CLOSED_MONTHS.split(", "):
            assert setting in found[table], (table, found[table])


def _parts(store: Store, table: str) -> dict[str, int]:
    rows = store.query(
        "SELECT partition_id, count() FROM system.parts WHERE database = currentDatabase() AND table = {t:String} "
        "AND active GROUP BY partition_id",
        {"t": table},
    ).rows
    return {str(p): int(n) for p, n in rows}


def test_a_month_of_old_parts_becomes_one_part_without_windows(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "store")
    try:
        store.migrate()
        start = datetime(2023, 3, 2, tzinfo=UTC)
        rnd = random.Random(37)
        rows = [
            _row(
                i,
                "merge.example",
                start + timedelta(hours=7 * i),
                f"v{i % 9}",
                f"s{i // 3}",
                "pageview",
                "/",
                rnd,
            )
            for i in range(90)
        ]
        for third in (rows[0::3], rows[1::3], rows[2::3]):  # three parts spanning the month
            store.insert_rows("events", third)
        assert all(_parts(store, t)["202303"] == 3 for t in TABLES)
        before = [copy_windows.read_parts(store, t) for t in TABLES]
        assert all(parts is not None and copy_windows.windows(parts) for parts in before)
        for table in TABLES:  # after the inserts: a slow machine must not merge between them
            store.command(
                f"ALTER TABLE {table} MODIFY SETTING "
                + MERGE_CLOSED_MONTHS.replace("seconds = 86400", "seconds = 1")
            )
        deadline = time.monotonic() + 90
        while any(_parts(store, t)["202303"] > 1 for t in TABLES):
            assert time.monotonic() < deadline, {t: _parts(store, t) for t in TABLES}
            time.sleep(0.5)
        for table in TABLES:
            parts = copy_windows.read_parts(store, table)
            assert parts is not None and copy_windows.windows(parts) == ()
        assert store.scalar("SELECT count() FROM events") == len(rows)
    finally:
        store.close()
