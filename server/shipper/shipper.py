"""The shipper: spool segments -> parsed, validated, enriched rows -> batched inserts -> checkpoint.

At least once, without visible duplicates: see `checkpoint.py` for how a batch is replayed after a
crash with the same deduplication token, and `pixel.server.store.schema` for the table side.
A malformed record or event goes to the `dead_letters` table with its reason (counted), never
silently dropped. Nothing here runs on the collector's hot path.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Checkpoint, Pending, Range
from pixel.server.shipper.normalize import BadEvent, normalize
from pixel.server.shipper.segments import Segment, list_segments, read_from, read_range, seal_if_abandoned
from pixel.server.spool import unshipped_bytes
from pixel.server.spool.record import BadRecord, body_of, parse_record
from pixel.server.store import Store, StoreError, StoreUnavailable, dedup_token

log = logging.getLogger("pixel.shipper")

READ_CHUNK = 4 * 1024 * 1024  # bytes read from one segment per batch at most


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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch of tens of thousands of live row dicts is built: it would
    otherwise rescan them again and again (measured ~4 us/event), and rows hold no reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class Batch:
    ranges: list[Range] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = (
        0  # events not stored by the site's choice (DNT/GPC, its excluded paths/IPs, other origins)
    )
    oldest_ms: int = 0
    # When the store acknowledged the insert: the rows are visible to queries from then on (the commit that
    # records it can come later, after the next batch has been planned).
    acked_at: float = 0.0
    # Segments found fully read and sealed while planning: deleted after the batch is committed.
    finished: list[Segment] = field(default_factory=list)


class Shipper:
    def __init__(self, settings: Settings, store: Store, enricher: Enricher | None = None) -> None:
        self.settings = settings
        self.store = store
        self.enricher = enricher or Enricher(settings)
        self.checkpoint = Checkpoint.load(settings.checkpoint_path)
        self.stats = ShipperStats()
        self._last_seal_check = 0.0
        self.stop_event = threading.Event()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Ship until `stop_event` is set. Store outages are waited out, never fatal.

        Pipelined: while one batch is being inserted (in a thread; the engines release the GIL), the
        next one is read, parsed and enriched. At most one batch is in flight and it is the one named
        by the checkpoint's `pending`, so a crash still replays exactly that batch.
        """
        delay = self.settings.store_retry_seconds
        next_plan = 0.0
        inflight: tuple[Future[None], Batch] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="store-insert") as executor:
            while not self.stop_event.is_set():
                try:
                    if self.checkpoint.pending is not None and inflight is None:
                        pending = self.checkpoint.pending  # left by a crash or a failed insert: replay it
                        batch, token = self._replay(pending.ranges), pending.token
                    else:
                        now = time.monotonic()
                        if now < next_plan:
                            self.stop_event.wait(next_plan - now)
                        offsets = dict(self.checkpoint.offsets)
                        if inflight is not None:
                            offsets.update({name: end for name, _start, end in inflight[1].ranges})
                        planned_at = time.monotonic()
                        batch = self._plan(offsets)
                        token = dedup_token(batch.ranges)
                        full = len(batch.rows) >= self.settings.batch_max_rows
                        next_plan = planned_at if full else planned_at + self.settings.batch_max_seconds
                    if inflight is not None:
                        future, previous = inflight
                        inflight = None
                        future.result()
                        shipped = self._commit(previous)
                        if on_batch is not None:
                            on_batch(shipped)
                    if not self.stats.store_up:
                        log.warning("shipper: the store is reachable again")
                    self.stats.store_up = True
                    delay = self.settings.store_retry_seconds
                    if batch.ranges:
                        self._begin(batch, token)
                        inflight = (executor.submit(self._insert, batch, token), batch)
                    else:
                        self._cleanup(batch.finished)
                        self.stop_event.wait(0.05)
                except StoreUnavailable as exc:
                    inflight = None  # its batch stays `pending` in the checkpoint and is replayed
                    if self.stats.store_up:
                        log.error("shipper: %s; the spool keeps everything, retrying", exc)
                    self.stats.store_up = False
                    self.stats.last_error = str(exc)
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, 30.0)
                except Exception as exc:  # keep shipping whatever happens; say so loudly
                    inflight = None
                    log.exception("shipper: batch failed")
                    self.stats.last_error = str(exc)
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, 30.0)
            if inflight is not None:  # let the last insert finish and record it
                try:
                    inflight[0].result()
                    self._commit(inflight[1])
                except Exception:
                    log.warning("shipper: the last batch stays pending; it is replayed at the next start")

    def stop(self) -> None:
        self.stop_event.set()

    # -- one batch --------------------------------------------------------------------------

    def step(self) -> int:
        """Insert one batch (a replayed pending one first), synchronously. Returns rows + dead letters."""
        pending = self.checkpoint.pending
        if pending is not None:
            batch, token = self._replay(pending.ranges), pending.token
        else:
            batch = self._plan(self.checkpoint.offsets)
            if not batch.ranges:
                self._cleanup(batch.finished)
                return 0
            token = dedup_token(batch.ranges)
            self._begin(batch, token)
        self._insert(batch, token)
        return self._commit(batch)

    def _begin(self, batch: Batch, token: str) -> None:
        """Name the batch in the checkpoint before inserting it, so a crash replays exactly it."""
        self.checkpoint.pending = Pending(token, batch.ranges)
        self.checkpoint.save()

    def _commit(self, batch: Batch) -> int:
        """The batch is in the store: advance the offsets, clear `pending`, delete finished segments."""
        for segment, _start, end in batch.ranges:
            self.checkpoint.offsets[segment] = end
        self.checkpoint.pending = None
        self.checkpoint.save()
        self.stats.observe_visible([row["received_at"] for row in batch.rows], batch.acked_at or time.time())
        self.stats.inserted += len(batch.rows)
        self.stats.dead += len(batch.dead)
        self.stats.dropped += batch.dropped
        self.stats.batches += 1
        self.stats.lag_seconds = max(0.0, time.time() - batch.oldest_ms / 1000) if batch.oldest_ms else 0.0
        self._cleanup(batch.finished)
        return len(batch.rows) + len(batch.dead) + batch.dropped

    def _insert(self, batch: Batch, token: str) -> None:
        if batch.rows:
            try:
                self.store.insert_rows("events", batch.rows, token=token)
            except StoreUnavailable:
                raise
            except StoreError as exc:
                # One bad row must not hold the pipeline: insert row by row, dead-letter the refused.
                log.error("shipper: the store refused a batch (%s); inserting row by row", exc)
                for i, row in enumerate(batch.rows):
                    try:
                        self.store.insert_rows("events", [row], token=f"{token}r{i}")
                    except StoreUnavailable:
                        raise
                    except StoreError as row_exc:
                        batch.dead.append(
                            self._dead(
                                row["received_at"] * 1000,
                                "",
                                0,
                                f"store refused: {row_exc}",
                                orjson.dumps(row),
                            )
                        )
                batch.rows = []
        if batch.dead:
            self.store.insert_rows("dead_letters", batch.dead, token=f"{token}d")
        batch.acked_at = time.time()

    # -- reading the spool ------------------------------------------------------------------

    def _plan(self, offsets: dict[str, int]) -> Batch:
        """Read what the spool holds past `offsets` (up to the batch bounds) into a new batch."""
        with _gc_paused():
            return self._plan_batch(offsets)

    def _plan_batch(self, offsets: dict[str, int]) -> Batch:
        batch = Batch()
        max_rows = self.settings.batch_max_rows
        check_seals = time.monotonic() - self._last_seal_check >= 1.0
        if check_seals:
            self._last_seal_check = time.monotonic()
        for segment in list_segments(self.settings.spool_dir):
            if len(batch.rows) >= max_rows:
                break
            start = offsets.get(segment.name, 0)
            size = segment.size()
            if size < 0:
                continue
            if start >= size:
                if not segment.sealed and check_seals and seal_if_abandoned(segment):
                    size = segment.size()
                if segment.sealed and start >= size:
                    batch.finished.append(segment)
                continue
            data = read_from(segment.path, start, READ_CHUNK)
            complete = data.rfind(b"\n") + 1
            torn = b""
            if segment.sealed and start + len(data) >= size and complete < len(data):
                torn = data[complete:]  # a sealed segment ends in a partial record: a torn write
            end = self._consume(batch, segment.name, start, data[:complete], max_rows)
            if torn and end == start + complete:
                batch.dead.append(
                    self._dead(0, segment.name, end, "torn record at the end of a segment", body_of(torn))
                )
                end += len(torn)
            if end > start:
                batch.ranges.append((segment.name, start, end))
        return batch

    def _replay(self, ranges: list[Range]) -> Batch:
        with _gc_paused():
            return self._replay_batch(ranges)

    def _replay_batch(self, ranges: list[Range]) -> Batch:
        batch = Batch()
        for name, start, end in ranges:
            segment = self._find(name)
            if segment is None:
                log.error("shipper: segment %s of the pending batch is gone; skipping it", name)
                continue
            data = read_range(segment.path, start, end)
            complete = data.rfind(b"\n") + 1
            self._consume(batch, name, start, data[:complete], None)
            if complete < len(data):
                batch.dead.append(
                    self._dead(
                        0,
                        name,
                        start + complete,
                        "torn record at the end of a segment",
                        body_of(data[complete:]),
                    )
                )
        batch.ranges = ranges
        return batch

    def _find(self, name: str) -> Segment | None:
        for segment in list_segments(self.settings.spool_dir):
            if segment.name == name:
                return segment
        return None

    def _consume(self, batch: Batch, name: str, start: int, data: bytes, max_rows: int | None) -> int:
        """Turn complete lines into rows/dead letters; stop once max_rows is reached. Returns the end offset."""
        offset = start
        pos = 0
        size = len(data)
        enrich = self.enricher.enrich
        min_ms = int((time.time() - self.settings.max_event_age_days * 86400) * 1000)
        rows = batch.rows
        while pos < size:
            if max_rows is not None and len(rows) >= max_rows:
                break
            newline = data.index(b"\n", pos)
            line = data[pos:newline]
            line_offset = offset + pos
            pos = newline + 1
            if not line or line[:1] == b"#":
                continue
            try:
                record = parse_record(line)
                events = orjson.loads(record.body)
            except (BadRecord, orjson.JSONDecodeError) as exc:
                # Keep the body only: the request facts before it hold the raw IP, which is never stored.
                batch.dead.append(
                    self._dead(0, name, line_offset, f"unreadable record: {exc}", body_of(line))
                )
                continue
            if batch.oldest_ms == 0 or record.received_ms < batch.oldest_ms:
                batch.oldest_ms = record.received_ms
            facts = RequestFacts(
                record.received_ms,
                record.ip,
                record.user_agent,
                record.accept_language,
                record.origin_host,
                record.cdn_country,
                dnt="d" in record.flags,
                gpc="g" in record.flags,
            )
            if type(events) is not list:
                events = [events]
            for index, event in enumerate(events):
                try:
                    row = normalize(
                        event,
                        record.received_ms,
                        min_ms=min_ms,
                        segment=name,
                        offset=line_offset,
                        index=index,
                    )
                    if enrich(row, event, facts) is False:
                        batch.dropped += 1  # DNT/GPC or the site's rules (enrich/siterules.py): not stored
                        continue
                except BadEvent as exc:
                    batch.dead.append(
                        self._dead(record.received_ms, name, line_offset, str(exc), orjson.dumps(event))
                    )
                    continue
                rows.append(row)
        return offset + pos

    @staticmethod
    def _dead(received_ms: float, segment: str, offset: int, reason: str, payload: bytes) -> dict[str, Any]:
        return {
            "received_at": received_ms / 1000,
            "failed_at": time.time(),
            "segment": segment,
            "offset": offset,
            "reason": reason,
            "payload": payload.decode("utf-8", "replace")[:65536],
        }

    def _cleanup(self, finished: list[Segment]) -> None:
        """Delete fully shipped sealed segments (and with them the raw IPs they held)."""
        if not finished:
            return
        for segment in finished:
            segment.path.unlink(missing_ok=True)
            self.checkpoint.offsets.pop(segment.name, None)
        self.checkpoint.save()

    # -- figures ----------------------------------------------------------------------------

    def backlog_bytes(self) -> int:
        return unshipped_bytes(self.settings.spool_dir, self.checkpoint.offsets)
