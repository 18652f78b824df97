"""The collector keeps, per X-Forwarded-For value, the client address it names (`Collector._forwarded_cache`), so a
repeated header (the edge's one-address header, a visitor's later events) is not parsed again: the answers are
those of the walk itself, cold or warm, and the cache holds at most `_CACHE_LIMIT` values, then starts over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pixel.server.collector import core
from pixel.server.collector.core import Collector
from pixel.server.settings import Settings

PROXY = "10.1.2.3"  # in the trusted range below


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = Collector(Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8", track_path="/collect"))
    c.start()
    yield c
    c.stop()


def client_ip(c: Collector, xff: str, peer: str = PROXY) -> str:
    r = c.handle("GET", "/collect", "echo=1", {b"x-forwarded-for": xff.encode()}, peer, b"", False)
    assert r.status == 200
    return str(orjson.loads(r.body)["client_ip"])


@pytest.mark.parametrize(
    ("xff", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),  # the edge's header: one address
        ("1.1.1.1, 203.0.113.9", "203.0.113.9"),  # the right-most untrusted address
        ("203.0.113.9, 10.9.9.9", "203.0.113.9"),  # a trusted hop on the right is skipped
        ("203.0.113.9,10.9.9.9 , 10.8.8.8", "203.0.113.9"),
        ("10.7.7.7, 10.9.9.9", "10.7.7.7"),  # every hop trusted: the left-most
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", PROXY),  # not an address: the peer
        ("203.0.113.9, unknown", PROXY),
        (" , ", PROXY),  # no entry at all
        ("300.1.1.1", PROXY),
    ],
)
def test_cold_and_warm_answers_are_the_walks(collector: Collector, xff: str, expected: str) -> None:
    assert client_ip(collector, xff) == expected  # cold
    assert collector._forwarded_cache == {xff: None if expected == PROXY else expected}
    assert client_ip(collector, xff) == expected  # warm: from the cache
    assert collector._walk(xff) == collector._forwarded_cache[xff]


def test_an_untrusted_peer_never_fills_the_cache(collector: Collector) -> None:
    assert client_ip(collector, "203.0.113.9", peer="192.168.1.4") == "192.168.1.4"
    assert collector._forwarded_cache == {}


def test_a_cached_none_still_answers_each_peer_its_own_address(collector: Collector) -> None:
    assert client_ip(collector, "unknown", peer="10.1.1.1") == "10.1.1.1"
    assert client_ip(collector, "unknown", peer="10.2.2.2") == "10.2.2.2"


def test_the_cache_is_bounded_and_starts_over(collector: Collector) -> None:
    limit = core._CACHE_LIMIT
    values = [f"203.0.{n // 256}.{n % 256}" for n in range(limit)]
    for value in values:
        assert client_ip(collector, value) == value
    assert len(collector._forwarded_cache) == limit
    assert client_ip(collector, "198.51.100.1") == "198.51.100.1"  # one more: over the limit, emptied
    assert collector._forwarded_cache == {}
    assert client_ip(collector, values[0]) == values[0]
    assert collector._forwarded_cache == {values[0]: values[0]}
