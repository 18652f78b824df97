"""The shipper tests' store (chDB in a temp folder, migrated) and settings (small batches, no age limit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChdbStore]:
    s = ChdbStore(tmp_path / "data" / "store")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", batch_max_rows=1000, max_event_age_days=100_000)
