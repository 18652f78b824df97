"""Reaching a profile's Pixel API, without Qt: `open_api(profile)` gives an `ApiConnection`, an
authenticated `ApiClient` and, for a stack on a remote engine, the tunnel it talks through.

Contract:
- A local stack's API is reached at the profile's `api_url` directly; no tunnel, docker-py not imported.
- A remote stack's API listens on the server's 127.0.0.1 only (`api_url` is that address as the server
  sees it): it is reached through SSH (a port forward) or, for a Docker engine over TLS, through the
  engine (an exec relay), `pixel.app.stack.tunnel`. The SSH host key accepted is the one saved in the
  profile; an unknown or changed key is a `StackError`, never accepted silently.
- The admin password comes from the system keyring (`secret_store`) unless given; a missing one is a
  `KeyringUnavailable` that names the account and the profile.
- `ApiConnection.close()` (or leaving its `with` block) closes the client, then the tunnel. Blocking:
  call from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pixel.app.client.api import ApiClient
from pixel.app.profiles import Profile

if TYPE_CHECKING:  # docker-py and paramiko are imported where used (the app's cold start)
    from pixel.app.stack.engine import EngineTarget
    from pixel.app.stack.tunnel import PortForward


@dataclass
class ApiConnection:
    """An API client and the tunnel it goes through (None for a local stack); closable once or more."""

    client: ApiClient
    tunnel: PortForward | None = None

    @property
    def base_url(self) -> str:
        """Where this computer reaches the API: the profile's address, or the tunnel's local end."""
        return self.client.base_url

    def close(self) -> None:
        self.client.close()
        if self.tunnel is not None:
            self.tunnel.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def is_remote(profile: Profile) -> bool:
    """Whether the profile's stack runs on another host (its API reached through a tunnel)."""
    return profile.engine.startswith("ssh://") or bool(profile.tls_dir)


def engine_target(profile: Profile) -> EngineTarget:
    """The Docker engine of a profile, with the SSH host key trusted in the wizard (no other is accepted).
    Reads an SSH key's passphrase from the keyring (call it on a worker thread); a missing one makes the
    connection fail with "ssh-key-locked"."""
    from pixel.app import secret_store
    from pixel.app.stack.engine import EngineTarget

    if profile.engine in ("", "local"):
        return EngineTarget()
    tls = Path(profile.tls_dir) if profile.tls_dir else None
    ssh_key = profile.ssh_key or profile.extra.get("ssh_key", "")  # extra: profiles of earlier versions
    passphrase = (
        (secret_store.get_secret(profile.name, "ssh_passphrase") or "") if profile.ssh_key_locked else ""
    )
    return EngineTarget(
        profile.engine,
        tls_ca=tls / "ca.pem" if tls else None,
        tls_cert=tls / "cert.pem" if tls else None,
        tls_key=tls / "key.pem" if tls else None,
        known_hosts=Path(profile.extra["known_hosts"]) if "known_hosts" in profile.extra else None,
        ssh_key=Path(ssh_key).expanduser() if ssh_key else None,
        host_key=profile.host_key,
        ssh_passphrase=passphrase,
    )


def connect_api(
    target: EngineTarget | None,
    project: str,
    api_url: str,
    username: str,
    password: str,
    *,
    offline_ok: bool = False,
    timeout: float = 10.0,
) -> ApiConnection:
    """A connection to the API at `api_url` of stack `project`: direct when `target` is None or local,
    else through a tunnel over the engine's connection. `offline_ok`: a server that cannot be reached now
    still gives a connection (its requests raise `Unreachable` until the server is back); host-key,
    certificate and login problems are raised at once either way."""
    if target is None or target.is_local:
        return ApiConnection(ApiClient(api_url, username, password, timeout=timeout))
    from pixel.app.stack.tunnel import stack_api_tunnel

    tunnel = stack_api_tunnel(target, project, api_url, offline_ok=offline_ok)
    return ApiConnection(ApiClient(tunnel.local_url, username, password, timeout=timeout), tunnel)


def open_api(profile: Profile, *, password: str | None = None, offline_ok: bool = True) -> ApiConnection:
    """The API of `profile`'s stack, signed in as its admin (the password from the keyring unless given).
    A remote server that is down now still gives a connection (`offline_ok`): the app shows its cache."""
    from pixel.app import secret_store

    if password is None:
        password = secret_store.get_secret(profile.name, "admin_password")
        if password is None:
            raise secret_store.KeyringUnavailable(
                f"No password for {profile.username!r} of {profile.name!r} in the keyring."
            )
    target = engine_target(profile) if is_remote(profile) else None
    return connect_api(
        target, profile.project, profile.api_url, profile.username, password, offline_ok=offline_ok
    )
