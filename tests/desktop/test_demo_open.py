"""`pixel-desktop --demo` against a real `pixel serve --demo` (both processes, Qt offscreen, a real Secret
Service): the first chart is drawn, the demo account's password exists only in the keyring (no output, no
file has it), a second start reuses it, and a folder with other accounts or a non-local API is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import pytest

from pixel.app import demo_profile, secret_store
from pixel.app.demo_profile import DemoError
from pixel.app.profiles import NO_ENGINE, ProfileStore
from pixel.server.settings import Settings
from tests.conftest import PixelProcess, free_port
from tests.desktop.conftest import SCREENSHOTS, LiveApi

LINE = re.compile(r"^first chart after \d+\.\d{3} s \((\d+) points, Live · updated \d\d:\d\d:\d\d\)$")


@pytest.fixture
def demo_serve(tmp_path: Path) -> Iterator[PixelProcess]:
    data = tmp_path / "pixel-data"
    data.mkdir()
    server = PixelProcess("serve", data, free_port(), free_port(), {})
    log = open(server.log_path, "ab")
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "pixel.server.cli", "serve", "--demo", "--host", "127.0.0.1"],
        env={
            **os.environ,
            "PIXEL_DATA_DIR": str(data),
            "PIXEL_PORT": str(server.port),
            "PIXEL_API_PORT": str(server.api_port),
            "PIXEL_WORKERS": "1",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        server._wait(f"{server.api}/health")
        server.wait_shipped(5000, timeout=180)
        yield server
    finally:
        server.stop(signal.SIGTERM)


def desktop(server: PixelProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXEL_API_PORT": str(server.api_port)}
    env["PIXEL_DATA_DIR"] = str(server.data_dir)
    env["PIXEL_HOST"] = "127.0.0.1"
    return subprocess.run(
        [sys.executable, "-m", "pixel.app.desktop.main", "--demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_demo_opens_the_running_demo_with_the_password_in_the_keyring_only(
    secret_service: Path, demo_serve: PixelProcess, private_dirs: Path
) -> None:
    shot = private_dirs / "demo.png"
    first = desktop(demo_serve, "--first-chart-exit", "90", "--screenshot", str(shot))
    assert first.returncode == 0, first.stderr
    match = LINE.match(first.stdout.strip().splitlines()[-1])
    assert match and int(match.group(1)) > 0, first.stdout
    password = keyring.get_password(secret_store.SERVICE, "Demo/admin_password")
    assert password and len(password) == 20
    # The account signs in with it and sees the demo's three sites, registered by --demo.
    login = httpx.post(f"{demo_serve.api}/api/auth/login", json={"username": "demo", "password": password})
    assert login.status_code == 200
    token = login.json()["access_token"]
    sites = httpx.get(f"{demo_serve.api}/api/sites", headers={"Authorization": f"Bearer {token}"}).json()[
        "items"
    ]
    assert sorted(s["domain"] for s in sites) == ["blog.example", "docs.example", "shop.example"]
    # The profile: connect-to-existing, on the demo's API, showing shop.example; no secret in it.
    saved = json.loads((private_dirs / "xdg_config_home" / "pixel-desktop" / "profiles.json").read_text())
    assert saved["current"] == "Demo"
    (profile,) = saved["profiles"]
    assert (profile["name"], profile["engine"], profile["api_url"], profile["username"]) == (
        "Demo",
        NO_ENGINE,
        demo_serve.api,
        "demo",
    )
    assert profile["site_id"] == next(s["id"] for s in sites if s["domain"] == "shop.example")
    # The password is in no output and no file: the app's folders, the demo's data folder, the serve log.
    for text in (first.stdout, first.stderr, demo_serve.log()):
        assert password not in text
    assert files_containing(private_dirs, password.encode()) == []
    assert files_containing(demo_serve.data_dir, password.encode()) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "desktop-demo.png").write_bytes(shot.read_bytes())

    # A second start keeps the password that still signs in (no session of the account ended).
    again = desktop(demo_serve, "--first-chart-exit", "90")
    assert again.returncode == 0, again.stderr
    assert keyring.get_password(secret_store.SERVICE, "Demo/admin_password") == password
    # A password that no longer signs in (reset on the server) is replaced by a new one that does.
    keyring.set_password(secret_store.SERVICE, "Demo/admin_password", "stale-password")
    third = desktop(demo_serve, "--first-chart-exit", "90")
    assert third.returncode == 0, third.stderr
    renewed = keyring.get_password(secret_store.SERVICE, "Demo/admin_password")
    assert renewed not in (None, "stale-password", password)
    secret_store.delete_profile("Demo")


def test_demo_refuses_a_folder_with_other_accounts(
    secret_service: Path, live_api: LiveApi, private_dirs: Path
) -> None:
    meta = Settings(data_dir=live_api.server.data_dir).meta_db_path
    with pytest.raises(DemoError) as caught:
        demo_profile.ensure_demo_profile(ProfileStore(), meta, live_api.url)
    assert str(caught.value) == (
        "the data folder has other accounts (owner): --demo is for a demo's folder only; "
        "open that Pixel with its own account instead"
    )
    users = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixel.server.cli",
            "user",
            "list",
            "--data-dir",
            str(live_api.server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split("\t")[1] for line in users.splitlines()] == ["owner"]
    assert ProfileStore().all() == []
    assert secret_store.get_secret("Demo", "admin_password") is None


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8082"),
        ("0.0.0.0", "http://127.0.0.1:8082"),
        ("", "http://127.0.0.1:8082"),
        ("localhost", "http://localhost:8082"),
        ("::1", "http://[::1]:8082"),
        ("::", "http://127.0.0.1:8082"),
        ("127.0.0.2", "http://127.0.0.2:8082"),
    ],
)
def test_demo_api_address_is_local(host: str, url: str) -> None:
    assert demo_profile.api_url(host, 8082) == url


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.5", "example.com", "2001:db8::1", "localhost.evil"])
def test_demo_refuses_an_api_elsewhere(host: str) -> None:
    with pytest.raises(DemoError, match=r"^--demo opens a Pixel on this computer only, not on "):
        demo_profile.api_url(host, 8082)


def test_demo_with_no_pixel_running_says_so(tmp_path: Path, private_dirs: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixel.app.desktop.main",
            "--demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--demo-wait",
            "1",
        ],
        env={
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "PIXEL_API_PORT": str(port),
            "PIXEL_HOST": "127.0.0.1",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"pixel-desktop: no Pixel answers at http://127.0.0.1:{port}: start it with `pixel serve --demo` "
        "(or scripts/run) first"
    )
    assert not (tmp_path / "d").exists()
