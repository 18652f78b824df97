"""The collector under slow, oversized and malformed clients (server/collector/limits.py, app.py, processes.py).

Real `pixel collect` processes (one worker, PIXEL_REQUEST_TIMEOUT=1 s so that the deadlines are quick to
reach) on each server binding: uvicorn with the fast path (the default), uvicorn-asgi and granian, over raw
sockets. Where granian (hyper) behaves differently the test says so: it closes a connection whose head is
late without a 408, answers other HTTP versions with 400, and holds connections past its cap in the backlog.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PixelProcess, free_port, parse_metrics

BINDINGS = ["uvicorn", "uvicorn-asgi", "granian"]
TIMEOUT = 1.0  # PIXEL_REQUEST_TIMEOUT of these collectors
LIMIT = 16 * 1024  # PIXEL_MAX_HEADER_BYTES (the default)
EVENT = orjson.dumps({"event_name": "pageview", "page": {"url": "https://example.com/"}})


def start(tmp: Path, server: str, **env: str) -> PixelProcess:
    return PixelProcess(
        "collect",
        tmp / "data",
        free_port(),
        free_port(),
        {
            "PIXEL_WORKERS": "1",
            "PIXEL_LOG_LEVEL": "WARNING",
            "PIXEL_SERVER": server,
            "PIXEL_REQUEST_TIMEOUT": str(TIMEOUT),
            **env,
        },
    ).start()


@pytest.fixture(scope="module", params=BINDINGS)
def collector(tmp_path_factory, request) -> PixelProcess:
    proc = start(tmp_path_factory.mktemp(request.param), request.param)
    request.addfinalizer(proc.stop)
    return proc


def binding(proc: PixelProcess) -> str:
    return proc.env["PIXEL_SERVER"]


def records(proc: PixelProcess) -> int:
    spool = proc.data_dir / "spool"
    return sum(
        1
        for p in spool.glob("*.*")
        for line in p.read_bytes().splitlines()
        if line and not line.startswith(b"#")
    )


def connect(proc: PixelProcess, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proc.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 10) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or `timeout` passes (False)."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return got, False
        except ConnectionResetError:
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


def exchange(proc: PixelProcess, data: bytes, timeout: float = 10) -> tuple[bytes, bool]:
    with connect(proc) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout)


def get_health(extra: bytes = b"") -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\n%b\r\n" % extra


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


def header_of(size: int) -> bytes:
    """A GET /health head of exactly `size` bytes (request line, headers and the blank line)."""
    base = get_health(b"X-Pad: \r\n")
    return get_health(b"X-Pad: " + b"a" * (size - len(base)) + b"\r\n")


# -- heads ------------------------------------------------------------------------------------------


def test_a_head_over_the_limit_is_431_and_closed(collector) -> None:
    answer, closed = exchange(collector, header_of(LIMIT + 1024))
    assert status(answer) == 431
    assert closed
    answer, closed = exchange(collector, header_of(LIMIT - 1024), timeout=0.3)
    assert status(answer) == 200
    assert not closed  # keep-alive


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-asgi"])
def test_uvicorn_cuts_the_head_at_the_exact_byte(tmp_path, server) -> None:
    """Under uvicorn the limit is exact: a head of PIXEL_MAX_HEADER_BYTES passes, one byte more does not, also
    when it arrives a few bytes at a time; the limit is a setting."""
    proc = start(tmp_path, server)
    try:
        assert status(exchange(proc, header_of(LIMIT), timeout=0.3)[0]) == 200
        assert status(exchange(proc, header_of(LIMIT + 1))[0]) == 431
        with connect(proc) as sock:  # in pieces
            data = header_of(LIMIT + 1)
            for i in range(0, len(data), 4000):
                sock.sendall(data[i : i + 4000])
                time.sleep(0.02)
            answer, closed = read_until_closed(sock)
        assert status(answer) == 431 and closed
    finally:
        proc.stop()
    (tmp_path / "small").mkdir()
    proc = start(tmp_path / "small", server, PIXEL_MAX_HEADER_BYTES="9000")
    try:
        assert status(exchange(proc, header_of(9000), timeout=0.3)[0]) == 200
        assert status(exchange(proc, header_of(9001))[0]) == 431
    finally:
        proc.stop()


def test_a_second_request_in_one_read_is_held_to_the_limit_too(collector) -> None:
    """A head pipelined behind a request (in the same read) over the limit is refused once complete; the
    request before it is answered."""
    if binding(collector) == "granian":
        pytest.skip("hyper's read buffer holds the pipelined head: covered by the 431 test")
    answer, closed = exchange(collector, get_health() + header_of(3 * LIMIT))
    assert status(answer) == 200
    assert b"HTTP/1.1 431 " in answer
    assert closed


def send_big_head(proc: PixelProcess, size: int) -> tuple[int, bytes]:
    """Send a head with one `size`-byte header, as long as the server takes it: (bytes sent, answer)."""
    sent = 0
    with connect(proc, timeout=10) as sock:
        start_line = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
        sock.sendall(start_line)
        sent += len(start_line)
        block = b"a" * 65536
        try:
            while sent < size:
                sock.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        try:
            answer, _ = read_until_closed(sock, 5)
        except OSError:
            answer = b""
        return sent, answer


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def worker_pid(proc: PixelProcess) -> int:
    answer, _ = exchange(proc, get_health(b"Connection: close\r\n"))
    return orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["pid"]


def peak_rss_during(pid: int, work) -> tuple[int, int]:
    """(RSS before, highest RSS seen while `work()` runs, sampled every 20 ms) of process `pid`, in KiB."""
    before = peak = rss_kib(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return before, peak


def test_huge_heads_cost_no_memory(collector) -> None:
    """Six concurrent 24 MiB heads (before: uvicorn read them whole, ~96 MiB of RSS per worker while they were
    open): each is refused after at most a few hundred KiB, and the worker's RSS, sampled all along, does not
    grow by more than a few MiB."""
    pid = worker_pid(collector)
    results: list[tuple[int, bytes]] = []

    def attempts() -> None:
        threads = [
            threading.Thread(target=lambda: results.append(send_big_head(collector, 24 << 20)))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    before, peak = peak_rss_during(pid, attempts)
    print(f"\n{binding(collector)}: worker RSS {before} KiB, peak {peak} KiB during 6 x 24 MiB heads")
    assert len(results) == 6
    for sent, answer in results:
        assert sent < 24 << 20  # cut off long before the end
        assert status(answer) == 431
    assert peak - before < 16 * 1024
    assert status(exchange(collector, get_health(b"Connection: close\r\n"))[0]) == 200  # and it still serves


# -- time -------------------------------------------------------------------------------------------


def closed_after(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    start = time.monotonic()
    answer, closed = read_until_closed(sock, limit)
    assert closed, "still open"
    return answer, time.monotonic() - start


def test_a_silent_connection_is_closed_at_the_deadline(collector) -> None:
    """200 connections that send nothing are all closed about PIXEL_REQUEST_TIMEOUT after they opened
    (before: all still open after 12 s): with a 408 under uvicorn, without an answer under granian."""
    socks = [connect(collector) for _ in range(200)]
    opened = time.monotonic()
    try:
        deadline = opened + TIMEOUT + 2.5
        answers = [read_until_closed(s, deadline - time.monotonic()) for s in socks]
        elapsed = time.monotonic() - opened
    finally:
        for s in socks:
            s.close()
    assert all(closed for _, closed in answers)
    assert TIMEOUT - 0.2 <= elapsed <= TIMEOUT + 2.5
    for answer, _ in answers:
        if binding(collector) == "granian":
            assert answer == b""
        else:
            assert status(answer) == 408
            assert b"\r\nconnection: close\r\n" in answer


def trickle(sock: socket.socket, data: bytes, gap: float, stop: threading.Event) -> None:
    for i in range(len(data)):
        if stop.is_set():
            return
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return
        time.sleep(gap)


@pytest.mark.parametrize("part", ["head", "body"])
def test_a_slow_loris_cannot_stretch_the_deadline(collector, part) -> None:
    """One byte every 0.1 s keeps every read short, but the request as a whole is late: the connection is
    closed at the deadline (5/5 slow-loris connections were still open after 40 s before). A head: at
    PIXEL_REQUEST_TIMEOUT from its first byte. A body: the same under uvicorn (one deadline for head and
    body); under granian the body has its own PIXEL_REQUEST_TIMEOUT from the end of the head."""
    body = b'{"event_name":"pageview","page":{"url":"https://example.com/"}}' * 3
    head = b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    stop = threading.Event()
    with connect(collector) as sock:
        if part == "body":
            sock.sendall(head)
        data = head + body if part == "head" else body
        thread = threading.Thread(target=trickle, args=(sock, data, 0.1, stop))
        thread.start()
        try:
            answer, elapsed = closed_after(sock)
        finally:
            stop.set()
            thread.join()
    assert TIMEOUT - 0.2 <= elapsed <= TIMEOUT + 1.5
    if binding(collector) == "granian" and part == "head":
        assert answer == b""
    else:
        assert status(answer) == 408


def test_the_deadline_runs_from_a_requests_first_byte_not_from_the_last_answer(collector) -> None:
    """Keep-alive (5 s) outlasts the request timeout (1 s): an idle connection stays open past 1 s and serves
    the next request; a request started then and left unfinished gets its 408 1 s after its first byte. Under
    granian, hyper's header-read timeout is also its keep-alive: the idle connection is closed at 1 s."""
    with connect(collector) as sock:
        sock.sendall(get_health())
        answer, closed = read_until_closed(sock, 0.3)
        assert status(answer) == 200 and not closed
        answer, closed = read_until_closed(sock, 1.7)  # idle for 2 s in all
        if binding(collector) == "granian":
            assert (answer, closed) == (b"", True)
            return
        assert (answer, closed) == (b"", False)
        sock.sendall(get_health())
        answer, closed = read_until_closed(sock, 0.3)
        assert status(answer) == 200 and not closed
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        answer, elapsed = closed_after(sock, 5)
    assert status(answer) == 408
    assert TIMEOUT - 0.2 <= elapsed <= TIMEOUT + 0.5


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-asgi"])
def test_a_request_begun_behind_an_answer_is_not_idle(tmp_path, server) -> None:
    """Keep-alive 1 s, request timeout 3 s: a request whose start arrives with the one before it (one write) is
    under way once that one is answered, not idle: it gets its 408 at 3 s, not a silent close at 1 s."""
    proc = start(tmp_path, server, PIXEL_REQUEST_TIMEOUT="3", PIXEL_KEEP_ALIVE_TIMEOUT="1")
    try:
        body = b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(EVENT), EVENT)
        with connect(proc) as sock:
            sock.sendall(body + b"GET /health HTTP/1.1\r\n")
            answer, elapsed = closed_after(sock, 10)
        first, _, second = answer.partition(b"\r\n\r\n")
        assert status(first) in (204, 400)
        assert b"HTTP/1.1 408 " in second
        assert 2.8 <= elapsed <= 3.6
    finally:
        proc.stop()


def test_a_client_gone_before_its_body_is_whole_stores_nothing(collector) -> None:
    """A body that stops short of its Content-Length is not handled, even when what came is a valid event."""
    before = records(collector)
    with connect(collector) as sock:
        sock.sendall(
            b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(EVENT) + 5, EVENT)
        )
        time.sleep(0.3)
    time.sleep(0.5)
    assert records(collector) == before
    assert status(
        exchange(
            collector,
            b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b"
            % (len(EVENT), EVENT),
        )[0]
    ) in (204, 400)


# -- bodies -----------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_the_body(collector) -> None:
    """Content-Length: 100 MB and no body sent: 413 at once (before: only after reading all of it)."""
    with connect(collector) as sock:
        sock.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        answer, elapsed = closed_after(sock, 5)
    assert elapsed < TIMEOUT - 0.3  # not the deadline: at once
    assert status(answer) == 413
    assert answer.endswith(b'{"error":"body too large","detail":"the limit is 65536 bytes"}')
    # the same on a path that takes no body
    with connect(collector) as sock:
        sock.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        answer, elapsed = closed_after(sock, 5)
    assert elapsed < TIMEOUT - 0.3
    assert status(answer) == (200 if binding(collector) == "granian" else 413)


def test_a_chunked_body_is_413_as_soon_as_it_passes_the_limit(collector) -> None:
    """16 KiB chunks, the last chunk never sent: the answer comes once the fifth chunk passes 64 KiB."""
    with connect(collector) as sock:
        sock.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"4000\r\n" + b"a" * 0x4000 + b"\r\n"
        for _ in range(4):  # 64 KiB: at the limit, not past it
            sock.sendall(chunk)
        answer, closed = read_until_closed(sock, 0.3)
        assert answer == b"" and not closed
        sock.sendall(chunk)
        answer, elapsed = closed_after(sock, 5)
    assert elapsed < TIMEOUT - 0.3
    assert status(answer) == 413


def test_chunk_framing_and_trailers_are_bounded(collector) -> None:
    """A chunked body whose data is two bytes but whose trailers go on and on is refused once its raw bytes
    pass twice the body limit plus the head limit (144 KiB): the answer comes before 300 KiB were sent."""
    sent = 0
    answer = b""
    with connect(collector) as sock:
        sock.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
        while sent < 4 << 20 and not answer:
            lines = b"".join(b"X-T%d: %b\r\n" % (sent + i, b"a" * 100) for i in range(20))
            try:
                sock.sendall(lines)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(lines)
            sock.settimeout(0.001)
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                pass
        sock.settimeout(5)
        rest, closed = read_until_closed(sock, 5)
    answer += rest
    assert closed
    if binding(collector) == "granian":  # hyper reads trailers into its (16 KiB) head buffer
        assert sent < 300 * 1024
    else:
        assert sent < 300 * 1024
        assert status(answer) == 413


# -- connections ------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", BINDINGS)
def test_connections_past_the_cap(tmp_path, server) -> None:
    """PIXEL_MAX_CONNECTIONS=4 on one worker, 4 keep-alive connections held: under uvicorn a fifth is answered
    503 with Retry-After and closed; under granian it is not accepted until one of the four goes, then served.
    """
    proc = start(
        tmp_path, server, PIXEL_MAX_CONNECTIONS="4", PIXEL_REQUEST_TIMEOUT="30", PIXEL_KEEP_ALIVE_TIMEOUT="30"
    )
    held: list[socket.socket] = []
    try:
        for _ in range(4):
            sock = connect(proc)
            sock.sendall(get_health())
            answer, closed = read_until_closed(sock, 0.3)
            assert status(answer) == 200 and not closed
            held.append(sock)
        with connect(proc) as fifth:
            fifth.sendall(get_health(b"Connection: close\r\n"))
            answer, closed = read_until_closed(fifth, 1.0)
            if server == "granian":
                assert (answer, closed) == (b"", False)  # waiting in the backlog
                held.pop().close()
                answer, closed = read_until_closed(fifth, 5)
                assert status(answer) == 200 and closed
            else:
                assert status(answer) == 503 and closed
                assert b"\r\nretry-after: 5\r\n" in answer
        held.pop().close()
        time.sleep(0.2)
        answer, closed = exchange(proc, get_health(b"Connection: close\r\n"))
        assert status(answer) == 200  # room again
    finally:
        for sock in held:
            sock.close()
        proc.stop()


# -- request lines ----------------------------------------------------------------------------------

REFUSED_LINES = [
    ("HTTP/0.9 request line", b"GET /health\r\n\r\n"),
    ("HTTP/0.9 request line to the tracker", b"GET /track?e=eyJldmVudF9uYW1lIjoiYSJ9\r\n\r\n"),
    ("HTTP/0.9", b"GET /health HTTP/0.9\r\n\r\n"),
    ("HTTP/2.0", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n"),
    ("HTTP/1.2", b"GET /health HTTP/1.2\r\nHost: x\r\n\r\n"),
    ("HTTP/3.1", b"GET /health HTTP/3.1\r\nHost: x\r\n\r\n"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("unknown method", b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("WebDAV method", b"PROPFIND /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("TRACE", b"TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("CONNECT", b"CONNECT /track HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("lowercase method", b"get /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40),
]
EXPECTED = {  # uvicorn bindings (granian: 400 for every version, 501 for methods, a close for the rest)
    "HTTP/0.9 request line": 505,
    "HTTP/0.9 request line to the tracker": 505,
    "HTTP/0.9": 505,
    "HTTP/2.0": 505,
    "HTTP/1.2": 400,
    "HTTP/3.1": 400,
    "HTTP/2 preface": 400,
    "unknown method": 400,
    "WebDAV method": 501,
    "TRACE": 501,
    "CONNECT": 501,
    "lowercase method": 400,
    "garbage": 400,
}


@pytest.mark.parametrize(("case", "data"), REFUSED_LINES, ids=[c[0] for c in REFUSED_LINES])
def test_other_versions_and_methods_are_refused_and_closed(collector, case, data) -> None:
    """Never an HTTP/0.9 answer (a body without a status line), never a 2xx: an error status and a close."""
    before = records(collector)
    answer, closed = exchange(collector, data)
    assert closed
    if binding(collector) == "granian":
        assert answer == b"" or status(answer) in (400, 501)
    else:
        assert status(answer) == EXPECTED[case]
        assert b"\r\nconnection: close\r\n" in answer
    assert records(collector) == before


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS", b"PUT", b"SEARCH", b"M-SEARCH", b"X"]),
    path=st.sampled_from([b"/health", b"/track", b"/track?e=e30", b"*", b"http://x/health", b""]),
    version=st.sampled_from(
        [b"", b" HTTP/0.9", b" HTTP/1.0", b" HTTP/1.1", b" HTTP/2.0", b" HTTP/1.1x", b" http/1.1"]
    ),
    end=st.sampled_from([b"\r\n\r\n", b"\r\nHost: x\r\n\r\n", b"\n\n"]),
)
def test_any_request_line_gets_a_status_line_or_a_close(collector, method, path, version, end) -> None:
    """Whatever the request line, the answer starts with an HTTP/1.x status line (granian answers an HTTP/1.0
    request as HTTP/1.0), or there is none and the connection is closed; a request that is not HTTP/1.0 or 1.1
    never gets a 2xx, and its connection is closed."""
    answer, closed = exchange(collector, method + b" " + path + version + end, timeout=TIMEOUT + 3)
    assert closed or answer
    if answer:
        assert answer[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), answer[:100]
    if version not in (b" HTTP/1.0", b" HTTP/1.1"):
        assert closed
        assert answer[9:10] != b"2"


def test_settings_are_checked() -> None:
    from pixel.server.settings import Settings, SettingsError

    for env in (
        {"PIXEL_MAX_HEADER_BYTES": "4096"},
        {"PIXEL_REQUEST_TIMEOUT": "0"},
        {"PIXEL_MAX_CONNECTIONS": "0"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)
    s = Settings.from_env({})
    assert (s.max_header_bytes, s.request_timeout, s.max_connections) == (16384, 10.0, 2048)


# -- counted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", BINDINGS)
def test_refusals_are_counted_in_the_metrics(tmp_path, server) -> None:
    """A refusal the server binding answers itself (not through the core's `handle`) is counted under its
    code in pixel_collector_requests_total, like every answer of the core."""
    proc = start(tmp_path, server)
    try:
        sent = {501: 2}
        for _ in range(2):
            assert status(exchange(proc, b"PROPFIND /track HTTP/1.1\r\nHost: x\r\n\r\n")[0]) == 501
        with connect(proc) as sock:  # a body that never comes: 408 on every binding
            sock.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{")
            assert status(read_until_closed(sock)[0]) == 408
        sent[408] = 1
        if server != "granian":  # hyper answers these itself (431, 400 for other versions)
            assert status(exchange(proc, header_of(LIMIT + 1))[0]) == 431
            assert status(exchange(proc, b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n")[0]) == 505
            sent |= {431: 1, 505: 1}
        deadline = time.monotonic() + 5
        while True:
            values = parse_metrics(httpx.get(f"{proc.collector}/metrics").text)
            counted = {c: values.get(f'pixel_collector_requests_total{{code="{c}"}}') for c in sent}
            if counted == {c: float(n) for c, n in sent.items()} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert counted == {c: float(n) for c, n in sent.items()}
    finally:
        proc.stop()
