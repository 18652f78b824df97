"""A collector worker's side of the spool: append, fsync on a policy, rotate, measure the backlog.

Every `append` is one `write(2)` to a file opened with O_APPEND, done before the collector answers
204: once it returns, the record is in the kernel's page cache and survives a crash of the process.
Every `fsync_interval` the worker's event loop calls `tick()`, which rotates the segment by age
(`append` rotates by size) and re-measures the backlog, and hands descriptors to `sync()`, which a
thread runs to make the data durable with `fdatasync`. So a process crash loses nothing, and a power
cut loses at most the last `fsync_interval` of acknowledged records.

Only `sync()` runs off the event loop, and it touches no writer state: a duplicate of the open
segment's descriptor, and the descriptors of segments sealed since the last tick, which it closes.
(Rotating from that thread could close the descriptor an append on the loop was about to write to.)

Preallocating segments and writing them through a memory mapping took CPU off each request, but page
faults on the event loop (the kernel zero-filling the preallocated file's pages as they are first touched)
raised its tail latency under load several-fold (figures in bench/README.md), so a segment grows by plain
appends.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from pixel.server.spool.record import HEADER


def spool_bytes(folder: Path) -> int:
    """Bytes in all segments of the spool (what the shipper still has to ship)."""
    total = 0
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.endswith((".open", ".seg")):
                    try:
                        total += entry.stat().st_size
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return 0
    return total


def unshipped_bytes(folder: Path, offsets: dict[str, int]) -> int:
    """Bytes in the spool that the shipper has not inserted yet (`offsets`: its checkpoint)."""
    total = 0
    try:
        with os.scandir(folder) as it:
            for entry in it:
                stem, dot, ext = entry.name.rpartition(".")
                if dot and ext in ("open", "seg"):
                    try:
                        size = entry.stat().st_size
                    except FileNotFoundError:
                        continue
                    total += max(0, size - max(offsets.get(stem, 0), len(HEADER)))
    except FileNotFoundError:
        return 0
    return total


class SpoolWriter:
    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        max_age: float = 10.0,
        fsync_interval: float = 0.1,
        cap_bytes: int = 1024**3,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.fsync_interval = fsync_interval
        self.cap_bytes = cap_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq = 0
        self._fd = -1
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._dirty = False
        self._to_sync: list[int] = []  # descriptors of segments sealed since the last tick
        self.backlog_bytes = spool_bytes(folder)

    # -- hot path ---------------------------------------------------------------------------

    def append(self, record: bytes) -> None:
        if self._fd < 0:
            self._open()
        written = os.write(self._fd, record)
        if written != len(record):  # a short write on a regular file means the disk is full
            raise OSError(f"short write to the spool ({written} of {len(record)} bytes)")
        self._size += written
        self.backlog_bytes += written
        if self.fsync_interval <= 0:
            os.fdatasync(self._fd)
        else:
            self._dirty = True
        if self._size >= self.max_bytes:
            self.rotate()

    @property
    def over_cap(self) -> bool:
        return self.backlog_bytes >= self.cap_bytes

    # -- periodic ---------------------------------------------------------------------------

    def tick(self) -> list[int]:
        """On the writer's thread: seal an old segment, re-measure the backlog; return descriptors for `sync`.

        Never waits for the disk. The backlog is measured here rather than in `sync`'s thread: it is a
        stat per segment on cached metadata, and from a second thread each call would have to take the
        GIL back from the busy event loop.
        """
        if self._fd >= 0 and self._size > len(HEADER) and time.monotonic() - self._opened_at >= self.max_age:
            self.rotate()
        handles, self._to_sync = self._to_sync, []
        if self._dirty and self._fd >= 0:
            handles.append(os.dup(self._fd))
            self._dirty = False
        self.backlog_bytes = spool_bytes(self.folder)
        return handles

    @staticmethod
    def sync(handles: list[int]) -> None:
        """fdatasync and close the descriptors `tick` returned. Blocking: run it off the event loop."""
        try:
            for fd in handles:
                os.fdatasync(fd)
        finally:
            for fd in handles:
                os.close(fd)

    def rotate(self) -> None:
        """Seal the current segment (rename .open -> .seg); the next append opens a new one.

        Its descriptor goes to the next `sync` (synced here when fsync_interval is 0).
        """
        if self._fd < 0:
            return
        fd, path = self._fd, self._path
        self._fd, self._path = -1, None
        assert path is not None
        os.rename(path, path.with_suffix(".seg"))
        fcntl.flock(fd, fcntl.LOCK_UN)
        if self.fsync_interval <= 0:
            self.sync([fd])
        else:
            self._to_sync.append(fd)

    def close(self) -> None:
        self.rotate()
        self._dirty = False
        handles, self._to_sync = self._to_sync, []
        self.sync(handles)

    # -- internals --------------------------------------------------------------------------

    def _open(self) -> None:
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq}.open"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # never contended: the name is new
        os.write(fd, HEADER)
        self._fd, self._path = fd, path
        self._size = len(HEADER)
        self._opened_at = time.monotonic()
        self.backlog_bytes += len(HEADER)
