"""The import's cyclic-GC pass per batch (`run.batch_gc`): the young generations after each batch, a full pass
only every `FULL_GC_EVERY`-th batch, and a batch's cyclic garbage freed at that batch's end either way."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from pixel.server.importer import run
from pixel.server.importer.hits import Source
from pixel.server.importer.sources import ACCESSLOG, SOURCES, accesslog_line
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

SITE = "example.com"
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class Cycle:
    """An object in a reference cycle with itself: only the cyclic GC frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.parametrize("batches", [3, 12])
def test_each_batch_ends_with_a_young_pass_and_every_tenth_with_a_full_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: int
) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "access.log"
    path.write_text(
        "".join(
            f"203.0.113.{i % 200 + 1} - - [01/Jan/2023:{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
            f'"GET /page/{i} HTTP/1.1" 200 512 "-" "{AGENT}"\n'
            for i in range(50 * batches)
        )
    )
    passes: list[int] = []  # generation of each collection run while the GC is paused (the import's own)
    alive: list[weakref.ref[Cycle]] = []  # one cycle made on each batch's first line
    freed_by_next_batch: list[bool] = []
    seen = [0]

    def parser(text: str) -> Any:
        if seen[0] % 50 == 0:
            if alive:
                freed_by_next_batch.append(alive[-1]() is None)
            alive.append(weakref.ref(Cycle()))
        seen[0] += 1
        return accesslog_line(text)

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not gc.isenabled():
            passes.append(info["generation"])

    monkeypatch.setitem(
        SOURCES, "accesslog", Source("accesslog", ACCESSLOG.what, ACCESSLOG.check, lambda _path: parser)
    )
    store = ChdbStore(tmp_path / "data" / "store")
    store.migrate()
    gc.callbacks.append(note)
    try:
        record = run.run(settings, store, run.start(settings, store, path, SITE), batch_lines=50)
    finally:
        gc.callbacks.remove(note)
        store.close()
    assert record.status == "done" and seen[0] == 50 * batches
    expected = [2 if n % run.FULL_GC_EVERY == 0 else 1 for n in range(1, batches + 1)]
    assert passes == expected
    assert freed_by_next_batch == [True] * (batches - 1)
    assert alive[-1]() is None  # the last batch's too, by its own pass
