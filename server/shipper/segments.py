"""Finding and reading spool segments from the shipper's side, and the receive time of the first record
not shipped yet (for the age of the oldest unshipped record)."""

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


def first_received_ms(path: Path, start: int) -> int:
    """The receive time (epoch ms) of the first record at or after `start`; 0 when none is there.

    Reads a few hundred bytes (a record starts with its receive time and a TAB); skips the header and comment
    lines."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(512)
    except FileNotFoundError:
        return 0
    pos = 0
    while data[pos : pos + 1] in (b"#", b"\n"):  # the header, comment lines, empty lines
        newline = data.find(b"\n", pos)
        if newline < 0:
            return 0
        pos = newline + 1
    head = data[pos : pos + 16].split(b"\t", 1)[0]
    return int(head) if head.isdigit() and len(head) <= 15 and b"\t" in data[pos:] else 0
