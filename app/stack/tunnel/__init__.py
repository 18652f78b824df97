"""Reaching a remote stack's API through the engine's connection: a local port forward, without Qt.

On a remote engine the API is published on 127.0.0.1 of the *remote* host only. A tunnel listens on
127.0.0.1:<free port> here (`forward.PortForward`) and carries each connection to that port over there:
`ssh.SSHTunnel` over an SSH transport for an engine reached by SSH (the engine's host-key policy: only
Pixel's own known_hosts, never auto-add), `relay.ExecTunnel` through the Docker engine itself (an exec
running a small relay) for one reached over TCP + TLS. `stack_api_tunnel` picks the one a target needs.
While the far side cannot be reached, local connections are closed at once, which the API client reports
as "unreachable" (the dashboard then serves its cache).
"""

from __future__ import annotations

from ..engine import EngineTarget, connect
from ..errors import StackError
from .forward import PortForward
from .relay import ExecTunnel, LazyExecTunnel, exec_tunnel
from .ssh import SSHTunnel, api_tunnel


def stack_api_tunnel(
    target: EngineTarget, project: str, api_url: str, *, offline_ok: bool = False
) -> PortForward:
    """How the desktop reaches the API of a stack on a remote engine, whose API listens on the server's
    127.0.0.1 only: through SSH (`api_tunnel`) or, over TCP + TLS, through the engine (`exec_tunnel`)."""
    if target.kind == "ssh":
        return api_tunnel(target, api_url, offline_ok=offline_ok)
    try:
        client = connect(target)
    except StackError as exc:
        if offline_ok and exc.code == "engine-unreachable":  # certificate problems are raised at once
            return LazyExecTunnel(target, project).start(lazy=True)
        raise
    return exec_tunnel(client, project, close_client=True)


__all__ = [
    "ExecTunnel",
    "LazyExecTunnel",
    "PortForward",
    "SSHTunnel",
    "api_tunnel",
    "exec_tunnel",
    "stack_api_tunnel",
]
