"""Reading the spool into batches: parsed, validated, enriched rows, and dead letters for the rest.

A batch is named by its spool ranges (segment, start, end): `plan` reads what the spool holds past the
given offsets, up to the batch bounds; `replay` reads exactly the given ranges again (the pending batch a
crash or a failed insert left). The same bytes always make the same rows, dead letters and drops (the
enrichment's state aside), which is what lets a replayed batch carry its first token.

One bad record never blocks the others: a record that cannot be read (bad framing, a receive time out of
range, a body that is not JSON), a torn record at the end of a sealed segment, an event that fails the event
format (`pixel.server.eventformat`, the check the collector applies before its 204: spools written before
it, or by an older collector, can hold anything), or one that cannot become a row goes to the batch's dead
letters with its reason (bounded, without raw IPs: `deadletter.py`); the batch goes on. Events a site's
rules exclude (DNT/GPC, its paths, IPs, origins) are counted as dropped and never stored.

Nothing here writes: the checkpoint and the store are the cycle's (`cycle.py`). Segments found fully read
and sealed are listed in `Batch.finished`, for the cycle to delete once the batch is committed; an open
segment whose writer is gone (its flock is free) is sealed here, at most once a second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.eventformat import CHECKED, check_event
from pixel.server.gcpause import gc_paused
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Range
from pixel.server.shipper.deadletter import dead_letter, payload_of
from pixel.server.shipper.normalize import BadEvent, normalize
from pixel.server.shipper.segments import Segment, list_segments, read_from, read_range, seal_if_abandoned
from pixel.server.spool.record import BadRecord, body_of, parse_record

log = logging.getLogger(__name__)

READ_CHUNK = 4 * 1024 * 1024  # bytes read from one segment per batch at most
# Receive times a spool record can plausibly hold (2000-01-01 .. 2100-01-01, in ms); outside: unreadable.
RECEIVED_MS_RANGE = (946_684_800_000, 4_102_444_800_000)
TORN = "torn record at the end of a segment"


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


class SpoolReader:
    def __init__(self, settings: Settings, enricher: Enricher) -> None:
        self.settings = settings
        self.enricher = enricher
        self.last_seal_check = 0.0  # monotonic time of the last look for abandoned open segments

    def plan(self, offsets: dict[str, int]) -> Batch:
        """Read what the spool holds past `offsets` (up to the batch bounds) into a new batch."""
        with gc_paused():
            return self._plan(offsets)

    def replay(self, ranges: list[Range]) -> Batch:
        """Read exactly `ranges` again into a batch named by them (a segment gone meanwhile is skipped)."""
        with gc_paused():
            return self._replay(ranges)

    def _plan(self, offsets: dict[str, int]) -> Batch:
        batch = Batch()
        max_rows = self.settings.batch_max_rows
        check_seals = time.monotonic() - self.last_seal_check >= 1.0
        if check_seals:
            self.last_seal_check = time.monotonic()
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
                batch.dead.append(dead_letter(0, segment.name, end, TORN, body_of(torn), ip_of(torn)))
                end += len(torn)
            if end > start:
                batch.ranges.append((segment.name, start, end))
        return batch

    def _replay(self, ranges: list[Range]) -> Batch:
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
                torn = data[complete:]
                batch.dead.append(dead_letter(0, name, start + complete, TORN, body_of(torn), ip_of(torn)))
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
                    dead_letter(0, name, line_offset, f"unreadable record: {exc}", body_of(line), ip_of(line))
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
            checked = CHECKED in record.flags  # by the collector, with the rules of this version
            for index, event in enumerate(events):
                problem = None if checked else check_event(event)
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


def ip_of(line: bytes) -> str:
    """The client IP field of a (possibly broken) spool line, to scrub it from a dead letter; '' if none."""
    parts = line.split(b"\t", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 2 else ""
