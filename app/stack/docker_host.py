"""Which container engine this computer has, without Qt and without docker-py: the wizard's first page says
in plain words what is found and, when nothing answers, what to install or start for the owner's OS.

Contract:
- `find()` looks at the places Docker-compatible engines put their socket, in order: `DOCKER_HOST` (the
  user's explicit choice: only it), then per OS Docker Engine/Desktop, rootless Docker, OrbStack, Colima,
  Rancher Desktop, and Podman's Docker-compatible socket (rootless first). The first that answers
  `GET /_ping` with 200 is used: `Engine.url` is then the address for `EngineTarget(url)` ("" when it is
  the platform's default, which docker-py finds by itself). An engine answering with Podman's
  `Libpod-Api-Version` header is reported as Podman wherever its socket is.
- Nothing answers: `state` is "no-permission" (a socket refuses this user), "not-running" (a socket file
  without a listener, or an engine's program installed: which one is named) or "missing"; `message` says
  what to do for the OS ("linux", "darwin", "win32"), in words for someone who never used a terminal
  (the one command a Linux owner types is quoted whole).
- Probing only connects to local Unix sockets (and on Windows opens the engines' named pipes); it never
  starts anything and takes at most `timeout` per socket. Every path is under `root` and `home` and every
  program is looked up on `env["PATH"]`, so a test runs it against real sockets in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUNNING, NOT_RUNNING, NO_PERMISSION, MISSING = "running", "not-running", "no-permission", "missing"
DOCKER_DESKTOP, DOCKER_ENGINE, PODMAN = "Docker Desktop", "Docker Engine", "Podman"
COLIMA, ORBSTACK, RANCHER = "Colima", "OrbStack", "Rancher Desktop"
DEFAULT_URL = {"win32": "npipe:////./pipe/docker_engine"}
_UNIX_DEFAULT = "unix:///var/run/docker.sock"
PODMAN_SOCKET_ON = "systemctl --user enable --now podman.socket"


@dataclass(frozen=True)
class Candidate:
    url: str  # unix:///… or npipe:////./pipe/…
    product: str


@dataclass(frozen=True)
class Engine:
    state: str  # running | not-running | no-permission | missing
    product: str  # what answered, or what is installed and not running ("" when missing)
    url: str  # for EngineTarget(url): "" = the platform's default socket (or nothing found)
    message: str  # plain words: what was found, or what to do

    @property
    def ok(self) -> bool:
        return self.state == RUNNING


def candidates(system: str, home: Path, env: Mapping[str, str], root: Path = Path("/")) -> list[Candidate]:
    """Where to look, best first (see the module's contract)."""
    if env.get("DOCKER_HOST"):
        return [Candidate(env["DOCKER_HOST"], "")]
    if system == "win32":
        return [
            Candidate("npipe:////./pipe/docker_engine", DOCKER_DESKTOP),
            Candidate("npipe:////./pipe/podman-machine-default", PODMAN),
        ]
    run_dir = Path(env["XDG_RUNTIME_DIR"]) if env.get("XDG_RUNTIME_DIR") else None
    found: list[tuple[Path | None, str]]
    if system == "darwin":
        tmp = Path(env["TMPDIR"]) if env.get("TMPDIR") else root / "tmp"
        found = [
            (root / "var/run/docker.sock", DOCKER_DESKTOP),
            (home / ".docker/run/docker.sock", DOCKER_DESKTOP),
            (home / ".orbstack/run/docker.sock", ORBSTACK),
            (home / ".colima/default/docker.sock", COLIMA),
            (home / ".colima/docker.sock", COLIMA),
            (home / ".rd/docker.sock", RANCHER),
            (home / ".local/share/containers/podman/machine/podman.sock", PODMAN),
            (tmp / "podman/podman-machine-default-api.sock", PODMAN),
        ]
    else:
        found = [
            (root / "var/run/docker.sock", DOCKER_ENGINE),
            (run_dir / "docker.sock" if run_dir else None, DOCKER_ENGINE),
            (home / ".docker/desktop/docker.sock", DOCKER_DESKTOP),
            (run_dir / "podman/podman.sock" if run_dir else None, PODMAN),
            (root / "run/podman/podman.sock", PODMAN),
        ]
    return [Candidate(f"unix://{path}", product) for path, product in found if path is not None]


def probe(url: str, timeout: float = 2.0) -> tuple[str, str]:
    """(state, product seen) of one socket: running (200 to /_ping), not-running (no listener),
    no-permission, or missing (no such socket). Product "Podman" when the answer carries Libpod's header."""
    if url.startswith("npipe://"):
        pipe = url[len("npipe:") :].replace("/", "\\")
        return (RUNNING, "") if os.path.exists(pipe) else (MISSING, "")
    if not url.startswith("unix://"):
        return RUNNING, ""  # tcp:// or ssh:// in DOCKER_HOST: docker-py's own check reports it
    path = url[len("unix://") :]
    if not os.path.lexists(path):
        return MISSING, ""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except FileNotFoundError:
        return MISSING, ""
    except PermissionError:
        return NO_PERMISSION, ""
    except (ConnectionRefusedError, ConnectionResetError, TimeoutError, OSError):
        return NOT_RUNNING, ""
    finally:
        sock.close()
    if b"\r\n\r\n" not in head:  # no complete answer: not an engine that works
        return NOT_RUNNING, ""
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or parts[1] != "200":
        return NOT_RUNNING, ""
    podman = any(line.lower().startswith("libpod-api-version:") for line in lines[1:])
    return RUNNING, PODMAN if podman else ""


def installed(system: str, home: Path, env: Mapping[str, str], root: Path = Path("/")) -> list[str]:
    """Engines whose program is on this computer (to tell "not running" from "missing"), best first."""
    path = env.get("PATH", "")

    def has(program: str) -> bool:
        return shutil.which(program, path=path) is not None

    found: list[str] = []
    if system == "win32":
        programs = Path(env.get("ProgramFiles", str(root / "Program Files")))
        if (programs / "Docker/Docker/Docker Desktop.exe").exists():
            found.append(DOCKER_DESKTOP)
        if has("podman") or (programs / "RedHat/Podman/podman.exe").exists():
            found.append(PODMAN)
        return found
    if system == "darwin":
        apps = root / "Applications"
        for app, product in (
            ("Docker.app", DOCKER_DESKTOP),
            ("OrbStack.app", ORBSTACK),
            ("Rancher Desktop.app", RANCHER),
        ):
            if (apps / app).exists():
                found.append(product)
        if has("colima"):
            found.append(COLIMA)
        if has("podman") or (apps / "Podman Desktop.app").exists():
            found.append(PODMAN)
        return found
    if has("dockerd"):
        found.append(DOCKER_ENGINE)
    if (home / ".docker/desktop").is_dir() or (root / "opt/docker-desktop").is_dir():
        found.append(DOCKER_DESKTOP)
    if has("podman"):
        found.append(PODMAN)
    return found


def find(
    system: str = sys.platform,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    root: Path = Path("/"),
    timeout: float = 2.0,
) -> Engine:
    """The engine to use, or why there is none and what to do (see the module's contract)."""
    system = "win32" if system.startswith("win") else "darwin" if system == "darwin" else "linux"
    home = home or Path.home()
    env = os.environ if env is None else env
    cands = candidates(system, home, env, root)
    stale: list[Candidate] = []
    denied: Candidate | None = None
    for cand in cands:
        state, seen = probe(cand.url, timeout)
        if state == RUNNING:
            product = seen or cand.product or "Docker"
            # docker-py finds DOCKER_HOST and the platform's default socket by itself
            url = (
                ""
                if env.get("DOCKER_HOST") or cand.url == DEFAULT_URL.get(system, _UNIX_DEFAULT)
                else cand.url
            )
            what = f"{product} (its Docker-compatible socket)" if product == PODMAN else product
            return Engine(RUNNING, product, url, f"Found {what} at {cand.url}.")
        if state == NO_PERMISSION and denied is None:
            denied = cand
        elif state == NOT_RUNNING:
            stale.append(cand)
    if env.get("DOCKER_HOST"):
        where = env["DOCKER_HOST"]
        return Engine(
            NOT_RUNNING if stale else NO_PERMISSION if denied else MISSING,
            "",
            "",
            f"Nothing answers at {where}, the engine address set in DOCKER_HOST. Start that engine, or "
            "remove DOCKER_HOST to let Pixel look for Docker by itself, then press Check again.",
        )
    if denied is not None:
        return Engine(NO_PERMISSION, denied.product, "", advice(system, NO_PERMISSION, denied.product))
    have = installed(system, home, env, root)
    product = (stale[0].product if stale else "") or (have[0] if have else "")
    if product:
        return Engine(NOT_RUNNING, product, "", advice(system, NOT_RUNNING, product))
    return Engine(MISSING, "", "", advice(system, MISSING, ""))


def advice(system: str, state: str, product: str) -> str:
    """What the owner should do, in plain words, for this OS and state."""
    again = "then press Check again."
    if state == NO_PERMISSION:
        return (
            f"{product or 'Docker'} is running, but your user is not allowed to use it. Add yourself to the "
            "docker group by typing `sudo usermod -aG docker $USER` in a terminal, log out and in again, "
            f"{again}"
        )
    if state == NOT_RUNNING:
        if product == PODMAN and system == "linux":
            return (
                "Podman is installed but its Docker-compatible socket is switched off. Switch it on by typing "
                f"`{PODMAN_SOCKET_ON}` in a terminal, {again}"
            )
        if product == PODMAN:
            return f"Podman is installed but not running. Open Podman Desktop and start its machine, {again}"
        if product == DOCKER_ENGINE:
            return (
                "Docker is installed but not running. Start it by typing `sudo systemctl enable --now docker` "
                f"in a terminal (it then also starts with the computer), {again}"
            )
        if product == COLIMA:
            return f"Colima is installed but not running. Start it by typing `colima start` in a terminal, {again}"
        where = {"darwin": "from Applications", "win32": "from the Start menu"}.get(system, "from your apps")
        running = " and wait until it says the engine is running" if product == DOCKER_DESKTOP else ""
        return f"{product} is installed but not running. Open {product} {where}{running}, {again}"
    if system == "darwin":
        return (
            "Pixel runs in Docker, and this Mac has no Docker yet. Install Docker Desktop from docker.com "
            "(OrbStack or Colima work too, and so does Podman Desktop), open it once, " + again
        )
    if system == "win32":
        return (
            "Pixel runs in Docker, and this PC has no Docker yet. Install Docker Desktop from docker.com (it "
            "may ask to switch on WSL 2 and to restart; Podman Desktop works too), open it once, " + again
        )
    return (
        "Pixel runs in Docker, and this computer has no Docker yet. Install Docker Engine: on Ubuntu or "
        "Debian type `sudo apt install docker.io` in a terminal, then log out and in again (or install "
        "Docker Desktop for Linux from docker.com). Podman works too: install it and switch on its "
        f"Docker-compatible socket with `{PODMAN_SOCKET_ON}`. Then press Check again."
    )
