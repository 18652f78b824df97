"""Preview, import and undo of a raw source (access log, GA4 BigQuery export, Umami CSV): the one place that
orders the steps an import's guarantees rest on.

Every line goes through: the source's parser (`sources.py`: a `Hit`, a malformed line, a skip reason, or
nothing) -> its host against the site (a file may hold several sites: lines of other hosts are skipped,
`www.` of the site is the site) -> the overlap rule (a UTC day that held live, non-imported events of the
site when the import began is skipped, unless `overlap="include"`) -> a wire-format event, `normalize`d and
enriched by the live pipeline's `Enricher` (site rules, keyed IP hash and geo, user agent and bots, privacy,
sources, identity) at the line's own time, with the import's own salts (`salts.py`). Bots by the live rules
are skipped (the request-trait rule "no Accept-Language" is not applied: a log does not hold that header).
A source without the request (no IP, no user agent: GA4, Umami) keeps its own device columns and is not
judged a bot (those tools left their bots out); its own visitor/visit ids are keyed with the import's salt
of the day, so they rotate daily like live visitor ids and are never stored as the source wrote them.

Speed, without changing a row: a line of a request (an address or a user agent) with no params and no ids of
its own (every access-log line) is written as JSON bytes joined from parts made once per page, per address and
day, per user agent and per visitor of the day (`partrows`; the lines those parts cannot stand for, a bot's, an
echoed address, an excluded path or network, go the live way below); an event with no params and no ids of its
own gets its row from `rowcache.RowTemplates` (`normalize` once per distinct page, URL and referrer; tested
equal to the plain path), the rows go to the store as one JSON array of their bytes, the cyclic GC is paused
over a batch's lines and run once per batch (`gcpause`; `batch_gc`: the young objects each batch, every object
only every `FULL_GC_EVERY` batches), an access-log line
is parsed in one pass (`accesslog_hits`, tested equal to `parse_line` then `classify`), and a line's UTC day is read
from the previous line's day range (lines come in time order).

Batches, at least once without duplicates (as the shipper's `cycle.py`): a batch is the lines from the
committed byte offset up to `batch_lines` lines further, so the same offset always names the same batch.
1. its offsets and its token `dedup_token("import", id, start, end)` are saved in the record as `pending`;
2. its rows are inserted under that token (`BatchInserter`: what the store refuses alone becomes a dead
   letter, a store that cannot write is retried by the caller);
3. the offset, the counters and the sessions open at that point are saved in one record write.
The insert of step 2 runs in a second thread while the next batch's lines are read and enriched (the store's
insert does not hold the GIL), one batch in flight at most: step 3 of a batch is written, after its insert
landed, before step 1 of the next, so the record never names two batches; the sessions are saved as of the
batch's last line, before the next batch's lines move them on.
A crash (even SIGKILL) anywhere costs nothing: the resume re-reads from the committed offset, makes the
same rows (same salts, same sessions, event ids from the import id and the line's offset) under the same
token, and the store drops a batch that had landed; copies would also collapse on their event ids (FINAL).

Undo deletes the import's rows (`DELETE ... WHERE import_id`), then marks the hours they were in as changed
in `event_counts` (the report cache's change detector; a DELETE does not move it), so cached days are
rebuilt without them, then deletes the record.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import blake2b
from pathlib import Path
from typing import Any

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.enrich.identity import IdentityResolver
from pixel.server.errors import PixelError
from pixel.server.gcpause import gc_paused
from pixel.server.importer import records
from pixel.server.importer.accesslog import MAX_LINE, Malformed
from pixel.server.importer.accesslog_hits import accesslog_hit
from pixel.server.importer.hits import Parser, Source
from pixel.server.importer.lines import TOO_LONG, RawPosition, TruncatedFile, read_lines
from pixel.server.importer.partrows import PartRows
from pixel.server.importer.records import ImportRecord
from pixel.server.importer.rowcache import RowTemplates
from pixel.server.importer.salts import ImportSalt
from pixel.server.importer.sources import ACCESSLOG, SOURCES
from pixel.server.settings import Settings
from pixel.server.shipper.inserter import UNIQUE_KEYS, BatchInserter, store_cannot_write
from pixel.server.shipper.normalize import BadEvent, normalize
from pixel.server.shipper.reader import Batch
from pixel.server.shipper.stats import ShipperStats
from pixel.server.store import Store, StoreClosed, StoreError, StoreUnavailable, dedup_token

log = logging.getLogger(__name__)

BATCH_LINES = 50_000
# The cyclic GC's pass after a batch (`batch_gc`) looks at the objects made since the last pass (generations 0
# and 1: the cycles among what the batch made are all there); only every FULL_GC_EVERY-th pass is a full one.
# A full pass also rescans every older object (the identity state, the enrichment's caches, the store's
# bindings: hundreds of thousands of them) and finds nothing there (rows hold no reference cycles), at a cost
# of a few µs per line (bench/README.md, "Import of access logs").
FULL_GC_EVERY = 10
MALFORMED_SHOWN = 20
LIVE = "day has live data"
OTHER_HOST = "another site (host)"
BOT = "bot"
# A placeholder for the Accept-Language header a log does not hold, so the live rule "no Accept-Language
# means a bot" is not applied to every imported line.
UNKNOWN_LANGUAGE = "*"

Progress = Callable[[int, int, int], None]  # (bytes read on disk, file size, lines read)
# A row made by `LineProcessor.process`: a dict (the live enrichment's), or the JSON object's bytes (`partrows`)
Row = dict[str, Any] | bytes


class ImportFailed(PixelError):
    """An import that cannot start or go on: the message says why, in one line."""


@dataclass
class Preview:
    lines: int = 0
    rows: int = 0
    days: Counter[str] = field(default_factory=Counter)  # UTC day -> pageviews that would be imported
    hosts: Counter[str] = field(default_factory=Counter)  # hosts found in the file (vhost or absolute URL)
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    error: str = ""


def _day(ms: int) -> str:
    return _day_number(ms // 86_400_000)


@lru_cache(maxsize=4096)
def _day_number(days: int) -> str:
    """The UTC day `days` days after 1970-01-01, as 2023-01-31 (a log's lines fall on few days: cached)."""
    return datetime.fromtimestamp(days * 86_400, UTC).date().isoformat()


def live_days(store: Store, site: str) -> list[str]:
    """UTC days with live (non-imported) events of `site`."""
    rows = store.query(
        "SELECT DISTINCT toString(toDate(timestamp)) FROM events WHERE site = {site:String} AND import_id = ''",
        {"site": site},
    ).rows
    return sorted(row[0] for row in rows)


def make_enricher(settings: Settings, salts: dict[str, str]) -> tuple[Enricher, ImportSalt]:
    """The live pipeline's enricher with the import's own salts and identity state (never the live ones)."""
    enricher = Enricher(settings)
    salt = ImportSalt(salts)
    enricher.salt = salt
    enricher.identity = IdentityResolver(
        salt,
        session_timeout=float(settings.session_timeout),
        link_window=float(settings.link_window),
        link_groups=tuple(settings.link_groups),
    )
    return enricher, salt


class LineProcessor:
    """Turns lines into rows (or counted skips), the same way for a preview and an import."""

    def __init__(
        self,
        settings: Settings,
        site: str,
        import_id: str,
        skip_days: set[str],
        salts: dict[str, str],
        parser: Parser = accesslog_hit,
    ) -> None:
        self.site = site.strip().lower()
        self.sites = {self.site, "www." + self.site}
        self.import_id = import_id
        self.skip_days = skip_days
        self.parser = parser
        self.enricher, self.salt = make_enricher(settings, salts)
        self.rows = RowTemplates()
        # A line of a request (an address or a user agent) without params or ids of its own: its row joined from
        # parts made once per page and per address, agent and visitor of the day (`partrows`), unless the
        # appliance drops the site's events (unregistered). The site's rules are read again once per batch.
        self._parts = PartRows(self.enricher, self.rows, self.site, import_id)
        self.parts: PartRows | None = self._parts if self._parts.usable() else None
        # The UTC day of the last line's time, [start, end) in epoch ms: a log's lines come in time order
        self._day_start = self._day_end = 0
        self._day = ""

    def refresh(self) -> None:
        """Once per batch: the site's registration and rules read again for the rows made from parts."""
        self.parts = self._parts if self._parts.usable() else None
        self._parts.refresh()

    def _keyed(self, kind: str, key: str, ts: int) -> str:
        """A source's own visitor or visit id, keyed with the import's salt of the day (rotates daily)."""
        salt = self.salt._key_for_day(ts)
        return hashlib.blake2b(
            f"{kind}\x1f{self.site}\x1f{key}".encode(), key=salt, digest_size=16
        ).hexdigest()

    def process(self, number: int, offset: int, text: str, out: Preview, rows: list[Row]) -> None:
        out.lines += 1
        too_long = text is TOO_LONG or len(text) > MAX_LINE  # a whole line in one chunk can be longer too
        parsed = Malformed("line too long") if too_long else self.parser(text)
        if parsed is None:
            return
        if isinstance(parsed, Malformed):
            out.malformed_count += 1
            if len(out.malformed) < MALFORMED_SHOWN:
                out.malformed.append((number, parsed.reason))
            return
        if isinstance(parsed, str):
            out.skipped[parsed] += 1
            return
        hit = parsed
        ts = hit.ts_ms
        if not out.first_ms or ts < out.first_ms:
            out.first_ms = ts
        if ts > out.last_ms:
            out.last_ms = ts
        host = hit.host or self.site
        out.hosts[host] += 1
        if host not in self.sites:
            out.skipped[OTHER_HOST] += 1
            return
        if self._day_start <= ts < self._day_end:
            day = self._day
        else:
            day = self._day = _day(ts)
            self._day_start = ts - ts % 86_400_000
            self._day_end = self._day_start + 86_400_000
        if day in self.skip_days:
            out.skipped[LIVE] += 1
            return
        url = f"https://{host}{hit.path}" + (f"?{hit.query}" if hit.query else "")
        event_id = blake2b(f"{self.import_id}:{offset}".encode(), digest_size=16).hexdigest()
        parts = self.parts
        if parts is not None and not hit.params and not hit.visitor_key and (hit.ip or hit.user_agent):
            joined = parts.row(
                hit.event_name, url, hit.referrer, hit.title, ts, event_id, hit.ip, hit.user_agent
            )
            if joined is not None:
                if isinstance(joined, str):
                    out.skipped[joined] += 1
                    return
                out.rows += 1
                out.days[day] += 1
                rows.append(joined)
                return
        event: dict[str, Any] = {
            "event_name": hit.event_name,
            "ts": ts,
            "site": self.site,
            "event_id": event_id,
            "page": {"url": url, "referrer": hit.referrer, "title": hit.title},
        }
        if hit.params or hit.visitor_key:
            if hit.params:
                event["params"] = hit.params
            if hit.visitor_key:
                event["visitor_id"] = self._keyed("visitor", hit.visitor_key, ts)
                if hit.session_key:
                    event["session_id"] = self._keyed("session", hit.session_key, ts)[:16]
            try:
                row = normalize(event, ts, min_ms=0, segment="", offset=offset, index=0)
            except BadEvent as exc:
                out.skipped[f"not storable ({exc})"] += 1
                return
        else:
            made = self.rows.row(event, hit.event_name, url, hit.referrer, hit.title, ts, event_id)
            if isinstance(made, str):
                out.skipped[made] += 1
                return
            row = made
        facts = RequestFacts(ts, hit.ip, hit.user_agent, UNKNOWN_LANGUAGE, "")
        dropped = sum(self.enricher.dropped.values()) if self.enricher.dropped else 0
        if not self.enricher.enrich(row, event, facts):
            reasons = [r for r, n in self.enricher.dropped.items() if n]
            out.skipped[f"site rules ({reasons[-1] if reasons else 'dropped'})"] += (
                sum(self.enricher.dropped.values()) - dropped or 1
            )
            self.enricher.dropped.clear()
            return
        if not hit.user_agent and not hit.ip:
            # a source without the request (GA4, Umami): it left its bots out itself; its own device columns
            row.pop("is_bot", None)
            row.pop("ip_hash", None)  # no address: the hash of nothing would join every visitor of the day
            for column in ("browser", "browser_version", "os", "os_version", "device_type"):
                row.pop(column, None)
            row.update(hit.columns)
        elif row.get("is_bot"):
            out.skipped[BOT] += 1
            return
        row["import_id"] = self.import_id
        out.rows += 1
        out.days[day] += 1
        rows.append(row)


def preview(
    settings: Settings,
    store: Store | None,
    path: Path,
    site: str,
    overlap: str = "skip",
    source: Source = ACCESSLOG,
) -> Preview:
    """What an import of `path` would do, without writing anything (no store: no overlap check)."""
    source.check(path)
    skip = set(live_days(store, site)) if store is not None and overlap == "skip" else set()
    processor = LineProcessor(settings, site, "preview", skip, {}, source.parser(path))
    out = Preview()
    rows: list[Row] = []
    try:
        with gc_paused():  # see `_run`
            for number, offset, _end, text in read_lines(path):
                processor.process(number, offset, text, out, rows)
                rows.clear()
                if not number % BATCH_LINES:
                    batch_gc(number // BATCH_LINES)
    except TruncatedFile as exc:
        out.error = str(exc)
    return out


@contextmanager
def _locked(settings: Settings, import_id: str) -> Iterator[None]:
    """One process at a time per import (a resume, an undo)."""
    where = records.folder(settings.state_dir)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(where / f"{import_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ImportFailed(f"import {import_id} is in use by another process") from None
        yield
    finally:
        os.close(fd)


def find_resumable(
    settings: Settings, path: Path, site: str, source: Source = ACCESSLOG
) -> ImportRecord | None:
    """The unfinished import of this file and site, if any; raises for one already complete."""
    size, head = records.file_identity(path)
    for record in records.all_records(settings.state_dir):
        if record.file_head != head or record.site != site.strip().lower() or record.source != source.name:
            continue
        if record.status == "running" and record.file_size == size:
            return record
        if record.status in ("done", "truncated") and record.file_size == size:
            raise ImportFailed(
                f"{path.name} was already imported for {record.site} as {record.id}; "
                f"undo it first (pixel import {source.name} --undo {record.id})"
            )
    return None


def start(
    settings: Settings,
    store: Store,
    path: Path,
    site: str,
    overlap: str = "skip",
    source: Source = ACCESSLOG,
) -> ImportRecord:
    """A new import's record (saved), or the unfinished one of the same file and site (to resume)."""
    source.check(path)
    if overlap not in ("skip", "include"):
        raise ImportFailed(f"--overlap must be skip or include, not {overlap!r}")
    found = find_resumable(settings, path, site, source)
    if found is not None:
        return found
    size, head = records.file_identity(path)
    record = ImportRecord(
        id=records.new_id(),
        source=source.name,
        site=site.strip().lower(),
        file=str(path.resolve()),
        file_size=size,
        file_head=head,
        overlap=overlap,
        live_days=live_days(store, site.strip().lower()) if overlap == "skip" else [],
    )
    records.save(settings.state_dir, record)
    return record


def _identity_path(settings: Settings, record: ImportRecord, offset: int) -> Path:
    return records.folder(settings.state_dir) / f"{record.id}.identity-{offset}.json"


def _drop_identity_files(settings: Settings, import_id: str, keep: Path | None = None) -> None:
    for old in records.folder(settings.state_dir).glob(f"{import_id}.identity-*.json"):
        if old != keep:
            old.unlink(missing_ok=True)


def run(
    settings: Settings,
    store: Store,
    record: ImportRecord,
    progress: Progress | None = None,
    batch_lines: int = BATCH_LINES,
) -> ImportRecord:
    """Import (or resume) `record`'s file from its committed offset; returns the finished record. A gzip that
    ends early: what was whole is imported, the record ends `truncated` with the error."""
    with _locked(settings, record.id):
        return _run(settings, store, record, progress, batch_lines)


def _run(
    settings: Settings, store: Store, record: ImportRecord, progress: Progress | None, batch_lines: int
) -> ImportRecord:
    path = Path(record.file)
    if not path.exists():
        raise ImportFailed(f"the file of import {record.id} is gone: {path}")
    source = SOURCES.get(record.source)
    if source is None:
        raise ImportFailed(f"import {record.id} is of an unknown source {record.source!r}")
    processor = LineProcessor(
        settings, record.site, record.id, set(record.live_days), record.salts, source.parser(path)
    )
    ident = record.identity
    if ident:
        processor.enricher.identity.load(Path(ident["path"]), now_ms=int(ident["now_ms"]))
    inserter = BatchInserter(store, ShipperStats())
    size = record.file_size
    position = RawPosition()
    batch = Preview()
    rows: list[Row] = []
    start_offset, count, last_ts = record.offset, 0, 0
    # The batch whose insert is under way in `landing` (one at most), committed by `commit`: the store's insert
    # (C++, without the GIL) runs on the other core while the next batch's lines are read and enriched.
    landing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-insert")
    in_flight: tuple[Future[None], int, int, Preview, Path, int] | None = None
    batches = 0  # flushed so far in this run (`batch_gc`)

    def commit(at_end: bool = False) -> None:
        """Wait for the batch in flight to land, then save its offset, counters and identity in one write."""
        nonlocal in_flight
        if in_flight is None:
            return
        landed, end, next_line, done, ident_path, now_ms = in_flight
        in_flight = None
        landed.result()  # its error (the store refused it for good, a bug) is the import's
        record.identity = {"path": str(ident_path), "now_ms": now_ms}
        record.offset, record.line, record.pending = end, next_line, None
        record.rows += done.rows
        for reason, n in done.skipped.items():
            record.skipped[reason] = record.skipped.get(reason, 0) + n
        for day, n in done.days.items():
            record.days[day] = record.days.get(day, 0) + n
        record.malformed_count += done.malformed_count
        room = MALFORMED_SHOWN - len(record.malformed)
        record.malformed.extend([list(m) for m in done.malformed[: max(room, 0)]])
        records.save(settings.state_dir, record)
        _drop_identity_files(settings, record.id, keep=ident_path)
        if progress is not None:
            # at the end the reader has closed the file (its position reads 0): the whole file was read
            progress(size if at_end else position.tell(), size, next_line - 1)

    def flush(end: int, next_line: int) -> None:
        """The batch read so far: the previous one committed, this one's token saved as pending, the identity
        state as of its last line saved, its insert started."""
        nonlocal start_offset, count, rows, batch, in_flight, batches
        commit()
        token = dedup_token("import", record.id, start_offset, end)
        record.pending = [start_offset, end, token]
        record.salts = processor.salt.keys
        records.save(settings.state_dir, record)
        now_ms = last_ts or batch.last_ms
        ident_path = _identity_path(settings, record, end)
        processor.enricher.identity.save(ident_path, now_ms=now_ms)
        landed: Future[None] = landing.submit(_insert, inserter, rows, token) if rows else _done()
        in_flight = (landed, end, next_line, batch, ident_path, now_ms)
        start_offset, count, rows, batch = end, 0, [], Preview()
        batches += 1
        processor.refresh()
        batch_gc(batches)  # the cyclic GC is paused over the lines (see below): its one pass per batch

    end, number = record.offset, record.line
    try:
        # A batch's tens of thousands of row dicts would set off the cyclic GC again and again, each pass
        # rescanning every live row (as in the shipper, `gcpause`); rows hold no cycles. `flush` runs it once.
        with gc_paused():
            for number, offset, end, text in read_lines(path, record.offset, record.line, position):
                processor.process(number, offset, text, batch, rows)
                if batch.last_ms > last_ts:
                    last_ts = batch.last_ms
                count += 1
                if count >= batch_lines and text is not TOO_LONG:
                    flush(end, number + 1)
            if count:
                flush(end, number + 1)
            commit(at_end=True)
    except TruncatedFile as exc:
        if count:
            flush(end, number + 1)
        commit()
        record.status, record.error = "truncated", str(exc)
    else:
        record.status = "done"
    finally:
        # also on an error or a cancel on the way out: the insert in flight ends before anyone undoes or closes
        landing.shutdown(wait=True)
    record.finished_at = time.time()
    record.salts = {}  # nobody can recompute the import's hashes from now on
    record.identity = {}
    records.save(settings.state_dir, record)
    _drop_identity_files(settings, record.id)
    return record


def batch_gc(batch: int) -> int:
    """The cyclic GC's pass after the `batch`-th batch (from 1): generations 0 and 1 (what was made since the
    last pass), all generations every `FULL_GC_EVERY`-th batch. Returns the number of objects freed."""
    return gc.collect(2 if batch % FULL_GC_EVERY == 0 else 1)


def _done() -> Future[None]:
    """A batch without rows: nothing to insert, already landed."""
    future: Future[None] = Future()
    future.set_result(None)
    return future


def _insert(inserter: BatchInserter, rows: list[Row], token: str) -> None:
    """Insert under `token`, retrying while the store cannot write (each try is the same insert), but not once
    it is closed (`StoreClosed`: its process is stopping; the record stays `running` and resumes at the next
    start). The rows go as one JSON array of their bytes; a batch the store refuses, or holding a NUL character,
    goes as row dicts through the shipper's inserter (which removes NULs, splits a refused batch and
    dead-letters what it must)."""
    delay = 0.5
    while True:
        try:
            _insert_once(inserter, rows, token)
            return
        except StoreClosed:
            raise
        except StoreUnavailable as exc:
            log.warning("import: the store cannot write now (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def _insert_once(inserter: BatchInserter, rows: list[Row], token: str) -> None:
    try:
        data = b"[" + b",".join(row if type(row) is bytes else orjson.dumps(row) for row in rows) + b"]"
    except TypeError:  # cannot be serialised: the inserter dead-letters the row
        data = b""
    if data and b"\\u0000" not in data:
        try:
            # an import's batch never holds two rows of one event id (made from the import id and the line's
            # offset): the store need not look for copies inside it
            inserter.store.insert_json("events", data, token=token, settings=UNIQUE_KEYS)
            return
        except StoreUnavailable:
            raise
        except StoreError as exc:
            if store_cannot_write(exc):
                raise StoreUnavailable(str(exc)) from None
    dicts: list[dict[str, Any]] = [row if isinstance(row, dict) else orjson.loads(row) for row in rows]
    inserter.insert(Batch(rows=dicts), token)


def undo(settings: Settings, store: Store, import_id: str) -> int:
    """Delete every row of import `import_id` and its record; returns the rows deleted. Unknown: an error."""
    if not records.valid_id(import_id):
        raise ImportFailed(f"unknown import id {import_id!r}")
    with _locked(settings, import_id):
        record = records.load(settings.state_dir, import_id)
        params = {"id": import_id}
        rows = int(store.scalar("SELECT count() FROM events WHERE import_id = {id:String}", params) or 0)
        if record is None and rows == 0:
            raise ImportFailed(f"unknown import id {import_id!r} (no record and no rows carry it)")
        engine = store.scalar(
            "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
        )
        if engine == "Distributed":
            raise ImportFailed(
                "events is a Distributed table: run DELETE FROM events_local ON CLUSTER <cluster> "
                f"WHERE import_id = '{import_id}' on the cluster"
            )
        if record is not None:
            record.status = "undoing"
            records.save(settings.state_dir, record)
        hours = store.query(
            "SELECT site, toString(toStartOfHour(timestamp)) FROM events WHERE import_id = {id:String} "
            "GROUP BY 1, 2",
            params,
        ).rows
        if rows:
            store.command("DELETE FROM events WHERE import_id = {id:String}", params)
        if hours:
            store.insert_rows("event_counts", [{"site": s, "hour": h, "rows": 1} for s, h in hours])
        records.delete(settings.state_dir, import_id)
        _drop_identity_files(settings, import_id)
    (records.folder(settings.state_dir) / f"{import_id}.lock").unlink(missing_ok=True)
    return rows
