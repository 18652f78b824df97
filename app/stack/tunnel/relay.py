"""`ExecTunnel`: 127.0.0.1:<local port> here forwarded to a port inside a container, through the Docker
engine's own connection (an exec running a small relay per forwarded connection, as `kubectl port-forward`
does), for an engine reached over TCP + TLS. `LazyExecTunnel` listens before the engine can be reached
(the app starts offline) and connects on a forwarded connection.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct

import docker
import requests

from ..engine import EngineTarget, connect
from ..errors import StackError
from ..spec import API_PORT, LABEL_STACK
from .forward import CHUNK, PortForward

# Runs inside the container (python3 is in the Pixel image): connects to the port on the container's
# own 127.0.0.1 and relays bytes between it and the exec's stdin/stdout.
_RELAY = (
    "import os, socket, sys, threading\n"
    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
    "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
    "def up():\n"
    "    while True:\n"
    "        d = os.read(0, 65536)\n"
    "        if not d: break\n"
    "        s.sendall(d)\n"
    "    s.shutdown(socket.SHUT_WR)\n"
    "threading.Thread(target=up, daemon=True).start()\n"
    "out = sys.stdout.buffer\n"
    "while True:\n"
    "    d = s.recv(65536)\n"
    "    if not d: break\n"
    "    out.write(d); out.flush()\n"
)


class ExecTunnel(PortForward):
    """Forward 127.0.0.1:<local_port> here to <port> inside a container, through the Docker engine's own
    connection (an exec running a small relay per forwarded connection, as `kubectl port-forward` does).

    For an engine reached over TCP + TLS: the API stays on the server's loopback (no port opened to the
    network, no second set of credentials); the engine's mutual TLS protects the traffic. Each new
    connection costs an exec (a process start in the container); the API client keeps its connection alive."""

    def __init__(
        self, client: docker.DockerClient, container: str, port: int, *, close_client: bool = False
    ) -> None:
        self._setup(client, container, port, close_client)

    def _setup(
        self, client: docker.DockerClient | None, container: str, port: int, close_client: bool
    ) -> None:
        if not 0 < port < 65536:
            raise StackError(f"{port} is not a port number (1-65535).", code="bad-port")
        PortForward.__init__(self)
        # None only in a `LazyExecTunnel` not connected yet (it overrides `_endpoint` and `_logout`).
        self.client = client
        self.container = container
        self.port = port
        self.remote = (container, port)
        self._close_client = close_client  # the tunnel owns the client: closed with it

    def _logout(self) -> None:
        if self._close_client and self.client is not None:
            self.client.close()

    def _login(self) -> None:
        try:
            client, container = self._endpoint()
            state = client.api.inspect_container(container)["State"]
        except docker.errors.NotFound:
            raise StackError(
                f"The container {self.container} does not exist on this engine.",
                "Install the stack again, or choose the right stack.",
                code="no-container",
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StackError(f"The Docker engine did not answer: {exc}", code="engine-unreachable") from None
        if not state.get("Running"):
            raise StackError(f"The container {self.container} is not running.", code="not-running")

    def _endpoint(self) -> tuple[docker.DockerClient, str]:
        assert self.client is not None  # given to __init__
        return self.client, self.container

    def _forward(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            client, container = self._endpoint()
            exec_id = client.api.exec_create(
                container, ["python3", "-c", _RELAY, str(self.port)], stdin=True
            )["Id"]
            raw = client.api.exec_start(exec_id, socket=True)
        except (StackError, docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return  # the API client sees a closed connection: "unreachable"
        sock = getattr(raw, "_sock", raw)  # unix: SocketIO around the socket; TLS: the SSL socket
        try:
            if isinstance(sock, socket.socket):  # always (docker-py's stub also names file-like wrappers)
                self._pump(conn, sock)
        finally:
            for thing in (raw, sock):
                with contextlib.suppress(OSError, AttributeError):
                    thing.close()

    def _pump(self, conn: socket.socket, sock: socket.socket) -> None:
        """Local bytes go to the exec's stdin as they are; what comes back is the engine's multiplexed
        stream (8-byte header: stream, 0, 0, 0, length big-endian), of which stdout goes to the client."""
        sel = selectors.DefaultSelector()
        sel.register(conn, selectors.EVENT_READ, "local")
        sel.register(sock, selectors.EVENT_READ, "remote")
        pending = b""
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    if key.data == "local":
                        data = conn.recv(CHUNK)
                        if not data:
                            return  # the client closed (HTTP clients never half-close mid-request)
                        sock.sendall(data)
                        continue
                    data = sock.recv(CHUNK)
                    while isinstance(sock, ssl.SSLSocket) and sock.pending():  # select cannot see these
                        data += sock.recv(sock.pending())
                    if not data:
                        return  # the relay ended: the server closed
                    pending += data
                    while len(pending) >= 8:
                        stream, size = pending[0], struct.unpack(">I", pending[4:8])[0]
                        if len(pending) < 8 + size:
                            break
                        if stream == 1:
                            conn.sendall(pending[8 : 8 + size])
                        pending = pending[8 + size :]
        except OSError:
            return
        finally:
            sel.close()


def _serving_container(client: docker.DockerClient, project: str, port: int) -> str:
    """The running container of stack `project` that serves `port` (the API), or a `StackError`."""
    for c in client.containers.list(filters={"label": f"{LABEL_STACK}={project}"}):
        if f"{port}/tcp" in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}):
            return c.name or c.short_id  # a listed container has its name
    raise StackError(
        f"No running container of the stack {project!r} serves port {port}.",
        "Start the stack (Stack page), then try again.",
        code="no-container",
    )


def exec_tunnel(
    client: docker.DockerClient, project: str, port: int = API_PORT, *, close_client: bool = False
) -> ExecTunnel:
    """A started `ExecTunnel` to `port` in the container of stack `project` that serves it (the API)."""
    try:
        container = _serving_container(client, project, port)
    except StackError:
        if close_client:
            client.close()
        raise
    tunnel = ExecTunnel(client, container, port, close_client=close_client)
    tunnel.start()
    return tunnel


class LazyExecTunnel(ExecTunnel):
    """An `ExecTunnel` for when the engine cannot be reached yet (the app starts offline): it listens at
    once and connects to the engine, and finds the stack's container, on a forwarded connection; while
    it cannot, each connection is closed at once ("unreachable": the dashboard serves its cache)."""

    def __init__(self, target: EngineTarget, project: str, port: int = API_PORT) -> None:
        self._setup(None, "", port, close_client=True)
        self.target = target
        self.project = project

    def _endpoint(self) -> tuple[docker.DockerClient, str]:
        with self._lock:
            if self.client is None:
                self.client = connect(self.target)
            client = self.client
        try:
            self.container = self.container or _serving_container(client, self.project, self.port)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            with self._lock:  # the engine went away: connect again next time
                self.client, self.container = None, ""
            client.close()
            raise
        return client, self.container

    def _logout(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
