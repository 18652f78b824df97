"""The private members of uvicorn and docker-py that Pixel's code relies on still exist and still mean the same.

Contract: an upgrade of uvicorn or docker-py that removes or renames one of them fails here, with a message
naming the installed version, the member and the Pixel file that depends on it — not later as an
AttributeError on a client's connection or in the desktop app. The dependents:

- `server/collector/limits.py` (`GuardedProtocol`) and `server/collector/fastpath.py` (`TrackProtocol`)
  subclass uvicorn's `HttpToolsProtocol`: they override its parser and server callbacks, re-implement its
  `on_response_complete` with their own timer, and read its per-connection and per-request state (the
  transport, flow control, the request-response cycle, the pipeline, the server state).
- `app/stack/engine.py` mounts its own SSH adapter on a docker-py `APIClient` the way docker-py mounts its own
  (`_custom_adapter`), asks the engine's version with `_retrieve_server_version` and sets `_version`; its
  `_AppSSHAdapter` overrides `SSHHTTPAdapter._create_paramiko_client` and fills `ssh_client`/`ssh_params`.
- `app/stack/tunnel/relay.py` takes the socket out of the stdlib `socket.SocketIO` that docker-py's
  `exec_start(socket=True)` returns (`_sock`).

Everything here runs the real libraries on a local socket pair; nothing reaches a network.
"""

from __future__ import annotations

import asyncio
import http
import socket
from collections import deque
from typing import Any

import docker
import pytest
import uvicorn
from docker.transport.sshconn import SSHHTTPAdapter
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

COLLECTOR = "server/collector/limits.py and server/collector/fastpath.py"
ENGINE = "app/stack/engine.py"


def _missing(lib: str, version: str, owner: str, member: str, dependent: str) -> str:
    return f"{lib} {version}: {owner} has no {member!r}, used by {dependent} (see this test's docstring)"


def _uv(owner: str, member: str) -> str:
    return _missing("uvicorn", uvicorn.__version__, owner, member, COLLECTOR)


# -- uvicorn ------------------------------------------------------------------------------------------

# Methods of HttpToolsProtocol the subclasses override (and so expect uvicorn to call) or call themselves.
PROTOCOL_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "on_response_complete",
    "_unset_keepalive_if_required",
    "_start_asgi_task",
    "shutdown",
    "resume_writing",
)


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_uvicorn_protocol_methods(name: str) -> None:
    assert callable(getattr(HttpToolsProtocol, name, None)), _uv("HttpToolsProtocol", name)


def test_uvicorn_status_lines() -> None:
    """The answers Pixel writes itself start with uvicorn's own status lines (the same bytes as its ASGI path)."""
    for status in (200, 204, 400, 404, 405, 408, 413, 431, 500, 501, 503, 505):
        phrase = http.HTTPStatus(status).phrase
        assert STATUS_LINE.get(status) == f"HTTP/1.1 {status} {phrase}\r\n".encode(), _uv(
            "STATUS_LINE", status
        )


async def _one_request() -> tuple[HttpToolsProtocol, bytes, dict[str, Any]]:
    """A real HttpToolsProtocol on a socket pair answers one keep-alive request through an ASGI app; the
    protocol's state is read while the app runs and after the answer."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        proto = seen["protocol"]
        seen["during"] = {name: getattr(proto, name, AttributeError) for name in ("url", "headers", "scope")}
        seen["cycle"], seen["parser"] = proto.cycle, proto.parser
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = uvicorn.Config(app, http="httptools", lifespan="off", log_level="warning", date_header=False)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)

    def factory() -> HttpToolsProtocol:
        proto = HttpToolsProtocol(config=config, server_state=state, app_state={}, _loop=loop)
        seen["protocol"] = proto
        return proto

    transport, proto = await loop.connect_accepted_socket(factory, sock=ours)
    try:
        seen["registered"] = proto in state.connections
        await loop.sock_sendall(theirs, b"POST /track?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = await asyncio.wait_for(loop.sock_recv(theirs, 4096), 5)
            assert chunk, "the connection closed before the answer"
            answer += chunk
        for _ in range(100):  # the answer's last write and on_response_complete run in the same step
            if state.total_requests:
                break
            await asyncio.sleep(0.01)
        return proto, answer, seen
    finally:
        transport.close()
        theirs.close()


def test_uvicorn_protocol_state() -> None:
    proto, answer, seen = asyncio.run(_one_request())
    assert answer.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert seen["registered"], _uv("HttpToolsProtocol", "connections (the server state's set of connections)")
    # set up by __init__ and connection_made
    for name in ("app", "loop", "config", "timeout_keep_alive", "connections", "server_state"):
        assert hasattr(proto, name), _uv("HttpToolsProtocol", name)
    assert isinstance(proto.timeout_keep_alive, (int, float)), _uv("HttpToolsProtocol", "timeout_keep_alive")
    assert isinstance(proto.pipeline, deque), _uv("HttpToolsProtocol", "pipeline")
    assert isinstance(proto.flow, FlowControl), _uv("HttpToolsProtocol", "flow")
    assert isinstance(proto.transport, asyncio.Transport), _uv("HttpToolsProtocol", "transport")
    assert isinstance(proto.client, tuple) or proto.client is None, _uv("HttpToolsProtocol", "client")
    # the per-request state the parser callbacks fill, as the subclasses read it
    during = seen["during"]
    assert during["url"] == b"/track?x=1", _uv("HttpToolsProtocol", "url")
    assert (b"content-length", b"2") in during["headers"], _uv("HttpToolsProtocol", "headers (lower-cased)")
    assert isinstance(during["scope"], dict), _uv("HttpToolsProtocol", "scope")
    assert hasattr(proto, "expect_100_continue"), _uv("HttpToolsProtocol", "expect_100_continue")
    for name in ("get_method", "get_http_version", "should_keep_alive", "should_upgrade"):
        assert callable(getattr(seen["parser"], name, None)), _uv("httptools' parser", name)
    # the server state
    assert proto.server_state.total_requests == 1, _uv("ServerState", "total_requests")
    assert isinstance(proto.server_state.default_headers, list), _uv("ServerState", "default_headers")
    # the request-response cycle
    cycle = seen["cycle"]
    assert isinstance(cycle, RequestResponseCycle), _uv("HttpToolsProtocol", "cycle")
    assert cycle.response_started and cycle.response_complete, _uv("RequestResponseCycle", "response_*")
    assert cycle.more_body is False, _uv("RequestResponseCycle", "more_body")
    assert cycle.disconnected is False, _uv("RequestResponseCycle", "disconnected")
    assert isinstance(cycle.message_event, asyncio.Event), _uv("RequestResponseCycle", "message_event")
    # flow control
    for name in ("pause_reading", "resume_reading"):
        assert callable(getattr(proto.flow, name, None)), _uv("FlowControl", name)
    assert proto.flow.write_paused is False, _uv("FlowControl", "write_paused")


# -- docker-py ----------------------------------------------------------------------------------------


def _dk(owner: str, member: str, dependent: str = ENGINE) -> str:
    return _missing("docker-py", docker.__version__, owner, member, dependent)


def _placeholder_api() -> docker.APIClient:
    """As engine._ssh_client builds it: a placeholder address and a given version make no request."""
    return docker.APIClient(base_url="unix:///nonexistent", version="1.41", timeout=5)


def test_docker_api_client_version_members() -> None:
    api = _placeholder_api()
    assert callable(getattr(api, "_retrieve_server_version", None)), _dk(
        "APIClient", "_retrieve_server_version"
    )
    assert getattr(api, "_version", None) == "1.41", _dk("APIClient", "_version")
    api._version = "1.44"  # what engine.connect does with the engine's answer
    assert api.api_version == "1.44", _dk("APIClient", "_version (read by api_version)")
    assert api._url("/containers/json") == "http+docker://localhost/v1.44/containers/json", _dk(
        "APIClient", "_version (read by _url)"
    )


def test_docker_api_client_custom_adapter() -> None:
    """engine._ssh_client sets `_custom_adapter` and mounts it: docker-py hands it out for its own scheme."""
    api = _placeholder_api()
    assert hasattr(api, "_custom_adapter"), _dk("APIClient", "_custom_adapter")
    adapter = api._custom_adapter
    assert api.get_adapter("http+docker://localhost/v1.41/_ping") is adapter, _dk(
        "APIClient", "_custom_adapter (returned by get_adapter)"
    )
    api.close()


def test_docker_ssh_adapter_hooks() -> None:
    """SSHHTTPAdapter calls `_create_paramiko_client(base_url)` then connects with `ssh_client`/`ssh_params`:
    engine._AppSSHAdapter overrides the first to use Pixel's key and known_hosts."""
    calls: list[tuple[str, Any]] = []

    class Client:  # stands in for paramiko's SSHClient: no network
        def connect(self, **params: Any) -> None:
            calls.append(("connect", params))

        def close(self) -> None:
            pass

    class Probe(SSHHTTPAdapter):
        def _create_paramiko_client(self, base_url: str) -> None:
            calls.append(("create", base_url))
            self.ssh_client = Client()
            self.ssh_params = {"hostname": "h", "port": 2222}

    assert callable(getattr(SSHHTTPAdapter, "_create_paramiko_client", None)), _dk(
        "SSHHTTPAdapter", "_create_paramiko_client"
    )
    Probe("ssh://u@h:2222", timeout=5, pool_connections=9, max_pool_size=9, shell_out=False)
    assert calls == [("create", "ssh://u@h:2222"), ("connect", {"hostname": "h", "port": 2222})], _dk(
        "SSHHTTPAdapter", "_create_paramiko_client / ssh_client / ssh_params"
    )
    assert {"ssh_client", "ssh_params"} <= set(SSHHTTPAdapter.__attrs__), _dk("SSHHTTPAdapter", "__attrs__")


def test_socketio_sock() -> None:
    """tunnel._forward unwraps the SocketIO docker-py's exec_start(socket=True) returns on a unix engine."""
    a, b = socket.socketpair()
    try:
        raw = socket.SocketIO(a, "rwb")
        assert getattr(raw, "_sock", None) is a, _missing(
            "Python", "stdlib", "socket.SocketIO", "_sock", "app/stack/tunnel/relay.py"
        )
    finally:
        a.close()
        b.close()
