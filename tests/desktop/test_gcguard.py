"""The app collects garbage on the GUI thread only (app/desktop/gcguard.py): automatic collection is off, and a
reference cycle is freed by the GUI thread's timer, never by a worker thread."""

from __future__ import annotations

import gc
import threading
import weakref

from pixel.app.desktop.gcguard import collect_on_the_gui_thread


class _Node:
    freed_in: list[str] = []

    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it

    def __del__(self) -> None:
        _Node.freed_in.append(threading.current_thread().name)


def test_cycles_are_freed_on_the_gui_thread_only(qtbot) -> None:
    collector = collect_on_the_gui_thread(interval=0.05)
    try:
        assert not gc.isenabled()
        _Node.freed_in.clear()
        ref = weakref.ref(_Node())
        # a worker allocating past every threshold does not collect: automatic collection is off
        worker = threading.Thread(target=lambda: [[] for _ in range(200_000)], name="worker")
        worker.start()
        worker.join()
        assert ref() is not None
        collector.threshold = (0, 0, 0)  # the timer's next check collects whatever was allocated
        qtbot.waitUntil(lambda: ref() is None, timeout=5000)
        assert _Node.freed_in == [threading.main_thread().name]
    finally:
        collector.timer.stop()
