"""A site's own retention (set through the API) deletes its older events (server/retention.py), real chDB."""

from __future__ import annotations

import time

from pixel.server.api.meta import MetaDB
from pixel.server.retention import SiteRetention
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore


def add_site(meta: MetaDB, domain: str, retention_days: int) -> int:
    return meta.insert(
        "sites",
        {
            "domain": domain,
            "name": domain,
            "timezone": "UTC",
            "allowed_origins": [],
            "honour_dnt": False,
            "honour_gpc": False,
            "excluded_paths": [],
            "excluded_ips": [],
            "retention_days": retention_days,
            "created_at": time.time(),
        },
    )


def events(site: str, ages_days: list[float], now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    return [
        {
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - age * 86400)),
            "site": site,
            "event_id": f"{site}-{i}",
            "event_name": "pageview",
        }
        for i, age in enumerate(ages_days)
    ]


def counts(store: ChdbStore) -> dict[str, int]:
    return {
        site: int(n) for site, n in store.query("SELECT site, count() FROM events FINAL GROUP BY site").rows
    }


def test_each_site_keeps_its_own_number_of_days(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    meta = MetaDB(settings.meta_db_path)
    add_site(meta, "month.example", 30)
    add_site(meta, "week.example", 7)
    add_site(meta, "forever.example", 0)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        ages = [0.1, 6.9, 7.1, 29.9, 30.1, 200]
        for site in ("month.example", "week.example", "forever.example", "unknown.example"):
            store.insert_rows("events", events(site, ages))
        job = SiteRetention(store, settings.meta_db_path)
        assert job.run_once() == {"month.example": 2, "week.example": 4}
        assert counts(store) == {
            "month.example": 4,
            "week.example": 2,
            "forever.example": 6,
            "unknown.example": 6,
        }
        mutations = store.scalar("SELECT count() FROM system.mutations WHERE table = 'events'")
        assert job.run_once() == {"month.example": 0, "week.example": 0}  # nothing older: no new DELETE
        assert store.scalar("SELECT count() FROM system.mutations WHERE table = 'events'") == mutations
        assert job.deleted == 6
    finally:
        store.close()


def test_the_cutoff_is_pixels_clock_not_the_stores(tmp_path) -> None:
    """The reports read the days past a site's retention as empty by Pixel's clock; the deletion uses the
    same clock (injected here: a moment years before the store's own clock), so both agree."""
    settings = Settings(data_dir=tmp_path)
    meta = MetaDB(settings.meta_db_path)
    add_site(meta, "week.example", 7)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        then = 991_396_800.0  # 2001-06-01 12:00 UTC
        store.insert_rows("events", events("week.example", [0.1, 6.99, 7.01, 30], now=then))
        job = SiteRetention(store, settings.meta_db_path)
        assert job.run_once(now=then) == {"week.example": 2}
        assert sorted(r[0] for r in store.query("SELECT event_id FROM events FINAL").rows) == [
            "week.example-0",
            "week.example-1",
        ]
        assert job.run_once(now=then + 0.02 * 86400) == {"week.example": 1}  # 6.99 + 0.02 days old
        assert job.run_once(now=then) == {"week.example": 0}
    finally:
        store.close()


def test_no_metadata_database_deletes_nothing(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        store.insert_rows("events", events("a.example", [400]))
        assert SiteRetention(store, settings.meta_db_path).run_once() == {}
        assert counts(store) == {"a.example": 1}
        assert not settings.meta_db_path.exists()
    finally:
        store.close()


def test_the_store_process_applies_it_at_start(tmp_path) -> None:
    from pixel.server.storeservice import StoreService

    settings = Settings(data_dir=tmp_path)
    add_site(MetaDB(settings.meta_db_path), "week.example", 7)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    store.insert_rows("events", events("week.example", [1, 8, 9]))
    service = StoreService(settings, store)
    service.start()
    try:
        deadline = time.monotonic() + 30
        while service.retention.deleted < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.retention.deleted == 2
        assert counts(store) == {"week.example": 1}
    finally:
        service.stop()
