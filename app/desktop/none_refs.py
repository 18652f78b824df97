"""Keep Python's reference count of None balanced around Qt calls that lose references to it.

The PySide6 build in use (6.12 on CPython 3.11) returns None from every void method (QPainter.drawPath,
QPainterPath.lineTo, QLabel.setText...) without taking a reference to it, as if None were immortal (it is from
CPython 3.12 on). Each such call costs None one reference; after a few thousand the count reaches zero and the
interpreter aborts ("none_dealloc: deallocating None"). Code that makes many void calls (a QPainter drawing a
world map) runs inside `balanced()`, which gives None back every reference lost meanwhile. Where None is
immortal (CPython 3.12 and later) its count does not move and `balanced()` does nothing.
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

P = ParamSpec("P")
R = TypeVar("R")


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
