"""uvicorn's httptools protocol with the tracking route answered inside the protocol.

Why: on `POST /track` Pixel's own work (`Collector.handle`: one `orjson.loads`, one `write(2)` to the spool)
costs about 6 µs of CPU, but the stock ASGI path around it costs several times that per request: a scope
dict, a RequestResponseCycle with an asyncio.Event, a Task, the receive/send coroutines and their message
dicts (bench/README.md, "Collector against the anchor"). This protocol — still uvicorn's server, workers,
lifespan, keep-alive and flow control; selected with uvicorn's `http=` option — calls `Collector.handle`
synchronously from the parser callbacks for requests on the tracking path and writes the answer at once.
Every other request (the script, /health, /metrics, unknown paths) goes through the ASGI app as before, and
so does a tracking request that would need more than the plain case: pipelined behind a request still in
progress, `Expect: 100-continue`, or an upgrade. The answers are byte for byte those of the ASGI path
(a test compares them).
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pixel.server.collector.core import Collector

log = logging.getLogger("pixel.collector")

_INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


class _Heads:
    """Encoded status lines + headers by answer shape (status, headers, length, keep-alive), for all of the
    worker's connections, so a browser's one- or two-request connection finds its 204 ready too. uvicorn
    replaces its default headers (the Date header, when on) once a second; the cache starts over then."""

    def __init__(self) -> None:
        self.defaults: list[tuple[bytes, bytes]] | None = None
        self.heads: dict[tuple[Any, ...], bytes] = {}

    def get(
        self,
        defaults: list[tuple[bytes, bytes]],
        status: int,
        headers: list[tuple[str, str]],
        length: int,
        keep_alive: bool,
    ) -> bytes:
        if defaults is not self.defaults or len(self.heads) >= 256:  # 256: echoed origins, error lengths
            self.defaults, self.heads = defaults, {}
        shape = (status, *headers, length, keep_alive)
        head = self.heads.get(shape)
        if head is None:
            out = [STATUS_LINE[status]]  # in the order and form of uvicorn's ASGI path
            for name, value in defaults:
                out += (name, b": ", value, b"\r\n")
            for name, text in headers:
                out.append(f"{name}: {text}\r\n".encode("latin-1"))
            out.append(b"content-length: %d\r\n" % length)
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
            head = self.heads[shape] = b"".join(out)
        return head


_HEADS = _Heads()


class TrackProtocol(HttpToolsProtocol):
    """One connection. `_fast` is set between the headers and the end of a tracking request taken here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        collector = getattr(self.app, "collector", None)  # the AsgiCollector, unless uvicorn wrapped it
        self._collector: Collector | None = collector if isinstance(collector, Collector) else None
        self._track = self._collector.track_path.encode("ascii") if self._collector is not None else None
        self._limit = self._collector.max_body if self._collector is not None else 0
        self._fast = False
        self._close_after = False
        self._method = ""
        self._query = ""
        self._keep_alive = True
        self._chunks: list[bytes] = []
        self._size = 0
        self._over = False
        self._paused_for_writes = False
        self._idle_since: float | None = None  # keep-alive: when the connection last became idle

    # -- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn builds the ASGI scope here (a dict and a copy of the app state per request); a tracking
        # request taken here never needs it, so it is built in on_headers_complete, for the ASGI path only.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _begin_asgi(self) -> None:
        """The scope uvicorn's on_message_begin would have built, keeping what the parser has read since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        track = self._track
        if track is not None and not self.expect_100_continue and not self.parser.should_upgrade():
            path, _, query = self.url.partition(b"?")
            if path == track and (self.cycle is None or self.cycle.response_complete):
                self._fast = True
                self._method = self.parser.get_method().decode("ascii")
                self._query = query.decode("latin-1")
                self._keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                # The body is bounded as it comes (on_body): no separate look at the declared length.
                self._chunks, self._size, self._over = [], 0, False
                return
        self._begin_asgi()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._fast:
            super().on_body(body)
            return
        if self._over:
            return  # drained, not kept
        self._size += len(body)
        if self._size > self._limit:
            self._over, self._chunks = True, []
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if not self._fast:
            super().on_message_complete()
            return
        self._fast = False
        collector = self._collector
        assert collector is not None
        method = self._method
        body = b"".join(self._chunks) if method == "POST" and not self._over else b""  # one chunk: itself
        self._chunks = []
        try:
            # uvicorn's on_header lower-cases the names; as in ASGI, the last of repeated headers wins
            r = collector.handle(
                method,
                collector.track_path,
                self._query,
                dict(self.headers),
                self.client[0] if self.client else "",
                body,
                self._over and method == "POST",
            )
            keep_alive = self._keep_alive and not self._close_after
            head = _HEADS.get(self.server_state.default_headers, r.status, r.headers, len(r.body), keep_alive)
        except Exception:
            log.exception("collector: error answering %s %s", method, collector.track_path)
            self.transport.write(_INTERNAL_ERROR)
            self.transport.close()
            return
        self.transport.write(head + r.body if r.body and method != "HEAD" else head)
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()  # (which resumes reading)
        if self.flow.write_paused and not self.transport.is_closing():
            # The client sends requests but does not read the answers: stop reading until it does, as the
            # ASGI path does by waiting in send(), so its answers cannot pile up in memory.
            self.flow.pause_reading()
            self._paused_for_writes = True

    # -- keep-alive: one timer per idle spell, not one per response ----------------------------------
    # uvicorn arms a new timer after every response and cancels it on the next request's first bytes;
    # at tens of thousands of requests a second per worker that is a timer made and dropped per request.
    # Here a response only notes when the connection became idle; the one armed timer checks that when
    # it fires and re-arms for the rest, so an idle connection still closes `timeout_keep_alive` after
    # its last response, as in uvicorn.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # busy (data arrived): the armed timer, if any, sees it when it fires

    def on_response_complete(self) -> None:  # uvicorn's, but the keep-alive timer lazy
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # a request is under way: its response arms the timer again
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    # -- server callbacks ----------------------------------------------------------------------------

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._paused_for_writes:
            self._paused_for_writes = False
            self.flow.resume_reading()

    def shutdown(self) -> None:
        if self._fast:  # a tracking request is being read: answer it, then close
            self._close_after = True
            return
        super().shutdown()
