"""The embedded store's turns (server/store/turns.py): one statement at a time, a foreground statement before a
background one (a cache's build), the background's turn after the foreground's grace or, under constant
foreground use, after its patience; never two at once. Threads are ordered by events and a pinned clock that the
tests move, so no outcome depends on how fast this machine is."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.turns import GRACE_SECONDS, PATIENCE_SECONDS, Turns

WAIT = 10.0  # seconds a test waits for a thread it expects to move (a failure, never a pass, takes this long)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Taker:
    """A thread taking one turn (background or not): `started` once it asked, `holding` while it holds the
    turn, which it keeps until `release` is set."""

    def __init__(self, turns: Turns, order: list[str], name: str, background: bool) -> None:
        self.turns, self.order, self.name, self.background = turns, order, name, background
        self.started, self.holding, self.release = threading.Event(), threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        assert self.started.wait(WAIT)

    def _run(self) -> None:
        if self.background:
            with self.turns.background():
                self._take()
        else:
            self._take()

    def _take(self) -> None:
        self.started.set()
        with self.turns.turn():
            self.order.append(self.name)
            self.holding.set()
            assert self.release.wait(WAIT)

    def done(self) -> None:
        self.release.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def hand_over(holder: Taker, to: Taker, still_waiting: Taker) -> None:
    """`holder` ends its turn: `to` takes the session, `still_waiting` does not."""
    holder.done()
    assert to.holding.wait(WAIT)
    assert not still_waiting.holding.is_set()


def in_turn(*takers: Taker) -> None:
    """Each of `takers` in this order takes the session and ends its turn."""
    for taker in takers:
        assert taker.holding.wait(WAIT)
        taker.done()


def settle() -> None:
    """Let the threads that can move reach their wait (they never take a turn they must not, whatever this
    waits: the assertions check what holds, not what ran within this pause)."""
    time.sleep(0.05)


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "a thread did not move"
        time.sleep(0.005)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_defaults_are_a_short_grace_and_a_longer_patience() -> None:
    assert (GRACE_SECONDS, PATIENCE_SECONDS) == (0.1, 5.0)
    turns = Turns()
    assert (turns.grace, turns.patience) == (GRACE_SECONDS, PATIENCE_SECONDS)


def test_a_waiting_foreground_statement_goes_before_a_background_one_that_came_first(clock: Clock) -> None:
    turns, order = Turns(grace=0.0, patience=60.0, clock=clock), []
    first = Taker(turns, order, "foreground 1", background=False)
    assert first.holding.wait(WAIT)
    build = Taker(turns, order, "build", background=True)  # asks first ...
    settle()
    second = Taker(turns, order, "foreground 2", background=False)  # ... this one asks later
    settle()
    hand_over(first, second, build)
    in_turn(second, build)
    assert order == ["foreground 1", "foreground 2", "build"]


def test_the_background_waits_the_grace_after_a_foreground_statement(clock: Clock) -> None:
    turns, order = Turns(grace=0.5, patience=60.0, clock=clock), []
    owner = Taker(turns, order, "foreground", background=False)
    build = Taker(turns, order, "build", background=True)
    owner.done()  # the foreground statement ended at 1000.0
    settle()
    clock.now = 1000.4
    turns.poke()
    settle()
    assert not build.holding.is_set()  # inside the grace: the session stays free for the owner's next one
    nxt = Taker(turns, order, "next foreground", background=False)
    assert nxt.holding.wait(WAIT)  # and the owner's next statement takes it
    clock.now = 1001.0
    nxt.done()  # ended at 1001.0: a new grace
    clock.now = 1001.6
    turns.poke()
    assert build.holding.wait(WAIT)
    build.done()
    assert order == ["foreground", "next foreground", "build"]


def test_past_its_patience_the_background_takes_the_next_free_turn(clock: Clock) -> None:
    """Under constant foreground use a build still goes on: once it has waited its patience it is the next
    turn taken, before the foreground statements waiting then."""
    turns, order = Turns(grace=0.5, patience=3.0, clock=clock), []
    first = Taker(turns, order, "foreground 1", background=False)
    assert first.holding.wait(WAIT)
    build = Taker(turns, order, "build", background=True)  # asks at 1000.0: patience until 1003.0
    clock.now = 1002.0
    first.done()
    second = Taker(turns, order, "foreground 2", background=False)
    assert second.holding.wait(WAIT)
    settle()
    assert not build.holding.is_set() and turns.overdue == 0
    clock.now = 1003.5
    turns.poke()
    until(lambda: turns.overdue == 1)
    third = Taker(turns, order, "foreground 3", background=False)  # asks after the build's patience ran out
    settle()
    hand_over(second, build, third)
    in_turn(build, third)
    assert order == ["foreground 1", "foreground 2", "build", "foreground 3"]
    assert turns.overdue == 0


def test_a_build_becomes_overdue_while_a_long_statement_runs() -> None:
    """The patience runs out during a foreground statement: the build counts itself overdue then (not only when
    that statement ends, where a foreground statement waiting beside it could take the session first), so the
    next turn is the build's. Real monotonic time, a patience of a tenth of a second."""
    turns, order = Turns(grace=0.5, patience=0.1), []
    long = Taker(turns, order, "long foreground", background=False)
    assert long.holding.wait(WAIT)
    build = Taker(turns, order, "build", background=True)
    until(lambda: turns.overdue == 1)  # nothing wakes it but its patience's end
    later = Taker(turns, order, "later foreground", background=False)
    settle()
    hand_over(long, build, later)
    in_turn(build, later)
    assert order == ["long foreground", "build", "later foreground"]


def test_never_two_statements_at_once(clock: Clock) -> None:
    turns = Turns(grace=0.0, patience=0.0, clock=clock)
    inside, most = [0], [0]
    lock = threading.Lock()

    def work(background: bool) -> None:
        def once() -> None:
            with turns.turn():
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.0005)
                with lock:
                    inside[0] -= 1

        for _ in range(50):
            if background:
                with turns.background():
                    once()
            else:
                once()

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    assert not any(t.is_alive() for t in threads)
    assert most[0] == 1


def test_background_is_this_threads_only_and_nests(clock: Clock) -> None:
    turns = Turns(clock=clock)
    seen: list[bool] = []
    with turns.background():
        seen.append(turns.is_background())
        other = threading.Thread(target=lambda: seen.append(turns.is_background()))
        other.start()
        other.join(WAIT)
        with turns.background():
            seen.append(turns.is_background())
        seen.append(turns.is_background())
    seen.append(turns.is_background())
    assert seen == [True, False, True, True, False]


def test_the_embedded_store_runs_a_build_after_the_owners_read(tmp_path: Path) -> None:
    """Through the store itself: while a foreground statement runs, a background statement and another
    foreground statement wait; the foreground one goes first."""
    store = ChdbStore(tmp_path / "store")
    order: list[str] = []
    try:
        running = threading.Event()

        def slow() -> None:
            running.set()
            store.query("SELECT sleep(1)")  # a second whatever the machine's speed
            order.append("slow foreground")

        def build() -> None:
            with store.background():
                store.query("SELECT 1")
                order.append("build")

        def read() -> None:
            store.query("SELECT 2")
            order.append("foreground")

        first = threading.Thread(target=slow)
        first.start()
        assert running.wait(WAIT)
        time.sleep(0.2)  # the slow statement holds the session
        later = [threading.Thread(target=build), threading.Thread(target=read)]
        later[0].start()
        time.sleep(0.05)
        later[1].start()
        for t in (first, *later):
            t.join(60)
        assert order == ["slow foreground", "foreground", "build"]
    finally:
        store.close()
