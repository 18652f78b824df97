"""Errors a non-technical person can act on: what went wrong, and what to do about it.

`REMEDIES` is the one place for the "what to do" of every stack error code whose advice does not depend
on the case: a `StackError` raised with such a code and no action of its own gets it, so the CLI (its
"What to do:" line) and the app (the stack page, the main window's banner, the wizard) print the same
text. `Remedy.wizard` says the same in the setup wizard's own words (its buttons) where they differ;
`wizard_action` picks it. An action that names the case (a path, a port) stays where it is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pixel.app.errors import AppError


class StackError(AppError):
    """`problem` says what is wrong in plain words; `action` says what the user can do."""

    def __init__(self, problem: str, action: str = "", *, code: str = "error") -> None:
        super().__init__(problem)
        self.problem = problem
        self.action = action or action_for(code)
        self.code = code  # stable identifier for the GUI and tests, e.g. "port-in-use"

    def __str__(self) -> str:
        return f"{self.problem}\n  What to do: {self.action}" if self.action else self.problem


@dataclass(frozen=True)
class Remedy:
    action: str  # what to do, in words that suit every front end
    wizard: str = ""  # the same in the setup wizard's words, where they differ


REMEDIES: Mapping[str, Remedy] = MappingProxyType(
    {
        # the Docker engine (engine.py)
        "docker-missing": Remedy(
            "Install Docker Desktop (Windows, macOS) or the docker.io / docker-ce package (Linux).",
            "Install Docker Desktop (Windows, macOS) or Docker Engine (Linux), then press Check again.",
        ),
        "engine-down": Remedy(
            "Start Docker Desktop, or on Linux run: sudo systemctl start docker",
            "Start Docker Desktop (or `sudo systemctl start docker`), then press Check again.",
        ),
        "engine-permission": Remedy(
            "Add your user to the 'docker' group (sudo usermod -aG docker $USER), then log out and in again.",
            "Add your user to the docker group (`sudo usermod -aG docker $USER`) and log in again.",
        ),
        "engine-unreachable": Remedy(
            "Check the address, that the engine is running and that a firewall lets you through."
        ),
        "engine-too-old": Remedy("Update Docker to version 20.10 or newer."),
        "tls-rejected": Remedy(
            "Use the CA certificate and client certificate made for this server (ca.pem, cert.pem, key.pem)."
        ),
        # SSH (engine.py, tunnel.py)
        "ssh-unreachable": Remedy(
            "Check the host name and port, and that the server is switched on and reachable."
        ),
        "ssh-key-refused": Remedy(
            "Add the public key to ~/.ssh/authorized_keys of that user on the server, and check the user name.",
            "Add your SSH public key to the server's ~/.ssh/authorized_keys.",
        ),
        "ssh-key-locked": Remedy(
            "Type the key's passphrase in the setup wizard; Pixel keeps it in your system keyring.",
            "Go Back, type the key's passphrase (Pixel keeps it in your system keyring), then Next.",
        ),
        "ssh-key-unreadable": Remedy("Check the key's passphrase and the key file."),
        "host-key-unknown": Remedy(
            "Compare its fingerprint with the one the server's administrator gives you, then trust it.",
            "Compare the fingerprint below with the server's, then press 'Trust this host'.",
        ),
        "host-key-changed": Remedy(
            "Ask the server's administrator whether the key changed; only then remove the old entry and "
            "trust the new fingerprint."
        ),
        "bad-host-key": Remedy(
            "Remove it from the stack's settings and trust the server's fingerprint again."
        ),
        "fingerprint-mismatch": Remedy(
            "Do not connect; ask the server's administrator which fingerprint is right."
        ),
        # a stack's containers (tunnel.py)
        "not-running": Remedy("Start the stack."),
        # onboarding: the first site (onboarding.py)
        "bad-domain": Remedy(
            "Type the domain as in the site's address, e.g. example.com: letters, digits, dots and dashes, "
            "without https:// or a path."
        ),
        "admin-exists": Remedy(
            "Create the site with the admin account made at the first install: in the desktop app, or "
            "through the API (POST /api/sites)."
        ),
        "bad-timezone": Remedy("Choose a time zone from the list, e.g. Europe/Paris or UTC."),
        "api-unreachable": Remedy(
            "Check that the stack is running and healthy (`pixel stack status`, or the app's Stack page), "
            "then install again with the same admin account: the installed stack is kept."
        ),
        "site-refused": Remedy(
            "Check the domain and that the account is an admin of all sites, then install again with the "
            "same admin account: the installed stack is kept."
        ),
    }
)
"""Error code -> what to do about it (see the module's docstring)."""


def action_for(code: str) -> str:
    """The "what to do" of error `code`, or "" when it depends on the case."""
    remedy = REMEDIES.get(code)
    return remedy.action if remedy else ""


def wizard_action(exc: StackError) -> str:
    """What to do about `exc`, in the setup wizard's words when they differ."""
    remedy = REMEDIES.get(exc.code)
    return remedy.wizard if remedy and remedy.wizard else exc.action
