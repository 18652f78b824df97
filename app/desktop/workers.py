"""Background work for the GUI: a function runs on a QThreadPool thread; its result, error and
progress come back as queued signals handled on the GUI thread. Every task can be cancelled: the
function calls `task.check()` (or reads `task.cancelled`) between steps."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from pixel.app.errors import AppError


class Cancelled(AppError):
    """Raised inside a task once it was cancelled."""


class _Signals(QObject):
    done = Signal(object, object)  # task, result
    failed = Signal(object, object)  # task, exception
    progress = Signal(object, object)  # task, payload


class Task(QRunnable):
    def __init__(self, fn: Callable[[Task], Any], signals: _Signals) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it (the Runner keeps it until it is finished)
        self.fn = fn
        self.signals = signals
        self.cancelled = threading.Event()
        self.finished = threading.Event()  # the function returned or raised (set on its worker thread)
        # The runner has handled its outcome on the GUI thread: the callback ran, or was dropped (a cancelled
        # task's result, a deleted owner). `finished` comes first and says nothing about what the GUI shows:
        # a page gating its next step on the outcome reads this.
        self.settled = False
        self._raised = False
        self.on_done: Callable[[Any], None] | None = None
        self.on_error: Callable[[BaseException], None] | None = None
        self.on_progress: Callable[[Any], None] | None = None

    def cancel(self) -> None:
        self.cancelled.set()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("cancelled")

    def report(self, payload: Any) -> None:
        """Progress for the GUI (thread-safe). Also a cancellation point."""
        self.check()
        self.signals.progress.emit(self, payload)

    def progress_callback(self, payload: object) -> None:
        """For code that reports progress and cleans up when a callback raises (the provisioner rolls
        back): raises Cancelled once, then lets the cleanup's own progress through."""
        if self.cancelled.is_set() and not self._raised:
            self._raised = True
            raise Cancelled("cancelled")
        self.signals.progress.emit(self, payload)

    def run(self) -> None:
        try:
            result = self.fn(self)
        except BaseException as exc:
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.signals.failed.emit(self, exc)
        else:
            self.signals.done.emit(self, result)
        finally:
            self.finished.set()


class Runner(QObject):
    """Submits tasks to a thread pool and delivers their signals on the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._signals = _Signals(self)
        self._signals.done.connect(self._done)
        self._signals.failed.connect(self._failed)
        self._signals.progress.connect(self._progress)
        self._running: set[Task] = set()

    def submit(
        self,
        fn: Callable[[Task], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Task:
        task = Task(fn, self._signals)
        task.on_done, task.on_error, task.on_progress = on_done, on_error, on_progress
        self._running.add(task)
        self.pool.start(task)
        return task

    @property
    def busy(self) -> int:
        return len(self._running)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the threads (call before the QApplication goes)."""
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)

    @Slot(object, object)
    def _done(self, task: Task, result: Any) -> None:
        self._running.discard(task)
        task.settled = True
        if task.on_done and not task.cancelled.is_set() and alive(task.on_done):
            task.on_done(result)

    @Slot(object, object)
    def _failed(self, task: Task, exc: BaseException) -> None:
        self._running.discard(task)
        task.settled = True
        if task.on_error and alive(task.on_error):
            task.on_error(exc)  # Cancelled included: a dialog may want to say "cancelled"

    @Slot(object, object)
    def _progress(self, task: Task, payload: Any) -> None:
        if task.on_progress and alive(task.on_progress):
            task.on_progress(payload)


def alive(callback: Callable[..., Any]) -> bool:
    """False when `callback` would touch a Qt object already deleted (a page closed while its task ran): it is
    a method of one, or a closure over one or over a method of one (a view's `done` that paints into a widget of
    the page). Calling it would raise "Internal C++ object already deleted" in the event loop."""
    return all(shiboken6.isValid(owner) for owner in _qt_owners(callback))


def _qt_owners(callback: Callable[..., Any]) -> list[QObject]:
    """The Qt objects `callback` reaches: its own `__self__`, and each closure cell holding a Qt object or a
    method of one (one level: what a nested function in a page's method captures)."""
    owners: list[QObject] = []
    for value in (callback, *_cells(callback)):
        if isinstance(value, QObject):
            owners.append(value)
            continue
        owner = getattr(value, "__self__", None)
        if isinstance(owner, QObject):
            owners.append(owner)
    return owners


def _cells(callback: Callable[..., Any]) -> list[Any]:
    values = []
    for cell in getattr(callback, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            continue
    return values
