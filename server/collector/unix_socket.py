"""The collector workers' Unix sockets: the hop from a proxy on the same machine (the stack's edge) without TCP.

With `PIXEL_UPSTREAM_SOCKET_DIR` set, each uvicorn worker `n` (1, 2, …) listens, beside its TCP socket, on
`<dir>/collector-<n>.sock` (`socket_path`). The file is removed and made again when the collector starts, by the
process that supervises the workers (processes.upstream_listeners), which keeps the socket open: a worker
restarted after a crash serves the same socket, and connections that arrive while it is away wait in the
socket's backlog instead of being refused. The file is open to every user who can reach the folder (0666):
the folder is the access control — in the stack it is a volume that only the collector and the edge mount.

A connection on such a socket has no peer address. `TrackProtocol` (limits.GuardedProtocol) gives it the
address `UNIX_PEER` instead, which is not an IP address, so nothing that arrives over TCP can ever carry it;
the collector (core.Collector) believes X-Forwarded-For / X-Real-IP (and a CDN's country header, when
`PIXEL_CDN_GEO_HEADERS` is on) from `UNIX_PEER` as from a trusted proxy, whatever `PIXEL_TRUSTED_PROXIES`
says. On TCP nothing changes: there only `PIXEL_TRUSTED_PROXIES` is believed, and `*` never is.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

from pixel.server.errors import PixelError

# The peer address of a connection on a worker's Unix socket (not an IP address: never a TCP peer's)
UNIX_PEER = "unix:"


class SocketPathError(PixelError, RuntimeError):
    """The worker cannot listen at its Unix socket path; the message says what to change."""


def socket_path(directory: str | os.PathLike[str], worker: int) -> Path:
    """The socket of collector worker `worker` (numbered from 1)."""
    return Path(directory) / f"collector-{worker}.sock"


def unix_listener(path: Path) -> socket.socket:
    """A stream socket bound at `path` (mode 0666), after removing an old socket there; not yet listening
    (uvicorn's server does that). Anything at `path` that is not a socket is left alone and is an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise SocketPathError(
                    f"{path} exists and is not a socket; remove it or set PIXEL_UPSTREAM_SOCKET_DIR to "
                    f"another folder"
                )
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o666)  # the folder decides who reaches it (see the module's docstring)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise SocketPathError(
            f"cannot listen on the Unix socket {path}: {exc.strerror or exc}; check PIXEL_UPSTREAM_SOCKET_DIR "
            f"(a folder this user may write)"
        ) from None
    return sock


def is_unix(transport: object) -> bool:
    """Whether an asyncio transport's socket is a Unix one."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    return sock is not None and sock.family == socket.AF_UNIX
