"""A local port forward without Qt: listen on 127.0.0.1:<free port> here and hand each accepted connection
to a thread of its own, which a subclass connects to the other side (`SSHTunnel` over an SSH transport,
`ExecTunnel` through the Docker engine). `stop()` closes the listener, every forwarded connection and the
connection to the far side; a connection the far side cannot take is closed at once, which an HTTP client
reports as "unreachable".
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

CHUNK = 65536  # bytes read per call while pumping


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
