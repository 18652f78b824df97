"""Inserting one batch: its rows into `events`, its dead letters into `dead_letters`, under the batch's token.

What the store refuses never blocks the rest, and what the store cannot do now is never mistaken for that:
- A batch the store refuses for its content (`StoreError`), or that cannot be serialised, is split in two
  and each half inserted again, down to single rows: the rows refused alone are dead-lettered, the others
  stored. Each part's deduplication token is the batch's token followed by a hash of the part's place in
  the batch and its event ids, so a crash mid-split replays the batch (still `pending` in the checkpoint),
  the same parts get the same tokens and the store drops those that had landed; a part of another
  composition (rows dropped by a rule changed meanwhile) is inserted again, and its rows collapse with
  their earlier copies on their event ids (readers use FINAL).
- A failure of the store itself (`StoreUnavailable`, or a `StoreError` whose code says the store cannot
  write now: down, disk full, too many parts, memory; `store_cannot_write`) is never split: it is raised,
  and the whole batch is retried until it lands.
- Dead letters the store refuses are stored again bare (segment, offset, reason, no payload).
- NUL characters are removed from every string of a row (columns, property names and values) before the
  insert (`encode_rows`).
- Copies inside a batch (one event sent twice, e.g. a client's retry of a request that had arrived) are
  collapsed here, keeping the last as the store would (`without_copies`), so the store need not look for
  them while inserting (`UNIQUE_KEYS`). Readers count on a part holding no two rows of one key
  (`pixel.server.api.query.copy_windows`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

from pixel.server.shipper.deadletter import REASON_MAX, dead_letter, payload_of
from pixel.server.shipper.reader import Batch
from pixel.server.shipper.stats import ShipperStats
from pixel.server.store import Store, StoreError, StoreUnavailable, dedup_token
from pixel.server.store.clickhouse_engine import RETRYABLE_CODES

log = logging.getLogger(__name__)

# The insert settings of rows of which no two share the events table's key (`without_copies`): the store's own
# look for such copies inside one insert (ReplacingMergeTree's optimize_on_insert) is then work for nothing.
UNIQUE_KEYS = {"optimize_on_insert": 0}


class BatchInserter:
    def __init__(self, store: Store, stats: ShipperStats) -> None:
        self.store = store
        self.stats = stats

    def insert(self, batch: Batch, token: str) -> None:
        """Insert `batch` under `token`; the rows the store refused alone become dead letters of it. Raises
        `StoreUnavailable` when the store cannot write (nothing of the batch is then known to be stored)."""
        if batch.rows:
            unique = without_copies(batch.rows)
            if unique is None:  # copies the store must find itself
                refused = self._insert_events(batch.rows, token, settings={})
            else:
                refused = self._insert_events(unique, token, settings=UNIQUE_KEYS)
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
        self, rows: list[dict[str, Any]], token: str, start: int | None = None, *, settings: dict[str, int]
    ) -> list[tuple[dict[str, Any], str]]:
        """Insert `rows`; split what the store refuses for its content down to single rows. Returns the rows
        refused alone, with the reason. `StoreUnavailable` is raised as is: the whole batch is retried."""
        try:
            data = encode_rows(rows)
        except TypeError as exc:  # cannot be serialised (orjson.JSONEncodeError)
            error = f"cannot be serialised: {exc}"
        else:
            try:
                self.store.insert_json("events", data, token=token, settings=settings)
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
            left, part_token(batch_token, start, left), start, settings=settings
        ) + self._insert_events(
            right, part_token(batch_token, start + half, right), start + half, settings=settings
        )

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


def without_copies(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """`rows` (in their order) without the rows that a later row of the same key replaces: the events table's
    sorting key (site, UTC day of the timestamp, event id), the last row of a key kept, as the store keeps it
    within one insert. The same list when no event id repeats (the usual case, one set built); None when a
    repeated id's row has no number of seconds as its timestamp (the store then collapses the copies)."""
    if len({row.get("event_id") for row in rows}) == len(rows):
        return rows
    last: dict[tuple[Any, int, Any], int] = {}
    for i, row in enumerate(rows):
        timestamp = row.get("timestamp")
        if type(timestamp) is not float and type(timestamp) is not int:
            return None
        last[(row.get("site"), int(timestamp // 86400), row.get("event_id"))] = i
    keep = set(last.values())
    return [row for i, row in enumerate(rows) if i in keep]


def part_token(token: str, start: int, rows: list[dict[str, Any]]) -> str:
    """The token of a part of a split batch: the batch's token, then ("p") a hash of the part's place in
    the batch and its rows' event ids (two parts never share one, even with repeated event ids)."""
    return f"{token}p{dedup_token(start, [row.get('event_id') for row in rows])}"


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
