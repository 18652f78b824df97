"""Garbage collection on the GUI thread only.

Python's cyclic collector runs in whichever thread happens to cross its allocation threshold. The app's workers
(workers.Runner) allocate on their own threads, and a collection there that frees a Qt object (a widget in a
reference cycle) crashes the process. So the app turns automatic collection off and collects from a timer on the
GUI thread, with pyqtgraph's GarbageCollector (the same thresholds, checked every `interval` seconds).
"""

from __future__ import annotations

from pyqtgraph.util.garbage_collector import GarbageCollector


def collect_on_the_gui_thread(interval: float = 1.0) -> GarbageCollector:
    """Disable automatic collection and start the GUI-thread timer; keep the returned object for the app's life
    (a QApplication must exist)."""
    return GarbageCollector(interval=interval)
