"""The shipper: spool segments -> parsed, validated, enriched rows -> batched inserts -> checkpoint.

At least once, without visible duplicates: see `checkpoint.py` for how a batch is replayed after a
crash with the same deduplication token, and `pixel.server.store.schema` for the table side.
Nothing here runs on the collector's hot path.

One bad record never blocks the others:
- A record that cannot be read, an event that fails the event format (`pixel.server.eventformat`, the
  check the collector applies before its 204: spools written before it, or by an older collector, can hold
  anything), or one that cannot become a row goes to the `dead_letters` table with its reason (counted,
  bounded, without raw IPs: `deadletter.py`); the batch goes on.
- A batch the store refuses for its content (`StoreError`), or that cannot be serialised, is split in two
  and each half inserted again, down to single rows: the rows refused alone are dead-lettered, the others
  stored. Each part's deduplication token is the batch's token followed by a hash of the part's place in
  the batch and its event ids, so a crash mid-split replays the batch (still `pending` in the checkpoint),
  the same parts get the same tokens and the store drops those that had landed; a part of another
  composition (rows dropped by a rule changed meanwhile) is inserted again, and its rows collapse with
  their earlier copies on their event ids (readers use FINAL). A failure of the store itself (`StoreUnavailable`: down, disk full, too
  many parts, memory) is never split: the batch is retried until it lands.
- NUL characters are removed from every string of a row (columns, property names and values) before the
  insert.

Progress is watched (`stalled_for`): the wall-clock time since the checkpoint last advanced (or the spool
was last seen fully shipped), reported by `/health` and `/metrics` with the age of the oldest unshipped
record (`oldest_unshipped_ms`). The clock is injectable (`clock`), for tests.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.eventformat import check_event
from pixel.server.gcpause import gc_paused
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Checkpoint, Pending, Range
from pixel.server.shipper.deadletter import REASON_MAX, dead_letter, payload_of
from pixel.server.shipper.normalize import BadEvent, normalize
from pixel.server.shipper.segments import (
    Segment,
    first_received_ms,
    list_segments,
    read_from,
    read_range,
    seal_if_abandoned,
)
from pixel.server.spool import unshipped_bytes
from pixel.server.spool.record import BadRecord, body_of, parse_record
from pixel.server.store import Store, StoreError, StoreUnavailable, dedup_token
from pixel.server.store.clickhouse_engine import RETRYABLE_CODES

log = logging.getLogger(__name__)

READ_CHUNK = 4 * 1024 * 1024  # bytes read from one segment per batch at most
# Receive times a spool record can plausibly hold (2000-01-01 .. 2100-01-01, in ms); outside: unreadable.
RECEIVED_MS_RANGE = (946_684_800_000, 4_102_444_800_000)


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
    def __init__(
        self,
        settings: Settings,
        store: Store,
        enricher: Enricher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.enricher = enricher or Enricher(settings)
        self.checkpoint = Checkpoint.load(settings.checkpoint_path)
        self.clock = clock
        self.stats = ShipperStats(progress_at=clock())
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
                        self.stats.progress_at = self.clock()  # caught up with the spool
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
                self.stats.progress_at = self.clock()  # caught up with the spool
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
        self.stats.progress_at = self.clock()
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
            refused = self._insert_events(batch.rows, token)
            if refused:
                gone = {id(row) for row, _reason in refused}
                batch.rows = [row for row in batch.rows if id(row) not in gone]
                for row, reason in refused:
                    batch.dead.append(
                        dead_letter(
                            row["received_at"] * 1000, "", 0, f"store refused: {reason}", payload_of(row)
                        )
                    )
        if batch.dead:
            self._insert_dead(batch.dead, token)
        batch.acked_at = time.time()

    def _insert_events(
        self, rows: list[dict[str, Any]], token: str, start: int | None = None
    ) -> list[tuple[dict[str, Any], str]]:
        """Insert `rows`; split what the store refuses for its content down to single rows. Returns the rows
        refused alone, with the reason. `StoreUnavailable` is raised as is: the whole batch is retried."""
        try:
            data = encode_rows(rows)
        except TypeError as exc:  # cannot be serialised (orjson.JSONEncodeError)
            error = f"cannot be serialised: {exc}"
        else:
            try:
                self.store.insert_json("events", data, token=token)
                return []
            except StoreUnavailable:
                raise
            except StoreError as exc:
                if store_cannot_write(exc):
                    raise StoreUnavailable(str(exc)) from None
                error = str(exc)
        if len(rows) == 1:
            return [(rows[0], error)]
        if start is None:  # the whole batch
            start = 0
            batch_token = token
            self.stats.refused_batches += 1
            log.error("shipper: the store refused a batch of %d rows (%s); splitting it", len(rows), error)
        else:
            batch_token = token.partition("p")[0]
        half = len(rows) // 2
        left, right = rows[:half], rows[half:]
        return self._insert_events(
            left, self._part_token(batch_token, start, left), start
        ) + self._insert_events(right, self._part_token(batch_token, start + half, right), start + half)

    @staticmethod
    def _part_token(token: str, start: int, rows: list[dict[str, Any]]) -> str:
        """The token of a part of a split batch: the batch's token, then ("p") a hash of the part's place in
        the batch and its rows' event ids (two parts never share one, even with repeated event ids)."""
        return f"{token}p{dedup_token(start, [row.get('event_id') for row in rows])}"

    def _insert_dead(self, dead: list[dict[str, Any]], token: str) -> None:
        """Insert the dead letters; if the store refuses them for their content, again with only their segment,
        offset and reason (a failure then is the store's own, and the batch is retried)."""
        dead_token = dedup_token(
            token, "dead", [(d["segment"], d["offset"], d["reason"][:100]) for d in dead]
        )
        try:
            self.store.insert_json("dead_letters", encode_rows(dead), token=dead_token)
            return
        except StoreUnavailable:
            raise
        except (StoreError, TypeError) as exc:
            if isinstance(exc, StoreError) and store_cannot_write(exc):
                raise StoreUnavailable(str(exc)) from None
            log.error(
                "shipper: the store refused %d dead letters (%s); storing them without payloads",
                len(dead),
                exc,
            )
        bare = [
            {
                "received_at": 0.0,
                "failed_at": time.time(),
                "segment": str(d.get("segment", ""))[:255],
                "offset": d["offset"] if type(d.get("offset")) is int and 0 <= d["offset"] < 2**63 else 0,
                "reason": str(d.get("reason", ""))[:REASON_MAX],
                "payload": "",
            }
            for d in dead
        ]
        self.store.insert_json("dead_letters", encode_rows(bare), token=dedup_token(dead_token, "bare"))
        dead[:] = bare

    # -- reading the spool ------------------------------------------------------------------

    def _plan(self, offsets: dict[str, int]) -> Batch:
        """Read what the spool holds past `offsets` (up to the batch bounds) into a new batch."""
        with gc_paused():
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
                    dead_letter(
                        0,
                        segment.name,
                        end,
                        "torn record at the end of a segment",
                        body_of(torn),
                        _ip_of(torn),
                    )
                )
                end += len(torn)
            if end > start:
                batch.ranges.append((segment.name, start, end))
        return batch

    def _replay(self, ranges: list[Range]) -> Batch:
        with gc_paused():
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
                    dead_letter(
                        0,
                        name,
                        start + complete,
                        "torn record at the end of a segment",
                        body_of(data[complete:]),
                        _ip_of(data[complete:]),
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
                if not RECEIVED_MS_RANGE[0] <= record.received_ms < RECEIVED_MS_RANGE[1]:
                    raise BadRecord(f"receive time {record.received_ms} is out of range")
                events = orjson.loads(record.body)
            except (BadRecord, orjson.JSONDecodeError) as exc:
                # Keep the body only: the request facts before it hold the raw IP, which is never stored.
                batch.dead.append(
                    dead_letter(
                        0, name, line_offset, f"unreadable record: {exc}", body_of(line), _ip_of(line)
                    )
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
                problem = check_event(event)
                if problem is not None:
                    batch.dead.append(
                        dead_letter(
                            record.received_ms,
                            name,
                            line_offset,
                            problem,
                            payload_of(event, record.body),
                            record.ip,
                        )
                    )
                    continue
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
                except Exception as exc:  # BadEvent, or anything unforeseen: this event only
                    reason = str(exc) if isinstance(exc, BadEvent) else f"cannot become a row: {exc!r}"
                    batch.dead.append(
                        dead_letter(
                            record.received_ms,
                            name,
                            line_offset,
                            reason,
                            payload_of(event, record.body),
                            record.ip,
                        )
                    )
                    continue
                rows.append(row)
        return offset + pos

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

    def oldest_unshipped_ms(self) -> int:
        """The receive time (epoch ms) of the oldest record not shipped yet; 0 when the spool is shipped."""
        oldest = 0
        offsets = self.checkpoint.offsets
        for segment in list_segments(self.settings.spool_dir):
            received = first_received_ms(segment.path, offsets.get(segment.name, 0))
            if received and (oldest == 0 or received < oldest):
                oldest = received
        return oldest

    def stalled_for(self, backlog: int | None = None) -> float:
        """Seconds since the checkpoint last advanced (or the spool was last seen shipped), while the spool
        holds unshipped data; 0 when it holds none."""
        if backlog is None:
            backlog = self.backlog_bytes()
        if backlog <= 0:
            return 0.0
        return max(0.0, self.clock() - self.stats.progress_at)


_CODE = re.compile(r"\bCode: (\d+)\b")
# Errors that say the store cannot write now (its disk, memory, parts), not that it refuses the data: the
# server engine's retryable codes, and the local file errors an embedded engine (chDB) meets, which it
# reports as a plain StoreError.
UNAVAILABLE_CODES = RETRYABLE_CODES | {
    60,  # UNKNOWN_TABLE: the schema is gone, not the data's fault
    74,  # CANNOT_READ_FROM_FILE_DESCRIPTOR
    75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR
    76,  # CANNOT_OPEN_FILE
    81,  # UNKNOWN_DATABASE
    423,  # CANNOT_ALLOCATE_MEMORY
    459,  # CANNOT_FSYNC
}
_UNAVAILABLE_TEXT = ("No space left on device", "Cannot allocate memory", "Disk quota exceeded")


def store_cannot_write(exc: StoreError) -> bool:
    """True when `exc` is the store's own failure (retry the same insert later), not a refusal of the data."""
    if isinstance(exc, StoreUnavailable):
        return True
    message = str(exc)
    code = _CODE.search(message)
    if code is not None:  # decided by the code alone: the message may quote the refused data
        return int(code.group(1)) in UNAVAILABLE_CODES
    return any(t in message for t in _UNAVAILABLE_TEXT)


def encode_rows(rows: list[dict[str, Any]]) -> bytes:
    """`rows` as a JSON array for a JSONEachRow insert, with every NUL character removed from its strings
    (columns, property names and values). Raises TypeError when a row cannot be serialised."""
    data = orjson.dumps(rows)
    if b"\\u0000" in data:  # orjson writes NUL as \u0000; rare, so the rows are cleaned only then
        for row in rows:
            for key, value in row.items():
                if type(value) is str:
                    if "\x00" in value:
                        row[key] = value.replace("\x00", "")
                elif type(value) is dict:
                    row[key] = {
                        k.replace("\x00", ""): v.replace("\x00", "") if type(v) is str else v
                        for k, v in value.items()
                    }
        data = orjson.dumps(rows)
    return data


def _ip_of(line: bytes) -> str:
    """The client IP field of a (possibly broken) spool line, to scrub it from a dead letter; '' if none."""
    parts = line.split(b"\t", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 2 else ""
