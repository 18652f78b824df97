"""`Task.settled`: the runner has handled a task's outcome on the GUI thread (its callback ran or was dropped),
which `finished` (set on the worker as it returns) does not say."""

from __future__ import annotations

import threading
from typing import Any

from pixel.app.desktop.workers import Runner, Task


def test_settled_after_the_callback_not_when_the_worker_returns(qtbot: Any) -> None:
    runner = Runner()
    seen: list[bool] = []
    task = runner.submit(lambda _t: 7, on_done=lambda _r: seen.append(task.settled))
    assert task.finished.wait(10)  # the GUI thread blocked: the outcome is queued, not handled
    assert not task.settled and seen == []
    qtbot.waitUntil(lambda: task.settled, timeout=10_000)
    assert seen == [True]  # settled already when the callback runs (it may start the next step)
    runner.shutdown()


def test_a_failure_settles(qtbot: Any) -> None:
    runner = Runner()
    errors: list[str] = []

    def work(_task: Task) -> None:
        raise RuntimeError("engine gone")

    task = runner.submit(work, on_error=lambda exc: errors.append(str(exc)))
    qtbot.waitUntil(lambda: task.settled, timeout=10_000)
    assert errors == ["engine gone"]
    runner.shutdown()


def test_a_cancelled_task_whose_work_completed_settles_without_its_callback(qtbot: Any) -> None:
    runner = Runner()
    release, results = threading.Event(), []

    def work(_task: Task) -> str:
        release.wait(10)
        return "done"  # never checks the cancellation

    task = runner.submit(work, on_done=results.append)
    task.cancel()
    release.set()
    qtbot.waitUntil(lambda: task.settled, timeout=10_000)
    assert results == [] and runner.busy == 0
    runner.shutdown()
