"""`pixel user ...` (accounts in the metadata DB) and `pixel api` (the API alone, e.g. against a
ClickHouse server). The main CLI calls `add_cli(subparsers)` and hands matching args to `run(args)`.

`pixel user add` works while `pixel serve` runs: it only touches the SQLite metadata DB.
`--sites` takes ids of existing sites only (an unknown or malformed id is an error line and exit 2,
nothing created); `reset-password` ends every session of the user at once.
"""

from __future__ import annotations

import argparse
import sys

from pixel.server import datadir
from pixel.server.api.meta import Conflict, UnknownSites
from pixel.server.settings import Settings

COMMANDS = ("user", "api")


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    user = subparsers.add_parser("user", help="manage API accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create an account; prints a generated password once")
    add.add_argument("username")
    add.add_argument("--role", choices=("admin", "viewer"), default="admin")
    add.add_argument("--sites", default=None, help="comma-separated site ids a viewer may see (default: all)")
    reset = user_sub.add_parser("reset-password", help="set a new generated password; prints it once")
    reset.add_argument("username")
    user_sub.add_parser("list", help="list accounts")
    for p in (add, reset, user_sub.choices["list"]):
        p.add_argument("--data-dir", default=None, help="data folder (default: PIXEL_DATA_DIR)")
        p.set_defaults(func=run)

    api = subparsers.add_parser("api", help="run the API alone (PIXEL_STORE=clickhouse to share a server)")
    api.add_argument("--data-dir", default=None)
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None, help="default: PIXEL_API_PORT (8082)")
    api.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        api_port=getattr(args, "port", None),
    )


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    datadir.secure(settings.data_dir)  # umask 077 before the metadata DB (password hashes) is touched
    if args.command == "api":
        return _serve(settings)
    return _user(settings, args)


def _user(settings: Settings, args: argparse.Namespace) -> int:
    from pixel.server.api.app import open_meta
    from pixel.server.api.security import generate_password, hash_password

    meta = open_meta(settings)
    if args.user_command == "list":
        for u in meta.users():
            scope = "all sites" if u["sites"] is None else "sites " + ",".join(map(str, u["sites"]))
            state = " (disabled)" if u["disabled"] else ""
            print(f"{u['id']}\t{u['username']}\t{u['role']}\t{scope}{state}")
        return 0
    password = generate_password()
    if args.user_command == "add":
        sites = None
        if args.sites is not None:
            parts = [s.strip() for s in args.sites.split(",")]
            if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
                print(
                    f"pixel user add: --sites takes comma-separated site ids, not {args.sites!r}",
                    file=sys.stderr,
                )
                return 2
            sites = [int(p) for p in parts]
        try:
            meta.create_user(args.username, hash_password(password), args.role, sites)
        except UnknownSites as exc:
            known = ", ".join(str(s["id"]) for s in meta.sites()) or "none"
            print(f"pixel user add: {exc} (existing sites: {known})", file=sys.stderr)
            return 2
        except Conflict:
            print(f"pixel user add: user {args.username!r} exists", file=sys.stderr)
            return 1
        print(f"created {args.role} {args.username!r}")
    else:
        user = meta.user_by_name(args.username)
        if user is None:
            print(f"pixel user reset-password: no user {args.username!r}", file=sys.stderr)
            return 1
        meta.update_user(user["id"], password_hash=hash_password(password))
    print(f"password: {password}")
    print("This password is shown once; store it now.")
    return 0


def _serve(settings: Settings) -> int:
    import uvicorn

    from pixel.server.api.app import create_app
    from pixel.server.store import open_store

    store = open_store(settings)
    try:
        uvicorn.run(
            create_app(settings, store),
            host=settings.host,
            port=settings.api_port,
            log_level="info",
            access_log=False,
        )
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pixel")
    add_cli(parser.add_subparsers(dest="command", required=True))
    with datadir.umask_restored():
        return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
