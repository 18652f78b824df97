"""`pixel import plausible FILE.zip --site S [--preview] [--overlap skip|include]` and `pixel import plausible --undo
ID`: an aggregate source (`aggregates.AGGREGATE_SOURCES`) through `aggregates.py`, with the raw sources' arguments
(`cli.add_cli` registers both). Exit status as `cli.cmd_import`: 0 done, 1 an error (a file of the wrong kind, a
damaged ZIP, an unknown id: the message says which file and line), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from pixel.server.importer.aggregates import AggregatePreview
from pixel.server.importer.records import ImportRecord


def print_preview(p: AggregatePreview, title: str) -> None:
    print(title)
    if p.days:
        print(f"  dates: {p.first} .. {p.last} ({len(p.days)} days)")
    if p.tables:  # a preview (an import's record keeps the rows per day only)
        print(f"  tables: {', '.join(p.tables)}")
        print(f"  visitors: {p.visitors:,} (summed over the days: imported days cannot be deduplicated)")
        print(f"  pageviews: {p.pageviews:,}")
    print(f"  rows: {p.rows:,}")
    for day in sorted(p.days):
        print(f"    {day}  {p.days[day]:,}")
    if p.skipped:
        print("  skipped:")
        for reason, n in sorted(p.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {n:>10,}  {reason}")
    if p.malformed_count:
        print(f"  malformed lines: {p.malformed_count:,} (first ones below)")
        for where, reason in p.malformed:
            print(f"    {where}: {reason}")


def _as_preview(record: ImportRecord) -> AggregatePreview:
    from collections import Counter

    out = AggregatePreview(rows=record.rows, days=Counter(record.days), skipped=Counter(record.skipped))
    out.malformed = [(str(a), str(b)) for a, b in record.malformed]
    out.malformed_count = record.malformed_count
    return out


def cmd_import_aggregate(args: argparse.Namespace) -> int:
    from pixel.server.importer import aggregates
    from pixel.server.importer.cli import open_for_import
    from pixel.server.importer.lines import ImportFileError
    from pixel.server.importer.run import ImportFailed
    from pixel.server.settings import Settings
    from pixel.server.store import StoreError

    settings = Settings.from_env(data_dir=args.data_dir)
    source = aggregates.AGGREGATE_SOURCES[args.import_source]
    store = open_for_import(args, settings)
    if isinstance(store, int):
        return store
    try:
        if args.undo:
            deleted = aggregates.undo(settings, store, args.undo)
            print(f"import {args.undo} undone: {deleted:,} rows deleted")
            return 0
        if args.preview:
            print_preview(aggregates.preview(store, args.file, args.site, args.overlap, source), "preview:")
            return 0
        record = aggregates.import_file(settings, store, args.file, args.site, args.overlap, source)
        print_preview(_as_preview(record), f"import {record.id} ({record.status}):")
        print(f"undo with: pixel import {source.name} --undo {record.id}")
        return 0
    except (ImportFailed, ImportFileError, StoreError) as exc:
        print(f"pixel import: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
