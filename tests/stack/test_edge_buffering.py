"""The edge sends a tracking request on to the collector in one piece (app/stack/edge.py, `caddyfile()`): the real
`caddy` (Debian's, scripts/system.d/25-edge.sh) runs the edge's Caddyfile through the edge's own start command, in
front of a plain TCP server on 127.0.0.1 that records what each read returns.

Without request buffering, Caddy (Go's HTTP client) writes the head as soon as it has it and the body after: the
collector's event loop then wakes, reads and parses twice per request. A client here sends the head, waits, then
sends the body, so the two cases cannot be confused by timing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pixel.app.stack.edge import BUFFER, caddyfile, start_command

CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(CADDY is None, reason="Debian's caddy (scripts/system.d/25-edge.sh)")
BODY = b'{"event_name":"pageview","site":"example.com","page":{"url":"https://example.com/a","path":"/a"}}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """A TCP server standing in for the collector: the first read of each connection, then a 204."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.first_reads: list[bytes] = []
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = conn.recv(65536)  # what one wake-up of the collector's event loop would find
            self.first_reads.append(data)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                more = conn.recv(65536)
                if not more:
                    return
                body += more
            self.requests.append(head + b"\r\n\r\n" + body)
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.5)


@pytest.fixture
def edge(tmp_path: Path):
    """Caddy on 127.0.0.1 with the edge's Caddyfile (plain HTTP, no admin endpoint), proxying to an Upstream."""
    upstream = Upstream()
    port = _free_port()
    values = {
        "${PIXEL_DOMAIN}": f"http://127.0.0.1:{port}",
        "${PIXEL_SCRIPT_NAME}": "pixel.js",
        "${PIXEL_TRACK_PATH}": "/track",
        "${PIXEL_ACME_EMAIL}": "",
        "${PIXEL_ACME_CA}": "",
        "${PIXEL_ACME_CA_ROOT}": "",
        "${PIXEL_EDGE_RENEW_INTERVAL}": "",
        "admin localhost:2019": "admin off",
    }
    text = caddyfile(f"127.0.0.1:{upstream.port}")
    for key, value in values.items():
        text = text.replace(key, value)
    conf = tmp_path / "conf"
    env = {
        **os.environ,
        "PIXEL_EDGE_CADDYFILE": text,
        "PIXEL_EDGE_TRUSTED_PROXIES": "",
        "HOME": str(tmp_path),
    }
    env |= {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.Popen(
        ["sh", "-c", start_command(str(conf))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "caddy did not start listening"
                time.sleep(0.1)
        yield port, upstream, (conf / "Caddyfile").read_text()
    finally:
        proc.terminate()
        proc.wait(10)
        upstream.sock.close()


def _post_in_two_parts(port: int, path: str, body: bytes) -> bytes:
    """A POST whose head and body reach Caddy 0.3 s apart; Caddy's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        time.sleep(0.3)
        s.sendall(body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def test_a_tracking_request_reaches_the_collector_in_one_read(edge) -> None:
    port, upstream, text = edge
    answer = _post_in_two_parts(port, "/track", BODY)
    assert answer.startswith(b"HTTP/1.1 204"), answer
    [first] = upstream.first_reads
    head, _, body = first.partition(b"\r\n\r\n")
    assert body == BODY  # head and body in the first read: one write from Caddy
    assert head.startswith(b"POST /track HTTP/1.1\r\n")
    assert b"\r\nX-Forwarded-For: 127.0.0.1\r\n" in head  # the visitor's address as before
    # the running caddy's own spelling was kept, the other removed (Debian's caddy is 2.6)
    assert ("buffer_requests" in text) != ("request_buffers" in text)


def test_a_body_over_the_buffer_is_still_passed_on_whole(edge) -> None:
    """Past BUFFER bytes Caddy streams the rest: the collector gets every byte and refuses it itself (413)."""
    port, upstream, _text = edge
    big = b"x" * (BUFFER + 1000)
    answer = _post_in_two_parts(port, "/track", big)
    assert answer.startswith(b"HTTP/1.1 204"), answer
    [request] = upstream.requests
    assert request.endswith(b"\r\n\r\n" + big)
