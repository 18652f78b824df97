"""Plain settings of the desktop app: one profile per Pixel stack (where it runs, its API and collector
addresses, the admin user name, the site shown last). Stored as JSON in the platformdirs config
folder. Never a secret here: those go to the keyring (`pixel.app.secret_store`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from pixel.app.errors import AppError

APP_NAME = "pixel-desktop"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
# Keys that would carry a secret: refused, so no caller can put one in the plain file by mistake.
_SECRET_WORDS = ("password", "passphrase", "token", "secret", "license", "licence")


# The engine of a "connect to an existing Pixel" profile: just an API address and an account (a colleague's
# Pixel, or a stack installed by hand); no Docker engine is contacted and the app shows no stack page.
NO_ENGINE = "none"


class ProfileError(AppError, ValueError):
    pass


@dataclass
class Profile:
    name: str
    engine: str = "local"  # "local", ssh://user@host[:port] or tcp://host:2376
    project: str = "pixel"  # the stack's name on the engine
    # e.g. http://127.0.0.1:8082. For ssh:// it is the address *on the server* (the API listens on the
    # server's loopback only): the app reaches it through an SSH tunnel (`pixel.app.stack.tunnel`).
    api_url: str = ""
    collector_url: str = ""  # what visitors' browsers reach
    username: str = "admin"
    domain: str = ""  # the first site's domain
    site_id: int | None = None  # last site shown
    period: str = "30d"
    tls_dir: str = ""  # folder with ca.pem/cert.pem/key.pem for tcp://
    ssh_key: str = ""  # private key file for ssh://
    ssh_key_locked: bool = False  # the key has a passphrase: it is in the keyring ("ssh_passphrase")
    # The SSH host key the user trusted in the wizard, as one known_hosts line ("[host]:port type key").
    # A public key, so plain config; every later connection (stack page, API tunnel) accepts only it.
    host_key: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def has_engine(self) -> bool:
        """False for a connect-to-existing profile (`NO_ENGINE`): no stack to manage."""
        return self.engine != NO_ENGINE

    def __post_init__(self) -> None:
        if not _NAME.match(self.name or ""):
            raise ProfileError(f"profile name {self.name!r}: use 1-64 letters, digits, space, _ . -")
        if self.host_key and len(self.host_key.split()) != 3:
            raise ProfileError(
                f"host_key {self.host_key[:40]!r}: expected one known_hosts line, 'host type key'"
            )
        for key in self.extra:
            if any(word in key.lower() for word in _SECRET_WORDS):
                raise ProfileError(
                    f"{key!r} looks like a secret: secrets belong in the keyring, not in settings"
                )


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


class ProfileStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "profiles.json"

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"profiles": [], "current": None}
        except ValueError as exc:
            raise ProfileError(f"{self.path} is not valid JSON ({exc}); fix or remove it") from None

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    def all(self) -> list[Profile]:
        known = {f.name for f in fields(Profile)}
        return [Profile(**{k: v for k, v in p.items() if k in known}) for p in self._read()["profiles"]]

    def get(self, name: str) -> Profile | None:
        return next((p for p in self.all() if p.name == name), None)

    def save(self, profile: Profile) -> None:
        data = self._read()
        data["profiles"] = [p for p in data["profiles"] if p["name"] != profile.name] + [asdict(profile)]
        data["current"] = data.get("current") or profile.name
        self._write(data)

    def remove(self, name: str) -> None:
        data = self._read()
        data["profiles"] = [p for p in data["profiles"] if p["name"] != name]
        if data.get("current") == name:
            data["current"] = data["profiles"][0]["name"] if data["profiles"] else None
        self._write(data)

    def current(self) -> Profile | None:
        data = self._read()
        return self.get(data["current"]) if data.get("current") else None

    def set_current(self, name: str) -> None:
        if self.get(name) is None:
            raise ProfileError(f"no profile {name!r}")
        data = self._read()
        data["current"] = name
        self._write(data)
