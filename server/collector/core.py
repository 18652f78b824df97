"""The collector's request logic, independent of the server interface (ASGI or RSGI adapters call it).

Per tracking request it does the least it can: validate the body with one `orjson.loads` and the event
format check shared with the shipper (`pixel.server.eventformat`: types, depth, sizes, page URL), and
append the body *as received* plus the request facts to the spool with one `write(2)` (no
re-encode, no per-request open/close), then answer. Headers are taken as the raw bytes received
(lower-case names), so the request facts reach the spool without a decode and re-encode. Everything
else (parsing events into columns, enrichment, inserting) is the shipper's job, off the hot path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

import orjson

from pixel.server import metrics
from pixel.server.collector.script import (
    EXTENDED_BUILD,
    Asset,
    extended_name,
    load_tracker,
    preferred_encoding,
)
from pixel.server.collector.unix_socket import UNIX_PEER
from pixel.server.eventformat import CHECKED, check_body
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Checkpoint
from pixel.server.spool import SpoolWriter, encode_record, unshipped_bytes

log = logging.getLogger(__name__)

# New codes go at the end: a slot's place in the per-worker counter files must not move between versions.
CODES = (200, 204, 304, 400, 404, 405, 413, 500, 503, 408, 431, 501, 505)
COUNTERS = tuple(f"requests_{c}" for c in CODES) + ("events",)
_SLOT = {code: i for i, code in enumerate(CODES)}
_EVENTS = len(CODES)
_CACHE_LIMIT = 10_000  # entries in each per-address cache of a worker (peers, X-Forwarded-For values)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
JSON = ("content-type", "application/json")
# A cross-origin tracker can read Retry-After only when it is exposed.
RETRY = [("retry-after", "5"), ("access-control-expose-headers", "Retry-After")]
_CHECKED = CHECKED.encode("ascii")  # the spool flag of a body `_validate` accepted (eventformat.py)
CORS_PREFLIGHT = [
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-max-age", "86400"),
]


# The request's headers as received: lower-case names to raw values (bytes), as ASGI gives them.
Headers = Mapping[bytes, bytes]


class Response(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def collector_metrics_dir(settings: Settings) -> Path:
    return settings.state_dir / "metrics" / "collector"


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.track_path = settings.track_path
        self.script_path = "/" + settings.script_name
        self.ext_script_path = "/" + extended_name(settings.script_name)
        self.max_body = settings.max_body_bytes
        self.max_events = settings.max_events_per_request
        self.any_origin = "*" in settings.allowed_origins
        self.origins = set(settings.allowed_origins)
        self.trusted = settings.trusted_proxies
        # forwarded headers are read at all: from a trusted range, or on the workers' Unix sockets (unix_socket.py)
        self.forwarding = bool(self.trusted) or bool(settings.upstream_socket_dir)
        self._unix_peer = UNIX_PEER if settings.upstream_socket_dir else None
        self.cdn_geo = settings.cdn_geo_headers
        self._trusted_cache: dict[str, bool] = {}
        # X-Forwarded-For value -> the client address it names (None: none usable, the peer counts); see _client_ip
        self._forwarded_cache: dict[str, str | None] = {}
        self.spool: SpoolWriter | None = None
        self.counters: metrics.CounterFile | None = None
        self.asset: Asset | None = None
        self.ext_asset: Asset | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        self.spool = SpoolWriter(
            s.spool_dir,
            max_bytes=s.segment_max_bytes,
            max_age=s.segment_max_age,
            fsync_interval=s.fsync_interval,
            cap_bytes=s.spool_max_bytes,
        )
        self.counters = metrics.CounterFile(collector_metrics_dir(s), COUNTERS)
        self.asset = load_tracker()
        self.ext_asset = load_tracker(EXTENDED_BUILD)
        if self.asset is None:
            log.warning(
                "collector: the tracker is not built (tracker/dist/pixel.js); %s answers 404",
                self.script_path,
            )

    def stop(self) -> None:
        if self.spool is not None:
            self.spool.close()

    async def tick_forever(self) -> None:
        """Rotate by age and re-measure the backlog on the event loop (cheap); fsync off it (blocking)."""
        spool = self.spool
        assert spool is not None
        interval = self.settings.fsync_interval if self.settings.fsync_interval > 0 else 0.1
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                # tick() touches the writer's state, so it runs on the thread that appends; sync() only
                # flushes and closes the descriptors it got, so it can run beside later appends.
                handles = spool.tick()
                if handles:
                    await loop.run_in_executor(None, spool.sync, handles)
            except Exception:  # a failed tick must not stop later ones
                log.exception("collector: spool tick failed")

    # -- requests ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Headers, peer: str, body: bytes, too_large: bool
    ) -> Response:
        """Answer one request. `body` is what the adapter read (POST only); `too_large` when over the limit."""
        if path == self.track_path:
            if method == "POST":
                response = self._post(headers, peer, body, too_large)
            elif method == "GET":
                response = self._get_pixel(headers, peer, query)
            elif method == "OPTIONS":
                response = Response(204, CORS_PREFLIGHT[:], b"")
            else:
                response = self._error(
                    405, "method not allowed", f"{method} {path}", [("allow", "GET, POST, OPTIONS")]
                )
        elif path == self.script_path:
            response = self._script(method, headers, self.asset)
        elif path == self.ext_script_path:
            response = self._script(method, headers, self.ext_asset)
        elif path == "/health":
            response = Response(200, [JSON], b'{"status":"ok","pid":%d}' % os.getpid())
        elif path == "/metrics":
            response = Response(200, [("content-type", "text/plain; version=0.0.4")], self.render_metrics())
        else:
            response = self._error(404, "not found", path)
        if self.any_origin:
            response.headers.append(("access-control-allow-origin", "*"))
        else:
            origin = headers.get(b"origin", b"").decode("utf-8", "surrogateescape")
            if origin:
                if origin in self.origins:
                    response.headers.append(("access-control-allow-origin", origin))
                response.headers.append(("vary", "Origin"))
        if self.counters is not None:
            self.counters.add(_SLOT[response.status])
        return response

    def count(self, status: int) -> None:
        """Counts an answer a server binding gave without `handle` (a refused head, a late request, ...)."""
        if self.counters is not None and status in _SLOT:
            self.counters.add(_SLOT[status])

    def _post(self, headers: Headers, peer: str, body: bytes, too_large: bool) -> Response:
        assert self.spool is not None
        if self.spool.over_cap:
            return self._error(503, "spool full", "the spool is over its disk cap; retry later", RETRY[:])
        if too_large:
            return self._error(413, "body too large", f"the limit is {self.max_body} bytes")
        n, problem = self._validate(body)
        if problem is not None:
            return self._error(400, *problem)
        return self._store(headers, peer, body, n, Response(204, [], b""))

    def _get_pixel(self, headers: Headers, peer: str, query: str) -> Response:
        assert self.spool is not None
        if self.spool.over_cap:
            return self._error(503, "spool full", "retry later", RETRY[:])
        raw = ""
        for part in query.split("&"):
            if part.startswith("e="):
                raw = part[2:]
                break
        if not raw:
            if "echo=1" in query.split("&"):
                return self._echo(headers, peer)
            return self._error(400, "missing event", "GET /track needs ?e=<base64url JSON>")
        if len(raw) > self.max_body * 3:
            return self._error(413, "event too large", f"the limit is {self.max_body} bytes")
        encoded = unquote_to_bytes(raw)
        try:
            body = base64.b64decode(encoded + b"=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return self._error(400, "bad encoding", "e= must be base64url-encoded JSON")
        if len(body) > self.max_body:
            return self._error(413, "event too large", f"the limit is {self.max_body} bytes")
        n, problem = self._validate(body)
        if problem is not None:
            return self._error(400, *problem)
        return self._store(
            headers,
            peer,
            body,
            n,
            Response(200, [("content-type", "image/gif"), ("cache-control", "no-store")], GIF),
        )

    def _validate(self, body: bytes) -> tuple[int, tuple[str, str] | None]:
        """(number of events, None) for an acceptable body (`pixel.server.eventformat`, the check the shipper
        applies too); else (0, (error, detail))."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return 0, ("invalid JSON", str(exc))
        return check_body(doc, self.max_events)

    def _store(self, headers: Headers, peer: str, body: bytes, n: int, ok: Response) -> Response:
        get = headers.get
        xff, real_ip = get(b"x-forwarded-for", b""), get(b"x-real-ip", b"")
        country = get(b"cf-ipcountry", b"")[:2].upper() if self.cdn_geo else b""
        if self.forwarding and (xff or real_ip or country):
            ip = self._client_ip(peer, xff.decode("latin-1"), real_ip.decode("latin-1")).encode("latin-1")
            if country and not self._trusted_cache.get(peer):
                country = b""  # a geo header from anyone but a trusted proxy is ignored
        else:
            ip, country = peer.encode("latin-1"), b""
        host = get(b"origin", b"") or get(b"referer", b"")
        if host:
            host = host.split(b"://", 1)[-1].split(b"/", 1)[0]
        flags = (
            (b"d" if get(b"dnt", b"") == b"1" else b"")
            + (b"g" if get(b"sec-gpc", b"") == b"1" else b"")
            + _CHECKED  # every caller validated the body first (`_validate`)
        )
        record = encode_record(
            int(time.time() * 1000),
            ip,
            get(b"user-agent", b""),
            get(b"accept-language", b""),
            host,
            country,
            flags,
            body,
        )
        assert self.spool is not None and self.counters is not None
        try:
            self.spool.append(record)
        except OSError as exc:  # disk full or the like: nothing was acknowledged, the tracker retries
            log.error("collector: cannot append to the spool: %s", exc)
            return self._error(503, "spool unavailable", "cannot write to the spool; retry later", RETRY[:])
        self.counters.add(_EVENTS, n)
        return ok

    def _client_ip(self, peer: str, xff: str, real_ip: str) -> str:
        """The client address: forwarded headers count only when the peer is a trusted proxy."""
        trusted = self._trusted_cache.get(peer)
        if trusted is None:
            trusted = self._is_trusted(peer)
            if len(self._trusted_cache) > _CACHE_LIMIT:
                self._trusted_cache.clear()
            self._trusted_cache[peer] = trusted
        if not trusted or not (xff or real_ip):
            return peer
        if xff:
            # The answer depends on the header's value only (the trusted ranges are fixed): kept per value, so a
            # visitor's later events (and the edge's one-address header) skip parsing addresses, a few
            # microseconds per request; at most _CACHE_LIMIT values, then the cache starts over.
            try:
                found = self._forwarded_cache[xff]
            except KeyError:
                found = self._forwarded_cache[xff] = self._walk(xff)
                if len(self._forwarded_cache) > _CACHE_LIMIT:
                    self._forwarded_cache.clear()
            return peer if found is None else found
        candidate = real_ip.strip()
        return candidate if _is_ip(candidate) else peer

    def _walk(self, xff: str) -> str | None:
        """The client address an X-Forwarded-For value names from a trusted peer: walking from the right, the first
        address not itself a trusted proxy (all trusted: the left-most); None when that entry is not an address."""
        hops = [h.strip() for h in xff.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop if _is_ip(hop) else None
        return hops[0] if hops and _is_ip(hops[0]) else None

    def _echo(self, headers: Headers, peer: str) -> Response:
        """`GET <track path>?echo=1`: the client address an event sent the same way would be recorded with, for
        the installation check (server/installcheck.py) to tell whether a proxy forwards it. Nothing is stored.
        The proxy's own address is shown only when it is not a public one (loopback, private, link-local): what
        an owner adds to PIXEL_TRUSTED_PROXIES, and nothing a stranger learns about the network from outside."""
        xff = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        real_ip = headers.get(b"x-real-ip", b"").decode("latin-1")
        forwarded = bool(xff.strip() or real_ip.strip())
        ip = self._client_ip(peer, xff, real_ip) if self.forwarding and forwarded else peer
        try:
            shown = not ipaddress.ip_address(peer).is_global
        except ValueError:
            shown = False
        body = orjson.dumps(
            {
                "client_ip": ip,
                "forwarded": forwarded,
                "proxy_trusted": self._is_trusted(peer) if forwarded else None,
                "proxy": peer if forwarded and shown else None,
            }
        )
        return Response(200, [JSON, ("cache-control", "no-store")], body)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address == self._unix_peer  # a connection on a worker's Unix socket, when they listen
        return any(ip in net for net in self.trusted)

    def _script(self, method: str, headers: Headers, asset: Asset | None) -> Response:
        if method not in ("GET", "HEAD"):
            return self._error(405, "method not allowed", method, [("allow", "GET, HEAD")])
        if asset is None:
            return self._error(404, "not built", "the tracker has not been built")
        if headers.get(b"if-none-match", b"") == asset.etag.encode("latin-1"):
            return Response(304, [("etag", asset.etag)], b"")
        out = [
            ("content-type", "application/javascript; charset=utf-8"),
            ("etag", asset.etag),
            ("cache-control", "public, max-age=3600, stale-while-revalidate=86400"),
            ("vary", "Accept-Encoding"),
        ]
        encoding = preferred_encoding(headers.get(b"accept-encoding", b""))
        if encoding is not None:
            out.append(("content-encoding", encoding))
            return Response(200, out, asset.brotli if encoding == "br" else asset.gzipped)
        return Response(200, out, asset.body)

    @staticmethod
    def _error(status: int, error: str, detail: str, extra: list[tuple[str, str]] | None = None) -> Response:
        headers = [JSON]
        if extra:
            headers.extend(extra)
        return Response(status, headers, orjson.dumps({"error": error, "detail": detail}))

    # -- metrics ----------------------------------------------------------------------------

    def render_metrics(self) -> bytes:
        totals = metrics.read_totals(collector_metrics_dir(self.settings), COUNTERS)
        backlog = unshipped_bytes(
            self.settings.spool_dir, Checkpoint.load(self.settings.checkpoint_path).offsets
        )
        return metrics.prometheus(
            [
                (
                    "pixel_collector_requests_total",
                    "counter",
                    "HTTP requests answered by the collector, by status.",
                    [(f'{{code="{c}"}}', totals[f"requests_{c}"]) for c in CODES],
                ),
                (
                    "pixel_collector_events_total",
                    "counter",
                    "Events accepted into the spool.",
                    [("", totals["events"])],
                ),
                (
                    "pixel_spool_backlog_bytes",
                    "gauge",
                    "Spool bytes not yet inserted by the shipper.",
                    [("", backlog)],
                ),
            ]
        )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
