"""The batch cycle: the one place that states the order at-least-once delivery rests on.

At least once, without visible duplicates. Every batch goes through these steps, in this order, and only
`BatchCycle.turn` orders them (the loop, `Shipper.run`, and `Shipper.step` both go through it):

1. **named**: the batch the checkpoint holds as `pending` (left by a crash or a failed insert) is replayed
   from its spool ranges, with its token; else a new batch is planned past what is committed and what is
   in flight, its token derived from its ranges (`dedup_token`);
2. **begun**: its ranges and token saved in the checkpoint as `pending`, before any of its rows is sent;
3. **inserted** under its token (`inserter.py`);
4. **committed**: the offsets advanced past its ranges and `pending` cleared, in one checkpoint save; then
   the sealed segments it finished are deleted, and the raw IPs they held with them.

What a crash costs: nothing is lost, and nothing is duplicated for readers. A crash before step 2 costs
the reading: the batch is planned again from the same offsets. Between steps 2 and 4 the restart replays
exactly the pending batch with the same token, and the store drops the insert if it had landed (a batch
split because the store refused some of its rows makes the same parts with the same part tokens,
`inserter.py`). After step 4 the batch is done. Client retries (the same `event_id`) collapse in the
ReplacingMergeTree and readers use FINAL (`pixel.server.store.schema`). A segment of the pending batch
deleted by hand meanwhile is skipped, with an error in the log: its records are the only loss.

Pipelining: step 1 of the next batch may run while the previous batch is being inserted (in a thread: the
engines release the GIL), but its steps 2 to 4 wait for the previous batch's step 4. The checkpoint has one
`pending` slot, so at most one batch is in flight: the one it names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from pixel.server.shipper.checkpoint import Checkpoint, Pending
from pixel.server.shipper.inserter import BatchInserter
from pixel.server.shipper.reader import Batch, SpoolReader
from pixel.server.shipper.segments import Segment
from pixel.server.shipper.stats import ShipperStats
from pixel.server.store import dedup_token

Insert = Callable[[Batch, str], None]
# Starts `insert(batch, token)` and returns its future: in a thread (the loop), or at once (`step`).
Launch = Callable[[Insert, Batch, str], "Future[None]"]


class Pacer(Protocol):
    """When a new batch may be planned (the loop's batch time bound); replays are never held back."""

    def before_plan(self) -> None: ...

    def after_plan(self, batch: Batch) -> None: ...


@dataclass(slots=True)
class InFlight:
    """A begun batch (named `pending` in the checkpoint) whose insert was launched."""

    batch: Batch
    token: str
    insert: Future[None]


def insert_now(insert: Insert, batch: Batch, token: str) -> Future[None]:
    """A `Launch` that inserts at once in the caller's thread; an error is raised from here."""
    insert(batch, token)
    done: Future[None] = Future()
    done.set_result(None)
    return done


class BatchCycle:
    def __init__(
        self,
        checkpoint: Checkpoint,
        reader: SpoolReader,
        inserter: BatchInserter,
        stats: ShipperStats,
        clock: Callable[[], float],
    ) -> None:
        self.checkpoint = checkpoint
        self.reader = reader
        self.inserter = inserter
        self.stats = stats
        self.clock = clock

    def turn(
        self,
        inflight: InFlight | None,
        launch: Launch,
        pacer: Pacer | None = None,
        committed: Callable[[int], None] | None = None,
    ) -> InFlight | None:
        """One turn of the cycle: name the next batch (step 1); wait for the batch in flight, if any, and
        commit it (step 4 of the previous batch; then `committed` is told its count); begin the next batch
        (2) and launch its insert (3). Returns the batch now in flight; None when the spool held nothing new.

        An error leaves the checkpoint as it was at that point: a batch begun and not committed stays
        `pending` and is the next one named (in the loop, once the caller has dropped `inflight`)."""
        batch, token = self.next_batch(inflight, pacer)
        if inflight is not None:
            shipped = self.finish(inflight)
            if committed is not None:
                committed(shipped)
        if not batch.ranges:
            self.caught_up(batch.finished)
            return None
        self.begin(batch, token)
        return InFlight(batch, token, launch(self.inserter.insert, batch, token))

    def next_batch(self, inflight: InFlight | None, pacer: Pacer | None = None) -> tuple[Batch, str]:
        """Step 1: the pending batch replayed with its token (when none is in flight), else a new batch
        planned past the committed offsets and the batch in flight. A `pending` that names no range (a
        checkpoint edited by hand) names no batch: a new one is planned, and replaces it when begun."""
        pending = self.checkpoint.pending
        if pending is not None and pending.ranges and inflight is None:
            return self.reader.replay(pending.ranges), pending.token
        if pacer is not None:
            pacer.before_plan()
        offsets = self.checkpoint.offsets
        if inflight is not None:
            offsets = offsets | {name: end for name, _start, end in inflight.batch.ranges}
        batch = self.reader.plan(offsets)
        if pacer is not None:
            pacer.after_plan(batch)
        return batch, dedup_token(batch.ranges)

    def begin(self, batch: Batch, token: str) -> None:
        """Step 2: name the batch in the checkpoint before inserting it, so a crash replays exactly it."""
        self.checkpoint.pending = Pending(token, batch.ranges)
        self.checkpoint.save()

    def finish(self, inflight: InFlight) -> int:
        """Wait for the batch's insert (its error is raised here), then commit it (step 4)."""
        inflight.insert.result()
        return self.commit(inflight.batch)

    def commit(self, batch: Batch) -> int:
        """Step 4: the batch is in the store: advance the offsets, clear `pending`, delete finished segments.
        Returns the records it accounted for (rows, dead letters, drops)."""
        for segment, _start, end in batch.ranges:
            self.checkpoint.offsets[segment] = end
        self.checkpoint.pending = None
        self.checkpoint.save()
        self.stats.progress_at = self.clock()
        now = time.time()
        self.stats.count_batch(
            batch.rows, len(batch.dead), batch.dropped, batch.oldest_ms, batch.acked_at or now, now
        )
        self.cleanup(batch.finished)
        return len(batch.rows) + len(batch.dead) + batch.dropped

    def caught_up(self, finished: list[Segment]) -> None:
        """Nothing new in the spool: progress as far as the stall is concerned; delete finished segments."""
        self.stats.progress_at = self.clock()
        self.cleanup(finished)

    def cleanup(self, finished: list[Segment]) -> None:
        """Delete fully shipped sealed segments (and with them the raw IPs they held)."""
        if not finished:
            return
        for segment in finished:
            segment.path.unlink(missing_ok=True)
            self.checkpoint.offsets.pop(segment.name, None)
        self.checkpoint.save()
