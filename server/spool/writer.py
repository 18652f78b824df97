"""A collector worker's side of the spool: append, fsync on a policy, rotate, measure the backlog.

Every `append` is one `write(2)` to a file opened with O_APPEND, done before the collector answers
204: once it returns, the record is in the kernel's page cache and survives a crash of the process.
`tick()` (every `fsync_interval`, from the worker's event loop) makes it durable with `fdatasync`
and rotates the segment by age; `append` rotates by size. So a process crash loses nothing, and a
power cut loses at most the last `fsync_interval` of acknowledged records.
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

    def tick(self) -> None:
        """fsync what was appended since the last tick; seal an old segment; re-measure the backlog."""
        if self._dirty and self._fd >= 0:
            os.fdatasync(self._fd)
            self._dirty = False
        if self._fd >= 0 and self._size > len(HEADER) and time.monotonic() - self._opened_at >= self.max_age:
            self.rotate()
        self.backlog_bytes = spool_bytes(self.folder)

    def rotate(self) -> None:
        """Seal the current segment (fsync, rename .open -> .seg); the next append opens a new one."""
        if self._fd < 0:
            return
        fd, path = self._fd, self._path
        self._fd, self._path = -1, None
        os.fdatasync(fd)
        self._dirty = False
        assert path is not None
        os.rename(path, path.with_suffix(".seg"))
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def close(self) -> None:
        self.rotate()

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
