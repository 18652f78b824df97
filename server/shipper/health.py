"""The shipper's health: the store's outages waited out with a growing pause, and progress watched.

Store down (`StoreHealth`): a failure of the store itself (`StoreUnavailable`) is never fatal and never
dead-letters anything. The batch stays `pending` in the checkpoint and the spool keeps everything; the
shipper says so once (`store_up` false, the error in `last_error`) and tries again after a pause that
doubles at each failure in a row, from `PIXEL_STORE_RETRY_SECONDS` up to `MAX_PAUSE`. Any other error of
a turn is logged with its traceback and paced the same way. The store counts as reachable again only once
an insert has been acknowledged; the pause then starts over.

Progress (`stalled_for`): the wall-clock time since the checkpoint last advanced (or the spool was last
seen fully shipped), while the spool holds unshipped records; `/health` turns `degraded` past
`PIXEL_SHIPPER_STALL_SECONDS`, and `/metrics` shows it with the age of the oldest unshipped record
(`oldest_unshipped_ms`) and the spool's unshipped bytes (`backlog_bytes`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pixel.server.shipper.segments import first_received_ms, list_segments
from pixel.server.shipper.stats import ShipperStats
from pixel.server.spool import unshipped_bytes

log = logging.getLogger(__name__)

MAX_PAUSE = 30.0  # seconds: the longest pause between two tries while failures repeat


class StoreHealth:
    """How long to pause after a failure, and the store's reachability as the figures show it."""

    def __init__(self, stats: ShipperStats, first_pause: float) -> None:
        self.stats = stats
        self.first_pause = first_pause
        self.pause = first_pause

    def store_down(self, exc: Exception) -> float:
        """The store cannot write now: say so once. Returns the pause before the next try."""
        if self.stats.store_up:
            log.error("shipper: %s; the spool keeps everything, retrying", exc)
        self.stats.store_up = False
        return self._failed(exc)

    def turn_failed(self, exc: Exception) -> float:
        """Anything else went wrong (logged with its traceback). Returns the pause before the next try."""
        log.exception("shipper: batch failed")
        return self._failed(exc)

    def insert_acknowledged(self) -> None:
        """The store took a batch: it is reachable (say so if it was not), and the pause starts over."""
        if not self.stats.store_up:
            log.warning("shipper: the store is reachable again")
        self.stats.store_up = True
        self.pause = self.first_pause

    def _failed(self, exc: Exception) -> float:
        self.stats.last_error = str(exc)
        pause = self.pause
        self.pause = min(pause * 2, MAX_PAUSE)
        return pause


def backlog_bytes(spool_dir: Path, offsets: dict[str, int]) -> int:
    return unshipped_bytes(spool_dir, offsets)


def oldest_unshipped_ms(spool_dir: Path, offsets: dict[str, int]) -> int:
    """The receive time (epoch ms) of the oldest record not shipped yet; 0 when the spool is shipped."""
    oldest = 0
    for segment in list_segments(spool_dir):
        received = first_received_ms(segment.path, offsets.get(segment.name, 0))
        if received and (oldest == 0 or received < oldest):
            oldest = received
    return oldest


def stalled_for(backlog: int, now: float, progress_at: float) -> float:
    """Seconds since the shipper last made progress (`progress_at`), while the spool holds unshipped data
    (`backlog` bytes); 0 when it holds none."""
    if backlog <= 0:
        return 0.0
    return max(0.0, now - progress_at)
