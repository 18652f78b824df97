"""`GET <track path>?echo=1` (for the installation check): the address an event sent the same way would be
recorded with, whether a forwarded header came and whether its sender is trusted; the proxy's own address only
when it is not a public one; nothing written to the spool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pixel.server.collector.core import Collector
from pixel.server.settings import Settings


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = Collector(Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8", track_path="/collect"))
    c.start()
    yield c
    c.stop()


def echo(c: Collector, peer: str, headers: dict[bytes, bytes], query: str = "echo=1") -> tuple[int, dict]:
    r = c.handle("GET", "/collect", query, headers, peer, b"", False)
    return r.status, orjson.loads(r.body)


@pytest.mark.parametrize(
    "peer, headers, expected",
    [
        (
            "8.8.4.4",
            {},
            {"client_ip": "8.8.4.4", "forwarded": False, "proxy_trusted": None, "proxy": None},
        ),
        (
            "10.1.2.3",
            {b"x-forwarded-for": b"203.0.113.9"},
            {"client_ip": "203.0.113.9", "forwarded": True, "proxy_trusted": True, "proxy": "10.1.2.3"},
        ),
        (  # a spoofed header in front of the trusted proxy's own: the right-most untrusted address counts
            "10.1.2.3",
            {b"x-forwarded-for": b"1.1.1.1, 203.0.113.9"},
            {"client_ip": "203.0.113.9", "forwarded": True, "proxy_trusted": True, "proxy": "10.1.2.3"},
        ),
        (  # an untrusted private proxy: its address is what the owner must add
            "192.168.1.4",
            {b"x-forwarded-for": b"203.0.113.9"},
            {"client_ip": "192.168.1.4", "forwarded": True, "proxy_trusted": False, "proxy": "192.168.1.4"},
        ),
        (  # a public sender of the header: not named back to anyone
            "8.8.4.4",
            {b"x-real-ip": b"203.0.113.9"},
            {"client_ip": "8.8.4.4", "forwarded": True, "proxy_trusted": False, "proxy": None},
        ),
    ],
)
def test_echo(collector: Collector, peer: str, headers: dict[bytes, bytes], expected: dict) -> None:
    assert echo(collector, peer, headers) == (200, expected)
    assert collector.spool is not None and collector.spool.tick() == []  # (nothing appended)
    assert sum(p.stat().st_size for p in collector.settings.spool_dir.rglob("*") if p.is_file()) == 0


def test_without_echo_a_get_without_event_is_still_400(collector: Collector) -> None:
    for query in ("", "echo=0", "xecho=1"):
        status, body = echo(collector, "10.1.2.3", {}, query)
        assert (status, body["error"]) == (400, "missing event")
