"""The shipper's persisted position in the spool, and the batch it is about to insert.

`offsets` maps a segment name to the byte offset up to which it has been inserted. `pending` is the
batch planned but not yet known to be inserted: its spool ranges and its deduplication token. It is
saved *before* the insert and cleared with the new offsets *after* it, so after a crash the shipper
re-sends exactly that batch with the same token and ClickHouse drops it if it had landed. A batch the
store refuses for its content is split by the shipper into parts whose tokens derive from this token and
their rows' event ids: the checkpoint still names the whole batch, and a replay after a crash mid-split
makes the same parts with the same tokens (see `inserter.py`; the order of the steps: `cycle.py`).
Saved atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

Range = tuple[str, int, int]  # segment name, start offset, end offset


@dataclass(slots=True)
class Pending:
    token: str
    ranges: list[Range]


@dataclass(slots=True)
class Checkpoint:
    path: Path
    offsets: dict[str, int] = field(default_factory=dict)
    pending: Pending | None = None

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(path)
        pending = doc.get("pending")
        return cls(
            path,
            {k: int(v) for k, v in doc.get("offsets", {}).items()},
            Pending(pending["token"], [(str(r[0]), int(r[1]), int(r[2])) for r in pending["ranges"]])
            if pending
            else None,
        )

    def save(self) -> None:
        doc = {
            "offsets": self.offsets,
            "pending": {"token": self.pending.token, "ranges": self.pending.ranges} if self.pending else None,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, orjson.dumps(doc))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
