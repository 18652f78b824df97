"""`wait_until`, the desktop tests' wait that says where the work stood when it times out."""

from __future__ import annotations

import threading

import pytest
from pytestqt.exceptions import TimeoutError as QtTimeout

from tests.desktop.conftest import wait_until


def test_a_met_condition_returns(qtbot) -> None:
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    wait_until(qtbot, flag.is_set, 5_000, lambda: "not shown")


def test_a_timeout_shows_the_state_and_every_threads_stack(qtbot) -> None:
    release = threading.Event()

    def held_on_a_worker() -> None:
        release.wait(30)

    worker = threading.Thread(target=held_on_a_worker, name="held-worker")
    worker.start()
    try:
        with pytest.raises(QtTimeout) as raised:
            wait_until(qtbot, lambda: False, 50, lambda: "banner text='the key changed'")
    finally:
        release.set()
        worker.join()
    text = str(raised.value)
    assert "waitUntil timed out in 50 milliseconds" in text
    assert "banner text='the key changed'" in text
    assert "--- thread held-worker" in text and "in held_on_a_worker" in text
    assert "--- thread MainThread" in text
