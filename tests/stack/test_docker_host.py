"""Finding the container engine (pixel.app.stack.docker_host) against real Unix sockets in a temporary
folder: a Docker-like and a Podman-like `/_ping` server, a stale socket file with no listener, a server that
never answers, programs on PATH and installed apps; then the real engine of this machine."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixel.app.stack import docker_host as dh

DOCKER_HEAD = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK"
PODMAN_HEAD = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nContent-Length: 2\r\n\r\nOK"
)


class PingServer:
    """A real Unix-socket server answering every connection with `answer` (None: accept, never answer)."""

    def __init__(self, path: Path, answer: bytes | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.answer = answer
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.answer is None:
                self.held.append(conn)
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def servers() -> Iterator[list[PingServer]]:
    made: list[PingServer] = []
    yield made
    for s in made:
        s.close()


def stale_socket(path: Path) -> None:
    """A socket file nobody listens on (an engine that crashed or was stopped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    assert stat.S_ISSOCK(path.lstat().st_mode)


def program(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)


@pytest.fixture
def box() -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(root, home, env): an empty computer; sockets and programs are added per test.
    A short folder: a Unix socket's path must stay under 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix="dh", dir="/tmp"))
    home = root / "h"
    home.mkdir()
    yield root, home, {"PATH": str(root / "bin"), "XDG_RUNTIME_DIR": str(root / "r")}
    shutil.rmtree(root)


LINUX_MISSING = (
    "Pixel runs in Docker, and this computer has no Docker yet. Install Docker Engine: on Ubuntu or Debian "
    "type `sudo apt install docker.io` in a terminal, then log out and in again (or install Docker Desktop "
    "for Linux from docker.com). Podman works too: install it and switch on its Docker-compatible socket "
    "with `systemctl --user enable --now podman.socket`. Then press Check again."
)


def test_nothing_installed_says_what_to_install_per_os(box: tuple[Path, Path, dict[str, str]]) -> None:
    root, home, env = box
    linux = dh.find("linux", home, env, root)
    assert linux == dh.Engine("missing", "", "", LINUX_MISSING)
    assert not linux.ok
    mac = dh.find("darwin", home, env, root)
    assert mac.state == "missing"
    assert mac.message == (
        "Pixel runs in Docker, and this Mac has no Docker yet. Install Docker Desktop from docker.com "
        "(OrbStack or Colima work too, and so does Podman Desktop), open it once, then press Check again."
    )
    win = dh.find("win32", home, env, root)
    assert win.state == "missing"
    assert win.message == (
        "Pixel runs in Docker, and this PC has no Docker yet. Install Docker Desktop from docker.com (it "
        "may ask to switch on WSL 2 and to restart; Podman Desktop works too), open it once, then press "
        "Check again."
    )


def test_docker_engine_answering_on_the_system_socket(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]
) -> None:
    root, home, env = box
    sock = root / "var/run/docker.sock"
    servers.append(PingServer(sock, DOCKER_HEAD))
    found = dh.find("linux", home, env, root)
    assert found == dh.Engine(
        "running", "Docker Engine", f"unix://{sock}", f"Found Docker Engine at unix://{sock}."
    )
    assert found.ok


def test_podman_rootless_socket_is_found_and_used(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]
) -> None:
    root, home, env = box
    stale_socket(root / "var/run/docker.sock")  # a Docker that is not running: Podman is used instead
    sock = root / "r/podman/podman.sock"
    servers.append(PingServer(sock, PODMAN_HEAD))
    found = dh.find("linux", home, env, root)
    assert found == dh.Engine(
        "running",
        "Podman",
        f"unix://{sock}",
        f"Found Podman (its Docker-compatible socket) at unix://{sock}.",
    )


def test_podman_on_the_docker_socket_is_named_podman(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]
) -> None:
    """Debian's podman-docker or a symlink: Podman's service behind /var/run/docker.sock."""
    root, home, env = box
    sock = root / "var/run/docker.sock"
    servers.append(PingServer(sock, PODMAN_HEAD))
    found = dh.find("linux", home, env, root)
    assert (found.state, found.product, found.url) == ("running", "Podman", f"unix://{sock}")


def test_rootful_podman_socket(box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]) -> None:
    root, home, env = box
    sock = root / "run/podman/podman.sock"
    servers.append(PingServer(sock, PODMAN_HEAD))
    assert dh.find("linux", home, {"PATH": ""}, root).url == f"unix://{sock}"


def test_stale_docker_socket_is_not_running(box: tuple[Path, Path, dict[str, str]]) -> None:
    root, home, env = box
    stale_socket(root / "var/run/docker.sock")
    found = dh.find("linux", home, env, root)
    assert found == dh.Engine(
        "not-running",
        "Docker Engine",
        "",
        "Docker is installed but not running. Start it by typing `sudo systemctl enable --now docker` in a "
        "terminal (it then also starts with the computer), then press Check again.",
    )


def test_installed_programs_without_a_socket(box: tuple[Path, Path, dict[str, str]]) -> None:
    root, home, env = box
    program(root / "bin", "podman")
    found = dh.find("linux", home, env, root)
    assert found == dh.Engine(
        "not-running",
        "Podman",
        "",
        "Podman is installed but its Docker-compatible socket is switched off. Switch it on by typing "
        "`systemctl --user enable --now podman.socket` in a terminal, then press Check again.",
    )
    program(root / "bin", "dockerd")  # Docker Engine is preferred when both are installed
    assert dh.find("linux", home, env, root).product == "Docker Engine"


def test_docker_desktop_for_linux_installed_not_running(box: tuple[Path, Path, dict[str, str]]) -> None:
    root, home, env = box
    (home / ".docker/desktop").mkdir(parents=True)
    found = dh.find("linux", home, env, root)
    assert found.message == (
        "Docker Desktop is installed but not running. Open Docker Desktop from your apps and wait until it "
        "says the engine is running, then press Check again."
    )


def test_macos_engines(box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]) -> None:
    root, home, env = box
    (root / "Applications/OrbStack.app").mkdir(parents=True)
    found = dh.find("darwin", home, env, root)
    assert found == dh.Engine(
        "not-running",
        "OrbStack",
        "",
        "OrbStack is installed but not running. Open OrbStack from Applications, then press Check again.",
    )
    program(root / "bin", "colima")
    stale_socket(home / ".colima/default/docker.sock")
    assert dh.find("darwin", home, env, root).message == (
        "Colima is installed but not running. Start it by typing `colima start` in a terminal, then press "
        "Check again."
    )
    (home / ".colima/default/docker.sock").unlink()
    sock = home / ".colima/default/docker.sock"
    servers.append(PingServer(sock, DOCKER_HEAD))
    assert dh.find("darwin", home, env, root) == dh.Engine(
        "running", "Colima", f"unix://{sock}", f"Found Colima at unix://{sock}."
    )


def test_macos_podman_machine(box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]) -> None:
    root, home, env = box
    (root / "Applications/Podman Desktop.app").mkdir(parents=True)
    assert dh.find("darwin", home, env, root).message == (
        "Podman is installed but not running. Open Podman Desktop and start its machine, then press Check again."
    )
    sock = root / "t/podman/podman-machine-default-api.sock"
    servers.append(PingServer(sock, PODMAN_HEAD))
    found = dh.find("darwin", home, {**env, "TMPDIR": str(root / "t")}, root)
    assert (found.state, found.product, found.url) == ("running", "Podman", f"unix://{sock}")


def test_windows_docker_desktop_installed_not_running(box: tuple[Path, Path, dict[str, str]]) -> None:
    root, home, env = box
    programs = root / "pf"
    (programs / "Docker/Docker").mkdir(parents=True)
    (programs / "Docker/Docker/Docker Desktop.exe").write_bytes(b"MZ")
    found = dh.find("win32", home, {**env, "ProgramFiles": str(programs)}, root)
    assert found == dh.Engine(
        "not-running",
        "Docker Desktop",
        "",
        "Docker Desktop is installed but not running. Open Docker Desktop from the Start menu and wait until "
        "it says the engine is running, then press Check again.",
    )


def test_docker_host_is_the_only_place_looked_at(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]
) -> None:
    root, home, env = box
    servers.append(PingServer(root / "var/run/docker.sock", DOCKER_HEAD))  # not looked at
    chosen = root / "mine.sock"
    found = dh.find("linux", home, {**env, "DOCKER_HOST": f"unix://{chosen}"}, root)
    assert found == dh.Engine(
        "missing",
        "",
        "",
        f"Nothing answers at unix://{chosen}, the engine address set in DOCKER_HOST. Start that engine, or "
        "remove DOCKER_HOST to let Pixel look for Docker by itself, then press Check again.",
    )
    servers.append(PingServer(chosen, DOCKER_HEAD))
    found = dh.find("linux", home, {**env, "DOCKER_HOST": f"unix://{chosen}"}, root)
    assert (found.state, found.url) == ("running", "")  # docker-py reads DOCKER_HOST itself


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 500 Internal Server Error\r\n\r\n", b"garbage", b"", b"HTTP/1.1 200"],
    ids=["500", "garbage", "closed", "truncated"],
)
def test_a_socket_that_does_not_answer_ping_is_not_running(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer], answer: bytes
) -> None:
    root, home, env = box
    servers.append(PingServer(root / "var/run/docker.sock", answer))
    assert dh.find("linux", home, env, root).state == "not-running"


def test_a_silent_socket_costs_at_most_the_timeout(
    box: tuple[Path, Path, dict[str, str]], servers: list[PingServer]
) -> None:
    root, home, env = box
    servers.append(PingServer(root / "var/run/docker.sock", None))
    t0 = time.monotonic()
    found = dh.find("linux", home, env, root, timeout=0.3)
    assert found.state == "not-running"
    assert time.monotonic() - t0 < 2.0


@pytest.mark.docker
def test_this_machines_engine() -> None:
    """The real dockerd the tests use answers on the default socket: no address to pass on."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    found = dh.find("linux", env=env)
    assert (found.state, found.url) == ("running", "")
    assert found.message == "Found Docker Engine at unix:///var/run/docker.sock."
