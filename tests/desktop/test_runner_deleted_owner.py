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


def test_a_closure_over_a_deleted_widget_is_not_called(qtbot: Any) -> None:
    """A view's `done` is a closure over the page and a widget's paint method (dashboard.py): once the widget is
    deleted, the task's answer is dropped, not painted into it."""
    import shiboken6

    runner = Runner()
    page = Page()
    painted: list[str] = []

    def make_done(paint: Any) -> Any:
        def done(result: str) -> None:
            painted.append(result)
            paint(result)

        return done

    done = make_done(page.message.setText)
    also_page = make_done_over_page(page, painted)
    assert alive(done) and alive(also_page)
    shiboken6.delete(page)  # the page and its label gone
    assert not alive(done) and not alive(also_page)
    runner.submit(lambda _task: "3 current visitors", on_done=done)
    runner.submit(lambda _task: "late", on_done=also_page)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=10_000)
    assert painted == []
    runner.shutdown()


def make_done_over_page(page: Page, painted: list[str]) -> Any:
    def done(result: str) -> None:
        painted.append(result)
        page.message.setText(result)

    return done


def test_a_closure_over_a_live_widget_is_called(qtbot: Any) -> None:
    runner = Runner()
    page = Page()
    qtbot.addWidget(page)
    empty: Any = None

    def done(result: str) -> None:
        page.message.setText(result)
        assert empty is None  # a cell holding a plain value: not a Qt object, no bearing

    runner.submit(lambda _task: "3 current visitors", on_done=done)
    qtbot.waitUntil(lambda: page.message.text() == "3 current visitors", timeout=10_000)
    runner.shutdown()
