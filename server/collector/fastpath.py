"""uvicorn's httptools protocol with the tracking route answered inside the protocol.

Why: on `POST /track` Pixel's own work (`Collector.handle`: one `orjson.loads`, one `write(2)` to the spool)
is small next to what the stock ASGI path around it costs per request: a scope
dict, a RequestResponseCycle with an asyncio.Event, a Task, the receive/send coroutines and their message
dicts (bench/README.md, "Collector against the anchor"). This protocol — still uvicorn's server, workers,
lifespan, keep-alive and flow control; selected with uvicorn's `http=` option — calls `Collector.handle`
synchronously from the parser callbacks for requests on the tracking path and writes the answer at once.
Every other request (the script, /health, /metrics, unknown paths) goes through the ASGI app as before, and
so does a tracking request that would need more than the plain case: pipelined behind a request still in
progress, `Expect: 100-continue`, or an upgrade. The answers are byte for byte those of the ASGI path
(a test compares them). The limits on heads, bodies, time and connections (`limits.GuardedProtocol`, the
base class) apply to both paths.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pixel.server.collector.limits import METHODS, GuardedProtocol, Refused

log = logging.getLogger(__name__)

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
            for raw_name, raw_value in defaults:
                out += (raw_name, b": ", raw_value, b"\r\n")
            for name, text in headers:
                out.append(f"{name}: {text}\r\n".encode("latin-1"))
            out.append(b"content-length: %d\r\n" % length)
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
            head = self.heads[shape] = b"".join(out)
        return head


_HEADS = _Heads()


class TrackProtocol(GuardedProtocol):
    """One connection. `_fast` is set between the headers and the end of a tracking request taken here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = False
        self._close_after = False
        self._method = ""
        self._query = ""
        self._keep_alive = True
        self._fields: dict[bytes, bytes] = {}
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused_for_writes = False

    # -- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn builds the ASGI scope here (a dict and a copy of the app state per request); a tracking
        # request taken here never needs it, so it is built in on_headers_complete, for the ASGI path only.
        if self._deadline is None:  # a request that follows another in the same read
            self._start_deadline()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _begin_asgi(self) -> None:
        """The scope uvicorn's on_message_begin would have built, keeping what the parser has read since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        HttpToolsProtocol.on_message_begin(self)
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        version = parser.get_http_version()
        # uvicorn's on_header lower-cases the names; as in ASGI, the last of repeated headers wins
        fields = self._fields = dict(self.headers)
        length = fields.get(b"content-length")
        if (
            (version != "1.1" and version != "1.0")
            or method not in METHODS
            or (length is not None and len(length) >= self._body_digits)
        ):
            self._check_head(method, version, fields)  # limits: raises Refused after answering
        else:  # (_check_head's bookkeeping, inline for the plain case)
            self._head = False
            self._chunked = length is None and b"transfer-encoding" in fields
            self._body_bytes = self._raw_bytes = 0
        track = self._track
        if track is not None and not self.expect_100_continue and not parser.should_upgrade():
            path, _, query = self.url.partition(b"?")
            if path == track and (self.cycle is None or self.cycle.response_complete):
                self._fast = True
                self._method = method.decode("ascii")
                self._query = query.decode("latin-1")
                self._keep_alive = version != "1.0" and parser.should_keep_alive()
                self._chunks, self._size = [], 0
                return
        self._begin_asgi()
        HttpToolsProtocol.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        if not self._fast:
            super().on_body(body)
            return
        self._size += len(body)
        if self._size > self._max_body:  # (a declared length over it was refused with the head)
            self._too_large()
            raise Refused
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if not self._fast:
            super().on_message_complete()
            return
        self._deadline = None  # (_end_of_message, inline)
        self._head, self._head_bytes, self._chunked = True, 0, False
        self._fast = False
        collector = self._collector
        assert collector is not None
        method = self._method
        body = b"".join(self._chunks) if method == "POST" else b""  # one chunk: itself
        self._chunks = []
        try:
            r = collector.handle(
                method,
                collector.track_path,
                self._query,
                self._fields,
                self.client[0] if self.client else "",
                body,
                False,
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

    def _refuse_with(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._fast = False
        super()._refuse_with(status, headers, body)

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
