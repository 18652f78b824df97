"""Real HTTP servers on 127.0.0.1 for the tracker's browser tests.

`PageServer` serves test pages and the built tracker (as a site would); `RecordingCollector` answers
`/track` like the collector does (204, CORS) and records every request, and can be told to answer
other statuses (503 + Retry-After, 400, 500) or be stopped and restarted on the same port.
The end-to-end tests use the real `pixel serve` instead (tests/conftest.py `pixel_server`).

The tracker sends the compact wire format (one-letter keys); `events()` gives them with the long keys,
expanded by the shipper's own `expand_short_keys`, `raw_events()` as sent.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pixel.server.shipper.normalize import expand_short_keys
from pixel.tracker import dist_file

BUILDS = ("pixel.js", "pixel.ext.js", "pixel.debug.js")


class _Server:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> _Server:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class PageServer(_Server):
    """Serves `pages[path]` as HTML, the built trackers at /<build> and /telemetry/<build> (pixel.js,
    pixel.ext.js, pixel.debug.js), 404 for the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, str] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (body, content type), e.g. images
        self.posts: list[tuple[str, Any]] = []  # (path, JSON body) POSTed to this server (first-party)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0].split("#")[0]
                name = path.rsplit("/", 1)[1]
                if name in BUILDS:
                    body, kind = dist_file(name).read_bytes(), "application/javascript"
                elif path in server.files:
                    body, kind = server.files[path]
                elif path in server.pages or path.split("/")[1] == "app":
                    body, kind = server.pages.get(path, server.pages.get("/app", "")).encode(), "text/html"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind + "; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.posts.append((self.path, json.loads(body) if body else None))
                self.send_response(204)
                self.end_headers()

        return Handler


def long_keys(event: dict[str, Any]) -> dict[str, Any]:
    """A compact-format event with the long keys, as the shipper reads it."""
    return expand_short_keys(copy.deepcopy(event))


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class RecordingCollector(_Server):
    """`/track` as the collector answers it; `answers` (status, headers) are used up first, then 204."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.port)
        self._lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "content-type")
                # without it a cross-origin page cannot read Retry-After
                self.send_header("Access-Control-Expose-Headers", "Retry-After")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_OPTIONS(self) -> None:
                with server._lock:
                    server.requests.append(Request("OPTIONS", self.path, dict(self.headers), None, 204))
                self._answer(204, {})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    status, headers = server.answers.pop(0) if server.answers else (204, {})
                    server.requests.append(
                        Request("POST", self.path, dict(self.headers), json.loads(raw), status)
                    )
                self._answer(status, headers)

        return Handler

    def raw_events(self, status: int = 204) -> list[dict[str, Any]]:
        """Every event of the POSTs answered `status`, in arrival order, as sent (short keys)."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for r in self.requests:
                if r.method == "POST" and r.status == status:
                    out.extend(r.body if isinstance(r.body, list) else [r.body])
        return out

    def events(self, status: int = 204) -> list[dict[str, Any]]:
        """Every event of the POSTs answered `status`, in arrival order, with the long keys."""
        return [long_keys(e) for e in self.raw_events(status)]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event_name"] == name]

    def unique(self, name: str) -> list[dict[str, Any]]:
        """`named(name)` with each event once (its first copy, in order of arrival). Delivery is at least
        once: a page left while a keepalive fetch is in flight sends its events again by beacon, with the same
        `event_id`, which the store collapses. What a page tracked is counted by event id."""
        seen: set[str] = set()
        out = []
        for e in self.named(name):
            if e["event_id"] not in seen:
                seen.add(e["event_id"])
                out.append(e)
        return out

    def wait_unique(self, name: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `n` distinct `name` events arrived; `unique(name)`."""
        self.wait_for(
            lambda ev: len({e["event_id"] for e in ev if e["event_name"] == name}) >= n,
            timeout,
            f"{n} distinct {name}",
        )
        return self.unique(name)

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "events") -> list[dict[str, Any]]:
        """Poll until `predicate(stored events)` is true; return the events."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {[e['event_name'] for e in events]}")
            time.sleep(0.05)

    def wait_count(self, name: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda ev: sum(e["event_name"] == name for e in ev) >= n, timeout, f"{n} x {name}")
        return self.named(name)
