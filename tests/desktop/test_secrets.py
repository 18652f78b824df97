"""Secrets only in the OS keyring (a real Secret Service: gnome-keyring on a private D-Bus session);
plain settings in the config folder, never a secret there; no usable keyring -> a clear message and
no plaintext fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from pixel.app import secret_store
from pixel.app.client import ReportCache
from pixel.app.desktop.window import MainWindow
from pixel.app.profiles import Profile, ProfileError, ProfileStore, config_dir
from tests.desktop.conftest import save_screenshot

SECRETS = {
    "admin_password": "Adm1n-pa55word-7f3c",
    "ssh_passphrase": "ssh-passphrase-91ab",
    "clickhouse_password": "ch-secret-4d2e",
    "maxmind_license_key": "MM-licence-88aa",
    "api_token": "tok-55e1",
}


def files_containing(root: Path, needles: list[str]) -> list[tuple[Path, str]]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [(path, n) for n in needles if n.encode() in data]
    return hits


def test_round_trip_through_the_secret_service(secret_service: Path) -> None:
    assert secret_store.check() == "keyring.backends.SecretService.Keyring"
    for kind, value in SECRETS.items():
        secret_store.set_secret("home", kind, value)
    assert {k: secret_store.get_secret("home", k) for k in SECRETS} == SECRETS
    assert keyring.get_password("pixel-desktop", "home/admin_password") == SECRETS["admin_password"]
    assert secret_store.get_secret("office", "admin_password") is None
    assert secret_store.delete_secret("home", "api_token") is True
    assert secret_store.delete_secret("home", "api_token") is False
    assert secret_store.get_secret("home", "api_token") is None
    with pytest.raises(ValueError, match="unknown secret kind 'password'"):
        secret_store.set_secret("home", "password", "x")
    # the keyring file on disk is encrypted: no secret in clear
    assert (secret_service / "keyrings").is_dir()
    assert files_containing(secret_service, list(SECRETS.values())) == []
    secret_store.delete_profile("home")
    assert secret_store.get_secret("home", "admin_password") is None


def test_no_secret_is_written_to_the_config_folder(qtbot, secret_service: Path, private_dirs: Path) -> None:
    store = ProfileStore()
    profile = Profile(
        "home",
        engine="ssh://pixel@127.0.0.1:1",
        api_url="http://127.0.0.1:1",
        domain="a.example",
        extra={"ssh_key": "~/.ssh/id_pixel"},
    )
    store.save(profile)
    for kind, value in SECRETS.items():
        secret_store.set_secret("home", kind, value)
    window = MainWindow(
        store, ReportCache()
    )  # the app opens the profile: reads its password from the keyring
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.runner.busy == 0, timeout=30_000)
    assert window.profile is not None and window.profile.name == "home"
    assert window.dashboard.source is not None and window.dashboard.source.client is not None
    assert window.dashboard.source.client._password == SECRETS["admin_password"]
    assert window.keyring_banner.isHidden()
    # the stack is contacted only when its page is shown; an unreachable engine is said in plain words
    window.tabs.setCurrentWidget(window.stack)
    assert window.stack.target_label.text() == "home: stack 'pixel' on ssh://pixel@127.0.0.1:1"
    qtbot.waitUntil(lambda: window.stack.message.text() not in ("", "Connecting…"), timeout=30_000)
    assert "127.0.0.1" in window.stack.message.text()
    window.close()
    assert (
        store.path
        == config_dir() / "profiles.json"
        == private_dirs / "xdg_config_home" / "pixel-desktop" / "profiles.json"
    )
    assert store.get("home") == profile
    everything = [*SECRETS.values()]
    assert files_containing(private_dirs / "xdg_config_home", everything) == []
    assert files_containing(private_dirs / "xdg_cache_home", everything) == []
    assert files_containing(private_dirs / "xdg_data_home", everything) == []
    with pytest.raises(ProfileError, match="looks like a secret"):
        Profile("x", extra={"ssh_key_passphrase": "nope"})
    secret_store.delete_profile("home")


def test_no_usable_keyring_says_so_and_never_falls_back(qtbot, private_dirs: Path) -> None:
    # a fresh process with no D-Bus session: keyring finds no backend, the app says what to do
    code = (
        "from pixel.app import secret_store\n"
        "try:\n    secret_store.set_secret('home', 'admin_password', 'Adm1n-pa55word-7f3c')\n"
        "except secret_store.KeyringUnavailable as exc:\n    print(exc); raise SystemExit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("No usable keyring backend (keyring.backends.fail.Keyring). Pixel keeps")
    assert "gnome-keyring" in done.stdout
    assert files_containing(private_dirs, ["Adm1n-pa55word-7f3c"]) == []

    # the same backend in the GUI: a banner with the fix, and reads fail too
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        with pytest.raises(secret_store.KeyringUnavailable):
            secret_store.get_secret("home", "admin_password")
        window = MainWindow(ProfileStore(), ReportCache())
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(window.keyring_banner.isVisible, timeout=10_000)
        assert window.keyring_banner.text().startswith("No usable keyring backend")
        save_screenshot(window, "keyring-missing")
        window.close()
    finally:
        keyring.set_keyring(previous)
