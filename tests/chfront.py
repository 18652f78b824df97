"""A TEST-ONLY HTTP front on chDB. It is NOT a ClickHouse server.

No ClickHouse server can be installed on the test machines, so the clickhouse-connect engine is
tested against chDB (the real ClickHouse engine, embedded) behind this small HTTP server that speaks
the part of ClickHouse's HTTP interface clickhouse-connect uses:

- `GET /ping` and `GET /` answer `Ok.`;
- a query in the `query=` URL parameter, the request body, or both (the body is appended to the
  parameter, as ClickHouse does; that is how INSERT data arrives), or in multipart form fields;
- `database=`; server-side parameters `param_<name>=`; any URL parameter that names a ClickHouse
  setting (e.g. `insert_deduplication_token`) is applied to that one request;
- compressed request bodies (Content-Encoding lz4, zstd, gzip, deflate) and compressed results
  when `enable_http_compression=1` and Accept-Encoding allow;
- Basic authentication against one user and password given on the command line;
- `GET /chfront/encodings` (front only): how many request bodies and responses went with each
  Content-Encoding, so tests can see that compression is on;
- the response headers clickhouse-connect reads: X-ClickHouse-Summary, -Query-Id, -Timezone,
  -Server-Display-Name, -Format, and on error HTTP 500 with X-ClickHouse-Exception-Code and the
  error text ("Code: N. DB::Exception: ...").

It runs requests one at a time (one chDB session) and has no sessions, quotas, users or TLS.

chDB admits one data folder per process, so the front runs as its own process (`ChFront.start`);
it exits when the test process goes away (it watches its stdin). Run by hand:
`python tests/chfront.py --data-dir DIR [--port N] [--user U --password P]`.
In a container (the standard stack's ClickHouse stand-in, tests/stack/chfront_standin/), where stdin is
closed from the start: `--host 0.0.0.0 --no-stdin-watch`; it then stops on SIGTERM only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import uuid
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# Transport parameters clickhouse-connect sends that are not settings to apply to the query.
TRANSPORT_PARAMS = {
    "query",
    "database",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "enable_http_compression",
    "default_format",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "client_protocol_version",
    "cancel_http_readonly_queries_on_client_close",
    "user",
    "password",
    "quota_key",
    "role",
}
_CODE = re.compile(r"Code: (\d+)\.")


class ChFront:
    """Launcher for the front as a child process: `ChFront.start(dir)`, `.url`, `.stop()`."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(
        cls,
        data_dir: Path | str,
        *,
        port: int = 0,
        user: str = "default",
        password: str = "",
        timeout: float = 60,
    ) -> ChFront:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--user",
            user,
            "--password",
            password,
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        # a selector, not select.select(): that refuses descriptors above 1023, which a long test session reaches
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        # "LISTENING <port>" once the session is open and the port bound
        line = proc.stdout.readline() if ready else b"(no answer in time)"
        if not line.startswith(b"LISTENING "):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"chfront did not start (exit {proc.poll()}): {line!r}")
        return cls(proc, int(line.split()[1]))

    def stop(self) -> None:
        """Stop the front (it closes its chDB session first); kill it if it does not go in 10 s."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the front shuts down when its stdin closes
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ChFront:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the server (child process) ------------------------------------------------------------------


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(data)
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(data)
    raise ValueError(
        f"Code: 1. DB::Exception: Unknown HTTP Content-Encoding: {encoding}. (UNSUPPORTED_METHOD)"
    )


def _compress(data: bytes, accept: str) -> tuple[bytes, str | None]:
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for encoding in offered:
        if encoding == "lz4":
            import lz4.frame

            return lz4.frame.compress(data), "lz4"
        if encoding == "zstd":
            from backports import zstd

            return zstd.compress(data), "zstd"
        if encoding == "gzip":
            return zlib.compress(data, wbits=16 + zlib.MAX_WBITS), "gzip"
        if encoding == "deflate":
            return zlib.compress(data), "deflate"
    return data, None


class Engine:
    """One chDB session; requests run one at a time because USE/SET are session state."""

    def __init__(self, data_dir: str, user: str, password: str) -> None:
        from chdb import session

        self.session = session.Session(data_dir)
        self.lock = threading.Lock()
        self.user, self.password = user, password
        self.encodings: dict[str, int] = {}  # "request:lz4" / "response:zstd" -> count
        rows = self.session.query("SELECT name FROM system.settings", "TabSeparated").bytes().decode()
        self.setting_names = set(rows.split())
        self.home_db, self.timezone = (
            self.session.query("SELECT currentDatabase(), timezone()", "TabSeparated")
            .bytes()
            .decode()
            .split()
        )

    def run(
        self, query: bytes, params: dict[str, str], database: str | None, settings: dict[str, str], fmt: str
    ) -> tuple[bytes, dict[str, int]]:
        with self.lock:
            self.session.query(f"USE `{database or self.home_db}`", "TabSeparated")
            applied = {k: v for k, v in settings.items() if k in self.setting_names}
            if applied:
                self.session.query("SET " + ", ".join(f"{k} = {_quote(v)}" for k, v in applied.items()))
            try:
                result = self.session.query(query, fmt, params=params or None)
            finally:
                if applied:
                    self.session.query("SET " + ", ".join(f"{k} = DEFAULT" for k in applied))
        stats = {
            "read_rows": result.rows_read(),
            "read_bytes": result.bytes_read(),
            "written_rows": result.rows_written(),
            "written_bytes": result.bytes_written(),
            "elapsed_ns": int(result.elapsed() * 1e9),
        }
        return result.bytes(), stats


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine  # set on the class by serve()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, text: str, query_id: str) -> None:
        match = _CODE.search(text)
        code = match.group(1) if match else "1"
        body = (text.strip() + " (version chfront)\n").encode()
        self._send(
            status,
            body,
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Exception-Code": code,
                "X-ClickHouse-Server-Display-Name": "chfront",
            },
        )

    def _count(self, key: str) -> None:
        with self.engine.lock:
            self.engine.encodings[key] = self.engine.encodings.get(key, 0) + 1

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorised(self, args: dict[str, str]) -> bool:
        user, password = args.get("user", "default"), args.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        user = self.headers.get("X-ClickHouse-User", user)
        password = self.headers.get("X-ClickHouse-Key", password)
        return (user, password) == (self.engine.user, self.engine.password)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query_id = str(uuid.uuid4())
        try:
            body = self._read_body()
        except (ValueError, OSError) as exc:
            self._error(400, f"Code: 1. DB::Exception: bad request body: {exc}. (BAD_REQUEST)", query_id)
            return
        if url.path.rstrip("/") in ("/ping", "") and not url.query and not body:
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path == "/chfront/encodings":
            self._send(200, json.dumps(self.engine.encodings).encode(), {"Content-Type": "application/json"})
            return
        if url.path.rstrip("/") != "":
            self._error(
                404, f"Code: 1. DB::Exception: There is no handle {url.path}. (UNSUPPORTED_METHOD)", query_id
            )
            return
        args = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = args.get("query_id") or query_id
        if not self._authorised(args):
            self._error(
                403,
                "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)",
                query_id,
            )
            return
        encoding = self.headers.get("Content-Encoding", "")
        if body and encoding:
            self._count(f"request:{encoding}")
        try:
            body = _decompress(body, encoding)
        except Exception as exc:
            self._error(
                400,
                str(exc) if "Code:" in str(exc) else f"Code: 1. DB::Exception: {exc}. (CANNOT_DECOMPRESS)",
                query_id,
            )
            return
        query = args.get("query", "").encode()
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    args[name] = part.get_payload(decode=True).decode()
            query, body = args.get("query", "").encode(), b""
        if body:
            query = query + b"\n" + body if query else body
        params = {k[len("param_") :]: v for k, v in args.items() if k.startswith("param_")}
        settings = {k: v for k, v in args.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
        fmt = args.get("default_format", "TabSeparated")
        try:
            data, stats = self.engine.run(query, params, args.get("database"), settings, fmt)
        except Exception as exc:
            self._error(500, str(exc), query_id)
            return
        headers = {
            "Content-Type": "application/octet-stream"
            if b"FORMAT Native" in query[-64:]
            else "text/plain; charset=UTF-8",
            "X-ClickHouse-Server-Display-Name": "chfront",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Summary": json.dumps({k: str(v) for k, v in stats.items()}),
        }
        if data:
            headers["X-ClickHouse-Format"] = fmt
        if data and args.get("enable_http_compression") == "1":
            data, encoding = _compress(data, self.headers.get("Accept-Encoding", ""))
            if encoding:
                headers["Content-Encoding"] = encoding
                self._count(f"response:{encoding}")
        self._send(200, data, headers)


def serve(
    data_dir: str, port: int, user: str, password: str, *, host: str = "127.0.0.1", watch_stdin: bool = True
) -> None:
    Handler.engine = Engine(data_dir, user, password)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def watch_parent() -> None:  # stdin closes when the test process exits, however it exits
        sys.stdin.buffer.read()
        server.shutdown()

    if watch_stdin:
        threading.Thread(target=watch_parent, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        Handler.engine.session.close()
        sys.stdout.flush()
        os._exit(0)  # not a normal exit: the stdin watcher thread is blocked in read()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--no-stdin-watch",
        action="store_true",
        help="keep running when stdin closes (in a container); stop on SIGTERM",
    )
    ns = parser.parse_args()
    serve(ns.data_dir, ns.port, ns.user, ns.password, host=ns.host, watch_stdin=not ns.no_stdin_watch)
