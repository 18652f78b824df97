"""The workers' Unix sockets (server/collector/unix_socket.py): a real `pixel collect` serves on
`collector-<n>.sock` beside TCP; forwarded headers count on the sockets without any trusted proxy, and the same
headers over TCP from an untrusted address still do not."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from pixel.server.collector.core import Collector
from pixel.server.collector.unix_socket import (
    UNIX_PEER,
    SocketPathError,
    socket_path,
    unix_listener,
)
from pixel.server.settings import Settings, SettingsError

EVENT = {"event_name": "pageview", "page": {"url": "https://example.com/"}}
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "CF-IPCountry": "DE"}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a Unix socket's path is limited to 107 bytes, tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="px-uds-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def record_of(data_dir: Path, user_agent: str) -> list[bytes]:
    """The spool record sent with `user_agent` (each worker writes its own segment: no order across them)."""
    lines = b"\n".join(p.read_bytes() for p in (data_dir / "spool").iterdir()).splitlines()
    (found,) = [
        f for f in (line.split(b"\t") for line in lines) if len(f) > 2 and f[2] == user_agent.encode()
    ]
    return found


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-asgi"])
def test_each_worker_serves_its_unix_socket_and_believes_the_forwarded_address_there(
    pixel_factory, tmp_path: Path, short_dir: Path, server: str
) -> None:
    sockets = short_dir / "upstream"
    proc = pixel_factory(
        "collect",
        data_dir=tmp_path / "data",
        pixel_server=server,
        pixel_upstream_socket_dir=str(sockets),
        pixel_cdn_geo_headers="1",
    )
    # (`wait` covers TCP; both workers' sockets may come a moment later)
    for n in (1, 2):
        path = socket_path(sockets, n)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path), retries=20)) as client:
            r = client.post(
                "http://collector/track", json=EVENT, headers={**FORWARDED, "User-Agent": f"socket {n}"}
            )
            assert r.status_code == 204, r.text
            record = record_of(tmp_path / "data", f"socket {n}")
            assert record[1] == b"203.0.113.9"  # the edge's X-Forwarded-For, believed on the socket
            assert record[5] == b"DE"  # and the CDN country the edge let through
            echo = client.get("http://collector/track?echo=1", headers=FORWARDED).json()
            assert echo == {
                "client_ip": "203.0.113.9",
                "forwarded": True,
                "proxy_trusted": True,
                "proxy": None,
            }
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
    # the same headers over TCP, from 127.0.0.1 which is not a trusted proxy: not believed
    r = httpx.post(f"{proc.collector}/track", json=EVENT, headers={**FORWARDED, "User-Agent": "tcp"})
    assert r.status_code == 204
    record = record_of(tmp_path / "data", "tcp")
    assert record[1] == b"127.0.0.1" and record[5] == b""


def test_without_the_setting_no_socket_is_made(pixel_factory, tmp_path: Path) -> None:
    proc = pixel_factory("collect", data_dir=tmp_path / "data")
    assert httpx.post(f"{proc.collector}/track", json=EVENT).status_code == 204
    assert not list((tmp_path / "data").rglob("*.sock"))


def test_a_stale_socket_is_replaced_and_a_file_is_not(short_dir: Path) -> None:
    path = socket_path(short_dir, 1)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, as after a crash
    sock = unix_listener(path)
    try:
        sock.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # the new socket, not a refused stale one
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
    finally:
        sock.close()
    other = short_dir / "collector-2.sock"
    other.write_text("not a socket")
    with pytest.raises(SocketPathError, match="is not a socket"):
        unix_listener(other)
    assert other.read_text() == "not a socket"  # left alone


def test_a_folder_that_cannot_be_made_is_an_error_naming_the_setting(short_dir: Path) -> None:
    blocker = short_dir / "file"
    blocker.write_text("")
    with pytest.raises(SocketPathError, match="PIXEL_UPSTREAM_SOCKET_DIR"):
        unix_listener(socket_path(blocker / "sub", 1))


# -- the rule in the collector itself (no server): who is believed -----------------------------------------


def echo(settings: Settings, peer: str) -> dict:
    c = Collector(settings)
    c.start()
    try:
        headers = {k.lower().encode(): v.encode() for k, v in FORWARDED.items()}
        r = c.handle("GET", "/track", "echo=1", headers, peer, b"", False)
        return orjson.loads(r.body)
    finally:
        c.stop()


@pytest.mark.parametrize(
    ("socket_dir", "trusted", "peer", "client_ip", "proxy_trusted", "proxy"),
    [
        ("s", "", UNIX_PEER, "203.0.113.9", True, None),  # on the socket: believed without any trusted range
        ("s", "", "127.0.0.1", "127.0.0.1", False, "127.0.0.1"),  # over TCP the socket changes nothing
        ("s", "10.0.0.0/8", "10.1.2.3", "203.0.113.9", True, "10.1.2.3"),  # a trusted range still counts
        ("", "", UNIX_PEER, UNIX_PEER, False, None),  # no sockets: that peer is nobody (not an address)
        ("", "10.0.0.0/8", UNIX_PEER, UNIX_PEER, False, None),
    ],
)
def test_who_is_believed(
    tmp_path: Path,
    socket_dir: str,
    trusted: str,
    peer: str,
    client_ip: str,
    proxy_trusted: bool,
    proxy: str | None,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        trusted_proxies=trusted,
        upstream_socket_dir=os.fspath(tmp_path / socket_dir) if socket_dir else "",
    )
    got = echo(settings, peer)
    assert got == {"client_ip": client_ip, "forwarded": True, "proxy_trusted": proxy_trusted, "proxy": proxy}


def test_granian_with_the_sockets_is_a_setting_error() -> None:
    env = {"PIXEL_SERVER": "granian", "PIXEL_UPSTREAM_SOCKET_DIR": "/run/x"}
    with pytest.raises(SettingsError, match="PIXEL_UPSTREAM_SOCKET_DIR needs the uvicorn collector"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "PIXEL_SERVER": "uvicorn"}).upstream_socket_dir == "/run/x"


# -- a worker down: its socket still takes connections (processes.upstream_listeners) ------------------------


def socket_inode(path: Path) -> str:
    """The inode of the listening Unix socket bound at `path` (/proc/net/unix).

    The connections a listener accepted are listed under its path too; only the listener has the accepting
    flag (__SO_ACCEPTCON), so that is the one looked for."""
    listening = f"{0x10000:08X}"
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[7] == str(path) and fields[3] == listening:
            return fields[6]
    raise AssertionError(f"no socket listening at {path}")


def holders(parent: int, path: Path) -> list[int]:
    """The child processes of `parent` that hold the socket at `path` open."""
    target = f"socket:[{socket_inode(path)}]"
    # (each thread's own children: a worker started again was started by its supervisor's thread)
    children = [
        c for t in Path(f"/proc/{parent}/task").iterdir() for c in (t / "children").read_text().split()
    ]
    found = []
    for pid in map(int, children):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the process is gone meanwhile
        links = []
        for fd in fds:
            try:
                links.append(os.readlink(fd))
            except (FileNotFoundError, ProcessLookupError):
                continue  # this descriptor was closed meanwhile (a connection just answered), not the process
        if target in links:
            found.append(pid)
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # reaped: before the open, or between it and the read
        return True


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-asgi"])
def test_a_killed_workers_socket_keeps_taking_requests_until_its_replacement_serves_them(
    pixel_factory, tmp_path: Path, short_dir: Path, server: str
) -> None:
    """The edge reaches worker n on collector-n.sock only. Worker 1 is killed (SIGKILL, no clean-up): the
    requests sent to its socket while it is dead and while it starts again are not refused; each waits and is
    answered 204 by the new worker 1, and each event is in the spool once."""
    sockets = short_dir / "upstream"
    proc = pixel_factory(
        "collect", data_dir=tmp_path / "data", pixel_server=server, pixel_upstream_socket_dir=str(sockets)
    )
    path = socket_path(sockets, 1)
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path), retries=20)) as client:
        assert client.post("http://collector/track", json=EVENT).status_code == 204
    [worker] = holders(proc.proc.pid, path)  # the parent holds it too; of its children, worker 1 only
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(worker):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    agents = [f"while down {i}" for i in range(12)]
    answers = []
    first_sent = time.monotonic()
    for agent in agents:
        # a new connection each time and no retries: a refused connection would fail the request
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path), retries=0), timeout=30) as client:
            r = client.post("http://collector/track", json=EVENT, headers={"User-Agent": agent})
            answers.append(r.status_code)
    assert answers == [204] * len(agents)
    assert time.monotonic() - first_sent > 0.4  # the first one waited for the replacement (0.5 s backoff)
    [replacement] = holders(proc.proc.pid, path)
    assert replacement != worker
    for agent in agents:
        assert len(record_of(tmp_path / "data", agent)) > 2  # exactly one record each (record_of checks)


def test_a_worker_stopped_alone_is_not_waited_for(pixel_factory, tmp_path: Path, short_dir: Path) -> None:
    """A worker that exits by SIGTERM alone is a requested stop: it is not started again, so its socket must
    refuse connections (the edge then uses the other worker) rather than hold them for nobody."""
    sockets = short_dir / "upstream"
    proc = pixel_factory("collect", data_dir=tmp_path / "data", pixel_upstream_socket_dir=str(sockets))
    path = socket_path(sockets, 2)
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path), retries=20)) as client:
        assert client.post("http://collector/track", json=EVENT).status_code == 204
    [worker] = holders(proc.proc.pid, path)
    os.kill(worker, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                break
        assert time.monotonic() < deadline, "the stopped worker's socket still takes connections"
        time.sleep(0.1)
    # worker 1 still serves its own socket
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path(sockets, 1)))) as client:
        assert client.post("http://collector/track", json=EVENT).status_code == 204


def test_the_supervising_process_makes_one_listening_socket_per_worker(short_dir: Path) -> None:
    from pixel.server.processes import StartupError, upstream_listeners

    made = upstream_listeners(
        Settings(data_dir=short_dir, workers=2, upstream_socket_dir=str(short_dir / "u"))
    )
    try:
        assert [s.getsockname() if s else None for s in made] == [
            str(socket_path(short_dir / "u", n)) for n in (1, 2)
        ]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(socket_path(short_dir / "u", 2)))  # listening, with nobody accepting yet
    finally:
        for s in made:
            assert s is not None
            s.close()
    assert upstream_listeners(Settings(data_dir=short_dir, workers=3)) == [None, None, None]
    blocker = short_dir / "file"
    blocker.write_text("")
    with pytest.raises(StartupError, match="PIXEL_UPSTREAM_SOCKET_DIR"):
        upstream_listeners(Settings(data_dir=short_dir, workers=2, upstream_socket_dir=str(blocker / "sub")))
