"""The pieces every owner page (sites, goals, saved dashboards) shares.

- `error_text`: the words shown for a failed call (the API's own refusal text, else the exception's).
- `MessagePage`: a mixin for a page with a `message` label: `say` shows a line (red on error) and `_failed`
  is the `on_error` every worker call of the page uses.
- `add_page_shortcuts`: key sequences that act only while the focus is inside the page (each page has its
  own Ctrl+S, Ctrl+N).
- `DeleteKey`: the Delete key on an item view (which takes the key before any QShortcut).
- `confirm_delete`: the Yes/Cancel warning asked before a deletion, Cancel being the default.

Nothing here calls the API or holds state beyond the widgets it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from pixel.app.client import ApiRequestError
from pixel.app.desktop.status_colours import status_style

KeyBinding = tuple[QKeySequence | QKeySequence.StandardKey, Callable[[], object]]


def error_text(exc: BaseException) -> str:
    """The API's (or the client's) own words for a refusal; other failures as they are."""
    return exc.detail if isinstance(exc, ApiRequestError) else str(exc)


class MessagePage:
    """Mixin for a QWidget page that reports through its `message` label."""

    message: QLabel
    error_style: ClassVar[str] = (
        ""  # more CSS for an error (e.g. "font-weight:bold"); its colour is the theme's
    )

    def say(self, text: str, error: bool = False) -> None:
        """An error in the theme's "bad" colour (light or dark), anything else in the normal text colour."""
        self.message.setText(text)
        # the page's palette: the label's own follows its style sheet once it has one
        page = self.message.parentWidget() or self.message
        style = status_style("bad", page) + (f"; {self.error_style}" if self.error_style else "")
        self.message.setStyleSheet(style if error else "")

    def _failed(self, exc: BaseException) -> None:
        self.say(error_text(exc), error=True)


def add_page_shortcuts(page: QWidget, bindings: Iterable[KeyBinding]) -> None:
    """Each key calls its slot only while the focus is on `page` or one of its children."""
    for keys, slot in bindings:
        QShortcut(keys, page, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)


class DeleteKey(QObject):
    """Calls `slot` when Delete is pressed in `view` (an item view takes the key before any QShortcut)."""

    def __init__(self, view: QWidget, slot: Callable[[], None]) -> None:
        super().__init__(view)
        self.slot = slot
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.matches(QKeySequence.StandardKey.Delete):
                self.slot()
                return True
        return False


def confirm_delete(parent: QWidget, title: str, text: str) -> bool:
    """True when the owner answers Yes to the warning `title`/`text` (Cancel is the default button)."""
    answer = QMessageBox.warning(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes


def order_buttons(
    labels: tuple[str, str, str], remove: Callable[[], None], move: Callable[[int], None]
) -> tuple[QHBoxLayout, QPushButton, QPushButton, QPushButton]:
    """A row of Remove / Up / Down buttons for an ordered list (the dashboard's widgets, a funnel's steps):
    `remove()` and `move(-1 | 1)` act on the list's current row."""
    row = QHBoxLayout()
    buttons = [QPushButton(label) for label in labels]
    buttons[0].clicked.connect(remove)
    buttons[1].clicked.connect(lambda: move(-1))
    buttons[2].clicked.connect(lambda: move(1))
    for button in buttons:
        row.addWidget(button)
    return row, buttons[0], buttons[1], buttons[2]
