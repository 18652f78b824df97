"""The tests' port allocator (tests/ports.py): per-worker slices below the ephemeral range, ports checked free."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests import ports


@pytest.mark.parametrize(
    ("name", "index"), [("gw0", 0), ("gw3", 3), ("gw17", 17), ("", 0), ("master", 0), ("gwx", 0)]
)
def test_worker_index(name: str, index: int) -> None:
    assert ports.worker_index(name) == index


def test_slices_are_disjoint_and_below_the_ephemeral_range() -> None:
    low = 32768
    slices = [ports.slice_of(i, low) for i in range(ports.SLICES)]
    assert all(s is not None for s in slices)
    taken = [p for s in slices for p in s]  # type: ignore[union-attr]
    assert len(taken) == len(set(taken)) == ports.SPAN // ports.SLICES * ports.SLICES
    assert min(taken) == low - ports.SPAN and max(taken) < low
    assert ports.slice_of(ports.SLICES + 2, low) == ports.slice_of(2, low)  # more workers share, modulo


@pytest.mark.parametrize("low", [1024, 5000, ports.SPAN + 1024])
def test_no_slice_where_the_range_leaves_no_room(low: int) -> None:
    assert ports.slice_of(0, low) is None


@pytest.mark.parametrize(("text", "low"), [("32768\t60999\n", 32768), ("40000 50000", 40000), ("", 32768)])
def test_ephemeral_low(tmp_path: Path, text: str, low: int) -> None:
    path = tmp_path / "range"
    path.write_text(text)
    assert ports.ephemeral_low(path) == low
    assert ports.ephemeral_low(tmp_path / "missing") == 32768


def test_free_ports_are_distinct_bindable_and_pass_over_a_held_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_next", None)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    first = ports.free_port()
    mine = ports.slice_of(5, ports.ephemeral_low())
    assert mine is not None and first in mine
    with socket.socket() as held:
        held.bind(("127.0.0.1", first + 1 if first + 1 in mine else mine.start))
        held.listen()
        busy = held.getsockname()[1]
        monkeypatch.setattr(ports, "_next", iter([busy, busy, first]))
        assert ports.free_port() == first  # the held port is passed over
    monkeypatch.setattr(ports, "_next", None)
    handed = [ports.free_port() for _ in range(50)]
    assert len(set(handed)) == 50 and all(p in mine for p in handed)
