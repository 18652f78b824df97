"""Secrets of the desktop app (admin and API passwords, SSH key passphrases, ClickHouse password,
MaxMind licence key) live only in the OS keyring, through `keyring`.

With no usable backend (a headless Linux without a Secret Service, a locked collection) every call
raises `KeyringUnavailable` saying so and how to fix it. There is no plaintext fallback.
"""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.errors

from pixel.app.errors import AppError

SERVICE = "pixel-desktop"

# What a secret is for: the key within a profile.
KINDS = (
    "admin_password",
    "api_password",
    "ssh_passphrase",
    "clickhouse_password",
    "maxmind_license_key",
    "api_token",
)

FIX = (
    "Pixel keeps passwords in your system keyring and found none it can use. "
    "On Linux, install and unlock a Secret Service (GNOME Keyring or KWallet), e.g. "
    "`sudo apt install gnome-keyring` and log in to a desktop session; on a server, run "
    "`dbus-run-session` with `gnome-keyring-daemon --unlock`. On macOS and Windows the "
    "system keychain works out of the box."
)


class KeyringUnavailable(AppError, RuntimeError):
    """No usable keyring: the message says what to do."""


def _username(profile: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown secret kind {kind!r}; valid: {', '.join(KINDS)}")
    if not profile:
        raise ValueError("a profile name is required")
    return f"{profile}/{kind}"


def backend_name() -> str:
    kr = keyring.get_keyring()
    return f"{type(kr).__module__}.{type(kr).__name__}"


def check() -> str:
    """The backend's name if it is usable; raises KeyringUnavailable otherwise."""
    kr = keyring.get_keyring()
    name = backend_name()
    if kr.priority <= 0 or name.startswith(("keyring.backends.fail", "keyring.backends.null")):
        raise KeyringUnavailable(f"No usable keyring backend ({name}). {FIX}")
    if name.startswith("keyrings.alt"):
        raise KeyringUnavailable(f"The keyring backend {name} stores secrets in a plain file. {FIX}")
    return name


def set_secret(profile: str, kind: str, value: str) -> None:
    user = _username(profile, kind)
    check()
    try:
        keyring.set_password(SERVICE, user, value)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring refused to store the secret: {exc}. {FIX}") from exc


def get_secret(profile: str, kind: str) -> str | None:
    user = _username(profile, kind)
    check()
    try:
        return keyring.get_password(SERVICE, user)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring could not be read: {exc}. {FIX}") from exc


def delete_secret(profile: str, kind: str) -> bool:
    user = _username(profile, kind)
    check()
    try:
        keyring.delete_password(SERVICE, user)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring could not delete the secret: {exc}. {FIX}") from exc
    return True


def delete_profile(profile: str) -> None:
    for kind in KINDS:
        delete_secret(profile, kind)
