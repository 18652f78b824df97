"""The sessions table's backfill in the background: copies into `session_rows` the events stored before its
view existed (store migration 12 records that they are pending, server/store/sessions.py), so an upgrade does
not hold `pixel serve`'s start while every stored event is read.

Contract:
- Chunks of `chunk_seconds` of event time (whole UTC hours by default), newest first (the days owners look
  at are filled first); a stretch of time without events is skipped in one step.
- After each chunk the progress is recorded in `session_rows_backfill` (`filled_from`: every event at or
  after it is in the table), so a killed process goes on where it stopped. A chunk copied twice (a kill
  between its insert and its record) changes nothing: session_rows' states are copy-proof.
- Low priority: every statement on a chDB store holds the store's one lock (ingest and reports wait for it),
  so a chunk is small and the worker then pauses so that it takes at most `share` of the store's time.
- `complete_from(store)`: where readers may use the table (the filtered dashboard falls back to the events
  elsewhere, session_dashboard.usable). Monotonic: once complete, a store stays complete (migration 12 runs
  once per store), so that answer is remembered per store object and costs no query after.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixel.server.store import sessions
from pixel.server.store.base import Store, StoreError

log = logging.getLogger(__name__)

HOUR = 3600


@dataclass(frozen=True)
class State:
    """The newest record of `session_rows_backfill`."""

    step: int
    pending: bool
    planned: bool
    low_ms: int  # the oldest stored event's timestamp (ms) when planned
    filled_from: int  # epoch seconds: the events at or after it are in session_rows (when planned)


def read_state(store: Store) -> State | None:
    """The backfill's state; None: nothing to backfill (no record: a new store, or one whose migration 12
    filled the table inline)."""
    rows = store.query(sessions.STATE_SQL).rows
    if not rows:
        return None
    step, pending, planned, low_ms, filled_from = (int(v) for v in rows[0])
    return State(step, bool(pending), bool(planned), low_ms, filled_from)


_complete: weakref.WeakSet[Any] = weakref.WeakSet()
_complete_guard = threading.Lock()


def complete_from(store: Store) -> float | None:
    """Epoch seconds from which session_rows holds every stored event: None = all of them (complete),
    `math.inf` = none known yet (not planned, or the state cannot be read now)."""
    with _complete_guard:
        if store in _complete:
            return None
    try:
        state = read_state(store)
    except StoreError as exc:
        log.warning("sessions table: its backfill state cannot be read (%s); reading the events", exc)
        return math.inf
    if state is None or not state.pending:
        with _complete_guard:
            _complete.add(store)
        return None
    return float(state.filled_from) if state.planned else math.inf


def covers(store: Store, start_epoch: float) -> bool:
    """Whether session_rows holds every stored event with a timestamp at or after `start_epoch`."""
    edge = complete_from(store)
    return edge is None or start_epoch >= edge


def _ms(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(seconds))


class SessionsBackfill:
    """The worker (`run` in a thread of the store process; `step` does one unit of work)."""

    def __init__(
        self,
        store: Store,
        *,
        chunk_seconds: int = HOUR,
        share: float = 0.5,
        retry_seconds: float = 30.0,
    ) -> None:
        if chunk_seconds <= 0 or 86400 % chunk_seconds:
            raise ValueError("chunk_seconds must divide a day (e.g. 900, 3600, 86400)")
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.store = store
        self.chunk = chunk_seconds
        self.share = share
        self.retry_seconds = retry_seconds
        self.stop_event = threading.Event()
        self._top: int | None = None  # the planned upper end (epoch s), for the progress figure
        self.state: State | None = None  # the last state read or written (progress' source)
        try:
            self.state = read_state(store)
        except StoreError as exc:  # read again by the first step
            log.warning("sessions table: its backfill state cannot be read (%s)", exc)

    def _record(self, state: State) -> None:
        self.store.command(
            "INSERT INTO session_rows_backfill (step, pending, planned, low, filled_from) VALUES "
            "({step:UInt32}, {pending:UInt8}, {planned:UInt8}, {low:DateTime64(3, 'UTC')}, "
            "{filled_from:DateTime('UTC')})",
            {
                "step": state.step,
                "pending": int(state.pending),
                "planned": int(state.planned),
                "low": _ms(state.low_ms // 1000),
                "filled_from": state.filled_from,
            },
        )
        self.state = state

    def _newest_before(self, edge: int) -> int | None:
        """Epoch ms of the newest stored event before `edge` (epoch s); None when there is none."""
        row = self.store.query(
            "SELECT count() AS n, toUnixTimestamp64Milli(max(timestamp)) FROM events "
            "WHERE timestamp < {edge:DateTime64(3, 'UTC')}",
            {"edge": _ms(edge)},
        ).rows[0]
        return int(row[1]) if int(row[0]) else None

    def _chunk_end(self, newest_ms: int) -> int:
        """The end (exclusive, epoch s) of the chunk that holds the event at `newest_ms`."""
        return (newest_ms // 1000 // self.chunk + 1) * self.chunk

    def step(self) -> bool:
        """One unit of work (plan, or one chunk copied and recorded); False when nothing is left."""
        state = read_state(self.store)
        self.state = state
        if state is None or not state.pending:
            return False
        if not state.planned:  # the stored events' span, in one read
            count, oldest, newest = (
                int(v)
                for v in self.store.query(
                    "SELECT count(), toUnixTimestamp64Milli(min(timestamp)), "
                    "toUnixTimestamp64Milli(max(timestamp)) FROM events"
                ).rows[0]
            )
            if not count:
                self._record(State(state.step + 1, False, True, 0, 0))
                return False
            self._top = self._chunk_end(newest)
            self._record(State(state.step + 1, True, True, oldest, self._top))
            return True
        end = state.filled_from
        if self._top is None:
            self._top = self._first_planned_edge()
        start = end - self.chunk
        if not self._has_events(start, end):
            before = self._newest_before(end)
            if before is None or before < state.low_ms:
                self._record(State(state.step + 1, False, True, state.low_ms, start))
                log.info("sessions table: backfill complete")
                return False
            end = self._chunk_end(before)
            start = end - self.chunk
        self.store.command(sessions.BACKFILL_CHUNK, {"start": _ms(start), "end": _ms(end)})
        done = start * 1000 <= state.low_ms
        self._record(State(state.step + 1, not done, True, state.low_ms, start))
        if done:
            log.info("sessions table: backfill complete")
        return not done

    def _has_events(self, start: int, end: int) -> bool:
        return bool(
            self.store.scalar(
                "SELECT count() FROM events WHERE timestamp >= {start:DateTime64(3, 'UTC')} "
                "AND timestamp < {end:DateTime64(3, 'UTC')}",
                {"start": _ms(start), "end": _ms(end)},
            )
        )

    def _first_planned_edge(self) -> int:
        value = self.store.scalar(
            "SELECT toUnixTimestamp(argMin(filled_from, step)) FROM session_rows_backfill WHERE planned = 1"
        )
        return int(value or 0)

    def run(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Steps until nothing is left or `stop` is called, pausing after each so that the work takes at most
        `share` of the store's time; a failed step is tried again after `retry_seconds`."""
        while not self.stop_event.is_set():
            began = clock()
            try:
                with self.store.background():  # the owner's reads and the shipper's inserts first
                    more = self.step()
            except StoreError as exc:
                log.warning("sessions table: a backfill step failed (%s); trying again", exc)
                self.stop_event.wait(self.retry_seconds)
                continue
            if not more:
                return
            spent = clock() - began
            self.stop_event.wait(max(0.01, spent * (1 - self.share) / self.share))

    def stop(self) -> None:
        self.stop_event.set()

    def progress(self) -> dict[str, Any] | None:
        """{"state": "backfilling", "percent", "days_left"} while the backfill has work left (from the last
        state this worker read or wrote), else None."""
        state = self.state
        if state is None or not state.pending:
            return None
        if not state.planned or self._top is None:
            return {"state": "backfilling", "percent": 0, "days_left": None}
        low = state.low_ms / 1000
        total = max(1.0, self._top - low)
        done = min(total, max(0.0, self._top - state.filled_from))
        return {
            "state": "backfilling",
            "percent": int(100 * done / total),
            "days_left": math.ceil(max(0.0, state.filled_from - low) / 86400),
        }
