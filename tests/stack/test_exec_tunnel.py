"""Reaching a port that listens only on a container's own 127.0.0.1 (as the stack's API does on its
server) through a Docker engine over TCP + TLS: `ExecTunnel` relays each local connection through an
exec in the container, over the engine's mutual-TLS connection. A second, real dockerd with client
certificates (test_stack_remote's fixture) and a real HTTP server in a container."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from stack_helpers import PIXEL_BASE, free_port, unique_project
from test_stack_remote import tls_dockerd  # noqa: F401 - the real TLS dockerd fixture

from pixel.app.stack import image as images
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.errors import StackError
from pixel.app.stack.tunnel import ExecTunnel, LazyExecTunnel, exec_tunnel, stack_api_tunnel

# An HTTP/1.1 (keep-alive) server on the container's 127.0.0.1:8082 only: JSON on GET, /big is 1 MiB,
# POST answers its body reversed.
SERVER = """
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BIG = bytes(range(256)) * 4096
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _send(self, body, kind="application/json"):
        self.send_response(200); self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        self._send(BIG, "application/octet-stream") if self.path == "/big" else self._send(
            json.dumps({"status": "ok", "path": self.path}).encode())
    def do_POST(self):
        self._send(self.rfile.read(int(self.headers["Content-Length"]))[::-1], "application/octet-stream")
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", 8082), H).serve_forever()
"""
BIG = bytes(range(256)) * 4096


@pytest.fixture
def tls_engine(tls_dockerd, docker_client, tmp_path):  # noqa: F811
    good = tls_dockerd["good"]
    target = EngineTarget(
        url=tls_dockerd["url"], tls_ca=good / "ca.pem", tls_cert=good / "cert.pem", tls_key=good / "key.pem"
    )
    saved = tmp_path / "base.tar"
    images.save(docker_client, PIXEL_BASE, saved)  # no registry: the image travels over the TLS API
    client = connect(target)
    images.load(client, saved, PIXEL_BASE)
    saved.unlink()
    yield target, client
    client.close()


def test_exec_tunnel_over_tls_reaches_the_container_loopback(tls_engine):
    target, client = tls_engine
    project = unique_project("pxe")
    # listening before the stack runs (the app may start first): closed at once, then answered
    lazy = LazyExecTunnel(target, project).start(lazy=True)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{lazy.local_url}/health", timeout=10)
    container = client.containers.run(
        PIXEL_BASE,
        ["python3", "-c", SERVER],
        name=f"{project}-pixel-1",
        detach=True,
        init=True,
        labels={"io.pixel.stack": project},
        ports={"8082/tcp": ("127.0.0.1", None)},
    )
    try:
        deadline = time.monotonic() + 30
        while (
            b"ok"
            not in container.exec_run(
                [
                    "python3",
                    "-c",
                    "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8082/health').read())",
                ]
            ).output
        ):
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.3)
        assert httpx.get(f"{lazy.local_url}/health", timeout=20).json() == {"status": "ok", "path": "/health"}
        assert lazy.container == container.name
        lazy.stop()
        assert lazy.client is None
        with ExecTunnel(client, container.name, 8082) as tunnel:
            with httpx.Client(base_url=tunnel.local_url, timeout=20) as http:  # one keep-alive connection
                for _ in range(3):
                    assert http.get("/health").json() == {"status": "ok", "path": "/health"}
                assert http.post("/echo", content=b"pixel" * 2000).content == (b"pixel" * 2000)[::-1]
                assert http.get("/big").content == BIG
            assert tunnel.connections == 1
            with ThreadPoolExecutor(4) as pool:  # several connections at once, each its own exec
                answers = list(
                    pool.map(
                        lambda i: urllib.request.urlopen(f"{tunnel.local_url}/p{i}", timeout=20).read(),
                        range(8),
                    )
                )
            assert [json.loads(a) for a in answers] == [{"status": "ok", "path": f"/p{i}"} for i in range(8)]
            assert tunnel.connections == 9
            port = tunnel.local_port
        with pytest.raises(httpx.TransportError):  # stopped: nothing listens any more
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)

        # found by stack name (the container publishing the API port), the client closed with the tunnel
        own = connect(target)
        tunnel = stack_api_tunnel(target, project, "http://127.0.0.1:8082")
        try:
            assert isinstance(tunnel, ExecTunnel) and tunnel.container == container.name
            assert httpx.get(f"{tunnel.local_url}/x", timeout=20).json()["path"] == "/x"
        finally:
            tunnel.stop()
        own.close()
        with pytest.raises(StackError) as err:
            exec_tunnel(client, "no-such-stack")
        assert err.value.code == "no-container"
        assert err.value.problem == "No running container of the stack 'no-such-stack' serves port 8082."
        container.stop(timeout=2)
        with pytest.raises(StackError) as err:
            ExecTunnel(client, container.name, 8082).start()
        assert err.value.code == "not-running"
    finally:
        container.remove(force=True)


def test_unreachable_tls_engine_waits_only_when_offline_is_fine(tls_dockerd):  # noqa: F811
    good = tls_dockerd["good"]
    nowhere = EngineTarget(
        url=f"tcp://127.0.0.1:{free_port()}",
        tls_ca=good / "ca.pem",
        tls_cert=good / "cert.pem",
        tls_key=good / "key.pem",
    )
    with pytest.raises(StackError) as err:
        stack_api_tunnel(nowhere, "pixel", "http://127.0.0.1:8082")
    assert err.value.code == "engine-unreachable"
    tunnel = stack_api_tunnel(nowhere, "pixel", "http://127.0.0.1:8082", offline_ok=True)
    try:  # listening; each request fails at once as "unreachable" (the app shows its cache)
        assert isinstance(tunnel, LazyExecTunnel)
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{tunnel.local_url}/health", timeout=10)
        assert time.monotonic() - started < 5
    finally:
        tunnel.stop()
    # certificates that do not match are said at once, offline or not: waiting would not fix them
    evil = tls_dockerd["evil"]
    wrong = EngineTarget(
        url=tls_dockerd["url"], tls_ca=evil / "ca.pem", tls_cert=good / "cert.pem", tls_key=good / "key.pem"
    )
    with pytest.raises(StackError) as err:
        stack_api_tunnel(wrong, "pixel", "http://127.0.0.1:8082", offline_ok=True)
    assert err.value.code == "tls-rejected"
