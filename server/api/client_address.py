"""The client address the API's per-client limits count (failed logins, share-link passwords).

`client_address(request)` is the connection's address, except when that address is one of
`settings.api_trusted_proxies` (addresses, ranges, or host names such as the stack's `edge`, resolved and
re-resolved every `RESOLVE_SECONDS`, so a restarted edge with a new address is recognised): then the
rightmost address of X-Forwarded-For that is not itself a trusted proxy. The edge replaces the header with the
connection's address it saw, so behind it each visitor is counted on their own and not all together as the edge.

Anyone else's X-Forwarded-For is ignored: a client that talks to the API directly (the published loopback port,
the stack network's gateway, another container) cannot pick the address it is counted under, and so cannot slip
past a limit by sending a new header with every try. A header that holds no valid address counts as none.
An unresolvable name trusts nobody (and is looked up again later); `*` or a /0 range is never trusted.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Sequence[str]]

RESOLVE_SECONDS = 30.0


def _system_resolver(name: str) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrustedProxies:
    """The API's trusted proxies: fixed ranges plus host names resolved at most every `ttl` seconds."""

    def __init__(
        self,
        entries: Iterable[str],
        resolver: Resolver = _system_resolver,
        ttl: float = RESOLVE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.networks: list[Network] = []
        self.names: list[str] = []
        for entry in (e.strip() for e in entries):
            if not entry or entry == "*":
                continue
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self.names.append(entry.lower())
                continue
            if net.prefixlen > 0:  # a /0 would let anyone choose their address
                self.networks.append(net)
        self.resolver, self.ttl, self.clock = resolver, ttl, clock
        self._resolved: list[Network] = []
        self._at: float | None = None
        self._lock = threading.Lock()

    def _named(self) -> list[Network]:
        if not self.names:
            return []
        now = self.clock()
        with self._lock:
            if self._at is None or now - self._at >= self.ttl:
                found: list[Network] = []
                for name in self.names:
                    try:
                        addresses = self.resolver(name)
                    except (OSError, UnicodeError):
                        continue  # not there (yet): nobody trusted under that name until it resolves
                    for text in addresses:
                        ip = _address(text)
                        if ip is not None:
                            found.append(ipaddress.ip_network(ip))
                self._resolved, self._at = found, now
            return self._resolved

    def __contains__(self, address: object) -> bool:
        ip = _address(str(address))
        if ip is None:
            return False
        return any(ip in net for net in (*self.networks, *self._named()))

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client's address for a connection from `peer` carrying `forwarded_for`."""
        if not forwarded_for or not (self.networks or self.names) or peer not in self:
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            ip = _address(hop)
            if ip is None:
                return peer  # a malformed hop: nothing to the left of it can be believed
            if str(ip) not in self:
                return str(ip)
        return peer


def _trusted(request: Request) -> TrustedProxies:
    app = request.app
    trusted = getattr(app.state, "api_trusted_proxies", None)
    if trusted is None:
        trusted = TrustedProxies(request.app.state.pixel.settings.api_trusted_proxies)
        app.state.api_trusted_proxies = trusted
    return trusted


def client_address(request: Request) -> str:
    """The address a request's per-client limits count (see the module's contract)."""
    peer = request.client.host if request.client else "?"
    return _trusted(request).client(peer, request.headers.get("x-forwarded-for", ""))
