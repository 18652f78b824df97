"""Making, changing and removing saved profiles without the wizard (no Qt; blocking, call from a worker).

Contract:
- `connect_existing` makes a profile that is just an API address and an account (`NO_ENGINE`): it signs in
  first, so a wrong address or password is refused before anything is saved; the password goes to the
  keyring only, then the profile is saved.
- `check_api_url` accepts http(s) URLs with a host and nothing after the path; anything else is a
  `ProfileError` naming what is wrong.
- `save_edit` stores the changed profile and, when given, a new account password or SSH key passphrase in
  the keyring (an empty passphrase deletes it and marks the key as not locked). The trusted host key is only
  changed by the caller, after the user confirmed the new fingerprint.
- `forget` deletes every keyring entry of the profile first, then the profile: a keyring that cannot be
  reached leaves the profile in place (no secret left without its profile).
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from pixel.app import secret_store
from pixel.app.client.api import ApiClient
from pixel.app.profiles import NO_ENGINE, Profile, ProfileError, ProfileStore


def check_api_url(url: str) -> str:
    """The API address without a trailing slash, or a `ProfileError`."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"API address {url!r}: expected http://host:port or https://host")
    if parts.query or parts.fragment:
        raise ProfileError(f"API address {url!r}: no ? or # part")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ProfileError(f"API address {url!r}: the port is not a number from 1 to 65535") from None
    return url.rstrip("/")


def connect_existing(
    store: ProfileStore, name: str, api_url: str, username: str, password: str, *, timeout: float = 10.0
) -> Profile:
    """Sign in at `api_url`; then keep the password in the keyring and save the profile."""
    if store.get(name) is not None:
        raise ProfileError(f"a profile named {name!r} exists; choose another name")
    profile = Profile(name, engine=NO_ENGINE, project="", api_url=check_api_url(api_url), username=username)
    with ApiClient(profile.api_url, username, password, timeout=timeout) as client:
        client.login()
        sites = client.sites()
    if sites:
        profile.site_id = sites[0]["id"]
        profile.domain = sites[0]["domain"]
    secret_store.set_secret(name, "admin_password", password)
    store.save(profile)
    return profile


def save_edit(
    store: ProfileStore,
    profile: Profile,
    *,
    password: str | None = None,
    passphrase: str | None = None,
) -> Profile:
    """Save `profile` (same name) with the secrets given; None leaves a secret as it is."""
    if store.get(profile.name) is None:
        raise ProfileError(f"no profile {profile.name!r}")
    if profile.api_url:
        profile = replace(profile, api_url=check_api_url(profile.api_url))
    if password is not None:
        secret_store.set_secret(profile.name, "admin_password", password)
    if passphrase is not None:
        if passphrase:
            secret_store.set_secret(profile.name, "ssh_passphrase", passphrase)
        else:
            secret_store.delete_secret(profile.name, "ssh_passphrase")
        profile = replace(profile, ssh_key_locked=bool(passphrase))
    store.save(profile)
    return profile


def forget(store: ProfileStore, name: str) -> None:
    """Remove the profile and all its keyring entries."""
    secret_store.delete_profile(name)
    store.remove(name)
