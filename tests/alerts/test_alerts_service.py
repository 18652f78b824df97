"""The store process (`pixel serve`, `pixel ship`) runs the alert round by itself: a drop present at its start
reaches the webhook, signed, without any API call (own module: chDB opens one store folder per process at a
time, so this test needs its own after the API module's store is closed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pixel.server.alerts import rules
from pixel.server.api.app import open_meta
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore
from tests.alerts.receivers import webhook_receiver
from tests.alerts.traffic import NOW, events, hourly

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SECRET = "whsec-0123456789abcdef"
DROP_FROM = NOW.replace(hour=9, minute=0)


def test_store_service_runs_the_round(tmp_path: Path) -> None:
    """`pixel serve`'s store process starts the alert loop: a drop present at its start reaches the webhook, and
    so does its own data folder's disk judged against a threshold above what is free (100 %)."""
    from pixel.server.storeservice import StoreService

    store = ChdbStore(tmp_path / "store")
    store.migrate()
    store.insert_rows("events", events("dropped.example", hourly(12, DROP_FROM, 0.1)))
    settings = Settings(data_dir=tmp_path)
    meta = open_meta(settings)
    meta.insert("sites", {"domain": "dropped.example", "name": "D", "timezone": "UTC", "created_at": 0.0})
    # Ingestion off: the planted drop also leaves the last 90 minutes without events, which the annotation
    # observer (its own thread) may or may not have judged a gap by the time of the round.
    rules.save(
        meta,
        rules.Rules(
            disk=rules.DiskRule(min_free_percent=100.0), ingestion=rules.IngestionRule(enabled=False)
        ),
        0.0,
    )
    with webhook_receiver(SECRET, NOW.timestamp()) as hook:
        meta.insert(
            "alert_channels",
            {"kind": "webhook", "name": "ops", "url": hook.url, "secret": SECRET, "created_at": 0.0},
        )
        service = StoreService(settings, store, clock=NOW.timestamp)
        service.start()
        try:
            deadline = time.monotonic() + 60
            while len(hook.accepted) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            service.stop()
        assert [a["json"]["kind"] for a in hook.accepted] == ["drop", "disk_filling"]
        assert hook.accepted[1]["json"]["target"] == str(settings.data_dir)
    # stop() joined every thread it started before closing the store (an observer left running used to call
    # the closed store, which opened chDB on its folder again and so held the process's chDB: CI, stop 36)
    started = {t.name: t.is_alive() for t in service._threads}
    assert started == {
        "shipper": False,
        "site-retention": False,
        "sessions-backfill": False,
        "auto-annotations": False,
        "alerts": False,
    }
    other = ChdbStore(tmp_path / "other")  # this process's chDB is free for another folder
    try:
        assert other.scalar("SELECT 3") == 3
    finally:
        other.close()
