"""Finding and reading spool segments from the shipper's side."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True)
class Segment:
    name: str  # stem: "<created_ns>-<pid>-<n>", the same before and after sealing
    path: Path
    sealed: bool

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return -1


def list_segments(folder: Path) -> list[Segment]:
    found: dict[str, Segment] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        stem, dot, ext = entry.name.rpartition(".")
        if not dot or ext not in ("open", "seg"):
            continue
        # A segment renamed between scandir and now shows up as .seg; prefer the sealed form.
        if ext == "seg" or stem not in found:
            found[stem] = Segment(stem, Path(entry.path), ext == "seg")
    return [found[name] for name in sorted(found)]


def read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def read_from(path: Path, start: int, limit: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(limit)


def seal_if_abandoned(segment: Segment) -> bool:
    """Seal an open segment whose writer is gone (its flock is free). True when sealed."""
    if segment.sealed:
        return False
    try:
        fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live collector worker holds it
        sealed = segment.path.with_suffix(".seg")
        try:
            os.rename(segment.path, sealed)
        except FileNotFoundError:
            return False
        segment.path, segment.sealed = sealed, True
        return True
    finally:
        os.close(fd)
