"""Starting Pixel's processes: checks with one-line errors, the collector workers, the store process."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pixel.server import metrics
from pixel.server.errors import PixelError
from pixel.server.settings import Settings, to_env

log = logging.getLogger(__name__)


class StartupError(PixelError, RuntimeError):
    """A problem that stops Pixel from starting; its message is the one line the user sees."""


def check_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"the data folder {path} is not writable: {exc.strerror or exc}") from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port(host: str, port: int, what: str) -> None:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} ({what}) is already in use; "
                    f"stop what uses it or pick another port"
                ) from None
            raise StartupError(f"cannot listen on {host}:{port} ({what}): {exc.strerror}") from None


class DataDirLock:
    """Held by `pixel serve` for its lifetime: a second serve on the same folder fails at once."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise StartupError(
                f"another pixel serve (pid {holder}) is already using the data folder {data_dir}"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)


def configure_logging() -> None:
    """The logging of `pixel` and of its store process: one stderr handler on the root logger, lines
    `time LEVEL logger: message`. Every Pixel module logs to `logging.getLogger(__name__)`, a child of the
    `pixel` package logger, which takes PIXEL_LOG_LEVEL and passes its records on to that handler."""
    level = os.environ.get("PIXEL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixel").setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The store engine turns driver failures into one clear message of its own (with the URL).
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)


# -- the store process ----------------------------------------------------------------------


def run_store(settings: Settings) -> None:
    """Shipper + /metrics + API on settings.api_port, in this process, until SIGTERM/SIGINT."""
    import uvicorn

    from pixel.server.store import StoreError
    from pixel.server.storeservice import StoreService

    try:
        service = StoreService(settings)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    config = uvicorn.Config(
        service,
        host=settings.host,
        port=settings.api_port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()


def child_setup(env: dict[str, str]) -> None:
    """What every spawned child (the store process, each collector worker) does first: take the parent's
    settings from `env` and log in the one format, so a worker's rare warning (a spool it cannot append to)
    comes with its time and module like the rest."""
    os.environ.update(env)
    configure_logging()


def _store_child(env: dict[str, str]) -> None:
    child_setup(env)
    try:
        run_store(Settings.from_env())
    except StartupError as exc:
        log.error("store: %s", exc)
        raise SystemExit(2) from None


class ChildSupervisor:
    """Runs `target(*args)` in a spawned process and starts it again (with backoff) if it crashes; an exit with
    code 0, or by SIGTERM/SIGINT, is a requested stop and ends the supervision."""

    def __init__(self, name: str, target: Callable[..., None], args: tuple[object, ...]) -> None:
        self.name, self.target, self.args = name, target, args
        self.ctx = multiprocessing.get_context("spawn")
        self.process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # no process is started after send_stop
        self._thread = threading.Thread(target=self._watch, name=f"supervisor {name}", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self.process = self.ctx.Process(target=self.target, args=self.args, name=f"pixel {self.name}")
        self.process.start()

    def _watch(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            assert self.process is not None
            self.process.join(timeout=0.5)
            if self.process.exitcode is None or self._stopping.is_set():
                continue
            if self.process.exitcode in (0, -signal.SIGTERM, -signal.SIGINT):
                # A requested stop, not a crash: SIGTERM/SIGINT to the process group (a service manager,
                # Ctrl-C) reaches the children too. A child handles it and exits 0, or dies of it when it
                # comes before the child set its handlers (a child still starting). Either way, do not
                # start it again behind the shutdown's back.
                log.info("%s stopped", self.name)
                return
            started = time.monotonic()
            log.warning("%s exited (code %s); restarting in %.1f s", self.name, self.process.exitcode, delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._spawn()
            # a process that stayed up for a while resets the backoff
            delay = 0.5 if time.monotonic() - started > 30 else min(delay * 2, 5.0)

    def supervising(self) -> bool:
        """Whether the process runs or will be started again (false once a requested stop ended it)."""
        return self._thread.is_alive()

    def send_stop(self) -> None:
        """Ask the process to stop (it exits cleanly on SIGTERM) and not to restart it; `join` waits for it."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.exitcode is None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    def join(self, timeout: float = 30) -> None:
        # The watch thread first (it ends within 0.5 s of send_stop): two threads waiting on one child race
        # in multiprocessing (one reaps it, the other sees no exit code and would kill a reaped pid).
        if self._stopping.is_set() and self._thread.is_alive():
            self._thread.join()
        process = self.process
        if process is not None:
            process.join(timeout=timeout)
            if process.exitcode is None:
                process.kill()
                process.join()

    def stop(self) -> None:
        self.send_stop()
        self.join()


class StoreSupervisor(ChildSupervisor):
    """Runs the store process and restarts it (with backoff) if it dies."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("store process", _store_child, (to_env(settings),))


# -- the collector --------------------------------------------------------------------------


def run_collector(settings: Settings) -> None:
    """The collector's worker processes on settings.port until SIGTERM/SIGINT; dead workers are replaced.

    uvicorn serves the ASGI binding (the default: it measured the least CPU per request, bench/README.md), with
    the tracking route answered in its protocol (collector/fastpath.py) unless PIXEL_SERVER=uvicorn-asgi;
    granian serves the RSGI one. Workers are processes that read their settings from the environment.

    Client limits (collector/limits.py): under uvicorn both protocols enforce them; under granian hyper takes
    the head size as its read buffer's cap (431), the request timeout as its header-read timeout (the
    connection is closed, no 408; it also closes idle keep-alive connections, so PIXEL_KEEP_ALIVE_TIMEOUT
    does not apply), and the connection cap as its backpressure (connections past it wait in the backlog).
    """
    env = to_env(settings)
    os.environ.update(env)
    _raise_open_files(settings.max_connections)
    metrics.clear(settings.state_dir / "metrics" / "collector")
    if settings.server == "granian":
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.log import LogLevels

        Granian(
            "pixel.server.collector.app:create_rsgi_app",
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.RSGI,
            http=HTTPModes.http1,
            websockets=False,
            workers=settings.workers,
            respawn_failed_workers=True,
            respawn_interval=0.5,
            workers_kill_timeout=10,  # a worker that ignores SIGTERM must not hold the shutdown forever
            backlog=2048,
            backpressure=settings.max_connections,  # per worker: connections past it are not accepted yet
            http1_settings=HTTP1Settings(
                header_read_timeout=max(1, round(settings.request_timeout * 1000)),  # ms
                max_buffer_size=settings.max_header_bytes,  # a head that does not fit: 431
            ),
            log_level=LogLevels.warning,
            log_access=False,
        ).serve()
        return
    listeners = upstream_listeners(settings)
    workers = [
        ChildSupervisor(f"collector worker {i + 1}", _collector_worker, (env, i + 1, listeners[i]))
        for i in range(settings.workers)
    ]
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in workers:
            worker.start()
        while not stop.wait(0.5):
            for i, worker in enumerate(workers):
                sock = listeners[i]
                if sock is not None and not worker.supervising():
                    # that worker alone was stopped (SIGTERM to its process) and is not started again: its
                    # socket refuses connections from now on, so the edge sends them elsewhere instead of
                    # leaving them waiting for a worker that does not come back
                    sock.close()
                    listeners[i] = None
    finally:
        for worker in workers:
            worker.send_stop()
        for worker in workers:
            worker.join(timeout=15)
        for sock in listeners:
            if sock is not None:
                sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def upstream_listeners(settings: Settings) -> list[socket.socket | None]:
    """With PIXEL_UPSTREAM_SOCKET_DIR, each worker's Unix socket (collector/unix_socket.py), bound and listening
    here, in the process that supervises the workers: worker n serves the socket it is handed, and a restarted
    worker n the same one. While a worker is down (crashed, killed, starting again) its socket still takes
    connections, which wait in its backlog for the worker that replaces it, so a proxy in front never sees a
    refused connection. A refused connection is what made the edge fail tracking requests: Caddy moves the
    request to another worker, but its body was closed with the failed attempt (502 "invalid Read on closed
    Body"); Caddy's request buffering is no way out: with Debian's Caddy 2.6.2 it still failed about half of
    them and handed some retries another request's body (Caddy's fixes, caddyserver/caddy#7360 and #7547, came
    after the pinned 2.10.2). Without the setting: one None per worker."""
    if not settings.upstream_socket_dir:
        return [None] * settings.workers
    from pixel.server.collector.unix_socket import SocketPathError, socket_path, unix_listener

    listeners: list[socket.socket | None] = []
    try:
        for number in range(1, settings.workers + 1):
            sock = unix_listener(socket_path(settings.upstream_socket_dir, number))
            listeners.append(sock)
            sock.listen(UPSTREAM_BACKLOG)
    except SocketPathError as exc:
        for made in listeners:
            if made is not None:
                made.close()
        raise StartupError(str(exc)) from None
    return listeners


# connections a worker's Unix socket holds while its worker is away (uvicorn's own backlog, as for TCP)
UPSTREAM_BACKLOG = 2048


def _raise_open_files(connections: int) -> None:
    """Lift this process's (and so its workers') soft limit on open files toward the hard one, so that a
    worker reaches its connection cap before it runs out of descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256  # the spool, the listening socket, the runtime's own
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < want:
            log.warning(
                "collector: %d open files allowed per process, fewer than PIXEL_MAX_CONNECTIONS=%d needs",
                target,
                connections,
            )


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port with SO_REUSEPORT, one per worker: the kernel spreads new connections over
    the workers' sockets. With one socket shared by all workers (uvicorn's own multi-worker mode) the worker
    that wakes first accepts every pending connection: 64 keep-alive connections opened at once all landed on
    one worker, which then did all the work while the other idled."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _collector_worker(env: dict[str, str], number: int = 1, unix: socket.socket | None = None) -> None:
    """Collector worker `number` (from 1) under uvicorn, on its own SO_REUSEPORT socket and, with
    PIXEL_UPSTREAM_SOCKET_DIR, on its own Unix socket `unix` (made by the supervising process:
    `upstream_listeners`), until SIGTERM/SIGINT."""
    child_setup(env)
    import uvicorn

    settings = Settings.from_env()
    config = uvicorn.Config(
        "pixel.server.collector.app:create_app",
        factory=True,
        loop="uvloop",
        # The tracking route answered in uvicorn's httptools protocol (fastpath.py), or every request through
        # the ASGI app; both with the client limits of limits.py.
        http="pixel.server.collector.limits:GuardedProtocol"
        if settings.server == "uvicorn-asgi"
        else "pixel.server.collector.fastpath:TrackProtocol",
        lifespan="on",
        ws="none",
        log_level="warning",
        access_log=False,
        # Pixel applies its own trusted-proxy rule; uvicorn's would trust X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # (a delay: a float works)
        backlog=2048,
    )
    server = uvicorn.Server(config)
    sockets = [reuseport_socket(settings.host, settings.port)]
    if unix is not None:
        sockets.append(unix)
    server.run(sockets=sockets)
    if not server.started:
        raise SystemExit(3)  # e.g. the app failed to start: a crash for the supervisor, which retries
