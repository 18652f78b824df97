"""Does Caddy deliver every POST when one of two Unix-socket upstreams is down? (issue 14, h92)

Real Caddy (the `caddy` on PATH: Debian's 2.6.2, scripts/system.d/25-edge.sh) in front of two upstreams on Unix
sockets, like the edge in front of the collector's two workers. Upstream 1 echoes each request's body; upstream 2
is down in one of two ways:

- `refused`: its socket file exists but nobody listens (a worker that died, as before h92): Caddy's dial fails and
  Caddy retries the request on upstream 1, for up to `lb_try_duration`;
- `held`: its socket listens but nobody accepts for `--down` seconds, then an echo server accepts on it (the
  collector since h92: the supervising process keeps each worker's socket, server/processes.py).

Each variant sends `--requests` POSTs from each of `--threads` threads (a new connection each, a body unique to the
request) and counts the answers: `ok` (200 with the request's own body echoed), `mixed` (200 with another body),
or the status / error. Variants: no buffering (the edge as shipped), request buffering (`buffer_requests` with
`max_buffer_size` on Caddy before 2.6.4, `request_buffers` after), and the held socket.

    .venv/bin/python bench/edge_retry_bodies.py --requests 50 --threads 8
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

LIMIT = 64 * 1024  # the collector's body limit (server/settings.py, max_body_bytes)


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the proxy closed the connection
            pass


class UnixEcho(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def serve(path: Path) -> UnixEcho:
    server = UnixEcho(str(path), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_on(sock: socket.socket) -> UnixEcho:
    """An echo server accepting on an already listening socket."""
    server = UnixEcho(str(sock.getsockname()), Echo, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def caddy_version() -> tuple[int, ...]:
    out = subprocess.run(["caddy", "version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(x) for x in out.split()[0].lstrip("v").split("-")[0].split("."))


def caddyfile(port: int, one: Path, two: Path, buffering: bool) -> str:
    buf = ""
    if buffering:
        old = caddy_version() < (2, 6, 4)
        buf = f"buffer_requests\n        max_buffer_size {LIMIT}" if old else f"request_buffers {LIMIT}"
    return f"""{{
    admin off
    auto_https off
}}
http://127.0.0.1:{port} {{
    reverse_proxy unix/{one} unix/{two} {{
        lb_try_duration 2s
        {buf}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blast(port: int, requests: int, threads: int) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def run(t: int) -> None:
        for i in range(requests):
            body = f"{t}-{i}-{os.urandom(8).hex()}".encode().ljust(200, b"x")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/track", body=body, headers={"Content-Type": "text/plain"})
                resp = conn.getresponse()
                got = resp.read()
                key = str(resp.status) if resp.status != 200 else ("ok" if got == body else "mixed")
            except (OSError, http.client.HTTPException) as exc:  # e.g. IncompleteRead: a truncated answer
                key = type(exc).__name__
            finally:
                conn.close()
            with lock:
                counts[key] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts


def variant(name: str, folder: Path, args: argparse.Namespace) -> None:
    one, two = folder / f"{name}-1.sock", folder / f"{name}-2.sock"
    live = serve(one)
    held: socket.socket | None = None
    if name == "held":
        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        held.bind(str(two))
        held.listen(2048)
    else:
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(str(two))
        dead.close()  # the file stays: a dial is refused
    port = free_port()
    conf = folder / f"{name}.Caddyfile"
    conf.write_text(caddyfile(port, one, two, name == "buffered"))
    caddy = subprocess.Popen(
        ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    late: UnixEcho | None = None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "caddy did not start"
                time.sleep(0.1)
        if held is not None:

            def revive() -> None:
                nonlocal late
                time.sleep(args.down)
                late = serve_on(held)

            threading.Thread(target=revive, daemon=True).start()
        started = time.monotonic()
        counts = blast(port, args.requests, args.threads)
        took = time.monotonic() - started
        print(f"{name:10s} {dict(sorted(counts.items()))}  ({took:.1f} s)", flush=True)
    finally:
        caddy.terminate()
        caddy.wait()
        live.shutdown()
        if late is not None:
            late.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50, help="POSTs per thread")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--down", type=float, default=1.0, help="seconds the held socket waits for its server"
    )
    args = parser.parse_args()
    if shutil.which("caddy") is None:
        raise SystemExit("caddy is not on PATH (scripts/system.d/25-edge.sh)")
    print(f"caddy {'.'.join(map(str, caddy_version()))}, {args.threads} threads x {args.requests} POSTs")
    folder = Path(tempfile.mkdtemp(prefix="px-retry-"))
    try:
        for name in ("refused", "buffered", "held"):
            variant(name, folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
