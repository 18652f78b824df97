"""Whose statement runs next on the embedded store's one session: the owner's before the caches' builds.

chDB runs one statement at a time per session, so every thread of the store process takes turns: the API's
reads, the shipper's inserts and the background builds of the per-day caches. Taken in arrival order, a cold
dashboard's statements each queue behind a build statement of the cache that is being built because of it, and
the owner waits for both. Here a background turn (a thread inside `Turns.background()`) waits while a
foreground statement runs or waits, and for `grace` seconds after the last one ended, since one request's
statements arrive one after another with a little Python between them. Past `patience` seconds of waiting, a
background turn is the next one taken, before any foreground turn waiting then, so a store busy answering
never stops building.

A running statement is never interrupted: a foreground statement arriving during a build's statement waits for
that one statement to end, not for the rest of the build.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

GRACE_SECONDS = 0.1
PATIENCE_SECONDS = 5.0


class Turns:
    """One statement at a time, foreground first (see the module's docstring). `clock` is monotonic seconds."""

    def __init__(
        self,
        grace: float = GRACE_SECONDS,
        patience: float = PATIENCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace = grace
        self.patience = patience
        self.clock = clock
        self._cond = threading.Condition()
        self._busy = False
        self._waiting = 0  # foreground turns waiting
        self._overdue = 0  # background turns waiting past their patience
        self._foreground_ended = float("-inf")
        self._local = threading.local()

    @contextmanager
    def background(self) -> Iterator[None]:
        """This thread's statements inside the block take background turns."""
        before = self.is_background()
        self._local.background = True
        try:
            yield
        finally:
            self._local.background = before

    def is_background(self) -> bool:
        return bool(getattr(self._local, "background", False))

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the session for one statement."""
        background = self.is_background()
        self._acquire(background)
        try:
            yield
        finally:
            self._release(background)

    def poke(self) -> None:
        """Wake the waiting turns to look again (after the clock moved, in tests)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def overdue(self) -> int:
        """Background turns waiting past their patience (each goes before any foreground turn then waiting)."""
        with self._cond:
            return self._overdue

    def _acquire(self, background: bool) -> None:
        with self._cond:
            if background:
                self._await_background()
            else:
                self._waiting += 1
                try:
                    while self._busy or self._overdue:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
            self._busy = True

    def _await_background(self) -> None:
        """Wait (holding `_cond`'s lock between waits) until a background turn may take the free session."""
        give_up = self.clock() + self.patience
        overdue = False
        try:
            while True:
                now = self.clock()
                if not overdue and now >= give_up:
                    overdue = True
                    self._overdue += 1
                if not self._busy and (overdue or self._foreground_quiet(now)):
                    return
                if self._busy:  # every release wakes it; until its patience ends, that end wakes it too
                    self._cond.wait(None if overdue else give_up - now)
                elif self._waiting:  # a foreground turn is about to take the session
                    self._cond.wait(give_up - now)
                else:  # free, within the grace after a foreground statement
                    self._cond.wait(min(give_up, self._foreground_ended + self.grace) - now)
        finally:
            if overdue:
                self._overdue -= 1
                self._cond.notify_all()

    def _foreground_quiet(self, now: float) -> bool:
        return not self._waiting and now - self._foreground_ended >= self.grace

    def _release(self, background: bool) -> None:
        with self._cond:
            self._busy = False
            if not background:
                self._foreground_ended = self.clock()
            self._cond.notify_all()
