"""What only the embedded engine does: one process per data folder, one data folder per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.store.base import StoreError
from pixel.server.store.chdb_engine import ChdbStore, EngineHeld, FolderInUse

# (the second store's folder, what refuses it, its message with {first} and {second} for the folders)
REFUSALS = [
    pytest.param(
        "first",
        FolderInUse,
        "the store folder {second} is in use by another Pixel process "
        "(chDB allows one process per folder); stop it first",
        id="the same folder",
    ),
    pytest.param(
        "second",
        EngineHeld,
        "this process already holds the chDB store folder {first} "
        "(chDB opens one folder per process); close that store first",
        id="another folder in this process",
    ),
]


@pytest.mark.parametrize(("name", "refusal", "message"), REFUSALS)
def test_a_second_store_is_refused_and_opens_once_the_first_is_closed(
    tmp_path: Path, name: str, refusal: type[StoreError], message: str
) -> None:
    """Refused with what to do, the holder unaffected, refused the same way again (a refused open leaves no lock
    behind: it would be refused as 'in use by another Pixel process'), and free once the holder closed."""
    first = ChdbStore(tmp_path / "first")
    try:
        for _ in range(2):
            with pytest.raises(refusal) as info:
                ChdbStore(tmp_path / name)
            assert str(info.value) == message.format(first=tmp_path / "first", second=tmp_path / name)
        assert first.scalar("SELECT 1") == 1
    finally:
        first.close()
    second = ChdbStore(tmp_path / name)
    try:
        assert second.scalar("SELECT 2") == 2
    finally:
        second.close()
