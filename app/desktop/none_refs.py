"""Keep Python's reference counts of None, True and False from running out under Qt calls that lose them.

The PySide6 build in use (6.12 on CPython 3.11) returns None from every void method (QPainter.drawPath,
QPainterPath.lineTo, QLabel.setText...) without taking a reference to it, as if None were immortal (it is from
CPython 3.12 on). Each such call costs None one reference; after a few thousand the count reaches zero and the
interpreter aborts ("none_dealloc: deallocating None"): a desktop app open for a while, or a test session,
crashed that way.

- The same build loses references to True and False too, in its event loop (processEvents with a pyqtgraph
  chart shown: True fell by about 21,000 over six desktop tests, and the process then aborted with
  "bool_dealloc").
- `pin_none()`, called once at start (the app's main, the desktop tests' conftest), gives None, True and False a
  count no run can use up (`CUSHION` references: what CPython 3.12 does by making them immortal). On CPython
  3.12 and later it does nothing.
- `balanced()` / `@balanced_calls` give None back the references lost inside them (drawing code with many
  void calls, such as the world map): leak-neutral even where `pin_none` was not called.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None

CUSHION = 1 << 40
P = ParamSpec("P")
R = TypeVar("R")


PINNED = (None, True, False)


def pin_none() -> None:
    """Raise the reference counts of None, True and False by `CUSHION` (once: a count already above it is left
    alone)."""
    if sys.version_info >= (3, 12):
        return  # immortal
    for singleton in PINNED:
        count = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt, the first field of every object
        if count.value < CUSHION:
            count.value += CUSHION


def restore(lost: int) -> None:
    """Give None back `lost` references."""
    for _ in range(lost):
        _incref(None)


@contextmanager
def balanced() -> Iterator[None]:
    before = sys.getrefcount(None)
    try:
        yield
    finally:
        lost = before - sys.getrefcount(None)
        if lost > 0:
            restore(lost)


def balanced_calls(function: Callable[P, R]) -> Callable[P, R]:
    """`function` run inside `balanced()`."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with balanced():
            return function(*args, **kwargs)

    return wrapper
