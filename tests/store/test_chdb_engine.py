"""What only the embedded engine does: one process per data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.store.chdb_engine import ChdbStore, EngineHeld, FolderInUse


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


def test_a_second_folder_in_one_process_is_refused_clearly_and_left_free(tmp_path: Path) -> None:
    """chDB opens one folder per process: a store on another folder is refused with the folder held named, and
    the refused folder is not left locked (after the first store closes, it opens in this same process)."""
    first = ChdbStore(tmp_path / "first")
    try:
        with pytest.raises(EngineHeld) as info:
            ChdbStore(tmp_path / "second")
        assert str(info.value) == (
            f"this process already holds the chDB store folder {tmp_path / 'first'} "
            "(chDB opens one folder per process); close that store first"
        )
        assert first.scalar("SELECT 1") == 1  # the holder is unaffected
        with pytest.raises(EngineHeld):  # refused again, not "in use by another Pixel process"
            ChdbStore(tmp_path / "second")
    finally:
        first.close()
    second = ChdbStore(tmp_path / "second")
    try:
        assert second.scalar("SELECT 2") == 2
    finally:
        second.close()
