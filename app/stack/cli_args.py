"""The argument parser of `pixel stack`: every sub-command and its options, apart from what they do (cli.py).

Kept on its own so that cli.py reads as the table of sub-command functions and this file as the reference of
options; `add_parsers` takes the dispatcher so the two modules do not import each other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_BACKUP_DIR = "~/.local/share/pixel/backups"


def known_hosts_default() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("pixel", appauthor=False)) / "known_hosts"


def add_parsers(subparsers: Any, run: Callable[[argparse.Namespace], int]) -> None:
    """The `pixel stack` parser and its sub-commands; `run` dispatches them (cli.run)."""
    stack = subparsers.add_parser("stack", help="install and manage a Pixel stack on a Docker engine")
    stack.set_defaults(func=run)
    sub = stack.add_subparsers(dest="stack_command", required=True)

    def engine_opts(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("engine")
        g.add_argument(
            "--engine", default="", help="ssh://user@host[:port] or tcp://host:2376 (default: local)"
        )
        g.add_argument("--ssh-key", type=Path, help="private key for ssh://")
        g.add_argument("--known-hosts", type=Path, help="trusted SSH host keys (default: Pixel's own file)")
        g.add_argument("--tls-ca", type=Path, help="CA certificate for tcp:// (ca.pem)")
        g.add_argument("--tls-cert", type=Path, help="client certificate (cert.pem)")
        g.add_argument("--tls-key", type=Path, help="client key (key.pem)")
        g.add_argument("--name", default="pixel", help="stack name (default: pixel)")
        g.add_argument(
            "--topology", choices=("compact", "standard"), help="default: the installed one, else compact"
        )
        g.add_argument(
            "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting (.env name)"
        )

    p = sub.add_parser("compose", help="write compose/docker-compose*.yml and .env.example from the spec")
    p.add_argument("--out", type=Path, default=Path("compose"), help="folder (default: compose)")
    p.add_argument("--check", action="store_true", help="only report whether the files are up to date")

    p = sub.add_parser("trust", help="show an SSH server's host key fingerprint and trust it")
    engine_opts(p)
    p.add_argument(
        "--fingerprint", help="trust without asking if the key has exactly this SHA256 fingerprint"
    )

    for name, text in (
        ("check", "is the engine ready: version, memory, disk, ports"),
        ("status", "containers, health, CPU, memory, ingest figures"),
        ("start", "start the stack"),
        ("stop", "stop the stack"),
        ("restart", "restart the stack"),
    ):
        p = sub.add_parser(name, help=text)
        engine_opts(p)
        if name == "status":
            p.add_argument("--json", action="store_true")

    p = sub.add_parser("install", help="install (or repair) the stack; a second run changes nothing")
    engine_opts(p)
    image_opts(p)
    g = p.add_argument_group("first site")
    g.add_argument("--site", metavar="DOMAIN", help="also create this site and print its tracking snippet")
    g.add_argument("--site-timezone", default="UTC", metavar="ZONE", help="its time zone for reports (UTC)")

    p = sub.add_parser("logs", help="show (or follow) the logs")
    engine_opts(p)
    p.add_argument("--service", help="one service only")
    p.add_argument("--tail", type=int, default=100)
    p.add_argument("-f", "--follow", action="store_true")

    p = sub.add_parser("upgrade", help="back up, switch to a new image, roll back if it is not healthy")
    engine_opts(p)
    p.add_argument("--image", required=True, help="the new Pixel image reference")
    p.add_argument("--backup-dir", type=Path, default=Path(DEFAULT_BACKUP_DIR).expanduser())
    image_opts(p, with_tag=False)

    p = sub.add_parser("backup", help="all data of the stack into one file on this computer")
    engine_opts(p)
    p.add_argument("file", type=Path)

    p = sub.add_parser("restore", help="replace the stack's data with a backup file")
    engine_opts(p)
    p.add_argument("file", type=Path)

    p = sub.add_parser("uninstall", help="remove containers and network")
    engine_opts(p)
    p.add_argument("--delete-data", action="store_true", help="also delete the data volumes (no undo)")

    p = sub.add_parser("image", help="build the Pixel image on the engine, or write its build context")
    engine_opts(p)
    p.add_argument("--tag", help="image reference (default: PIXEL_IMAGE's default)")
    p.add_argument("--base", default="", help="base image (default: python:3.11-slim-bookworm)")
    p.add_argument("--online", action="store_true", help="let the build fetch dependencies from PyPI")
    p.add_argument("--context", type=Path, help="only write the build context into this folder")
    p.add_argument("--network-none", action="store_true", help="build without network (offline context)")


def image_opts(p: argparse.ArgumentParser, with_tag: bool = True) -> None:
    g = p.add_argument_group("image")
    g.add_argument("--image-source", choices=("pull", "build", "load"), default="pull")
    g.add_argument("--image-path", type=Path, help="build: context folder; load: saved image file")
    g.add_argument("--image-base", default="", help="build: base image")
