"""Free TCP ports for the tests' servers, which no other xdist worker's test and no outgoing connection takes meanwhile.

A port from `bind(port 0)` comes from the kernel's ephemeral range, the same range it uses for the source port of
every outgoing connection and Docker uses for published ports; and between the test picking it and its server
binding it (a Pixel process takes a second or more to start under load) another pytest-xdist worker's `bind(0)`
may be handed the same port. Then one test's health check is answered by another test's server, which goes away:
a refused connection in a test that did nothing wrong.

So each xdist worker takes its ports from its own slice of a range just below the ephemeral one, in turn, each
checked free by binding it (without SO_REUSEADDR, so a port some socket still holds, even in TIME_WAIT, is passed
over). Where the ephemeral range leaves no room below it, the kernel's choice is used as before. Two pytest
sessions run at once on one machine share the slices (each starts at its own offset, and a bound port is passed
over): the CI runs one.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

SLICES = 16  # xdist workers with their own slice (more share slices modulo, still checked free)
SPAN = 12288  # ports below the ephemeral range's low end that the slices divide


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The low end of the kernel's ephemeral port range (Linux's default when it cannot be read)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def worker_index(name: str | None = None) -> int:
    """This process's pytest-xdist worker number (`gw3` → 3); 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "") if name is None else name
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def slice_of(index: int, low: int) -> range | None:
    """The ports of worker `index`'s slice below `low`; None where no slice fits above the privileged ports."""
    size = SPAN // SLICES
    start = low - SPAN + (index % SLICES) * size
    if start <= 1024:
        return None
    return range(start, start + size)


def _candidates() -> Iterator[int]:
    ports = slice_of(worker_index(), ephemeral_low())
    if ports is None:
        return iter(())
    first = random.Random(os.getpid()).randrange(len(ports))  # two sessions at once start apart
    return itertools.cycle([*ports[first:], *ports[:first]])


_next: Iterator[int] | None = None


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now and that this process has not handed out recently."""
    global _next
    if _next is None:
        _next = _candidates()
    for port in itertools.islice(_next, SPAN // SLICES):
        if bindable(port):
            return port
    with socket.socket() as sock:  # no slice, or all of it busy: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
