"""The sessions table's lifecycle in the store (server/store/sessions.py, migration 12), both engines: filled
from the events stored before it existed (the same rows as its view makes), kept by the view after, and
given the events' retention (the TTL setting and a site's own retention)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pixel.server.api.meta import MetaDB
from pixel.server.retention import SiteRetention
from pixel.server.settings import Settings
from pixel.server.store.base import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.sessions import BACKFILL_CHUNK, COLUMNS, ENTRY_SQL, EXIT_SQL
from pixel.server.store.sessions_backfill import SessionsBackfill

try:
    from test_site_retention import add_site, events
except ImportError:  # tests/ made a package
    from tests.store.test_site_retention import add_site, events

# One row per (slot, session, visitor, dimensions), the states finalised: what the dashboard reads.
MERGED = f"""SELECT slot, sid, visitor_id, {", ".join(COLUMNS)}, min(first_seen), max(last_seen),
    {ENTRY_SQL}, {EXIT_SQL}, uniqExactMerge(pageviews), uniqExactMerge(events)
FROM session_rows GROUP BY slot, sid, visitor_id, {", ".join(COLUMNS)} ORDER BY ALL"""

ROWS = [
    # a session across a 15-minute slot and a UTC midnight, its first event a custom one; another visitor
    *(
        {
            "timestamp": ts,
            "site": "s.example",
            "event_id": f"e{i}",
            "event_name": name,
            "visitor_id": "v1",
            "session_id": "s1",
            "path": path,
            "country": "DE",
        }
        for i, (ts, name, path) in enumerate(
            [
                ("2024-03-09 23:50:00.000", "signup", "/x"),
                ("2024-03-09 23:55:00.000", "pageview", "/b"),
                ("2024-03-10 00:05:00.000", "pageview", "/a"),
                ("2024-03-10 00:05:00.000", "pageview", "/c"),
            ]
        )
    ),
    {
        "timestamp": "2024-03-10 10:00:00.000",
        "site": "s.example",
        "event_id": "e9",
        "event_name": "pageview",
        "visitor_id": "v2",
        "session_id": "s2",
        "path": "/",
        "country": "FR",
    },
]


def test_backfill_equals_the_view(store: Store) -> None:
    """Events stored, then the table dropped and migration 12 run again: the background backfill gives the rows
    the view gave (copies counted once either way)."""
    store.insert_rows("events", ROWS)
    store.insert_rows("events", ROWS[1:3])  # client-retry copies
    by_view = store.query(MERGED).rows
    # s1 in the slots 23:45 (a signup, a pageview) and 00:00 (two pageviews), s2 in one; copies once
    assert [[str(r[0]), r[2], *r[-2:]] for r in by_view] == [
        ["2024-03-09 23:45:00", "v1", 1, 2],
        ["2024-03-10 00:00:00", "v1", 2, 2],
        ["2024-03-10 10:00:00", "v2", 1, 1],
    ]
    store.command("DROP TABLE session_rows_mv")
    store.command("DROP TABLE session_rows")
    store.command("DELETE FROM schema_migrations WHERE version = 12")
    assert store.migrate() == [12]
    assert store.query(MERGED).rows == []  # copied in the background (sessions_backfill), not by migrate
    SessionsBackfill(store).run()
    assert store.query(MERGED).rows == by_view


def test_entry_exit_and_counts(store: Store) -> None:
    store.insert_rows("events", ROWS)
    store.insert_rows("events", ROWS[::2])  # copies
    got = store.query(
        f"SELECT sid = cityHash64('s1'), {ENTRY_SQL}, {EXIT_SQL}, uniqExactMerge(pageviews), "
        "uniqExactMerge(events), min(first_seen), max(last_seen) FROM session_rows GROUP BY sid ORDER BY 1"
    ).rows
    s2, s1 = got
    # two pageviews at 00:05: the least path enters ties, the greatest exits (filters.SESSION_DIMENSIONS)
    assert s1[1:5] == ["/b", "/c", 3, 4]
    assert str(s1[5]).startswith("2024-03-09 23:50") and str(s1[6]).startswith("2024-03-10 00:05")
    assert s2[1:5] == ["/", "/", 1, 1]


def test_ttl_follows_the_retention_setting(store: Store) -> None:
    def ttl() -> str:
        return str(
            store.scalar(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'session_rows'"
            )
        )

    assert "TTL" not in ttl()
    store.migrate(retention_days=30)
    assert "TTL slot + toIntervalDay(30)" in ttl()
    store.migrate(retention_days=0)
    assert "TTL" not in ttl()


NOW = 1_750_000_000.0  # pinned


@contextmanager
def week_and_forever(tmp_path: Path, ages_days: list[float]) -> Iterator[tuple[ChdbStore, SiteRetention]]:
    """A store with two sites, one keeping 7 days and one forever, each with one session per event of the
    given ages (days before `NOW`), and the sites' retention job."""
    settings = Settings(data_dir=tmp_path)
    meta = MetaDB(settings.meta_db_path)
    add_site(meta, "week.example", 7)
    add_site(meta, "forever.example", 0)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        for site in ("week.example", "forever.example"):
            rows = events(site, ages_days, now=NOW)
            for i, row in enumerate(rows):
                row["session_id"] = f"{site}-s{i}"
            store.insert_rows("events", rows)
        yield store, SiteRetention(store, settings.meta_db_path)
    finally:
        store.close()


SESSIONS_PER_SITE = "SELECT site, uniqExact(sid) FROM session_rows GROUP BY site ORDER BY site"


def test_site_retention_deletes_old_session_rows(tmp_path: Path) -> None:
    with week_and_forever(tmp_path, [0.1, 6.9, 7.1, 200]) as (store, retention):
        retention.run_once(now=NOW)
        kept = [tuple(r) for r in store.query(SESSIONS_PER_SITE).rows]
        assert kept == [("forever.example", 4), ("week.example", 2)]


def test_site_retention_deletes_session_rows_a_backfill_chunk_put_back(tmp_path: Path) -> None:
    """The race of a backfill chunk with a site's retention: the chunk read the old events before their
    DELETE and wrote its rows after the retention deleted the sessions' rows. The next run deletes them
    again although no event is older than the cut-off any more."""
    with week_and_forever(tmp_path, [0.1, 6.9, 7.1, 8.5, 200]) as (store, retention):
        # what the chunk read: the events as they were before the DELETE
        store.command("CREATE TABLE events_before AS events")
        store.command("INSERT INTO events_before SELECT * FROM events")
        assert retention.run_once(now=NOW) == {"week.example": 3}
        chunk = BACKFILL_CHUNK.replace("FROM events", "FROM events_before")
        assert chunk != BACKFILL_CHUNK
        store.command(chunk, {"start": "2000-01-01 00:00:00.000", "end": "2100-01-01 00:00:00.000"})
        rows = [tuple(r) for r in store.query(SESSIONS_PER_SITE).rows]
        assert rows == [("forever.example", 5), ("week.example", 5)]

        assert retention.run_once(now=NOW + 60) == {"week.example": 0}
        rows = [tuple(r) for r in store.query(SESSIONS_PER_SITE).rows]
        assert rows == [("forever.example", 5), ("week.example", 2)]


def test_sessions_kept_after_a_later_insert(store: Store) -> None:
    """A session's events in two inserts minutes apart: one session, its states merged."""
    store.insert_rows("events", ROWS[:2])
    store.insert_rows("events", ROWS[2:4])
    assert store.scalar("SELECT uniqExact(sid) FROM session_rows") == 1
    assert store.scalar("SELECT count() FROM session_rows") >= 2  # rows of both inserts, not merged yet
    one = store.query(f"SELECT uniqExactMerge(events), {ENTRY_SQL} FROM session_rows GROUP BY sid").rows
    assert one == [[4, "/b"]]
