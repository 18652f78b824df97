"""ChildSupervisor (server/processes.py): a crashed child is started again; a stopped one is not.

Real spawned processes (the target is `time.sleep`), killed with real signals.
"""

from __future__ import annotations

import os
import signal
import time

from pixel.server.processes import ChildSupervisor


def wait_for(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_child_killed_by_sigkill_is_started_again() -> None:
    sup = ChildSupervisor("sleeper", time.sleep, (60,))
    sup.start()
    try:
        first = sup.process.pid
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: sup.process.pid != first and sup.process.is_alive())
    finally:
        sup.stop()
    assert sup.process.exitcode is not None


def test_a_child_that_dies_of_sigterm_is_a_requested_stop_and_not_restarted() -> None:
    """A service manager's SIGTERM to the process group reaches a child still starting (no handler yet)."""
    sup = ChildSupervisor("sleeper", time.sleep, (60,))
    sup.start()
    try:
        first = sup.process
        os.kill(first.pid, signal.SIGTERM)
        assert wait_for(lambda: first.exitcode == -signal.SIGTERM)
        assert wait_for(lambda: not sup._thread.is_alive(), timeout=5)  # supervision ended
        assert sup.process is first  # nothing new was started
    finally:
        sup.stop()


def test_a_stop_requested_after_the_backoff_wait_still_starts_nothing() -> None:
    """The stop can come between the end of the restart delay and the restart: it must win."""
    import threading

    class StopDuringWait(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            super().wait(timeout)  # the restart delay passes with no stop ...
            self.set()  # ... and send_stop's flag is set just after: the restart must see it
            return False

    sup = ChildSupervisor("sleeper", time.sleep, (60,))
    sup._stopping = StopDuringWait()
    sup.start()
    first = sup.process
    os.kill(first.pid, signal.SIGKILL)  # a crash: restarted after the delay, unless stopped
    assert wait_for(lambda: not sup._thread.is_alive(), timeout=10)
    assert sup.process is first
    sup.join()
