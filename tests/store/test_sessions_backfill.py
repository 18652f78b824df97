"""The sessions table's backfill in the background (server/store/sessions_backfill.py): a store upgraded from
before migration 12 starts without reading its events, the filtered dashboard gives the same rows during and
after the backfill, a killed backfill goes on without counting twice, a store that filled the table inline
(migration 12 before the backfill moved out) is not filled again. chDB in a tmp folder.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from pixel.server.api.query import raw_dashboard
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store import sessions, sessions_backfill
from pixel.server.store.base import SCHEMA_MIGRATIONS_DDL, Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.schema import migrations
from pixel.server.store.sessions_backfill import SessionsBackfill, read_state
from tests.api.test_daycache import RANGE, generate
from tests.store.test_session_rows_store import MERGED

SITE, TZ = "berlin.example", "Europe/Berlin"
DAY = 86400


def migrate_to(store: Store, version: int) -> None:
    """The store as an older Pixel left it: the migrations up to `version` applied and recorded."""
    store.command(SCHEMA_MIGRATIONS_DDL)
    for m in migrations():
        if m.version > version:
            break
        store.apply_migration(m)


def old_store(path: Path) -> tuple[ChdbStore, list[dict[str, Any]]]:
    """A store at migration 11 with events (and client-retry copies), not yet upgraded."""
    store = ChdbStore(path)
    migrate_to(store, 11)
    rows = generate(SITE, TZ, seed=7)
    store.insert_rows("events", rows[0::2])
    store.insert_rows("events", rows[1::2])
    store.insert_rows("events", rows[::5])  # copies
    return store, rows


def reference(store: Store) -> list[Any]:
    """session_rows' merged rows as the SELECT over all the stored events makes them at once (the inline fill
    migration 12 did before, equal to the view's rows: test_session_rows_store)."""
    return store.query(MERGED.replace("FROM session_rows", f"FROM ({sessions.SELECT})")).rows


def dashboard_rows(store: Store, filters: str, **kw: Any) -> tuple[str, list[str]]:
    rng = resolve("custom", TZ, date_from=RANGE["from"], date_to=RANGE["to"])
    scope = Scope(QueryRunner(store), SITE, rng, parse_filters(filters))
    sql, params = raw_dashboard.dashboard_sql(
        scope,
        None,
        compare=False,
        previous_series=False,
        interval="day",
        dimensions=["country", "browser", "entry_page", "exit_page"],
        limit=5,
        **kw,
    )
    return sql, sorted(map(repr, raw_dashboard.run(scope, sql, params)))


def test_upgrade_does_not_read_the_events(tmp_path: Path) -> None:
    store, rows = old_store(tmp_path / "s")
    try:
        # no statement of the upgrade copies events (the pending record only counts them: parts' metadata)
        upgrade = [s for m in migrations() if m.version > 11 for s in m.statements]
        assert not [s for s in upgrade if "INSERT INTO session_rows " in s and "FROM events" in s]
        assert store.migrate() == [m.version for m in migrations() if m.version > 11]
        assert store.scalar("SELECT count() FROM session_rows") == 0
        state = read_state(store)
        assert state is not None and state.pending and not state.planned
        assert sessions_backfill.complete_from(store) == math.inf
        # events arriving now flow in through the view at once
        store.insert_rows("events", [{**rows[0], "event_id": "new", "timestamp": "2024-03-20 10:00:00.000"}])
        assert store.scalar("SELECT count() FROM session_rows") == 1
    finally:
        store.close()


def test_a_new_store_has_nothing_pending(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "s")
    try:
        store.migrate()
        assert read_state(store) is None and sessions_backfill.complete_from(store) is None
        assert SessionsBackfill(store).step() is False
    finally:
        store.close()


def test_dashboard_same_rows_during_and_after(tmp_path: Path) -> None:
    store, rows = old_store(tmp_path / "s")
    try:
        store.migrate()
        filters = '[["country", "is", "DE"]]'
        _, expected = dashboard_rows(store, filters, sessions=False)
        assert len(expected) > 10
        worker = SessionsBackfill(store, chunk_seconds=DAY)
        steps = 0
        read_sessions = []
        while True:
            sql, got = dashboard_rows(store, filters)
            assert got == expected, steps
            read_sessions.append("FROM session_rows" in sql)
            progress = worker.progress()
            if not worker.step():
                break
            steps += 1
            assert progress is None or progress["state"] == "backfilling"
        sql, got = dashboard_rows(store, filters)
        assert got == expected and "FROM session_rows" in sql
        # the events only until the backfill reached the range's start (the table only after)
        assert read_sessions[0] is False and read_sessions[-1] is True
        assert read_sessions == sorted(read_sessions)
        assert worker.progress() is None and read_state(store).pending is False  # type: ignore[union-attr]
        # a plan, then one chunk per UTC day with events (the last one ends the work: not counted)
        assert steps == len({r["timestamp"][:10] for r in rows})
    finally:
        store.close()


def test_progress_figures(tmp_path: Path) -> None:
    store, _ = old_store(tmp_path / "s")
    try:
        store.migrate()
        worker = SessionsBackfill(store, chunk_seconds=DAY)
        worker.step()  # the plan
        state = worker.state
        assert state is not None and state.planned
        first = worker.progress()
        assert first is not None and first["percent"] == 0
        assert first["days_left"] == math.ceil((state.filled_from - state.low_ms / 1000) / DAY)
        worker.step()
        second = worker.progress()
        assert second is not None and 0 < second["percent"] < 100
        assert second["days_left"] == first["days_left"] - 1
    finally:
        store.close()


def test_killed_backfill_resumes_without_counting_twice(tmp_path: Path) -> None:
    store, rows = old_store(tmp_path / "s")
    store.migrate()
    worker = SessionsBackfill(store, chunk_seconds=3600)
    for _ in range(6):
        assert worker.step()
    # killed between a chunk's insert and its record: the next chunk copied, its progress not recorded
    state = read_state(store)
    assert state is not None and state.pending and state.planned
    edge = state.filled_from
    stamp = sessions_backfill._ms
    store.command(sessions.BACKFILL_CHUNK, {"start": stamp(edge - 3600), "end": stamp(edge)})
    twice = store.scalar("SELECT count() FROM session_rows")
    store.close()
    store = ChdbStore(tmp_path / "s")  # the next start of the process
    try:
        assert store.migrate() == []
        again = SessionsBackfill(store, chunk_seconds=3600)
        again.run()
        assert read_state(store).pending is False  # type: ignore[union-attr]
        assert twice > 0 and store.query(MERGED).rows == reference(store)
    finally:
        store.close()


def test_inline_filled_store_is_not_filled_again(tmp_path: Path) -> None:
    store, rows = old_store(tmp_path / "s")
    try:
        # migration 12 as it was before the backfill moved out: the table filled inline, then recorded
        store.command(sessions.ddl())
        store.command(sessions.MV_DDL)
        store.command(f"INSERT INTO session_rows {sessions.SELECT}")
        store.command("INSERT INTO schema_migrations (version, name) VALUES (12, 'sessions table')")
        before = store.scalar("SELECT count() FROM session_rows")
        for m in migrations():  # up to the last that kept the table
            if 12 < m.version < 36:
                store.apply_migration(m)
        assert read_state(store) is None and sessions_backfill.complete_from(store) is None
        assert SessionsBackfill(store).step() is False
        assert store.scalar("SELECT count() FROM session_rows") == before
        assert store.query(MERGED).rows == reference(store)
        # migration 36 makes the table again (entry and exit as keys): its rows come back through the backfill
        assert [v for v in store.migrate() if v <= 36] == [36]
        state = read_state(store)
        assert state is not None and state.pending
        assert store.scalar("SELECT count() FROM session_rows") == 0
        SessionsBackfill(store).run()
        assert store.query(MERGED).rows == reference(store)
    finally:
        store.close()


def test_stretches_without_events_are_skipped(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "s")
    try:
        migrate_to(store, 11)
        base = {"site": SITE, "event_name": "pageview", "visitor_id": "v", "session_id": "s", "path": "/"}
        store.insert_rows(
            "events",
            [
                {**base, "event_id": "old", "timestamp": "2019-06-01 10:20:00.000"},
                {**base, "event_id": "new", "timestamp": "2024-03-10 10:20:00.000", "session_id": "t"},
            ],
        )
        store.migrate()
        worker = SessionsBackfill(store, chunk_seconds=3600)
        steps = 1
        while worker.step():
            steps += 1
        # plan, the 2024 hour, then straight to the 2019 hour (the last chunk, it reaches the oldest event)
        assert steps == 3
        assert store.query("SELECT count() FROM (SELECT sid FROM session_rows GROUP BY sid)").rows == [[2]]
    finally:
        store.close()


def test_pixel_serve_store_process_backfills_in_the_background(tmp_path: Path) -> None:
    """The store process of `pixel serve` (StoreService): open and started at once on an old store, its admin
    health shows the backfill, which then completes in its own thread."""
    from pixel.server.settings import Settings
    from pixel.server.storeservice import StoreService

    settings = Settings(data_dir=tmp_path)
    store, _ = old_store(settings.store_dir)
    store.close()
    service = StoreService(settings)
    try:
        assert service.store.scalar("SELECT count() FROM session_rows") == 0  # nothing copied by the start
        shown = service.health(details=True)["sessions_table"]
        assert shown == {"state": "backfilling", "percent": 0, "days_left": None}
        service.sessions_backfill.chunk = DAY  # fewer steps than the default hours (the test's time)
        service.start()
        deadline = time.monotonic() + 300
        while read_state(service.store).pending:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, service.health(details=True)["sessions_table"]
            time.sleep(0.2)
        assert service.health(details=True)["sessions_table"] is None
        assert service.store.query(MERGED).rows == reference(service.store)
    finally:
        service.stop()


class _Pauses(threading.Event):
    """The worker's stop event, recording the pauses it asks for instead of waiting them out."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout if timeout is not None else -1.0)
        return self.is_set()


def test_run_pauses_to_keep_to_its_share(tmp_path: Path) -> None:
    """After each step the worker pauses (1 - share) / share times the step's time: with share 0.25 and every
    step taking 0.3 s on the injected clock, 0.9 s; none after the last step."""
    store, _ = old_store(tmp_path / "s")
    try:
        store.migrate()
        worker = SessionsBackfill(store, chunk_seconds=DAY, share=0.25)
        pauses = _Pauses()
        worker.stop_event = pauses
        ticks = iter(i * 0.3 for i in range(10_000))
        worker.run(clock=lambda: next(ticks))
        assert read_state(store).pending is False  # type: ignore[union-attr]
        steps = read_state(store).step - 1  # type: ignore[union-attr]  # records after migration 12's
        assert len(pauses.asked) == steps - 1 and steps > 3
        assert all(abs(p - 0.9) < 1e-9 for p in pauses.asked)
    finally:
        store.close()
