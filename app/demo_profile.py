"""`pixel-desktop --demo`: a connect-to-existing profile for the `pixel serve --demo` running on this
computer, its account's password handed over through the system keyring (no Qt; blocking, call it before
the window or from a worker).

Contract:
- The demo's account `demo` (an admin) is made, or given a new password, by this process in the data
  folder's metadata DB, the way `pixel user add` / `reset-password` do while `pixel serve` runs. The
  password is generated here, goes to the keyring only (`secret_store`), and is never printed, logged or
  written to a file; `pixel serve --demo` itself makes no account and prints nothing secret.
- A password already in the keyring that still signs in is kept (no other session of the account ends).
- Only for a demo's data folder: one with an account other than `demo` is refused (`DemoError`), so the
  flag never adds an admin to a real installation; and only for an API on this computer (loopback).
- The demo's three sites are registered through the API when missing (the demo sends their traffic
  unregistered), so the dashboard has them; the profile `Demo` (`NO_ENGINE`) shows the first one.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from pixel.app import secret_store
from pixel.app.client.api import ApiClient, AuthError
from pixel.app.errors import AppError
from pixel.app.profiles import NO_ENGINE, Profile, ProfileStore

PROFILE = "Demo"
USERNAME = "demo"
DEMO_SITES = ("shop.example", "blog.example", "docs.example")


class DemoError(AppError, RuntimeError):
    """`--demo` cannot be set up; the message says why and what to do."""


def api_url(host: str, port: int) -> str:
    """The demo API's address from the serve settings; loopback only (a wildcard listens on it too)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise DemoError(f"--demo opens a Pixel on this computer only, not on {host}")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def wait_for_api(url: str, timeout: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """Until `url`/health answers (a `scripts/run` starts the desktop right after `pixel serve`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DemoError(
                f"no Pixel answers at {url}: start it with `pixel serve --demo` (or scripts/run) first"
            )
        sleep(0.2)


def _signs_in(url: str, password: str) -> bool:
    try:
        with ApiClient(url, USERNAME, password) as client:
            client.login()
        return True
    except AuthError:
        return False


def _set_account(meta_db_path: Path) -> str:
    """Create the `demo` admin, or give it a new password; the password (never shown)."""
    previous = os.umask(0o077)  # as `pixel user`: files of the metadata DB (password hashes) private
    try:
        return _write_account(meta_db_path)
    finally:
        os.umask(previous)


def _write_account(meta_db_path: Path) -> str:
    try:
        from pixel.server.api.meta import MetaDB
        from pixel.server.api.security import generate_password, hash_password
    except ImportError:
        raise DemoError(
            "--demo needs Pixel's server installed next to the app (pip install -e .[server])"
        ) from None

    meta = MetaDB(meta_db_path)
    others = sorted(u["username"] for u in meta.users() if u["username"] != USERNAME)
    if others:
        raise DemoError(
            f"the data folder has other accounts ({', '.join(others)}): --demo is for a demo's folder "
            "only; open that Pixel with its own account instead"
        )
    password = generate_password()
    user = meta.user_by_name(USERNAME)
    if user is None:
        meta.create_user(USERNAME, hash_password(password), "admin", None)
    else:
        meta.update_user(
            user["id"], role="admin", sites=None, disabled=False, password_hash=hash_password(password)
        )
    return password


def ensure_demo_profile(
    store: ProfileStore, meta_db_path: Path, url: str, *, timezone: str = "UTC"
) -> Profile:
    """The `Demo` profile of the demo API at `url`, signed in, its password in the keyring."""
    secret_store.check()  # no keyring: say so before an account is touched
    password = secret_store.get_secret(PROFILE, "admin_password")
    if password is None or not _signs_in(url, password):
        password = _set_account(meta_db_path)
        secret_store.set_secret(PROFILE, "admin_password", password)
    with ApiClient(url, USERNAME, password) as client:
        client.login()
        known = {s["domain"] for s in client.sites()}
        for domain in DEMO_SITES:
            if domain not in known:
                client.create_site(domain, timezone)
        sites = client.sites()
    profile = store.get(PROFILE) or Profile(PROFILE, engine=NO_ENGINE, project="")
    profile.engine, profile.project, profile.api_url, profile.username = NO_ENGINE, "", url, USERNAME
    first = next((s for s in sites if s["domain"] == DEMO_SITES[0]), None)
    if first is not None and profile.site_id not in {s["id"] for s in sites}:
        profile.site_id, profile.domain = int(first["id"]), str(first["domain"])
    store.save(profile)
    store.set_current(PROFILE)
    return profile
