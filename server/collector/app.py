"""The collector's two server bindings around one request logic (`core.Collector`).

- ASGI (`create_app`), a bare ASGI callable, served by uvicorn (httptools, uvloop): the default, because it
  measured the least server CPU per request here (bench/README.md: collector vs the nginx+Lua anchor). By
  default uvicorn runs it with `fastpath.TrackProtocol`, which answers the tracking route itself.
- RSGI (`create_rsgi_app`), served by granian (`PIXEL_SERVER=granian`).

Each adapter only reads the request (the body bounded by the size limit) and writes the answer; a request
whose client went away before its body was whole is not handled (nothing stored, nothing answered).

Limits on what a client may send: under uvicorn, `limits.GuardedProtocol` enforces them all before the app.
Under granian, hyper enforces the head size (431, `http1_settings.max_buffer_size`), the head's deadline (the
connection is closed without an answer, `header_read_timeout`) and the connection cap (past it, connections
wait in the listen backlog: `backpressure`), and answers other HTTP versions with 400 (server/processes.py);
this adapter bounds the body: 413 for a declared length over the limit without reading it, 413 as soon as a
chunked body passes it, 408 when it has not arrived whole within `request_timeout` of the head, and 501 for
methods the collector does not know (as under uvicorn).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from granian.rsgi import ProtocolClosed

from pixel.server.collector.core import Collector
from pixel.server.collector.limits import METHODS
from pixel.server.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _declared_length(value: str | bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


class AsgiCollector:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._ticker: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])  # lower-case names (uvicorn) to raw values; the last one wins
            body, too_large = b"", False
            if scope["method"] == "POST":
                read = await self._read_body(headers, receive)
                if read is None:
                    return  # the client went away before its body was whole
                body, too_large = read
            client = scope.get("client")
            r = self.collector.handle(
                scope["method"],
                scope["path"],
                scope["query_string"].decode("latin-1"),
                headers,
                client[0] if client else "",
                body,
                too_large,
            )
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in r.headers]
            raw.append((b"content-length", b"%d" % len(r.body)))
            await send({"type": "http.response.start", "status": r.status, "headers": raw})
            await send({"type": "http.response.body", "body": r.body})
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        self.collector.start()
                        self._ticker = asyncio.get_running_loop().create_task(self.collector.tick_forever())
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._ticker is not None:
                        self._ticker.cancel()
                    self.collector.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> tuple[bytes, bool] | None:
        """The body, or (b"", True) when it is over the limit (then the rest is drained, not kept); None when
        the client disconnected first. (Under Pixel's protocols a body over the limit never reaches here.)"""
        limit = self.collector.max_body
        over = _declared_length(headers.get(b"content-length", b"0")) > limit
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            more = message.get("more_body", False)
            if over:
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                over, chunks = True, []
                continue
            chunks.append(chunk)
        return (b"", True) if over else (b"".join(chunks), False)


class RsgiCollector:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.timeout = collector.settings.request_timeout
        self._ticker: asyncio.Task[None] | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.collector.start()
        self._ticker = loop.create_task(self.collector.tick_forever())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self.collector.stop()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        method = scope.method
        if method.encode("latin-1") not in METHODS:
            self.collector.count(501)
            _refuse(protocol, 501, "not implemented", method)
            return
        body, too_large = b"", False
        if method == "POST":
            try:
                async with asyncio.timeout(self.timeout):
                    body, too_large = await self._read_body(scope.headers, protocol)
            except TimeoutError:
                self.collector.count(408)
                _refuse(protocol, 408, "request timeout", f"the body did not arrive within {self.timeout} s")
                return
            except ProtocolClosed:
                return  # the client went away before its body was whole
        # granian gives header values as str: back to the bytes received, as the core takes them
        headers = {
            k.encode("latin-1"): v.encode("utf-8", "surrogateescape") for k, v in scope.headers.items()
        }
        peer = scope.client.rpartition(":")[0].strip("[]")
        r = self.collector.handle(method, scope.path, scope.query_string, headers, peer, body, too_large)
        if too_large:  # the rest of the body is not read: the connection cannot carry another request
            r.headers.append(("connection", "close"))
        if r.body:
            protocol.response_bytes(r.status, r.headers, r.body)
        else:
            protocol.response_empty(r.status, r.headers)

    async def _read_body(self, headers: Any, protocol: Any) -> tuple[bytes, bool]:
        limit = self.collector.max_body
        declared = headers.get("content-length")
        if declared is not None:
            length = _declared_length(declared)
            if length > limit:
                return b"", True
            if length >= 0:
                body = await protocol()
                return (b"", True) if len(body) > limit else (body, False)
        chunks: list[bytes] = []  # no length given (chunked): read it bounded
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > limit:
                return b"", True
            chunks.append(chunk)
        return b"".join(chunks), False


def _refuse(protocol: Any, status: int, error: str, detail: str) -> None:
    body = orjson.dumps({"error": error, "detail": detail})
    protocol.response_bytes(status, [("content-type", "application/json"), ("connection", "close")], body)


def create_app(settings: Settings | None = None) -> AsgiCollector:
    """The collector as an ASGI app, for `settings` (default: from the PIXEL_* environment)."""
    return AsgiCollector(Collector(settings or Settings.from_env()))


def create_rsgi_app(settings: Settings | None = None) -> RsgiCollector:
    """The collector as an RSGI app (granian), for `settings` (default: from the PIXEL_* environment)."""
    return RsgiCollector(Collector(settings or Settings.from_env()))
