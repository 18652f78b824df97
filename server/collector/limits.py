"""uvicorn's httptools protocol with bounds on what one client may send or hold (both uvicorn bindings).

`GuardedProtocol` is what `PIXEL_SERVER=uvicorn-asgi` runs, and the base of `fastpath.TrackProtocol` (the
default), so every request to a uvicorn worker meets these rules before the collector sees it:

- The request line and headers (the head) are at most `max_header_bytes`: past it the client gets 431 and no
  more of the head is read or kept. A head that arrives behind another request in one read is counted from
  that read's end, so such a head can reach twice the limit before the 431, never more.
- A request must arrive whole, head and body, within `request_timeout` of its first byte, and a new connection
  must send its first byte within `request_timeout`: past it, 408. It is one deadline for the whole request,
  not a timer per read, so a client that trickles a byte at a time cannot extend it. Between requests, an idle
  keep-alive connection is closed silently after uvicorn's `timeout_keep_alive`, as before.
- A declared `Content-Length` over `max_body_bytes` is answered 413 as soon as the head is read, before any of
  the body; a chunked body gets 413 as soon as its data passes the limit, or its raw bytes (chunk framing and
  trailers included) pass twice the limit plus `max_header_bytes`.
- Past `max_connections` open connections in the worker, a new connection is answered 503 with Retry-After at
  once and closed.
- Only HTTP/1.0 and HTTP/1.1 are answered as such: another version (an HTTP/0.9 request line, 2.0, …) gets
  505; a method other than GET, HEAD, POST, OPTIONS, PUT, DELETE or PATCH gets 501; a request the parser
  cannot read gets 400.

Every refusal is a JSON `{"error", "detail"}` answer with `connection: close`. The connection is then
half-closed and what the client still sends is read and dropped, for at most `LINGER_SECONDS` and
`LINGER_BYTES`, before the close: a client still sending its body reads the answer instead of a reset.
Refusals are not logged (a hostile client could fill the log); a request over a limit never reaches the app.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pixel.server.collector.core import Collector
from pixel.server.collector.unix_socket import UNIX_PEER, is_unix
from pixel.server.errors import PixelError
from pixel.server.settings import Settings

log = logging.getLogger(__name__)

METHODS = frozenset((b"GET", b"HEAD", b"POST", b"OPTIONS", b"PUT", b"DELETE", b"PATCH"))
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
_DEFAULTS = Settings(data_dir=Path("."))  # limits for an app that is not Pixel's collector (its fields only)


class Refused(PixelError):
    """Raised in a parser callback after a refusal was written: it stops the parser in the middle of a read."""


class GuardedProtocol(HttpToolsProtocol):
    """One connection: the limits above, one timer (request deadline, keep-alive, linger), then uvicorn's
    protocol and the ASGI app for what passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        collector = getattr(self.app, "collector", None)  # the AsgiCollector, unless uvicorn wrapped it
        self._collector: Collector | None = collector if isinstance(collector, Collector) else None
        settings = self._collector.settings if self._collector is not None else _DEFAULTS
        self._track = self._collector.track_path.encode("ascii") if self._collector is not None else None
        self._max_head = settings.max_header_bytes
        self._max_body = settings.max_body_bytes
        self._body_digits = len(str(settings.max_body_bytes))  # a shorter Content-Length is within it
        self._max_raw_chunked = 2 * settings.max_body_bytes + settings.max_header_bytes
        self._request_timeout = settings.request_timeout
        self._max_connections = settings.max_connections
        self._deadline: float | None = None  # the request being read must be whole by then
        self._idle_since: float | None = None  # keep-alive: when the connection last became idle
        self._head = True  # reading a head (or waiting for one)
        self._head_bytes = 0
        self._body_bytes = 0
        self._chunked = False
        self._raw_bytes = 0  # of a chunked message, framing included
        self._refused = False
        self._deferred: tuple[int, list[tuple[str, str]], bytes] | None = None
        self._linger_left = LINGER_BYTES
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf

    # -- connection --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client is None and is_unix(transport):  # (a TCP connection has its peer: no cost there)
            self.client = (UNIX_PEER, 0)  # the proxy on this machine (unix_socket.py)
        now = self.loop.time()
        self._deadline = now + self._request_timeout
        self._arm(min(self._deadline, now + self.timeout_keep_alive))  # see _due
        if len(self.connections) > self._max_connections:
            self._refuse(
                503,
                "too many connections",
                "the server is at its connection limit; retry later",
                [("retry-after", "5"), ("access-control-expose-headers", "Retry-After")],
            )

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering: read and drop
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self.transport.abort()
            return
        self._idle_since = None
        if self._deadline is None:  # (_start_deadline, inline: once per request)
            deadline = self._deadline = self.loop.time() + self._request_timeout
            if deadline < self._timer_due:
                self._arm(deadline)
        if self._head:
            size = self._head_bytes + len(data)
            if size > self._max_head:
                self._feed_past_head_room(data, self._max_head - self._head_bytes)
                return
            self._head_bytes = size
        elif self._chunked:
            self._raw_bytes += len(data)
            if self._raw_bytes > self._max_raw_chunked:
                self._too_large()
                return
        try:  # (_feed, inline: once per read)
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            if not self._refused:
                self._refuse(400, "bad request", "the request is not valid HTTP/1.1")

    def _feed_past_head_room(self, data: bytes, room: int) -> None:
        """A read that would take the head past its limit: only what fits is parsed; if the head is still not
        complete, 431; if it is, the rest is read as usual (a body, or the next request)."""
        self._head_bytes += room
        self._feed(data[:room])
        if self._refused or self.transport.is_closing():
            return
        if self._head and self._head_bytes >= self._max_head:  # the same head, still open
            self._refuse(431, "request header fields too large", f"the limit is {self._max_head} bytes")
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrade is supported: the request was answered as a plain one (as uvicorn does)
        except httptools.HttpParserError:
            if not self._refused:  # else the parser was stopped by a refusal (Refused)
                self._refuse(400, "bad request", "the request is not valid HTTP/1.1")

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None

    # -- the parser's callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._deadline is None:  # a request that follows another in the same read
            self._start_deadline()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        headers = dict(self.headers)
        self._check_head(self.parser.get_method(), self.parser.get_http_version(), headers)
        super().on_headers_complete()

    def _check_head(self, method: bytes, version: str, headers: Mapping[bytes, bytes]) -> None:
        """Refuse (and stop the parser) a head this server does not answer; else start the body count."""
        self._head = False
        if version != "1.1" and version != "1.0":
            self._refuse(505, "HTTP version not supported", "HTTP/1.0 and HTTP/1.1 only")
            raise Refused
        if method not in METHODS:
            self._refuse(501, "not implemented", method.decode("latin-1"))
            raise Refused
        length = headers.get(b"content-length")  # digits only (llhttp refuses others)
        if (
            length is not None
            and len(length) >= self._body_digits
            and (len(length) > 18 or int(length) > self._max_body)
        ):
            self._too_large()
            raise Refused
        self._body_bytes = 0
        self._chunked = length is None and b"transfer-encoding" in headers
        self._raw_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._max_body:
            self._too_large()
            raise Refused
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._end_of_message()
        super().on_message_complete()

    def _end_of_message(self) -> None:
        self._deadline = None
        self._head, self._head_bytes, self._chunked = True, 0, False

    def on_response_complete(self) -> None:  # uvicorn's, with the keep-alive timer lazy (_due)
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self._deferred is not None:  # a refusal waited for this answer
            refusal, self._deferred = self._deferred, None
            self._refused = False
            self._refuse_with(*refusal)
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._deadline is None:  # (else the next request has begun: not idle)
            self._idle_since = self.loop.time()

    def shutdown(self) -> None:
        if self._refused:
            self.transport.abort()
            return
        super().shutdown()

    # -- refusals ----------------------------------------------------------------------------------

    def _too_large(self) -> None:
        """413: for a POST to the tracking path, the collector's own answer (and count); else a plain one."""
        collector = self._collector
        path, _, query = self.url.partition(b"?")
        if collector is not None and path == self._track and self.parser.get_method() == b"POST":
            r = collector.handle(
                "POST",
                collector.track_path,
                query.decode("latin-1"),
                dict(self.headers),
                self.client[0] if self.client else "",
                b"",
                True,
            )
            self._refuse_with(r.status, r.headers, r.body)
        else:
            self._refuse(413, "body too large", f"the limit is {self._max_body} bytes")

    def _refuse(
        self, status: int, error: str, detail: str, extra: list[tuple[str, str]] | None = None
    ) -> None:
        if self._collector is not None:
            self._collector.count(status)
        headers = [("content-type", "application/json"), *(extra or [])]
        self._refuse_with(status, headers, orjson.dumps({"error": error, "detail": detail}))

    def _refuse_with(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Answer `status` and close: half-close at once, then linger (read and drop) before the full close."""
        if self._refused:
            return
        self._refused = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self.pipeline or cycle.response_started or not cycle.more_body:
                # An answer to an earlier request (or to this whole one) is under way: the refusal follows
                # it (on_response_complete); requests queued behind it are dropped, nothing more is read.
                self.pipeline.clear()
                self._deferred = (status, headers, body)
                self.flow.pause_reading()
                self._arm(self.loop.time() + self._request_timeout)  # an answer that never ends: abort
                return
            cycle.disconnected = True  # the app waiting for this request's body sees a disconnect
            cycle.message_event.set()
        out = [STATUS_LINE[status]]
        for raw_name, raw_value in self.server_state.default_headers:
            out += (raw_name, b": ", raw_value, b"\r\n")
        for name, text in headers:
            out.append(f"{name}: {text}\r\n".encode("latin-1"))
        out.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        out.append(body)
        transport = self.transport
        transport.write(b"".join(out))
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self._arm(self.loop.time() + LINGER_SECONDS)

    # -- the one timer: request deadline, keep-alive, linger ------------------------------------------
    # A request sets a deadline but arms no timer: the connection's one timer, when it fires, looks at the
    # state and arms itself again. While a request is under way it fires at least every keep-alive period,
    # so that it is due by the end of the keep-alive of the answer that ends the request.

    def _start_deadline(self) -> None:
        """A request begins in a read that already ended another: not idle any more, and its own deadline."""
        self._idle_since = None
        deadline = self._deadline = self.loop.time() + self._request_timeout
        if deadline < self._timer_due:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = self.loop.call_at(when, self._due), when

    def _due(self) -> None:
        self._timer, self._timer_due = None, math.inf
        transport = self.transport
        if transport.is_closing():
            return
        if self._refused:  # the linger is over (or the answer a refusal waits for never ended)
            transport.abort()
            return
        now = self.loop.time()
        deadline = self._deadline
        if deadline is not None and now >= deadline:
            cycle = self.cycle
            if transport.get_write_buffer_size() or (
                cycle is not None and cycle.response_started and not cycle.response_complete
            ):
                transport.abort()  # the client does not read, or an answer is half written
            else:
                self._refuse(
                    408, "request timeout", f"the request did not arrive within {self._request_timeout} s"
                )
            return
        idle = self._idle_since
        if idle is not None:
            due = idle + self.timeout_keep_alive
            if now >= due:
                transport.close()
                return
        else:
            due = now + self.timeout_keep_alive
        self._arm(deadline if deadline is not None and deadline < due else due)
