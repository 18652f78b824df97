"""The collector's workers share the connections: each has its own SO_REUSEPORT socket (server/processes.py)."""

from __future__ import annotations

import httpx


def both_up(proc, timeout: float = 30) -> set[int]:
    """Wait until both workers answer (the second may still be starting when the first does)."""
    import time

    deadline = time.monotonic() + timeout
    pids: set[int] = set()
    while len(pids) < 2:
        assert time.monotonic() < deadline, pids
        try:
            pids.add(httpx.get(f"{proc.collector}/health", headers={"Connection": "close"}).json()["pid"])
        except httpx.HTTPError as exc:  # no worker listens: say what the collector logged
            raise AssertionError(f"{exc!r} after {pids}; the collector's log:\n{proc.log()}") from exc
    return pids


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(pixel_factory) -> None:
    import os
    import signal
    import time

    proc = pixel_factory("collect", pixel_workers="2")
    seen = both_up(proc)
    victim = min(seen)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    now: set[int] = set()
    while time.monotonic() < deadline and len(now - {victim}) < 2:
        try:
            now.add(
                httpx.get(f"{proc.collector}/health", headers={"Connection": "close"}, timeout=2).json()[
                    "pid"
                ]
            )
        except httpx.HTTPError:
            pass  # a connection the dead worker's socket had queued
        time.sleep(0.05)
    assert victim not in now and len(now) == 2  # the survivor and a new worker


def listening_sockets(pid: int, port: int) -> set[int]:
    """Inodes of the TCP sockets process `pid` holds that listen on `port` (from /proc)."""
    import os

    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    listening.add(int(fields[9]))
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[8:-1]))
    return held & listening


def test_each_worker_listens_on_its_own_socket(pixel_factory) -> None:
    """Separate listening sockets (SO_REUSEPORT) are what lets the kernel spread connections; a socket shared by
    the workers leaves it to whichever wakes first (under wrk's burst of 64 connections, one took them all)."""
    proc = pixel_factory("collect", pixel_workers="2")
    pids = both_up(proc)
    sockets = [listening_sockets(pid, proc.port) for pid in pids]
    assert all(len(s) == 1 for s in sockets), sockets
    assert sockets[0] != sockets[1]
