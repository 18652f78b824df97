"""The collector's ASGI callable.

Per tracking request it does the least it can: read the body (bounded), validate it with one
`orjson.loads`, and append the body *as received* plus the request facts to the spool with one
`write(2)` (no re-encode, no per-request open/close), then answer. Everything else (parsing events
into columns, enrichment, inserting) is the shipper's job, off the hot path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from pixel.server import metrics
from pixel.server.collector.script import Asset, load_tracker
from pixel.server.settings import Settings
from pixel.server.shipper.checkpoint import Checkpoint
from pixel.server.spool import SpoolWriter, encode_record, unshipped_bytes

log = logging.getLogger("pixel.collector")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CODES = (200, 204, 304, 400, 404, 405, 413, 500, 503)
COUNTERS = tuple(f"requests_{c}" for c in CODES) + ("events",)
_SLOT = {code: i for i, code in enumerate(CODES)}
_EVENTS = len(CODES)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# A cross-origin tracker can read Retry-After only when it is exposed.
_RETRY = [(b"retry-after", b"5"), (b"access-control-expose-headers", b"Retry-After")]
_CORS_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"86400"),
]


def collector_metrics_dir(settings: Settings):  # noqa: ANN201 - Path
    return settings.state_dir / "metrics" / "collector"


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.track_path = settings.track_path
        self.script_path = "/" + settings.script_name
        self.max_body = settings.max_body_bytes
        self.max_events = settings.max_events_per_request
        self.any_origin = "*" in settings.allowed_origins
        self.origins = {o.encode() for o in settings.allowed_origins}
        self.trusted = settings.trusted_proxies
        self.cdn_geo = settings.cdn_geo_headers
        self._trusted_cache: dict[str, bool] = {}
        self.spool: SpoolWriter | None = None
        self.counters: metrics.CounterFile | None = None
        self.asset: Asset | None = None
        self._ticker: asyncio.Task[None] | None = None

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
        self.asset = load_tracker(s.script_name)
        if self.asset is None:
            log.warning("collector: the tracker is not built (tracker/dist/%s); %s answers 404",
                        s.script_name, self.script_path)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self.spool is not None:
            self.spool.close()

    async def _tick_forever(self) -> None:
        assert self.spool is not None
        interval = self.settings.fsync_interval if self.settings.fsync_interval > 0 else 0.1
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                # fdatasync and a directory scan are blocking calls: keep them off the event loop.
                await loop.run_in_executor(None, self.spool.tick)
            except Exception:  # a failed tick must not stop later ones
                log.exception("collector: spool tick failed")

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self.track_path:
                method = scope["method"]
                if method == "POST":
                    await self._post(scope, receive, send)
                elif method == "GET":
                    await self._get_pixel(scope, send)
                elif method == "OPTIONS":
                    await self._respond(send, 204, scope, b"", _CORS_PREFLIGHT)
                else:
                    await self._error(send, 405, scope, "method not allowed", f"{method} {path}",
                                      [(b"allow", b"GET, POST, OPTIONS")])
            elif path == self.script_path:
                await self._script(scope, send)
            elif path == "/health":
                await self._respond(send, 200, scope, b'{"status":"ok","pid":%d}' % os.getpid(),
                                    [(b"content-type", b"application/json")])
            elif path == "/metrics":
                await self._respond(send, 200, scope, self.render_metrics(),
                                    [(b"content-type", b"text/plain; version=0.0.4")])
            else:
                await self._error(send, 404, scope, "not found", path)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                    self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- tracking ---------------------------------------------------------------------------

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        spool = self.spool
        assert spool is not None
        if spool.over_cap:
            # Drain the body so the connection stays usable, then ask the tracker to retry.
            await self._drain(receive)
            await self._error(send, 503, scope, "spool full", "the spool is over its disk cap; retry later",
                              _RETRY)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await self._error(send, 413, scope, "body too large", f"the limit is {self.max_body} bytes")
            return
        n, problem = self._validate(body)
        if problem is not None:
            await self._error(send, 400, scope, *problem)
            return
        await self._store(scope, body, n, send, 204, b"", None)

    async def _get_pixel(self, scope: Scope, send: Send) -> None:
        spool = self.spool
        assert spool is not None
        if spool.over_cap:
            await self._error(send, 503, scope, "spool full", "retry later", _RETRY)
            return
        body = b""
        for part in scope["query_string"].split(b"&"):
            if part.startswith(b"e="):
                body = unquote_to_bytes(part[2:])
                break
        if not body:
            await self._error(send, 400, scope, "missing event", "GET /track needs ?e=<base64url JSON>")
            return
        if len(body) > self.max_body * 4 // 3 + 4:
            await self._error(send, 413, scope, "event too large", f"the limit is {self.max_body} bytes")
            return
        try:
            body = base64.b64decode(body + b"=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            await self._error(send, 400, scope, "bad encoding", "e= must be base64url-encoded JSON")
            return
        n, problem = self._validate(body)
        if problem is not None:
            await self._error(send, 400, scope, *problem)
            return
        await self._store(scope, body, n, send, 200, GIF,
                          [(b"content-type", b"image/gif"), (b"cache-control", b"no-store")])

    def _validate(self, body: bytes) -> tuple[int, tuple[str, str] | None]:
        """(number of events, None) for an event object or an array of 1..max events; else (0, (error, detail))."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return 0, ("invalid JSON", str(exc))
        if type(doc) is dict:
            return 1, None
        if type(doc) is not list:
            return 0, ("not an event", "the body must be a JSON object or an array of objects")
        n = len(doc)
        if n == 0:
            return 0, ("no events", "the array is empty")
        if n > self.max_events:
            return 0, ("too many events", f"{n} events in one request; the limit is {self.max_events}")
        for i, item in enumerate(doc):
            if type(item) is not dict:
                return 0, ("not an event", f"item {i} of the array is not a JSON object")
        return n, None

    async def _store(self, scope: Scope, body: bytes, n: int, send: Send, status: int, payload: bytes,
                     extra: list[tuple[bytes, bytes]] | None) -> None:
        ua = lang = origin = referer = xff = real_ip = country = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                ua = value
            elif name == b"accept-language":
                lang = value
            elif name == b"origin":
                origin = value
            elif name == b"referer":
                referer = value
            elif name == b"x-forwarded-for":
                xff = value
            elif name == b"x-real-ip":
                real_ip = value
            elif name == b"cf-ipcountry" and self.cdn_geo:
                country = value[:2].upper()
        peer = scope["client"][0] if scope.get("client") else ""
        if self.trusted and (xff or real_ip or country):
            ip = self._client_ip(peer, xff, real_ip)
            if country and not self._trusted_cache.get(peer):
                country = b""  # a geo header from anyone but a trusted proxy is ignored
        else:
            ip, country = peer.encode(), b""
        host = origin or referer
        if host:
            host = host.split(b"://", 1)[-1].split(b"/", 1)[0]
        record = encode_record(int(time.time() * 1000), ip, ua, lang, host, country, body)
        assert self.spool is not None and self.counters is not None
        try:
            self.spool.append(record)
        except OSError as exc:  # disk full or the like: nothing was acknowledged, the tracker retries
            log.error("collector: cannot append to the spool: %s", exc)
            await self._error(send, 503, scope, "spool unavailable", "cannot write to the spool; retry later",
                              _RETRY)
            return
        self.counters.add(_EVENTS, n)
        await self._respond(send, status, scope, payload, extra)

    def _client_ip(self, peer: str, xff: bytes, real_ip: bytes) -> bytes:
        """The client address: forwarded headers count only when the peer is a trusted proxy."""
        if not (xff or real_ip):
            self._trusted_cache.setdefault(peer, self._is_trusted(peer))
            return peer.encode()
        trusted = self._trusted_cache.get(peer)
        if trusted is None:
            trusted = self._is_trusted(peer)
            if len(self._trusted_cache) > 10_000:
                self._trusted_cache.clear()
            self._trusted_cache[peer] = trusted
        if not trusted:
            return peer.encode()
        if xff:
            # Walk from the right: the first address not itself a trusted proxy is the client.
            hops = [h.strip() for h in xff.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not self._is_trusted(hop):
                    return hop.encode() if _is_ip(hop) else peer.encode()
            return hops[0].encode() if hops and _is_ip(hops[0]) else peer.encode()
        candidate = real_ip.decode("latin-1").strip()
        return candidate.encode() if _is_ip(candidate) else peer.encode()

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    # -- the tracker script -----------------------------------------------------------------

    async def _script(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await self._error(send, 405, scope, "method not allowed", scope["method"], [(b"allow", b"GET, HEAD")])
            return
        asset = self.asset
        if asset is None:
            await self._error(send, 404, scope, "not built", "the tracker has not been built")
            return
        gzip_ok = False
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == asset.etag:
                await self._respond(send, 304, scope, b"", [(b"etag", asset.etag)])
                return
            if name == b"accept-encoding" and b"gzip" in value:
                gzip_ok = True
        headers = [
            (b"content-type", b"application/javascript; charset=utf-8"),
            (b"etag", asset.etag),
            (b"cache-control", b"public, max-age=3600, stale-while-revalidate=86400"),
            (b"vary", b"Accept-Encoding"),
        ]
        body = asset.body
        if gzip_ok:
            body = asset.gzipped
            headers.append((b"content-encoding", b"gzip"))
        await self._respond(send, 200, scope, b"" if scope["method"] == "HEAD" else body, headers,
                            length=len(body))

    # -- responses --------------------------------------------------------------------------

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The request body, or None when it is over the limit (the rest is drained, not kept)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        await self._drain(receive)
                        return None
                except ValueError:
                    pass
                break
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            return body if len(body) <= self.max_body else None
        chunks = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._drain(receive, message)
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    async def _drain(receive: Receive, message: dict[str, Any] | None = None) -> None:
        if message is None:
            message = await receive()
        while message.get("more_body"):
            message = await receive()

    async def _error(self, send: Send, status: int, scope: Scope, error: str, detail: str,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = orjson.dumps({"error": error, "detail": detail})
        headers = [(b"content-type", b"application/json")]
        if extra:
            headers.extend(extra)
        await self._respond(send, status, scope, body, headers)

    async def _respond(self, send: Send, status: int, scope: Scope, body: bytes,
                       extra: list[tuple[bytes, bytes]] | None = None, length: int | None = None) -> None:
        headers = [(b"content-length", b"%d" % (len(body) if length is None else length))]
        if self.any_origin:
            headers.append((b"access-control-allow-origin", b"*"))
        else:
            for name, value in scope["headers"]:
                if name == b"origin":
                    if value in self.origins:
                        headers.append((b"access-control-allow-origin", value))
                    headers.append((b"vary", b"Origin"))
                    break
        if extra:
            headers.extend(extra)
        if self.counters is not None:
            self.counters.add(_SLOT[status])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- metrics ----------------------------------------------------------------------------

    def render_metrics(self) -> bytes:
        totals = metrics.read_totals(collector_metrics_dir(self.settings), COUNTERS)
        return metrics.prometheus([
            ("pixel_collector_requests_total", "counter", "HTTP requests answered by the collector, by status.",
             [(f'{{code="{c}"}}', totals[f"requests_{c}"]) for c in CODES]),
            ("pixel_collector_events_total", "counter", "Events accepted into the spool.",
             [("", totals["events"])]),
            ("pixel_spool_backlog_bytes", "gauge", "Spool bytes not yet inserted by the shipper.",
             [("", unshipped_bytes(self.settings.spool_dir, Checkpoint.load(
                 self.settings.checkpoint_path).offsets))]),
        ])


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def create_app(settings: Settings | None = None) -> Collector:
    """The collector for `settings` (default: from the PIXEL_* environment), as an ASGI app."""
    return Collector(settings or Settings.from_env())
