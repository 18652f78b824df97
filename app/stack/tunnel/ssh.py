"""`SSHTunnel`: 127.0.0.1:<local port> here forwarded to 127.0.0.1:<API port> on an engine reached by SSH.

For each local connection it opens a `direct-tcpip` channel over one SSH transport and pumps bytes both
ways (one thread per connection). The host key policy is the engine's (`engine.py`): only Pixel's own
known_hosts file, never the user's ~/.ssh, never auto-add; an unknown or changed key is a `StackError` the
user can act on. The first connection happens in `start()` so those errors surface at once; if the SSH
transport drops later (server restarted, network gone), the next local connection reconnects, and while it
cannot, local connections are closed at once, which the API client reports as "unreachable" (the dashboard
then serves its cache).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import urllib.parse

import paramiko

from ..engine import EngineTarget, _ssh_parts, load_trusted_keys, ssh_failure
from ..errors import StackError
from ..spec import API_PORT
from .forward import CHUNK, PortForward


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
                        data = conn.recv(CHUNK)
                        if not data:  # the client finished sending: half-close towards the server
                            local_open = False
                            sel.unregister(conn)
                            channel.shutdown_write()
                        else:
                            channel.sendall(data)
                    else:
                        data = channel.recv(CHUNK)
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
            f"It looks like http://127.0.0.1:{API_PORT} (the port the stack published).",
            code="bad-api-url",
        )
    tunnel = SSHTunnel(target, parsed.port, parsed.hostname or "127.0.0.1")
    try:
        return tunnel.start()
    except StackError as exc:
        if offline_ok and exc.code in _OFFLINE:
            return tunnel.start(lazy=True)
        raise
