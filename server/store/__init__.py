"""The events store: one interface, two engines (chDB embedded, ClickHouse server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixel.server.store.base import Result, Store, StoreClosed, StoreError, StoreUnavailable, dedup_token

if TYPE_CHECKING:
    from pixel.server.settings import Settings

__all__ = ["Result", "Store", "StoreClosed", "StoreError", "StoreUnavailable", "dedup_token", "open_store"]


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the engine the settings name and bring its schema up to date."""
    store: Store
    if settings.store == "clickhouse":
        from pixel.server.store.clickhouse_engine import ClickHouseStore

        store = ClickHouseStore.from_settings(settings)
    else:
        from pixel.server.store.chdb_engine import ChdbStore

        store = ChdbStore(settings.store_dir, memory_mb=settings.store_memory_mb)
    if migrate:
        store.migrate(settings.retention_days)
    return store
