"""What only the embedded engine does: one process per data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.store.chdb_engine import ChdbStore, FolderInUse


def test_second_store_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = ChdbStore(tmp_path / "store")
    try:
        with pytest.raises(FolderInUse) as info:
            ChdbStore(tmp_path / "store")
        assert str(info.value) == (
            f"the store folder {tmp_path / 'store'} is in use by another Pixel process "
            "(chDB allows one process per folder); stop it first"
        )
        assert first.scalar("SELECT 1") == 1  # the owner is unaffected
    finally:
        first.close()
    second = ChdbStore(tmp_path / "store")  # free again once the owner closed it
    try:
        assert second.scalar("SELECT 2") == 2
    finally:
        second.close()
