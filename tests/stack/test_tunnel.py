"""The SSH port forward to a remote stack's API: a real sshd on 127.0.0.1 (test_stack_remote's fixture)
and a real HTTP server standing in for the API on the "remote" 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import paramiko
import pytest
from stack_helpers import free_port
from test_stack_remote import sshd  # noqa: F401 - the real sshd fixture

from pixel.app.stack.engine import EngineTarget, fetch_host_key, trust_host_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.tunnel import SSHTunnel, api_tunnel

BIG = bytes(range(256)) * 4096  # 1 MiB: many SSH window adjustments and channel packets


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API client uses it

    def do_GET(self) -> None:
        if self.path == "/big":
            body, kind = BIG, "application/octet-stream"
        else:
            body = json.dumps(
                {"status": "ok", "path": self.path, "server_port": self.server.server_port}
            ).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def trusted(sshd) -> EngineTarget:  # noqa: F811
    trust_host_key(sshd["known_hosts"], fetch_host_key(sshd["url"]))
    return EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=sshd["known_hosts"])


def _direct(port: int, path: str = "/health") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read()


def test_health_through_the_tunnel_sequential_and_concurrent(trusted, api_server):
    port = api_server.server_port
    expected = _direct(port)
    assert json.loads(expected) == {"status": "ok", "path": "/health", "server_port": port}
    with SSHTunnel(trusted, port) as tunnel:
        assert tunnel.local_port != port
        assert tunnel.local_url == f"http://127.0.0.1:{tunnel.local_port}"
        # one keep-alive connection, several requests in a row
        with httpx.Client(base_url=tunnel.local_url, timeout=10) as client:
            for _ in range(5):
                r = client.get("/health")
                assert (r.status_code, r.content) == (200, expected)
            r = client.post("/echo", content=b"pixel" * 1000)
            assert r.content == (b"pixel" * 1000)[::-1]
        # a fresh connection per request, one after the other
        for _ in range(5):
            assert _direct(tunnel.local_port) == expected
        # many at once, each on its own connection
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _i: _direct(tunnel.local_port), range(24)))
        assert answers == [expected] * 24
        with ThreadPoolExecutor(4) as pool:
            bigs = list(pool.map(lambda _i: _direct(tunnel.local_port, "/big"), range(4)))
        assert bigs == [BIG] * 4


def test_stop_closes_the_listening_socket_and_open_connections(trusted, api_server):
    tunnel = SSHTunnel(trusted, api_server.server_port).start()
    port = tunnel.local_port
    held = socket.create_connection(("127.0.0.1", port), timeout=5)
    held.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    held.settimeout(5)
    answer = b""
    while not answer.endswith(b"}"):
        answer += held.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    tunnel.stop()  # the keep-alive connection is still open: stop() closes it too
    assert held.recv(65536) == b""
    held.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    with pytest.raises(RuntimeError, match="not started"):
        _ = tunnel.local_url
    tunnel.stop()  # twice is harmless


def test_unknown_host_key_is_refused_and_nothing_is_trusted(sshd, api_server):  # noqa: F811
    target = EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=sshd["known_hosts"])
    tunnel = SSHTunnel(target, api_server.server_port)
    with pytest.raises(StackError) as err:
        tunnel.start()
    assert err.value.code == "host-key-unknown"
    assert "not trusted yet" in err.value.problem
    assert not sshd["known_hosts"].exists()  # never auto-added
    with pytest.raises(RuntimeError, match="not started"):
        _ = tunnel.local_port


def test_changed_host_key_and_refused_client_key(sshd, api_server):  # noqa: F811
    known = sshd["known_hosts"]
    port = int(sshd["url"].rsplit(":", 1)[1])
    known.parent.mkdir(parents=True)
    keys = paramiko.HostKeys()
    keys.add(
        f"[127.0.0.1]:{port}",
        "ssh-ed25519",
        paramiko.Ed25519Key.from_private_key_file(str(sshd["other_key"])),
    )
    keys.save(str(known))
    with pytest.raises(StackError) as err:
        SSHTunnel(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=known), 80).start()
    assert err.value.code == "host-key-changed"
    assert "CHANGED" in err.value.problem

    trust_host_key(known, fetch_host_key(sshd["url"]))
    with pytest.raises(StackError) as err:
        SSHTunnel(EngineTarget(url=sshd["url"], ssh_key=sshd["other_key"], known_hosts=known), 80).start()
    assert err.value.code == "ssh-key-refused"


def test_nothing_listening_remotely_then_reconnect_after_the_link_drops(trusted, api_server):
    with SSHTunnel(trusted, free_port()) as dead:  # the remote port has no server
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _direct(dead.local_port)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{dead.local_url}/health", timeout=5)
    expected = _direct(api_server.server_port)
    with SSHTunnel(trusted, api_server.server_port) as tunnel:
        assert _direct(tunnel.local_port) == expected
        tunnel._ssh.get_transport().close()  # the SSH link drops (server restarted, network gone)
        assert _direct(tunnel.local_port) == expected  # the next connection logs in again


def test_api_tunnel_uses_the_port_of_the_api_url(trusted, api_server):
    port = api_server.server_port
    tunnel = api_tunnel(trusted, f"http://127.0.0.1:{port}")
    try:
        assert httpx.get(f"{tunnel.local_url}/health", timeout=10).json()["server_port"] == port
    finally:
        tunnel.stop()
    with pytest.raises(StackError) as err:
        api_tunnel(trusted, "127.0.0.1")
    assert err.value.code == "bad-api-url"
    with pytest.raises(StackError) as err:
        SSHTunnel(EngineTarget(), port)
    assert err.value.code == "not-ssh"


def test_offline_ok_listens_and_logs_in_on_demand(trusted, api_server, sshd):  # noqa: F811
    nowhere = EngineTarget(
        url=f"ssh://pixel@127.0.0.1:{free_port()}", ssh_key=sshd["key"], known_hosts=sshd["known_hosts"]
    )
    with pytest.raises(StackError) as err:
        api_tunnel(nowhere, "http://127.0.0.1:8082")
    assert err.value.code == "ssh-unreachable"
    offline = api_tunnel(nowhere, "http://127.0.0.1:8082", offline_ok=True)
    try:  # the host is down: each request fails at once, as "unreachable" (the app shows its cache)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{offline.local_url}/health", timeout=5)
    finally:
        offline.stop()
    # host-key problems are never deferred
    untrusted = EngineTarget(
        url=sshd["url"], ssh_key=sshd["key"], known_hosts=sshd["known_hosts"].with_name("x")
    )
    with pytest.raises(StackError) as err:
        api_tunnel(untrusted, "http://127.0.0.1:8082", offline_ok=True)
    assert err.value.code == "host-key-unknown"
    # lazy start: the login happens on the first request, which is answered
    with SSHTunnel(trusted, api_server.server_port).start(lazy=True) as tunnel:
        assert tunnel._ssh is None
        assert _direct(tunnel.local_port) == _direct(api_server.server_port)
