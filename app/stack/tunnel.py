"""Reaching a remote stack's API through the engine's connection: a local port forward, without Qt.
`SSHTunnel` for an engine reached by SSH, `ExecTunnel` for one reached over TCP + TLS (below).

On a remote engine the API is published on 127.0.0.1 of the *remote* host only. `SSHTunnel` listens on
127.0.0.1:<free port> here and, for each connection, opens a `direct-tcpip` channel over one SSH
transport to 127.0.0.1:<API port> over there, pumping bytes both ways (one thread per connection).

The host key policy is the engine's (`engine.py`): only Pixel's own known_hosts file, never the user's
~/.ssh, never auto-add; an unknown or changed key is a `StackError` the user can act on. The first
connection happens in `start()` so those errors surface at once; if the SSH transport drops later (server
restarted, network gone), the next local connection reconnects, and while it cannot, local connections
are closed at once, which the API client reports as "unreachable" (the dashboard then serves its cache).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
import urllib.parse
from typing import Self

import docker
import paramiko
import requests

from .engine import EngineTarget, _ssh_parts, load_trusted_keys, ssh_failure
from .errors import StackError
from .spec import API_PORT

_CHUNK = 65536


def _ssh_connect(target: EngineTarget, timeout: float = 15.0) -> paramiko.SSHClient:
    """An SSH client logged in to `target` with the engine's host-key policy, or a `StackError`."""
    host, port, user = _ssh_parts(target.url)
    client = paramiko.SSHClient()
    load_trusted_keys(client, target)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    params: dict = {
        "hostname": host,
        "port": port,
        "username": user,
        "timeout": timeout,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
    }
    if target.ssh_key:
        params.update(key_filename=str(target.ssh_key), look_for_keys=False, allow_agent=False)
    if target.ssh_passphrase:
        params["passphrase"] = target.ssh_passphrase
    try:
        client.connect(**params)
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise ssh_failure(exc, host, port) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(30)  # notice a dead link instead of hanging on it
    return client


class PortForward:
    """Listen on 127.0.0.1:<free port> here; hand each accepted connection to `_forward` on a thread of
    its own. Subclasses say how a connection reaches the other side."""

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accepter: threading.Thread | None = None
        self._pumps: set[threading.Thread] = set()
        self._open: set[socket.socket] = set()
        self.connections = 0  # local connections forwarded so far (diagnostics, tests)

    # ---------------------------------------------------------------- life cycle
    def _login(self) -> None:
        """Connect to the far side before listening (so its errors surface in `start`)."""

    def _logout(self) -> None:
        """Close the connection to the far side (every forwarded connection is closed by then)."""

    def start(self, *, lazy: bool = False) -> Self:
        """Log in (unless `lazy`: then on the first forwarded connection) and listen locally."""
        if self._listener is not None:
            return self
        if not lazy:
            self._login()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)  # accept() wakes up to notice stop()
        self._listener = listener
        self._stop.clear()
        self._accepter = threading.Thread(target=self._accept_loop, name="pixel-tunnel", daemon=True)
        self._accepter.start()
        return self

    def stop(self) -> None:
        """Close the listening socket, every forwarded connection and the connection to the far side."""
        self._stop.set()
        if self._accepter is not None:
            self._accepter.join(5)
            self._accepter = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            pumps = list(self._pumps)
        for pump in pumps:
            pump.join(5)
        with self._lock:
            self._logout()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def local_port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the tunnel is not started")
        return self._listener.getsockname()[1]

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            # A response relayed in pieces (headers, then body) would otherwise wait for the client's
            # delayed ACK (Nagle): ~40 ms per request.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            pump = threading.Thread(
                target=self._serve, args=(conn, peer), name="pixel-tunnel-pump", daemon=True
            )
            with self._lock:
                self._pumps.add(pump)
                self._open.add(conn)
            pump.start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            self._forward(conn, peer)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self._open.discard(conn)
                self._pumps.discard(threading.current_thread())

    def _forward(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        raise NotImplementedError


class SSHTunnel(PortForward):
    """Forward 127.0.0.1:<local_port> here to <remote_host>:<remote_port> as seen from the SSH server."""

    def __init__(self, target: EngineTarget, remote_port: int, remote_host: str = "127.0.0.1") -> None:
        if target.kind != "ssh":
            raise StackError(
                f"{target.describe()} is not an SSH engine: there is nothing to tunnel through.",
                code="not-ssh",
            )
        if not 0 < remote_port < 65536:
            raise StackError(f"{remote_port} is not a port number (1-65535).", code="bad-port")
        super().__init__()
        self.target = target
        self.remote = (remote_host, remote_port)
        self._ssh: paramiko.SSHClient | None = None

    def _login(self) -> None:
        self._ssh = _ssh_connect(self.target)

    def _logout(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    # ---------------------------------------------------------------- forwarding
    def _transport(self) -> paramiko.Transport:
        """The live SSH transport; reconnects (same host-key policy) if the link dropped."""
        with self._lock:
            transport = self._ssh.get_transport() if self._ssh is not None else None
            if transport is None or not transport.is_active():
                if self._ssh is not None:
                    self._ssh.close()
                self._ssh = _ssh_connect(self.target)
                transport = self._ssh.get_transport()
            assert transport is not None
            return transport

    def _forward(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        channel: paramiko.Channel | None = None
        try:
            try:
                channel = self._transport().open_channel("direct-tcpip", self.remote, peer, timeout=15)
            except (StackError, paramiko.SSHException, OSError):
                return  # the API client sees a closed connection: "unreachable"
            self._pump(conn, channel)
        finally:
            if channel is not None:
                channel.close()

    def _pump(self, conn: socket.socket, channel: paramiko.Channel) -> None:
        sel = selectors.DefaultSelector()
        sel.register(conn, selectors.EVENT_READ, "local")
        sel.register(channel, selectors.EVENT_READ, "remote")
        local_open = remote_open = True
        try:
            while (local_open or remote_open) and not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    if key.data == "local":
                        data = conn.recv(_CHUNK)
                        if not data:  # the client finished sending: half-close towards the server
                            local_open = False
                            sel.unregister(conn)
                            channel.shutdown_write()
                        else:
                            channel.sendall(data)
                    else:
                        data = channel.recv(_CHUNK)
                        if not data:
                            remote_open = False
                            sel.unregister(channel)
                            with contextlib.suppress(OSError):
                                conn.shutdown(socket.SHUT_WR)
                        else:
                            conn.sendall(data)
                if not remote_open:
                    return  # the server closed: nothing more can come back
                if channel.closed:
                    return
        except (OSError, paramiko.SSHException):
            return
        finally:
            sel.close()


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
            raise StackError(
                f"The container {self.container} is not running.", "Start the stack.", code="not-running"
            )

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
                        data = conn.recv(_CHUNK)
                        if not data:
                            return  # the client closed (HTTP clients never half-close mid-request)
                        sock.sendall(data)
                        continue
                    data = sock.recv(_CHUNK)
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
    from .spec import LABEL_STACK

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
        from .engine import connect

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


_OFFLINE = {"ssh-unreachable", "ssh-failed"}


def api_tunnel(target: EngineTarget, api_url: str, *, offline_ok: bool = False) -> SSHTunnel:
    """A started tunnel to the port of `api_url` (an address on the remote host, e.g.
    http://127.0.0.1:8082 as the stack publishes it); use its `local_url` as the API's base URL.

    `offline_ok`: when the server cannot be reached now, still listen and log in on the next request
    (the desktop app then shows its cache and refreshes once the host is back). Host-key and login
    problems are raised either way: waiting would not fix them."""
    parsed = urllib.parse.urlparse(api_url)
    if parsed.scheme not in ("http", "https") or parsed.port is None:
        raise StackError(
            f"{api_url!r} is not an API address with a port",
            "It looks like http://127.0.0.1:8082 (the port the stack published).",
            code="bad-api-url",
        )
    tunnel = SSHTunnel(target, parsed.port, parsed.hostname or "127.0.0.1")
    try:
        return tunnel.start()
    except StackError as exc:
        if offline_ok and exc.code in _OFFLINE:
            return tunnel.start(lazy=True)
        raise


def stack_api_tunnel(
    target: EngineTarget, project: str, api_url: str, *, offline_ok: bool = False
) -> PortForward:
    """How the desktop reaches the API of a stack on a remote engine, whose API listens on the server's
    127.0.0.1 only: through SSH (`api_tunnel`) or, over TCP + TLS, through the engine (`exec_tunnel`)."""
    if target.kind == "ssh":
        return api_tunnel(target, api_url, offline_ok=offline_ok)
    from .engine import connect

    try:
        client = connect(target)
    except StackError as exc:
        if offline_ok and exc.code == "engine-unreachable":  # certificate problems are raised at once
            return LazyExecTunnel(target, project).start(lazy=True)
        raise
    return exec_tunnel(client, project, close_client=True)
