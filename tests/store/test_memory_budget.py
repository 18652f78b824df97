"""The embedded store's memory budget (server/store/memory.py): each statement's aggregation spills to disk
past half of it, with the same answers; configured by PIXEL_STORE_MEMORY_MB, 0 leaving chDB's own bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.settings import STORE_MEMORY_MAX_MB, Settings, SettingsError
from pixel.server.store import memory, open_store
from pixel.server.store.chdb_engine import ChdbStore

MIB = 1024 * 1024
# Many keys, each with an exact set: a few hundred MiB of aggregation state in one GROUP BY.
GROUPED = """SELECT sum(c), count(), sum(u), sum(k) FROM (
    SELECT number % 300000 AS k, count() AS c, uniqExact(number) AS u FROM numbers(3000000) GROUP BY k)"""
# What GROUPED must answer: 3,000,000 numbers in 300,000 keys of 10 distinct numbers each.
GROUPED_ANSWER = [3_000_000, 300_000, 3_000_000, sum(range(300_000))]


def spilled_parts(store: ChdbStore) -> int:
    """Parts the engine has written to disk for aggregations, so far in this process."""
    rows = store.query("SELECT value FROM system.events WHERE event = 'ExternalAggregationWritePart'").rows
    return int(rows[0][0]) if rows else 0


def group_by_threshold(store: ChdbStore) -> int:
    return int(store.scalar("SELECT getSetting('max_bytes_before_external_group_by')"))


@pytest.mark.parametrize(
    ("budget_mb", "expected"),
    [
        (0, {}),
        (1, {"max_bytes_before_external_group_by": MIB // 2}),
        (1024, {"max_bytes_before_external_group_by": 512 * MIB}),
        (3000, {"max_bytes_before_external_group_by": 1500 * MIB}),
    ],
)
def test_the_budget_becomes_the_spill_threshold(budget_mb: int, expected: dict[str, int]) -> None:
    assert memory.spill_settings(budget_mb) == expected
    assert memory.set_statements(budget_mb) == [f"SET {k} = {v}" for k, v in expected.items()]


@pytest.mark.parametrize("budget_mb", [-1, STORE_MEMORY_MAX_MB + 1, 2**64])
def test_a_budget_out_of_range_is_refused(budget_mb: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0 to 1048576 MiB"):
        memory.spill_settings(budget_mb)
    with pytest.raises(ValueError, match="0 to 1048576 MiB"):
        ChdbStore(tmp_path, memory_mb=budget_mb)  # refused before the folder is taken
    assert not (tmp_path / ".pixel-owner.lock").exists()


def test_the_largest_budget_opens_a_store(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path, memory_mb=STORE_MEMORY_MAX_MB)
    try:
        assert group_by_threshold(store) == STORE_MEMORY_MAX_MB * MIB // 2
    finally:
        store.close()


@pytest.mark.parametrize(("budget_mb", "threshold"), [(8, 4 * MIB), (1024, 512 * MIB), (0, 0)])
def test_the_session_carries_the_threshold(tmp_path: Path, budget_mb: int, threshold: int) -> None:
    store = ChdbStore(tmp_path, memory_mb=budget_mb)
    try:
        assert group_by_threshold(store) == threshold  # 0: chDB's own (no byte threshold of its own)
        assert store.spill_budget_mb == budget_mb  # what the raw dashboard runs its branches by
    finally:
        store.close()


def test_a_store_opened_without_a_budget_gets_the_default(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path)
    try:
        assert group_by_threshold(store) == 512 * MIB  # README's default: 1024 MiB, half of it to spill
        assert store.spill_budget_mb == 1024
    finally:
        store.close()
    assert Settings().store_memory_mb == 1024


def test_an_aggregation_past_the_budget_spills_and_answers_the_same(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "small", memory_mb=8)
    try:
        before = spilled_parts(store)
        assert store.query(GROUPED).rows == [GROUPED_ANSWER]
        assert spilled_parts(store) > before  # it went to disk ...
        spilled = spilled_parts(store)
        assert store.query("SELECT count() FROM numbers(1000) GROUP BY number % 10").rows == [[100]] * 10
        assert spilled_parts(store) == spilled  # ... and a small one does not
    finally:
        store.close()


def test_without_a_budget_the_same_aggregation_stays_in_memory(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path, memory_mb=0)
    try:
        before = spilled_parts(store)
        assert store.query(GROUPED).rows == [GROUPED_ANSWER]
        assert spilled_parts(store) == before
    finally:
        store.close()


def test_the_budget_reaches_a_session_opened_again(tmp_path: Path) -> None:
    """A failed statement that leaves output behind makes the store open a new session: it keeps the budget."""
    store = ChdbStore(tmp_path, memory_mb=8)
    try:
        store._session.close()  # what `_drained` does when the old session cannot be reused
        store._session = store._open_session()
        assert group_by_threshold(store) == 4 * MIB
    finally:
        store.close()


def test_the_setting_comes_from_the_environment_and_reaches_the_store(tmp_path: Path) -> None:
    settings = Settings.from_env({"PIXEL_STORE_MEMORY_MB": "64"}, data_dir=tmp_path)
    assert settings.store_memory_mb == 64
    store = open_store(settings, migrate=False)
    try:
        assert group_by_threshold(store) == 32 * MIB  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.mark.parametrize("value", ["-1", "-1024", str(STORE_MEMORY_MAX_MB + 1), str(2**64)])
def test_a_setting_out_of_range_is_refused_with_its_name(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="PIXEL_STORE_MEMORY_MB"):
        Settings.from_env({"PIXEL_STORE_MEMORY_MB": value}, data_dir=tmp_path)
    assert (
        Settings.from_env({"PIXEL_STORE_MEMORY_MB": str(STORE_MEMORY_MAX_MB)}).store_memory_mb
        == STORE_MEMORY_MAX_MB
    )
