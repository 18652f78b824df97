"""The loop (`Shipper.run`) and `Shipper.step` go through one batch cycle: the same spool, shipped by each
through the same crashes, gives the same checkpoints, the same inserts in the same order, and the same
stored rows. And a store outage is waited out with a pause that grows, said once, not once per retry.
Real chDB and spool in tmp folders; a "crash" is a SystemExit raised at a chosen point (as in test_poison)."""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pixel.server.enrich.iphash import DailySalt
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.shipper.checkpoint import Checkpoint
from pixel.server.spool import SpoolWriter, encode_record
from pixel.server.store import StoreUnavailable
from pixel.server.store.chdb_engine import ChdbStore

NOW_MS = 1_764_260_000_000  # a pinned receive time: the salts, and so the rows, do not depend on the day


class Trace:
    """What one shipping "process" did across its restarts, in order: the checkpoint states it persisted
    (a save that changes nothing is not a new state) and the inserts the store acknowledged. `crash_at`
    names where it dies: ("begin" | "commit", n) before the n-th save that begins / commits a batch,
    ("insert", n) before the n-th insert reaches the store, ("landed", n) right after it landed."""

    def __init__(self, crash_at: set[tuple[str, int]]) -> None:
        self.crash_at = crash_at
        self.counts: Counter[str] = Counter()
        self.events: list[tuple[Any, ...]] = []
        self.crashes: list[tuple[str, int]] = []
        self.state: Any = None

    def point(self, kind: str) -> None:
        self.counts[kind] += 1
        if (kind, self.counts[kind]) in self.crash_at:
            self.crashes.append((kind, self.counts[kind]))
            raise SystemExit(f"crash at {kind} {self.counts[kind]}")


class TracedCheckpoint(Checkpoint):
    trace: Trace

    def save(self) -> None:
        before = Checkpoint.load(self.path).pending
        if before is None and self.pending is not None:
            self.trace.point("begin")
        elif before is not None and self.pending is None:
            self.trace.point("commit")
        super().save()
        state = orjson.loads(self.path.read_bytes())
        if state != self.trace.state:
            self.trace.state = state
            self.trace.events.append(("checkpoint", state))


class TracedStore(ChdbStore):
    trace: Trace

    def insert_json(self, table: str, data: bytes, *, token: str | None = None, settings: Any = None) -> None:
        self.trace.point("insert")
        super().insert_json(table, data, token=token, settings=settings)
        self.trace.events.append(("insert", table, token, len(orjson.loads(data))))
        self.trace.point("landed")


def record(received_ms: int, body: bytes, flags: bytes = b"") -> bytes:
    return encode_record(
        received_ms, b"198.51.100.7", b"Mozilla/5.0 (X11; Linux)", b"en", b"", b"", flags, body
    )


def event(i: int, site: str = "cycle.example") -> dict[str, Any]:
    return {"event_name": "pageview", "site": site, "page": {"url": f"https://{site}/p/{i}"}}


def make_spool(data: Path) -> tuple[Settings, int]:
    """Two sealed segments (good events, single and in arrays; an unreadable record; an event the format
    refuses; a DNT event of a site that honours it; a torn last record) and one open segment. Returns the
    settings and the number of events that are stored."""
    settings = settings_for(data)
    first = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for i in range(6):
        first.append(record(NOW_MS + i, orjson.dumps(event(i))))
    first.append(record(NOW_MS + 6, b"{not json"))
    first.append(record(NOW_MS + 7, orjson.dumps([event(7), event(8), {"site": "cycle.example"}, event(9)])))
    first.append(record(NOW_MS + 8, orjson.dumps(event(10, "dnt.example")), flags=b"d"))
    first.rotate()
    first.close()
    second = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for i in range(11, 18):
        second.append(record(NOW_MS + i, orjson.dumps(event(i))))
    second.rotate()
    second.close()
    with open(max(settings.spool_dir.glob("*.seg")), "ab") as f:
        f.write(b'1764260000099\t198.51.100.7\tua\ten\t\t\t\t{"torn')
    third = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for i in range(18, 23):
        third.append(record(NOW_MS + i, orjson.dumps(event(i))))
    third.close()
    sealed = max(settings.spool_dir.glob("*.seg"))
    sealed.rename(sealed.with_suffix(".open"))  # open again: the test holds its lock, as a live worker would
    DailySalt(settings.state_dir / "salts").key_for(NOW_MS)  # the day's salt, copied with the data folder
    return settings, 21


def settings_for(data: Path) -> Settings:
    return Settings(
        data_dir=data,
        batch_max_rows=4,
        batch_max_seconds=0.0,
        store_retry_seconds=0.001,
        dnt_sites=("dnt.example",),
        max_event_age_days=100_000,
    )


def drained(shipper: Shipper) -> bool:
    spool = shipper.settings.spool_dir
    return (
        shipper.checkpoint.pending is None and shipper.backlog_bytes() == 0 and not any(spool.glob("*.seg"))
    )


def by_steps(shipper: Shipper) -> None:
    for _ in range(100):
        shipper.step()
        if drained(shipper):
            return
    raise AssertionError("step() did not drain the spool")


def by_loop(shipper: Shipper) -> None:
    died: list[BaseException] = []

    def target() -> None:
        try:
            shipper.run()
        except SystemExit as exc:
            died.append(exc)

    thread = threading.Thread(target=target, name="shipper-under-test")
    thread.start()
    deadline = time.monotonic() + 60
    while thread.is_alive() and not drained(shipper) and time.monotonic() < deadline:
        time.sleep(0.002)
    shipper.stop()
    thread.join(30)
    assert not thread.is_alive()
    if died:
        raise died[0]
    assert drained(shipper), "run() did not drain the spool"


def ship(data: Path, crash_at: set[tuple[str, int]], loop: bool) -> dict[str, Any]:
    """Ship the spool of `data` with run() or step(), restarting after each crash, until it is drained."""
    settings = settings_for(data)
    trace = Trace(crash_at)
    store = TracedStore(settings.store_dir)
    store.migrate()
    store.trace = trace
    open_segment = next(settings.spool_dir.glob("*.open"))
    lock = open(open_segment, "rb")  # held for the whole run, as a live collector worker holds it
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        for _ in range(len(crash_at) + 1):
            checkpoint = TracedCheckpoint.load(settings.checkpoint_path)
            checkpoint.trace = trace
            shipper = Shipper(settings, store, checkpoint=checkpoint)
            try:
                (by_loop if loop else by_steps)(shipper)
                break
            except SystemExit:
                continue  # the restart: a new Shipper from what is on disk
        else:
            raise AssertionError("still crashing")
        return {
            "events": store.query("SELECT * FROM events ORDER BY event_id").rows,
            "raw": store.query("SELECT count(), uniqExact(event_id) FROM events").rows,
            "dead": store.query(
                "SELECT segment, offset, reason, payload, received_at FROM dead_letters ORDER BY ALL"
            ).rows,
            "trace": trace.events,
            "crashes": trace.crashes,
            "checkpoint": orjson.loads(settings.checkpoint_path.read_bytes()),
            "spool": sorted(p.name for p in settings.spool_dir.iterdir()),
            "open": (open_segment.stem, open_segment.stat().st_size),
        }
    finally:
        lock.close()
        store.close()


CRASHES = {
    "none": set(),
    "before inserts": {("insert", 1), ("insert", 4), ("insert", 5)},
    "after inserts landed": {("landed", 2), ("landed", 3), ("landed", 7)},
    "before begins": {("begin", 2), ("begin", 4)},
    "before commits": {("commit", 1), ("commit", 3), ("commit", 4)},
    "everywhere": {("landed", 1), ("commit", 2), ("begin", 3), ("insert", 6), ("commit", 5), ("landed", 9)},
}


@pytest.mark.parametrize("crashes", CRASHES.values(), ids=CRASHES.keys())
def test_run_and_step_ship_the_same_through_the_same_crashes(
    tmp_path: Path, crashes: set[tuple[str, int]]
) -> None:
    _template, stored = make_spool(tmp_path / "template")
    shutil.copytree(tmp_path / "template", tmp_path / "steps")
    shutil.copytree(tmp_path / "template", tmp_path / "loop")
    by_step = ship(tmp_path / "steps", crashes, loop=False)
    by_run = ship(tmp_path / "loop", crashes, loop=True)

    assert sorted(by_step["crashes"]) == sorted(by_run["crashes"]) == sorted(crashes)  # each one happened
    assert by_run["trace"] == by_step["trace"]  # the same checkpoints and inserts, in the same order
    assert by_run["events"] == by_step["events"]
    assert by_run["dead"] == by_step["dead"]
    assert by_run["checkpoint"] == by_step["checkpoint"]
    assert by_run["spool"] == by_step["spool"]
    # and what they agree on is right: every event once, the bad records dead-lettered, the sealed
    # segments deleted, the open one kept and shipped to its end
    assert by_step["raw"] == [[stored, stored]]  # without FINAL: no insert landed twice
    assert [d[2] for d in by_step["dead"]] == [
        "unreadable record: unexpected character, expected a string key: line 1 column 2 (char 1)",
        "event_name is missing or not a non-empty string",
        "torn record at the end of a segment",
    ]
    name, size = by_step["open"]
    assert by_step["checkpoint"] == {"offsets": {name: size}, "pending": None}
    assert by_step["spool"] == [f"{name}.open"]
    begins = [e for e in by_step["trace"] if e[0] == "checkpoint" and e[1]["pending"] is not None]
    assert len(begins) == 5  # a replay begins no new batch


# -- store outages ---------------------------------------------------------------------------------------


class RecordingEvent(threading.Event):
    """The shipper's stop event, recording every pause the loop asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.pauses.append(round(timeout, 6))
        return super().wait(timeout)


class FlakyStore(ChdbStore):
    """Unavailable for the inserts numbered in `down` (counted from 1); records, at each insert it is asked
    for, whether the shipper's figures said the store was up."""

    down: set[int]
    calls: int = 0
    shipper: Shipper
    seen_up: list[bool]

    def insert_json(self, table: str, data: bytes, *, token: str | None = None, settings: Any = None) -> None:
        self.calls += 1
        self.seen_up.append(self.shipper.stats.store_up)
        if self.calls in self.down:
            raise StoreUnavailable("Code: 210. Connection refused (the store is down)")
        super().insert_json(table, data, token=token, settings=settings)


def test_a_store_outage_is_waited_out_with_a_growing_pause_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails before the batch cycle: each retry replayed the pending batch, declared the store reachable
    again before inserting it (logging it, and turning the figures back to up), and reset the pause: the
    pause never grew and the log said 'down' and 'reachable again' once per retry."""
    settings = settings_for(tmp_path / "data")
    for start in (0, 4):  # two batches (4 rows a batch), one segment each
        writer = SpoolWriter(settings.spool_dir, fsync_interval=0)
        for i in range(start, start + 4):
            writer.append(record(NOW_MS + i, orjson.dumps(event(i))))
        writer.rotate()
        writer.close()
    store = FlakyStore(settings.store_dir)
    store.migrate()
    store.down = {1, 2, 3, 4, 6, 7}  # the first batch lands at the 5th try, the second at the 3rd
    store.seen_up = []
    shipper = Shipper(settings, store)
    store.shipper = shipper
    shipper.stop_event = RecordingEvent()
    caplog.set_level(logging.INFO, logger="pixel")
    try:
        by_loop(shipper)
        assert store.query("SELECT count(), uniqExact(event_id) FROM events").rows == [[8, 8]]
    finally:
        store.close()
    pauses = [p for p in shipper.stop_event.pauses if p != 0.05]  # 0.05: the pause of a caught-up loop
    assert pauses == [0.001, 0.002, 0.004, 0.008, 0.001, 0.002]  # doubling; starting over after a landing
    assert store.seen_up == [True, False, False, False, False, True, False, False]
    said = [r.getMessage() for r in caplog.records if r.name.startswith("pixel.server.shipper")]
    assert said == [
        "shipper: Code: 210. Connection refused (the store is down); the spool keeps everything, retrying",
        "shipper: the store is reachable again",
        "shipper: Code: 210. Connection refused (the store is down); the spool keeps everything, retrying",
        "shipper: the store is reachable again",
    ]
    assert shipper.stats.store_up is True and shipper.stats.batches == 2


def test_any_other_failure_is_paced_the_same_way(tmp_path: Path) -> None:
    """A checkpoint that cannot be saved (its temp file's path is a folder): the pause doubles up to its
    bound, and the store is never said to be down for it."""
    settings = settings_for(tmp_path / "data")
    writer = SpoolWriter(settings.spool_dir, fsync_interval=0)
    writer.append(record(NOW_MS, orjson.dumps(event(0))))
    writer.rotate()
    writer.close()
    blocker = settings.checkpoint_path.with_suffix(".tmp")
    blocker.mkdir(parents=True)
    store = ChdbStore(settings.store_dir)
    store.migrate()
    shipper = Shipper(settings, store)
    shipper.stop_event = RecordingEvent()
    thread = threading.Thread(target=shipper.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(shipper.stop_event.pauses) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        blocker.rmdir()
        while not drained(shipper) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        shipper.stop()
        thread.join(30)
    try:
        assert store.query("SELECT count() FROM events").rows == [[1]]
    finally:
        store.close()
    assert shipper.stop_event.pauses[:6] == [0.001, 0.002, 0.004, 0.008, 0.016, 0.032]
    assert shipper.stats.store_up is True and "shipper-checkpoint.tmp" in shipper.stats.last_error


@pytest.mark.parametrize("loop", [False, True], ids=["step", "run"])
def test_a_pending_batch_that_names_no_range_does_not_block_shipping(tmp_path: Path, loop: bool) -> None:
    """A checkpoint edited by hand to a `pending` without ranges: before the batch cycle the loop replayed
    that empty batch forever (shipping nothing, never clearing it) while step() inserted and cleared it."""
    settings = settings_for(tmp_path / "data")
    writer = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for i in range(3):
        writer.append(record(NOW_MS + i, orjson.dumps(event(i))))
    writer.rotate()
    writer.close()
    settings.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    settings.checkpoint_path.write_bytes(b'{"offsets": {}, "pending": {"token": "t", "ranges": []}}')
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        shipper = Shipper(settings, store)
        (by_loop if loop else by_steps)(shipper)
        assert store.query("SELECT count() FROM events").rows == [[3]]
    finally:
        store.close()
    assert orjson.loads(settings.checkpoint_path.read_bytes()) == {"offsets": {}, "pending": None}
