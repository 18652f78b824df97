"""The shipper: spool segments -> parsed, validated, enriched rows -> batched inserts -> checkpoint.

At least once, without visible duplicates; nothing here runs on the collector's hot path. The guarantee
and what a crash costs are stated, and kept, where they are implemented:
- `cycle.py`: the order each batch goes through (replay or plan, begin, insert, commit), the only place
  that states it; a crash between begin and commit replays exactly the pending batch with its token.
- `reader.py`: spool ranges -> a batch of rows, dead letters and drops; one bad record never blocks the
  others.
- `inserter.py`: a batch -> the store; a batch the store refuses is split down to the rows it refuses,
  a store that cannot write is retried, never split.
- `health.py`: store outages waited out with a growing pause; progress watched (the stall).
- `stats.py`: the figures `/health` and `/metrics` read.
- `checkpoint.py` (the persisted offsets and pending batch), `segments.py`, `normalize.py`, `deadletter.py`.

`Shipper` puts them together: `run` is the loop of the store process (pipelined, outages waited out),
`step` one synchronous turn of the same cycle (tests, benchmarks). The clock that stamps
progress is injectable (`clock`), for tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pixel.server.enrich import Enricher
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Checkpoint
from pixel.server.shipper.cycle import BatchCycle, InFlight, insert_now
from pixel.server.shipper.health import StoreHealth, backlog_bytes, oldest_unshipped_ms, stalled_for
from pixel.server.shipper.inserter import BatchInserter, encode_rows, store_cannot_write
from pixel.server.shipper.reader import Batch, SpoolReader
from pixel.server.shipper.stats import VISIBLE_BUCKETS, ShipperStats
from pixel.server.store import Store, StoreUnavailable

__all__ = ["VISIBLE_BUCKETS", "Batch", "Shipper", "ShipperStats", "encode_rows", "store_cannot_write"]

log = logging.getLogger(__name__)

CAUGHT_UP_PAUSE = 0.05  # seconds the loop waits before looking at a spool it found fully shipped again


class Shipper:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        enricher: Enricher | None = None,
        clock: Callable[[], float] = time.time,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.enricher = enricher or Enricher(settings)
        self.checkpoint = checkpoint if checkpoint is not None else Checkpoint.load(settings.checkpoint_path)
        self.clock = clock
        self.stats = ShipperStats(progress_at=clock())
        self.stop_event = threading.Event()
        self.reader = SpoolReader(settings, self.enricher)
        self.inserter = BatchInserter(store, self.stats)
        self.cycle = BatchCycle(self.checkpoint, self.reader, self.inserter, self.stats, clock)
        self.health = StoreHealth(self.stats, settings.store_retry_seconds)

    def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Ship until `stop_event` is set. Store outages are waited out, never fatal.

        Pipelined: while one batch is being inserted (in a thread), the next one is read, parsed and
        enriched (`cycle.py`). A failed turn drops the batch in flight: it stays `pending` and is replayed.
        """
        pacer = BatchTimer(self.settings, self.stop_event)

        def committed(shipped: int) -> None:  # before the next batch is begun
            self.health.insert_acknowledged()
            if on_batch is not None:
                on_batch(shipped)

        inflight: InFlight | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="store-insert") as executor:
            while not self.stop_event.is_set():
                try:
                    inflight = self.cycle.turn(inflight, executor.submit, pacer, committed)
                except StoreUnavailable as exc:
                    inflight = None  # its batch stays `pending` in the checkpoint and is replayed
                    self.stop_event.wait(self.health.store_down(exc))
                    continue
                except Exception as exc:  # keep shipping whatever happens; say so loudly
                    inflight = None
                    self.stop_event.wait(self.health.turn_failed(exc))
                    continue
                if inflight is None:  # caught up with the spool
                    self.stop_event.wait(CAUGHT_UP_PAUSE)
            if inflight is not None:  # let the last insert finish and record it
                try:
                    self.cycle.finish(inflight)
                except Exception:
                    log.warning("shipper: the last batch stays pending; it is replayed at the next start")

    def stop(self) -> None:
        self.stop_event.set()

    def step(self) -> int:
        """One turn of the cycle, synchronously: insert one batch (a replayed pending one first) and commit
        it. Returns its rows, dead letters and drops; 0 when the spool held nothing new."""
        inflight = self.cycle.turn(None, insert_now)
        return self.cycle.finish(inflight) if inflight is not None else 0

    # -- figures ----------------------------------------------------------------------------

    def backlog_bytes(self) -> int:
        return backlog_bytes(self.settings.spool_dir, self.checkpoint.offsets)

    def oldest_unshipped_ms(self) -> int:
        """The receive time (epoch ms) of the oldest record not shipped yet; 0 when the spool is shipped."""
        return oldest_unshipped_ms(self.settings.spool_dir, self.checkpoint.offsets)

    def stalled_for(self, backlog: int | None = None) -> float:
        """Seconds since the checkpoint last advanced (or the spool was last seen shipped), while the spool
        holds unshipped data; 0 when it holds none."""
        if backlog is None:
            backlog = self.backlog_bytes()
        return stalled_for(backlog, self.clock(), self.stats.progress_at)


class BatchTimer:
    """The loop's time bound of a batch: a new batch is planned once the last plan is `batch_max_seconds`
    old, or at once when the last one was full (`batch_max_rows`)."""

    def __init__(self, settings: Settings, stop_event: threading.Event) -> None:
        self.settings = settings
        self.stop_event = stop_event
        self.next_plan = 0.0
        self.planned_at = 0.0

    def before_plan(self) -> None:
        now = time.monotonic()
        if now < self.next_plan:
            self.stop_event.wait(self.next_plan - now)
        self.planned_at = time.monotonic()

    def after_plan(self, batch: Batch) -> None:
        full = len(batch.rows) >= self.settings.batch_max_rows
        self.next_plan = self.planned_at if full else self.planned_at + self.settings.batch_max_seconds
