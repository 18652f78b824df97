"""`pixel-desktop --first-chart-exit [--screenshot] [--password-stdin]` as a process, against the real
`pixel serve` of the desktop fixtures, with private XDG folders and no keyring (no D-Bus session): the
password given on standard input is used for this run only and stored nowhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from pixel.app.profiles import Profile, ProfileStore
from tests.conftest import free_port
from tests.desktop.conftest import LiveApi

LINE = re.compile(r"^first chart after (\d+\.\d{3}) s \((\d+) points, Live · updated \d\d:\d\d:\d\d\)$")


def run(
    xdg: Path, args: list[str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")
    }
    env.update({v: str(xdg / v.lower()) for v in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")})
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(
        [sys.executable, "-m", "pixel.app.desktop.main", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def profile(xdg: Path, name: str, api_url: str, site_id: int) -> None:
    ProfileStore(xdg / "xdg_config_home" / "pixel-desktop" / "profiles.json").save(
        Profile(name, api_url=api_url, username="owner", site_id=site_id)
    )


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    return tmp_path / "xdg"


def test_live_first_chart_with_the_password_on_stdin(live_api: LiveApi, xdg: Path) -> None:
    site = live_api.sites["shop.example"]
    profile(xdg, "live", live_api.url, site)
    shot = xdg / "first-chart.png"
    done = run(
        xdg,
        ["--profile", "live", "--first-chart-exit", "60", "--screenshot", str(shot), "--password-stdin"],
        stdin=live_api.password + "\n",
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    match = LINE.match(line)
    assert match, line
    with closing(live_api.http()) as http:
        answer = http.get(f"/api/sites/{site}/reports/timeseries", params={"period": "30d"})
        points = answer.json()["points"]
    assert int(match.group(2)) == len(points) > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing about the password was written anywhere in the app's folders
    for path in xdg.rglob("*"):
        if path.is_file():
            assert live_api.password.encode() not in path.read_bytes(), path


def test_wrong_password_draws_nothing_and_fails(live_api: LiveApi, xdg: Path) -> None:
    profile(xdg, "live", live_api.url, live_api.sites["shop.example"])
    done = run(xdg, ["--profile", "live", "--first-chart-exit", "4", "--password-stdin"], stdin="wrong\n")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == "no chart within 4 s"
    # the app did not retry the refused password until the account was locked: the owner can still sign in
    with closing(live_api.http()) as http:
        assert http.get("/api/auth/me").status_code == 200


def test_no_server_and_no_cache_fails_within_its_time(xdg: Path) -> None:
    profile(xdg, "gone", f"http://127.0.0.1:{free_port()}", 1)
    done = run(xdg, ["--first-chart-exit", "2", "--password-stdin"], stdin="x\n", timeout=60)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip().splitlines()[-1] == "no chart within 2 s"


def test_flag_errors(xdg: Path) -> None:
    done = run(xdg, ["--password-stdin"], stdin="x\n", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "pixel-desktop: error: --password-stdin needs a profile: --profile NAME"
    )
    done = run(xdg, ["--screenshot", "x.png"], timeout=60)
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1] == "pixel-desktop: error: --screenshot needs --first-chart-exit"
    )
