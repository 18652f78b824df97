"""The client address the API's per-client limits count (server/api/client_address.py): X-Forwarded-For only
from the API's trusted proxies (the stack's edge, by name), the rightmost untrusted hop; anyone else's header
ignored. On the pure rule (with hypothesis), then on a real `pixel serve` process: its login limiter counts each
client behind a trusted proxy apart, and a forged header from an untrusted client does not reset the count."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.api.client_address import TrustedProxies

EDGE = "172.31.240.5"


def _resolver(table: dict[str, list[str]], asked: list[str] | None = None):  # type: ignore[no-untyped-def]
    def resolve(name: str) -> list[str]:
        if asked is not None:
            asked.append(name)
        if name not in table:
            raise OSError(f"{name}: no such host")
        return table[name]

    return resolve


ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["", " ", "unknown", "1.2.3", "::ffff:", "a" * 300, "1.2.3.4:80", "[::1]"]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(peer=st.ip_addresses().map(str), hops=st.lists(ips, max_size=6))
def test_an_untrusted_peer_is_its_own_address_whatever_it_sends(peer: str, hops: list[str]) -> None:
    trusted = TrustedProxies(["edge", "10.9.0.0/16"], resolver=_resolver({"edge": [EDGE]}))
    if peer == EDGE or ipaddress.ip_address(peer) in ipaddress.ip_network("10.9.0.0/16"):
        return
    assert trusted.client(peer, ", ".join(hops)) == peer


@settings(max_examples=300, deadline=None, derandomize=True)
@given(hops=st.lists(ips, max_size=6))
def test_from_the_edge_the_rightmost_untrusted_valid_hop(hops: list[str]) -> None:
    trusted = TrustedProxies(["edge", "10.9.0.0/16"], resolver=_resolver({"edge": [EDGE]}))
    expected = EDGE
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop.strip())
        except ValueError:
            break  # a malformed hop: nothing left of it is believed
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if str(ip) != EDGE and ip not in ipaddress.ip_network("10.9.0.0/16"):
            expected = str(ip)
            break
    assert trusted.client(EDGE, ", ".join(hops)) == expected


@pytest.mark.parametrize(
    ("entries", "peer", "xff", "client"),
    [
        (["edge"], EDGE, "203.0.113.9", "203.0.113.9"),
        (["edge"], EDGE, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the edge's own entry is the right one
        (["edge"], EDGE, "203.0.113.9, 10.9.0.7", "10.9.0.7"),  # 10.9/16 is not trusted here
        (["edge", "10.9.0.0/16"], EDGE, "203.0.113.9, 10.9.0.7", "203.0.113.9"),
        (["edge"], EDGE, "", EDGE),
        (["edge"], EDGE, "not-an-address", EDGE),
        (["edge"], EDGE, "203.0.113.9, bogus", EDGE),
        (["edge"], EDGE, "::ffff:203.0.113.9", "203.0.113.9"),
        (["edge"], "172.31.240.1", "203.0.113.9", "172.31.240.1"),  # the network's gateway: not the edge
        (["*", "0.0.0.0/0", "::/0"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # never "anyone"
        ([], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        (["gone"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # a name that does not resolve trusts nobody
        (["127.0.0.1"], "127.0.0.1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_cases(entries: list[str], peer: str, xff: str, client: str) -> None:
    trusted = TrustedProxies(entries, resolver=_resolver({"edge": [EDGE]}))
    assert trusted.client(peer, xff) == client


def test_a_name_is_resolved_again_after_its_ttl_only() -> None:
    """A restarted edge comes back with another address: recognised at the next resolution, the old one
    forgotten; between two resolutions no lookup is made (one per request would be a DNS query each)."""
    now = [0.0]
    table = {"edge": [EDGE]}
    asked: list[str] = []
    trusted = TrustedProxies(["edge"], resolver=_resolver(table, asked), ttl=30, clock=lambda: now[0])
    assert trusted.client(EDGE, "203.0.113.9") == "203.0.113.9"
    table["edge"] = ["172.31.240.9"]
    now[0] = 29.0
    assert trusted.client(EDGE, "203.0.113.9") == "203.0.113.9" and asked == ["edge"]
    now[0] = 30.0
    assert trusted.client(EDGE, "203.0.113.9") == EDGE  # the old address is no longer the edge
    assert trusted.client("172.31.240.9", "203.0.113.9") == "203.0.113.9"
    assert asked == ["edge", "edge"]
    del table["edge"]  # the edge is gone: nobody trusted, looked up again later
    now[0] = 61.0
    assert trusted.client("172.31.240.9", "203.0.113.9") == "172.31.240.9"


def _fail_login(api: str, forwarded_for: str) -> int:
    r = httpx.post(
        f"{api}/api/auth/login",
        json={"username": "nobody", "password": "wrong password 123"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    return r.status_code


def test_login_limiter_behind_a_trusted_proxy_counts_each_client(pixel_factory) -> None:
    """This test's loopback connection plays the edge (PIXEL_API_TRUSTED_PROXIES=127.0.0.1): one client's
    failed logins lock that client out, not the next one behind the same proxy."""
    server = pixel_factory(PIXEL_API_TRUSTED_PROXIES="127.0.0.1")
    assert [_fail_login(server.api, "203.0.113.9") for _ in range(6)] == [401] * 5 + [429]
    assert _fail_login(server.api, "203.0.113.10") == 401
    assert _fail_login(server.api, "203.0.113.9, 127.0.0.1") == 429  # the proxy's own entry is skipped


def test_login_limiter_ignores_a_forged_header_from_an_untrusted_client(pixel_factory) -> None:
    server = pixel_factory()  # no trusted proxy: the connection's address counts
    assert [_fail_login(server.api, f"203.0.113.{n}") for n in range(6)] == [401] * 5 + [429]
