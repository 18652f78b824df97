"""Counters shared across processes without locks: one small memory-mapped file per process.

Each process increments its own file (a plain memory write, no syscall, on the hot path); a scrape
sums the files of all processes, alive or gone, so counters only go up while the service runs.
Files live under `<data>/state/metrics/<role>/`; the process that starts a role clears its folder.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

_Q = struct.Struct("=q")  # native byte order, as the writers' memoryview


class CounterFile:
    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}.bin"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, 8 * len(self.names))
            self._map = mmap.mmap(fd, 8 * len(self.names))
        finally:
            os.close(fd)
        self._slots = memoryview(self._map).cast("q")  # native 64-bit integers: the files are per machine

    def add(self, slot: int, amount: int = 1) -> None:
        self._slots[slot] += amount


def clear(folder: Path) -> None:
    for path in folder.glob("*.bin"):
        path.unlink(missing_ok=True)


def read_totals(folder: Path, names: Sequence[str]) -> dict[str, int]:
    totals = dict.fromkeys(names, 0)
    size = 8 * len(names)
    for path in folder.glob("*.bin"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        if len(data) != size:
            continue
        for i, name in enumerate(names):
            totals[name] += _Q.unpack_from(data, i * 8)[0]
    return totals


def prometheus(lines: Iterable[tuple[str, str, str, list[tuple[str, float]]]]) -> bytes:
    """Render (name, type, help, [(labels, value), ...]) in the Prometheus text format."""
    out: list[str] = []
    for name, kind, help_text, samples in lines:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            number = repr(value) if isinstance(value, float) else str(value)
            out.append(f"{name}{labels} {number}")
    return ("\n".join(out) + "\n").encode()
