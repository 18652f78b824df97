"""`pixel` fails with one clear line for the problems an operator meets first."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import free_port


def run_pixel(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_port_in_use(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_pixel(
            "serve", "--data-dir", str(tmp_path), "--port", str(port), "--api-port", str(free_port())
        )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"pixel: port {port} on 127.0.0.1 (collector) is already in use; "
        "stop what uses it or pick another port"
    )


def test_data_folder_not_writable(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = run_pixel(
        "serve",
        "--data-dir",
        str(blocker / "data"),
        "--port",
        str(free_port()),
        "--api-port",
        str(free_port()),
    )
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"pixel: the data folder {blocker / 'data'} is not writable: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_second_serve_on_the_same_data_folder(pixel_server) -> None:
    r = run_pixel(
        "serve",
        "--data-dir",
        str(pixel_server.data_dir),
        "--port",
        str(free_port()),
        "--api-port",
        str(free_port()),
    )
    assert r.returncode == 2
    pid = pixel_server.proc.pid
    assert r.stderr.strip() == (
        f"pixel: another pixel serve (pid {pid}) is already using the data folder {pixel_server.data_dir}"
    )


def test_bad_setting_is_named(tmp_path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "collect", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PIXEL_TRUSTED_PROXIES": "10.0.0.0/99"},
    )
    assert r.returncode == 2
    assert r.stderr.strip().startswith("pixel: PIXEL_TRUSTED_PROXIES: ")
