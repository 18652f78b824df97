"""Importing history into `events`: raw sources (server access logs, GA4's BigQuery export, Umami's and
GoatCounter's CSV exports) become events marked with their import id.

A core without Qt, used by the CLI (`pixel import`) now and the desktop later:
- `accesslog.py`: the line parser (nginx/Apache combined, common, and Apache's vhost_combined);
- `pageviews.py`: which parsed lines are pageviews, and why the others are skipped;
- `hits.py`, `sources.py`: what a source's line becomes (a `Hit`) and the sources by name; `ga4.py`,
  `umami.py`, `goatcounter.py`: those sources' parsers;
- `lines.py`: reading a file as numbered lines with byte offsets, gzip detected by its magic bytes, bounded memory;
- `salts.py`: the per-import daily salts (an import never writes or reads the live salts);
- `records.py`: the import's record and checkpoint (a file per import under the data folder's state);
- `run.py`: preview, import (batches with insert dedup tokens, resumable), undo;
- `cli.py`: the `pixel import` command and its progress bar.
"""
