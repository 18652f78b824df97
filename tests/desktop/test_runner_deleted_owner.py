"""A task that ends after the page that started it was deleted does not call into the deleted page (the Alerts
page's error callback raised "Internal C++ object already deleted" in the event loop when a test closed it)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QWidget

from pixel.app.desktop.workers import Runner, alive


class Page(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.message = QLabel(self)
        self.calls: list[str] = []

    def failed(self, exc: BaseException) -> None:
        self.calls.append(str(exc))
        self.message.setText(str(exc))


def test_callbacks_of_a_deleted_page_are_not_called(qtbot: Any) -> None:
    import shiboken6

    runner = Runner()
    page = Page()
    assert alive(page.failed) and alive(print) and alive(lambda: None)

    def work(_task: Any) -> None:
        raise RuntimeError("the server went away")

    calls = page.calls
    shiboken6.delete(page)  # the C++ page (and its label) gone, the Python wrapper kept
    assert not alive(page.failed)
    runner.submit(work, on_error=page.failed)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=10_000)
    assert calls == []
    runner.shutdown()


def test_callbacks_of_a_live_page_are_called(qtbot: Any) -> None:
    runner = Runner()
    page = Page()
    qtbot.addWidget(page)

    def work(_task: Any) -> None:
        raise RuntimeError("the server went away")

    runner.submit(work, on_error=page.failed)
    qtbot.waitUntil(lambda: page.calls == ["the server went away"], timeout=10_000)
    assert page.message.text() == "the server went away"
    runner.shutdown()
