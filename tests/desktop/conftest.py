"""Desktop fixtures: Qt offscreen, private XDG folders (config, cache, data) per test, a real
`pixel serve` with an admin, three sites and generated traffic, shared by the module's tests."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pixel.app.desktop.none_refs import pin_none
from tests.conftest import PixelProcess, free_port

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pin_none()  # PySide6's void calls lose references to None: a long session aborted (app/desktop/none_refs.py)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SITES = {"shop.example": "America/New_York", "blog.example": "Asia/Tokyo", "docs.example": "UTC"}


def save_screenshot(widget, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a PNG of `widget` into docs/screenshots/ (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert widget.grab().save(str(path)), path
    return path


def wait_until(qtbot, condition, timeout: int, state=None) -> None:  # type: ignore[no-untyped-def]
    """`qtbot.waitUntil`, and when it times out, what the test cannot see afterwards: `state()` (the widgets'
    texts, the runner's tasks) and the stack of every thread, so a wait that fails once in a CI run says
    where the work stood."""
    from pytestqt.exceptions import TimeoutError as QtTimeout

    try:
        qtbot.waitUntil(condition, timeout=timeout)
    except QtTimeout as exc:
        names = {t.ident: t.name for t in threading.enumerate()}
        stacks = [
            f"--- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame))
            for ident, frame in sys._current_frames().items()
        ]
        seen = state() if state is not None else ""
        raise QtTimeout(f"{exc}\n{seen}\n" + "\n".join(stacks)) from None


@dataclass
class LiveApi:
    server: PixelProcess
    username: str
    password: str
    sites: dict[str, int]  # domain -> id
    events: int

    @property
    def url(self) -> str:
        return self.server.api

    def http(self) -> httpx.Client:
        """An independent client (not the app's) to read the API's own numbers."""
        client = httpx.Client(base_url=self.url, timeout=30)
        token = client.post("/api/auth/login", json={"username": self.username, "password": self.password})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return client


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """Python's cyclic collector runs in whichever thread crosses its threshold; freeing a Qt object on a worker
    thread (where the Runner's tasks allocate) crashes the process. As the app does (pyqtgraph's
    GarbageCollector in main.py), automatic collection is off during a test and the garbage is collected here,
    on the GUI thread, before and after it."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    gc.collect()
    if was_enabled:
        gc.enable()


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """platformdirs follows XDG_*: each test gets its own config, cache and data folders."""
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path


def start_serve(data: Path, env: dict[str, str]) -> tuple[PixelProcess, str]:
    """A `pixel serve` on free ports over `data` (not started yet) with the admin `owner` added; its password."""
    added = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "owner"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIXEL_DATA_DIR": str(data)},
        timeout=120,
        check=True,
    )
    password = re.search(r"password: (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    return PixelProcess("serve", data, free_port(), free_port(), env), password


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The desktop tests' shared API (one per test process): the demo sites and 3,000 demo events."""
    with demo_api(tmp_path_factory.mktemp("desktop-api")) as api:
        yield api


@contextmanager
def running_api(
    root: Path, sites: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> Iterator[LiveApi]:
    """A started `pixel serve` over `root`/data with the admin `owner` and `sites` (domain -> time zone, added in
    that order) added; `env` beside the tests' usual settings. Stopped at the end."""
    data = root / "data"
    data.mkdir()
    server, password = start_serve(
        data,
        {
            "PIXEL_WORKERS": "1",
            "PIXEL_LOG_LEVEL": "WARNING",
            "PIXEL_TRUSTED_PROXIES": "127.0.0.1",
            **(env or {}),
        },
    )
    server.start()
    try:
        api = LiveApi(server, "owner", password, {}, 0)
        with closing(api.http()) as client:
            for domain, tz in (sites or {}).items():
                r = client.post("/api/sites", json={"domain": domain, "timezone": tz})
                assert r.status_code == 201, r.text
                api.sites[domain] = r.json()["id"]
        yield api
    finally:
        server.stop()


@contextmanager
def demo_api(root: Path) -> Iterator[LiveApi]:
    """A `pixel serve` in `root` with the demo sites and 3,000 demo events, all shipped; stopped at the end. A
    test that stops it or sends more events uses its own (the shared `live_api`'s figures stay as they were)."""
    from pixel.server import demo

    with running_api(root, SITES, {"PIXEL_CDN_GEO_HEADERS": "1"}) as api:
        api.events = demo.send(api.server.collector, events=3000, days=40, seed=7)
        api.server.wait_shipped(api.events, timeout=120)
        yield api


def _has_owner(env: dict[str, str], name: str) -> bool:
    out = subprocess.run(
        [
            "dbus-send",
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            f"string:{name}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "boolean true" in out.stdout


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real Secret Service: a private D-Bus session bus and an unlocked gnome-keyring-daemon
    (scripts/system.d/50-desktop.sh installs them), as `dbus-run-session` + `--unlock` would give.
    `keyring` then picks its SecretService backend. Yields the keyring's data folder."""
    import keyring
    import keyring.backends.SecretService

    previous = keyring.get_keyring()
    home = tmp_path_factory.mktemp("keyring-home")
    run = home / "run"
    run.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_RUNTIME_DIR": str(run)}
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    daemon = None
    saved = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    try:
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert daemon.stdin is not None
        daemon.stdin.write(b"test-login-password")
        daemon.stdin.close()
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
        # Wait until our unlocked daemon owns the name: a call before that would make D-Bus start
        # another, locked one ("Prompt dismissed"). NameHasOwner never starts anything.
        deadline = time.monotonic() + 20
        while not _has_owner(env, "org.freedesktop.secrets"):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gnome-keyring-daemon did not register on the session bus")
            time.sleep(0.1)
        deadline = time.monotonic() + 20
        # keyring detects its backends once per process; the Secret Service is set explicitly, as
        # keyring would choose it in a process started inside this D-Bus session.
        keyring.set_keyring(keyring.backends.SecretService.Keyring())
        while True:
            try:
                keyring.set_password("pixel-desktop-probe", "probe", "x")
                keyring.delete_password("pixel-desktop-probe", "probe")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield home / "data"
    finally:
        for proc in (daemon, bus):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if bus.stdout:
            bus.stdout.close()
        if saved is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = saved
        keyring.set_keyring(previous)
