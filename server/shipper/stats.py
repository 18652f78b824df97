"""The shipper's figures, as `/health` and `/metrics` read them: events inserted, dead-lettered and dropped,
batches (and those the store refused for their content), the lag of the last batch, the visibility
histogram (receive time, just before the collector's 204, to insert acknowledged), whether the store was
reachable at the last try and its last error, and when the shipper last made progress (for the stall).

Written by the shipper's thread only; read by the metrics and health handlers (single values, no lock).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the visibility histogram: receive time (just before the 204) -> insert acknowledged.
VISIBLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(slots=True)
class ShipperStats:
    inserted: int = 0
    dead: int = 0
    dropped: int = 0
    batches: int = 0
    lag_seconds: float = 0.0
    last_error: str = ""
    store_up: bool = True
    refused_batches: int = 0  # batches the store refused for their content, split to find the bad rows
    # Wall-clock time the checkpoint last advanced or the spool was last seen fully shipped.
    progress_at: float = 0.0
    # Events per VISIBLE_BUCKETS interval (not cumulative; beyond the last bound only in `inserted`), and the sum.
    visible_buckets: list[int] = field(default_factory=lambda: [0] * len(VISIBLE_BUCKETS))
    visible_sum: float = 0.0

    def observe_visible(self, received_at: list[float], now: float) -> None:
        buckets = self.visible_buckets
        total = 0.0
        for when in received_at:
            delay = now - when
            total += delay
            i = bisect_left(VISIBLE_BUCKETS, delay)
            if i < len(buckets):
                buckets[i] += 1
        self.visible_sum += total

    def count_batch(
        self, rows: list[dict[str, Any]], dead: int, dropped: int, oldest_ms: int, acked_at: float, now: float
    ) -> None:
        """A committed batch: its rows became visible at `acked_at`; `now` is the wall-clock time (seconds)."""
        self.observe_visible([row["received_at"] for row in rows], acked_at)
        self.inserted += len(rows)
        self.dead += dead
        self.dropped += dropped
        self.batches += 1
        self.lag_seconds = max(0.0, now - oldest_ms / 1000) if oldest_ms else 0.0
