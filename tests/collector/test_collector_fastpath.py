"""The tracking route answered inside uvicorn's protocol (server/collector/fastpath.py) over raw sockets.

The same requests go to a collector with the fast path (PIXEL_SERVER=uvicorn, the default) and to one with
uvicorn's stock protocol (uvicorn-asgi, every request through the ASGI app): the answers must be the same
bytes, and HTTP's connection rules (keep-alive, pipelining, HTTP/1.0, Expect: 100-continue) must hold.
"""

from __future__ import annotations

import re
import socket
import time

import orjson
import pytest

EVENT = orjson.dumps({"event_name": "pageview", "page": {"url": "https://example.com/"}})


@pytest.fixture(scope="module")
def collectors(tmp_path_factory, request):
    from tests.conftest import PixelProcess, free_port

    procs = {}
    for server in ("uvicorn", "uvicorn-asgi"):
        data = tmp_path_factory.mktemp(server) / "data"
        proc = PixelProcess(
            "collect",
            data,
            free_port(),
            free_port(),
            {"PIXEL_WORKERS": "1", "PIXEL_LOG_LEVEL": "WARNING", "PIXEL_SERVER": server},
        ).start()
        request.addfinalizer(proc.stop)
        procs[server] = proc
    return procs


def records(proc) -> list[bytes]:
    spool = proc.data_dir / "spool"
    return [
        line
        for p in sorted(spool.glob("*.*"))
        for line in p.read_bytes().splitlines()
        if line and not line.startswith(b"#")
    ]


def post(body: bytes, extra: bytes = b"", path: bytes = b"/track", version: bytes = b"1.1") -> bytes:
    return b"POST %b HTTP/%b\r\nHost: x\r\nContent-Type: text/plain\r\n%bContent-Length: %d\r\n\r\n%b" % (
        path,
        version,
        extra,
        len(body),
        body,
    )


def exchange(
    port: int, data: bytes, responses: int, timeout: float = 10, head: bool = False
) -> tuple[bytes, bool]:
    """Send `data` on one connection; read until `responses` complete answers arrived (answers to HEAD have no
    body whatever their content-length says). Returns (bytes, closed by the server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        got, closed = b"", False
        deadline = time.monotonic() + timeout
        while complete(got, head) < responses and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
        if not closed:
            sock.settimeout(0.3)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
        return got, closed


def complete(data: bytes, bodyless: bool = False) -> int:
    """How many whole HTTP responses (with a content-length) `data` holds."""
    n = 0
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return n
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = 0 if bodyless else int(value)
        if head.startswith(b"HTTP/1.1 100 "):
            data = rest
            continue
        if len(rest) < length:
            return n
        n, data = n + 1, rest[length:]


CASES = [
    ("one event", post(EVENT)),
    ("array", post(b"[" + EVENT + b"," + EVENT + b"]")),
    ("bad JSON", post(b"{nope")),
    ("too many", post(orjson.dumps([{"event_name": "a"}] * 101))),
    ("too large", post(b'{"x":"' + b"a" * 70_000 + b'"}')),
    (
        "too large, chunked",
        b"POST /track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n" % (40_000, b"a" * 40_000) * 2
        + b"0\r\n\r\n",
    ),
    ("preflight", b"OPTIONS /track HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n"),
    ("pixel", b"GET /track?e=eyJldmVudF9uYW1lIjoiYSJ9 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("no e", b"GET /track HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("PUT", b"PUT /track HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"),
    ("HEAD", b"HEAD /track HTTP/1.1\r\nHost: x\r\n\r\n"),
    (
        "chunked",
        b"POST /track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%b\r\n0\r\n\r\n" % (len(EVENT), EVENT),
    ),
]


@pytest.mark.parametrize(("case", "request_bytes"), CASES, ids=[c[0] for c in CASES])
def test_same_answer_bytes_as_the_asgi_path(collectors, case, request_bytes) -> None:
    answers = {}
    for server, proc in collectors.items():
        before = len(records(proc))
        got, closed = exchange(proc.port, request_bytes, 1, head=request_bytes.startswith(b"HEAD "))
        answers[server] = (got, closed, len(records(proc)) - before)
    assert answers["uvicorn"] == answers["uvicorn-asgi"]
    assert answers["uvicorn"][0].startswith(b"HTTP/1.1 ")
    # keep-alive: the connection stays open, but for a body over the limit, which is not read (limits.py)
    assert answers["uvicorn"][1] == case.startswith("too large")


def test_keep_alive_and_pipelining_answer_in_order(collectors) -> None:
    # A tracking request pipelined behind /health (which takes the ASGI path) must wait for it: answers in order.
    data = (
        post(EVENT)
        + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        + post(EVENT)
        + post(b"{bad")
        + post(EVENT, path=b"/nowhere")
        + post(EVENT)
    )
    proc = collectors["uvicorn"]
    before = len(records(proc))
    got, closed = exchange(proc.port, data, 6)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", got)
    assert statuses == [b"204", b"200", b"204", b"400", b"404", b"204"]
    assert not closed
    assert len(records(proc)) - before == 3


def test_http_1_0_and_connection_close_close_after_the_answer(collectors) -> None:
    proc = collectors["uvicorn"]
    for request_bytes in (post(EVENT, version=b"1.0"), post(EVENT, extra=b"Connection: close\r\n")):
        before = len(records(proc))
        got, closed = exchange(proc.port, request_bytes, 1)
        assert got.startswith(b"HTTP/1.1 204 No Content\r\n")
        assert b"\r\nconnection: close\r\n" in got
        assert closed
        assert len(records(proc)) - before == 1


def test_expect_100_continue_is_answered(collectors) -> None:
    proc = collectors["uvicorn"]
    head = b"POST /track HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(
        EVENT
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(EVENT)
        assert sock.recv(1024).startswith(b"HTTP/1.1 204 ")


def test_body_split_across_packets_is_stored_whole(collectors) -> None:
    proc = collectors["uvicorn"]
    before = len(records(proc))
    body = orjson.dumps([{"event_name": "split", "n": i} for i in range(60)])
    data = post(body)
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 97):
            sock.sendall(data[i : i + 97])
            time.sleep(0.001)
        assert sock.recv(1024).startswith(b"HTTP/1.1 204 ")
    new = records(proc)[before:]
    assert len(new) == 1
    assert new[0].split(b"\t", 7)[7] == body


async def serve_in_process(app):
    """uvicorn with TrackProtocol serving `app` on a free 127.0.0.1 port in this event loop: (server, socket, task);
    set `server.should_exit` and await the task to stop it."""
    import asyncio

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http="pixel.server.collector.fastpath:TrackProtocol",
        lifespan="on",
        proxy_headers=False,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, sock, task


def test_tracking_requests_skip_the_asgi_app_and_others_use_it(tmp_path) -> None:
    """In process: uvicorn with TrackProtocol and a collector app that counts its ASGI calls."""
    import asyncio

    from pixel.server.collector.app import AsgiCollector
    from pixel.server.collector.core import Collector
    from pixel.server.settings import Settings

    class Counting(AsgiCollector):
        calls: list[str] = []

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] == "http":
                self.calls.append(scope["path"])
            await super().__call__(scope, receive, send)

    app = Counting(Collector(Settings(data_dir=tmp_path / "data")))

    async def main() -> list[bytes]:
        server, sock, task = await serve_in_process(app)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        answers = []
        for request_bytes in (
            post(EVENT),
            post(EVENT),
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            post(EVENT),
        ):
            writer.write(request_bytes)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head).group(1))
            await reader.readexactly(length)
            answers.append(head.split(b"\r\n")[0])
        writer.close()
        server.should_exit = True
        await task
        return answers

    answers = asyncio.run(main())
    assert answers == [
        b"HTTP/1.1 204 No Content",
        b"HTTP/1.1 204 No Content",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 204 No Content",
    ]
    assert Counting.calls == ["/health"]
    assert len(records(type("P", (), {"data_dir": tmp_path / "data"}))) == 3


def test_a_client_that_does_not_read_its_answers_is_not_read_from(tmp_path) -> None:
    """Backpressure: pipelined requests whose answers are not read must not pile up answers in memory."""
    import asyncio
    import threading

    from pixel.server.collector.app import AsgiCollector
    from pixel.server.collector.core import Collector
    from pixel.server.settings import Settings

    app = AsgiCollector(Collector(Settings(data_dir=tmp_path / "data")))
    state: dict[str, object] = {}

    async def main() -> None:
        server, sock, task = await serve_in_process(app)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        client.connect(sock.getsockname())
        client.setblocking(False)
        one = post(b"{}")
        sent = 0

        def flood() -> None:  # send pipelined requests until the server stops taking them, never read
            nonlocal sent
            data = one * 2000
            deadline = time.monotonic() + 20
            idle_since = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - idle_since < 1.0:
                try:
                    sent += client.send(data)
                    idle_since = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.01)

        thread = threading.Thread(target=flood)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
        (protocol,) = list(server.server_state.connections)
        state["paused"] = protocol.flow.read_paused
        state["buffered"] = protocol.transport.get_write_buffer_size()
        client.close()
        server.should_exit = True
        await task

    asyncio.run(main())
    assert state["paused"] is True
    # Bounded by the answers to one read's worth of requests past the high-water mark (246 kB measured;
    # without the pause the server kept reading and buffered 4.6 MB of answers in the same test).
    assert state["buffered"] < 1024 * 1024


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-asgi"])
def test_idle_keep_alive_connections_close_after_the_timeout_and_busy_ones_stay(tmp_path, server) -> None:
    """PIXEL_KEEP_ALIVE_TIMEOUT=1: requests 0.4 s apart for 2.4 s keep one connection; 1 s after its last answer
    it is closed, not before. The fast path arms one timer per idle spell instead of one per answer; the
    stock protocol is the reference."""
    from tests.conftest import PixelProcess, free_port

    proc = PixelProcess(
        "collect",
        tmp_path / "data",
        free_port(),
        free_port(),
        {
            "PIXEL_WORKERS": "1",
            "PIXEL_LOG_LEVEL": "WARNING",
            "PIXEL_SERVER": server,
            "PIXEL_KEEP_ALIVE_TIMEOUT": "1",
        },
    ).start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
            for _ in range(7):
                sock.sendall(post(EVENT))
                got = b""
                while complete(got) < 1:
                    chunk = sock.recv(65536)
                    assert chunk, "closed while in use"
                    got += chunk
                assert got.startswith(b"HTTP/1.1 204 ")
                time.sleep(0.4)
            answered = time.monotonic() - 0.4
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # ~0.7 s after the last answer: still open
            sock.settimeout(5)
            assert sock.recv(1) == b""  # then closed by the server...
            closed_after = time.monotonic() - answered
        assert 0.9 <= closed_after <= 2.0  # ...about 1 s after the last answer
        assert len(records(proc)) == 7
    finally:
        proc.stop()


def test_answers_carry_the_current_date_header_on_a_long_connection(tmp_path) -> None:
    """uvicorn renews its default headers (Date) once a second; cached answer heads must follow them, also on
    a keep-alive connection that outlives a second."""
    import asyncio
    from email.utils import parsedate_to_datetime

    from pixel.server.collector.app import AsgiCollector
    from pixel.server.collector.core import Collector
    from pixel.server.settings import Settings

    app = AsgiCollector(Collector(Settings(data_dir=tmp_path / "data")))

    async def main() -> list[bytes]:
        server, sock, task = await serve_in_process(app)  # uvicorn's default: date_header on
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        dates = []
        for _ in range(2):
            writer.write(post(EVENT))
            head = await reader.readuntil(b"\r\n\r\n")
            dates.append(re.search(rb"\r\ndate: ([^\r]+)\r\n", head).group(1))
            await asyncio.sleep(2.2)
        writer.close()
        server.should_exit = True
        await task
        return dates

    first, second = asyncio.run(main())
    elapsed = (parsedate_to_datetime(second.decode()) - parsedate_to_datetime(first.decode())).total_seconds()
    assert 1 <= elapsed <= 4
