"""`pixel serve` stops cleanly — whether the whole process group gets SIGTERM (a service manager, Ctrl-C) or
only the main process — and leaves no process behind; a crashed store process is restarted."""

from __future__ import annotations

import os
import signal
import time

import httpx


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] != "Z":
                    alive.add(pid)
        except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or between it and the read
            pass
    return alive


def _family(server) -> set[int]:
    """The pids of `pixel serve`: the main process, collector workers and the store process."""
    pids = {server.proc.pid}
    pids |= {httpx.get(f"{server.collector}/health").json()["pid"] for _ in range(20)}
    pids.add(_store_pid(server))
    return pids


def _store_pid(server) -> int:
    """The store process's pid, from the store folder's owner lock (its public /health shows no pid)."""
    return int((server.data_dir / "store" / ".pixel-owner.lock").read_text())


def _wait_gone(pids: set[int], timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def test_sigterm_to_the_process_group_stops_everything(pixel_server) -> None:
    pids = _family(pixel_server)
    assert len(pids) >= 3
    started = time.monotonic()
    os.killpg(pixel_server.proc.pid, signal.SIGTERM)
    assert pixel_server.proc.wait(30) == 0
    assert _wait_gone(pids) == set()
    assert time.monotonic() - started < 15


def test_sigterm_to_the_main_process_stops_its_children(pixel_server) -> None:
    pids = _family(pixel_server)
    os.kill(pixel_server.proc.pid, signal.SIGTERM)
    assert pixel_server.proc.wait(30) == 0
    assert _wait_gone(pids) == set()


def test_a_crashed_store_process_is_restarted(pixel_server) -> None:
    store_pid = _store_pid(pixel_server)
    os.kill(store_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    new_pid = None
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{pixel_server.api}/health", timeout=1).raise_for_status()
            new_pid = _store_pid(pixel_server)
            if new_pid != store_pid:
                break
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    assert new_pid is not None and new_pid != store_pid
    assert (
        httpx.post(
            f"{pixel_server.collector}/track", json={"event_name": "x", "site": "r.example"}
        ).status_code
        == 204
    )
    pixel_server.wait_shipped(1)
