"""`pixel stack …`: the provisioner from the command line (the desktop app drives the same core).

Wired by pixel.server.cli, which calls `add_cli(subparsers)`; each sub-command runs through `run(args)`, which
looks its function up in COMMANDS (one function per sub-command, as pixel.server.cli has one per command) and
turns a StackError into exit status 1, a bad setting (ValueError) into 2, a missing desktop extra into 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_args import add_parsers, known_hosts_default
from .errors import StackError
from .progress import Progress

if TYPE_CHECKING:  # imported where used: docker-py stays out of `pixel --help`
    import docker

    from .engine import EngineTarget
    from .image import ImageSource
    from .provisioner import ContainerStatus, Provisioner, StackStatus


def add_cli(subparsers: Any) -> None:
    """Wire `pixel stack` into the `pixel` command's parser (called by pixel.server.cli)."""
    add_parsers(subparsers, run)


class Bar:
    """A one-line progress bar on stderr."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, event: Progress) -> None:
        if event.fraction is None:
            bar = "[" + "?" * 20 + "]"
        else:
            filled = int(event.fraction * 20)
            bar = "[" + "#" * filled + "-" * (20 - filled) + f"] {event.fraction * 100:3.0f}%"
        line = f"{bar} {event.step}: {event.message}"[:150]
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            if event.fraction == 1.0:
                sys.stderr.write("\n")
        elif line != self.last:
            sys.stderr.write(line + "\n")
        self.last = line
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Run the sub-command `args.stack_command` and return its exit status. A StackError is one line on stderr
    (two with its "What to do") and status 1; a bad setting is one line and 2; a missing desktop extra, 1."""
    try:
        command = COMMANDS.get(args.stack_command)
        if command is None:  # argparse prevents this
            raise StackError(f"unknown command {args.stack_command}")
        return command(args)
    except StackError as exc:
        print(f"pixel stack: {exc.problem}", file=sys.stderr)
        if exc.action:
            print(f"  What to do: {exc.action}", file=sys.stderr)
        return 1
    except ValueError as exc:  # SpecError: a bad --set, name or topology
        print(f"pixel stack: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(
            f"pixel stack needs the desktop extra (pip install 'pixel-analytics[desktop]'): {exc}",
            file=sys.stderr,
        )
        return 1


def _target(args: argparse.Namespace) -> EngineTarget:
    from .engine import EngineTarget

    return EngineTarget(
        url=args.engine,
        ssh_key=args.ssh_key,
        known_hosts=args.known_hosts or known_hosts_default(),
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )


def _settings(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise StackError(f"--set {item!r} is not NAME=VALUE", "Example: --set PIXEL_COLLECTOR_PORT=9000")
        out[name.strip()] = value
    return out


def _source(args: argparse.Namespace) -> ImageSource:
    from .image import ImageSource

    return ImageSource(args.image_source, args.image_path, base=args.image_base)


@dataclass(frozen=True)
class _Engine:
    """The engine a sub-command talks to: where it is, the connection, and the progress bar on stderr."""

    target: EngineTarget
    client: docker.DockerClient
    bar: Bar

    def stack(self, name: str, topology: str | None, values: dict[str, str]) -> Provisioner:
        from .manage import open_stack

        return open_stack(self.client, name, topology, values, target=self.target)


def _connect(args: argparse.Namespace) -> _Engine:
    from .engine import connect

    target = _target(args)
    return _Engine(target, connect(target), Bar())


def _open(args: argparse.Namespace) -> tuple[_Engine, Provisioner]:
    """Connect, then the provisioner of stack `--name` with `--topology` and the `--set` values."""
    engine = _connect(args)
    return engine, engine.stack(args.name, args.topology, _settings(args.set))


def _compose(args: argparse.Namespace) -> int:
    from . import compose

    if args.check:
        stale = compose.stale_files(args.out)
        for name in stale:
            print(f"out of date: {args.out / name}")
        return 1 if stale else 0
    for path in compose.write_files(args.out):
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    _, prov = _open(args)
    bad = 0
    for f in prov.check():
        print(f"{'ok ' if f.ok else 'NO '} {f.name:7} {f.message}")
        if not f.ok:
            bad += 1
            print(f"            What to do: {f.action}")
    return 1 if bad else 0


def _install(args: argparse.Namespace) -> int:
    if args.site:
        return _install_site(args)
    engine, prov = _open(args)
    result = prov.install(_source(args), progress=engine.bar)
    print("changed: " + (", ".join(result.changed) if result.changed else "nothing (already installed)"))
    if result.admin:
        print(
            f"admin account: user {result.admin.username!r}, password {result.admin.password!r} (shown once)"
        )
    elif result.admin_note:
        print(f"admin account: {result.admin_note}")
    return 0


def _install_site(args: argparse.Namespace) -> int:
    """Install, then create the first site through the stack's API (`onboarding.install_site`, as the
    wizard does) and print its snippet; the admin account is printed even when the site step fails."""
    from .onboarding import SiteNotCreated, install_site

    try:
        outcome = install_site(
            _target(args),
            args.name,
            args.site,
            timezone=args.site_timezone,
            values=_settings(args.set),
            topology=args.topology,
            source=_source(args),
            progress=Bar(),
        )
    except SiteNotCreated as exc:
        print(f"admin account: user {exc.admin.username!r}, password {exc.admin.password!r} (shown once)")
        raise
    print("changed: " + (", ".join(outcome.changed) or "nothing (already installed)"))
    print(f"admin account: user {outcome.profile.username!r}, password {outcome.password!r} (shown once)")
    print(f"site {outcome.profile.domain}: id {outcome.site_id}")
    print(f"API (on the stack's host): {outcome.api_url}")
    print(f"collector (for visitors): {outcome.collector_url}")
    print("paste into every page of the site, just before </head>:")
    print(outcome.snippet)
    return 0


def _status(args: argparse.Namespace) -> int:
    _, prov = _open(args)
    st = prov.status()
    if args.json:
        print(json.dumps({"installed": st.installed, "containers": [asdict(c) for c in st.containers],
                          "metrics": st.metrics}, indent=2))  # fmt: skip
        return 0 if st.installed else 1
    if not st.installed:
        print(f"no stack named {args.name!r} on this engine")
        return 1
    for c in st.containers:
        print(_container_line(c))
    for line in _figure_lines(st):
        print(line)
    return 0


def _container_line(c: ContainerStatus) -> str:
    mem = f"{c.memory_bytes / 2**20:.0f} MiB" if c.memory_bytes else "-"
    cpu = f"{c.cpu_percent:.1f}%" if c.cpu_percent is not None else "-"
    return (
        f"{c.service:12} {c.state:8} {c.health:9} restarts={c.restarts} cpu={cpu} mem={mem} ports={c.ports}"
    )


def _figure_lines(st: StackStatus) -> list[str]:
    """The ingest figures the store reported; one the store did not report is left out."""
    lines = []
    if st.events_inserted is not None:
        lines.append(f"events stored since the container started: {st.events_inserted}")
    if st.events_today is not None:
        lines.append(f"events today (UTC): {st.events_today}")
    if st.ingest_rate is not None:
        lines.append(f"ingest rate: {st.ingest_rate:.1f} events/s (last minute)")
    if st.backlog_bytes is not None:
        lines.append(f"spool backlog: {st.backlog_bytes} bytes")
    return lines


def _logs(args: argparse.Namespace) -> int:
    _, prov = _open(args)
    for line in prov.logs(args.service, tail=args.tail, follow=args.follow):
        print(line, flush=True)
    return 0


def _start(args: argparse.Namespace) -> int:
    engine, prov = _open(args)
    prov.start(progress=engine.bar)
    print("start: done")
    return 0


def _stop(args: argparse.Namespace) -> int:
    engine, prov = _open(args)
    prov.stop(progress=engine.bar)
    print("stop: done")
    return 0


def _restart(args: argparse.Namespace) -> int:
    engine, prov = _open(args)
    prov.restart(progress=engine.bar)
    print("restart: done")
    return 0


def _backup(args: argparse.Namespace) -> int:
    engine, prov = _open(args)
    print(prov.backup(args.file, progress=engine.bar))
    return 0


def _restore(args: argparse.Namespace) -> int:
    engine, prov = _open(args)
    prov.restore(args.file, progress=engine.bar)
    print("restored")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    _, prov = _open(args)
    for item in prov.uninstall(delete_data=args.delete_data):
        print(f"removed {item}")
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from .manage import upgrade_to_image

    engine, prov = _open(args)
    backup = upgrade_to_image(
        prov,
        args.image,
        backup_dir=args.backup_dir,
        values=_settings(args.set),
        source=_source(args),
        progress=engine.bar,
    )
    print(f"upgraded to {args.image}; backup kept at {backup}")
    return 0


def _image(args: argparse.Namespace) -> int:
    from . import image as images
    from .spec import compact

    engine = _connect(args)
    tag = args.tag or compact().defaults()["PIXEL_IMAGE"]
    if args.context:
        images.make_context(args.context, offline=not args.online)
        print(args.context)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        engine.bar(Progress("build", None, "preparing wheels"))
        ctx = images.make_context(Path(tmp), offline=not args.online)
        source = images.ImageSource(
            "build", ctx, base=args.base, network_mode="none" if args.network_none else ""
        )
        images.build(engine.client, source, tag, engine.bar)
    print(tag)
    return 0


def _trust(args: argparse.Namespace) -> int:
    from .engine import fetch_host_key, trust_host_key

    key = fetch_host_key(args.engine)
    known = args.known_hosts or known_hosts_default()
    print(f"{key.known_hosts_name} presents a {key.key.get_name()} key with fingerprint {key.fingerprint}")
    if args.fingerprint:
        if args.fingerprint.strip() != key.fingerprint:
            raise StackError(
                f"The server's fingerprint is {key.fingerprint}, not {args.fingerprint}.",
                code="fingerprint-mismatch",
            )
    else:
        print("Trust this fingerprint? Only say yes if it matches what the server's administrator gave you [y/N] ",
              end="", flush=True)  # fmt: skip
        answer = sys.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            print("not trusted")
            return 1
    trust_host_key(known, key)
    print(f"trusted; saved in {known}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "compose": _compose,
    "trust": _trust,
    "check": _check,
    "status": _status,
    "start": _start,
    "stop": _stop,
    "restart": _restart,
    "install": _install,
    "logs": _logs,
    "upgrade": _upgrade,
    "backup": _backup,
    "restore": _restore,
    "uninstall": _uninstall,
    "image": _image,
}
"""Sub-command name -> the function that runs it and returns the exit status; add_cli declares its arguments."""
