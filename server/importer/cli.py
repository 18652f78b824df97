"""`pixel import SOURCE FILE --site S [--preview] [--overlap skip|include]` and `pixel import SOURCE --undo ID`
(SOURCE: accesslog, ga4, umami, goatcounter, matomo; `sources.py`; and plausible, an aggregate source:
`aggregate_cli.py`; an undo of an aggregate import's id under any SOURCE goes to `aggregates.undo`): the import core (`run.py`) with a progress bar on stderr and a summary on stdout.

Exit status: 0 done; 1 an import that stopped on an error (a truncated gzip: what was whole is imported,
the id is printed so it can be undone; an unknown id; a file of the wrong kind); 2 bad arguments. With the
embedded store the import needs the data folder to itself: stop `pixel serve` first (it says so).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixel.server.importer.lines import ImportFileError
from pixel.server.importer.run import ImportFailed, Preview

if TYPE_CHECKING:
    from pixel.server.settings import Settings
    from pixel.server.store import Store


class Bar:
    """A one-line progress bar on stderr (the style of the stack commands' bar)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, done: int, total: int, lines: int) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        filled = int(fraction * 20)
        line = "[" + "#" * filled + "-" * (20 - filled) + f"] {fraction * 100:3.0f}% import: {lines:,} lines"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        elif line[:26] != self.last[:26]:
            sys.stderr.write(line + "\n")
        self.last = line
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()


def add_cli(sub: Any) -> None:
    from pixel.server.importer.aggregate_cli import cmd_import_aggregate
    from pixel.server.importer.aggregates import AGGREGATE_SOURCES
    from pixel.server.importer.sources import SOURCES

    imp = sub.add_parser(
        "import",
        help="import history: access logs, GA4 BigQuery export, Umami and GoatCounter CSV, Matomo raw data, "
        "Plausible's CSV export",
    )
    kinds = imp.add_subparsers(dest="import_source", required=True)
    named: list[tuple[str, str]] = [(s.name, s.what) for s in SOURCES.values()]
    for name, what in named + [(s.name, s.what) for s in AGGREGATE_SOURCES.values()]:
        aggregate = name in AGGREGATE_SOURCES
        log = kinds.add_parser(name, help=what)
        log.add_argument(
            "file",
            nargs="?",
            type=Path,
            help="the file (a ZIP or a CSV)" if aggregate else "the file (plain or gzip)",
        )
        log.add_argument("--site", help="the site the events belong to (e.g. example.com)")
        log.add_argument("--preview", action="store_true", help="show what would be imported; write nothing")
        log.add_argument(
            "--overlap",
            choices=("skip", "include"),
            default="skip",
            help="days that already have live events: skip them (default) or import them too",
        )
        log.add_argument("--undo", metavar="ID", help="delete the rows of import ID and its record")
        log.add_argument("--data-dir", type=Path, help="data folder (env PIXEL_DATA_DIR)")
        log.add_argument(
            "--batch-lines", type=int, default=0, help=argparse.SUPPRESS
        )  # tests: smaller batches
        log.set_defaults(func=cmd_import_aggregate if aggregate else cmd_import)


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


def print_summary(p: Preview | Any, title: str) -> None:
    days = p.days
    print(title)
    if getattr(p, "first_ms", 0):
        print(f"  dates: {_fmt_ms(p.first_ms)} .. {_fmt_ms(p.last_ms)}")
    hosts = getattr(p, "hosts", None)
    if hosts:
        print("  sites found: " + ", ".join(f"{h} ({n:,})" for h, n in hosts.most_common(20)))
    print(f"  events: {p.rows:,}")
    for day in sorted(days):
        print(f"    {day}  {days[day]:,}")
    if p.skipped:
        print("  skipped:")
        for reason, n in sorted(p.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {n:>10,}  {reason}")
    if p.malformed_count:
        print(f"  malformed lines: {p.malformed_count:,} (first ones below)")
        for number, reason in p.malformed:
            print(f"    line {number}: {reason}")


def open_for_import(args: argparse.Namespace, settings: Settings) -> Store | int:
    """The store for `pixel import …` (raw and aggregate sources alike) once the arguments make sense, or the
    exit status to return: 2 for bad arguments (said on stderr), 1 when the store cannot be opened."""
    from pixel.server import datadir
    from pixel.server.store import StoreError, open_store

    if args.undo:
        if args.file or args.preview:
            print("pixel import: --undo takes an import id only", file=sys.stderr)
            return 2
    elif args.file is None or not args.site:
        print("pixel import: give the FILE and --site (or --undo ID)", file=sys.stderr)
        return 2
    elif not args.file.is_file():
        print(f"pixel import: no such file: {args.file}", file=sys.stderr)
        return 2
    datadir.secure(settings.data_dir)
    try:
        return open_store(settings)
    except StoreError as exc:
        print(f"pixel import: cannot open the store: {exc}", file=sys.stderr)
        return 1


def cmd_import(args: argparse.Namespace) -> int:
    from pixel.server.importer import run
    from pixel.server.importer.sources import SOURCES
    from pixel.server.settings import Settings
    from pixel.server.store import StoreError

    settings = Settings.from_env(data_dir=args.data_dir)
    source = SOURCES[args.import_source]
    store = open_for_import(args, settings)
    if isinstance(store, int):
        return store
    try:
        if args.undo:
            from pixel.server.importer import aggregates

            undo = aggregates.undo if aggregates.is_aggregate(settings, args.undo) else run.undo
            deleted = undo(settings, store, args.undo)
            print(f"import {args.undo} undone: {deleted:,} rows deleted")
            return 0
        if args.preview:
            print_summary(
                run.preview(settings, store, args.file, args.site, args.overlap, source), "preview:"
            )
            return 0
        record = run.start(settings, store, args.file, args.site, args.overlap, source)
        if record.offset:
            print(f"resuming import {record.id} at line {record.line:,}", file=sys.stderr)
        bar = Bar()
        try:
            record = run.run(
                settings, store, record, progress=bar, batch_lines=args.batch_lines or run.BATCH_LINES
            )
        finally:
            bar.end()
        record.days = dict(record.days)
        from collections import Counter

        summary = Preview(
            rows=record.rows,
            days=Counter(record.days),
            skipped=Counter(record.skipped),
            malformed=[(int(a), str(b)) for a, b in record.malformed],
            malformed_count=record.malformed_count,
        )
        print_summary(summary, f"import {record.id} ({record.status}):")
        print(f"undo with: pixel import {source.name} --undo {record.id}")
        if record.error:
            print(f"pixel import: {record.error}", file=sys.stderr)
            return 1
        return 0
    except (ImportFailed, ImportFileError, StoreError) as exc:
        print(f"pixel import: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
