"""Imports run by the store process for the API (`/api/imports`): uploaded files, previews, background runs
with progress and cancel, the list, undo, and the resume of runs a crash interrupted.

Contract:
- An upload is a file under `<state>/imports/uploads/<upload id>/<its name>`, written as it arrives (never whole
  in memory), at most `Settings.import_max_bytes`; a gzip upload is decompressed as it arrives (output dropped,
  memory bounded) and one that ends early or is damaged is refused and removed (`GzipCheck`).
- `preview_start` reads the file in a thread (a 10 GB log takes minutes; its progress and a cancel are read
  between lines) with the import core's own line processing (`run.LineProcessor`, every day included) and
  splits the days into those without live data and those with it (the overlap), so the owner sees both
  choices' numbers. A file none of whose lines is of the chosen kind fails (`WrongKind`) with a guess.
- `start` makes the import's record (`run.start`: the same file and site already imported is refused, an
  unfinished one is resumed) and runs it in a thread; one import at a time per site (`ImportBusy`).
- Progress (bytes read, file size, lines) is updated after each committed batch; `cancel` stops the run at the
  next batch and undoes what it imported, so a cancelled import leaves nothing (also when it had just ended).
- When a run ends (done or truncated) its uploaded file is removed; undo removes the rows (`run.undo`).
- An aggregate source (`aggregates.AGGREGATE_SOURCES`: Plausible's CSV export ZIP) is guessed by its tables'
  names, previewed in the same shape (rows per day, dimension and value; malformed rows as "file:line"),
  imported by `start` before it returns (daily reports: seconds, no thread) and undone by `aggregates.undo`.
- `resume_interrupted` runs again every record still `running` whose file is an upload (a crash of the store
  process cut it): the importer's own resume continues from the committed offset without duplicates. The store
  process calls it at its start (`StoreService.start` -> `routers.imports.resume_at_start`); the jobs are also
  made, and resume, at the API's first use of imports.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pixel.server.errors import PixelError
from pixel.server.importer import aggregates, records, run
from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Source
from pixel.server.importer.lines import ImportFileError, RawPosition, TruncatedFile, WrongKind, read_lines
from pixel.server.importer.sources import SOURCES
from pixel.server.settings import Settings
from pixel.server.store import Store, StoreError

log = logging.getLogger(__name__)

BATCH_LINES = 10_000  # smaller than the CLI's batches: the progress and a cancel move more often
GUESS_LINES = 20
EARLY_VERDICT = 1000  # a preview whose first this many lines are all malformed: the file is not of that kind
KEEP_PREVIEWS = 20  # finished previews kept for reading
RUNNING_PREVIEWS = 2  # previews read at once (each a thread reading a whole file): more wait their turn (409)
KEPT_UPLOADS = (
    10  # uploads waiting for their import at once (each up to the size limit): more are refused (409)
)
GUESS_ORDER = ("goatcounter", "umami", "matomo", "ga4", "accesslog")  # the strict header checks first


class ImportBusy(PixelError):
    """A limit of the imports is reached: one import at a time per site, `RUNNING_PREVIEWS` previews, `KEPT_UPLOADS`
    uploads waiting."""


class UploadError(PixelError):
    """An upload that cannot be kept (too large, a damaged gzip, an unknown upload id): the message says why."""


class ImportCancelled(PixelError):
    """Raised from the progress callback to stop a run after a committed batch (caught in this module)."""


def guess_kind(path: Path) -> str | None:
    """The source a file most likely is, from its first lines (None: none of them fits); an aggregate source's
    ZIP by its tables' names first."""
    for name, aggregate in aggregates.AGGREGATE_SOURCES.items():
        try:
            aggregate.check(path)
            return name
        except (ImportFileError, OSError, ValueError):
            continue
    for name in GUESS_ORDER:
        source = SOURCES[name]
        try:
            source.check(path)
            parse = source.parser(path)
            parsed = 0
            for _n, _o, _e, text in read_lines(path):
                if not text.strip():
                    continue
                got = parse(text)
                if got is not None and not isinstance(got, Malformed):
                    return name
                parsed += 1
                if parsed >= GUESS_LINES:
                    break
        except (ImportFileError, OSError, ValueError):
            continue
    return None


class GzipCheck:
    """Decompresses a gzip stream as it arrives, keeping nothing, to tell a whole file from a cut or damaged
    one; several members (`cat a.gz b.gz`) are whole too."""

    OUT = 1 << 20

    def __init__(self) -> None:
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.fed = False  # the current member has begun
        self.error = ""

    def feed(self, data: bytes) -> None:
        while data and not self.error:
            self.fed = True
            try:
                self.inflate.decompress(data, self.OUT)
                while self.inflate.unconsumed_tail and not self.inflate.eof:
                    self.inflate.decompress(self.inflate.unconsumed_tail, self.OUT)
            except zlib.error as exc:
                self.error = f"the gzip data is damaged ({exc})"
                return
            if not self.inflate.eof:
                return
            data = self.inflate.unused_data
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next member, if any
            self.fed = False

    def finish(self) -> str:
        """'' for a whole stream, else why not."""
        if self.error:
            return self.error
        if self.fed:
            return "the gzip data ends early (a truncated download?); upload the whole file"
        return ""


@dataclass
class Upload:
    id: str
    name: str
    size: int
    gzip: bool
    kind: str | None  # the guessed source

    @property
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreviewJob:
    id: str
    upload: str
    kind: str
    site: str
    status: str = "running"  # running, done, failed, cancelled
    done_bytes: int = 0
    total_bytes: int = 0
    lines: int = 0
    result: dict[str, Any] | None = None
    error: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Job:
    import_id: str
    site: str
    kind: str = ""
    file: str = ""
    thread: threading.Thread | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "running"  # running, cancelling, cancelled, failed, finished
    done_bytes: int = 0
    total_bytes: int = 0
    lines: int = 0
    error: str = ""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z") if ms else ""


def safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in base)[:120].lstrip(".")
    return cleaned or "upload"


class ImportJobs:
    """The store process's imports for the API (module docstring). Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        batch_lines: int = BATCH_LINES,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # told the site whose rows an import wrote or an undo deleted (the report caches rebuild its days at once)
        self.on_change = on_change
        self.batch_lines = batch_lines
        self.jobs: dict[str, Job] = {}
        self.previews: dict[str, PreviewJob] = {}
        self.lock = threading.Lock()
        self.uploads = records.folder(settings.state_dir) / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- uploads ----------------------------------------------------------------------------------

    def new_upload(self, name: str) -> tuple[str, Path]:
        """A fresh upload id and the path its bytes go to (ImportBusy when `KEPT_UPLOADS` already wait)."""
        waiting = sum(1 for p in self.uploads.iterdir() if p.is_dir())
        if waiting >= KEPT_UPLOADS:
            raise ImportBusy(
                f"{waiting} uploads are waiting for their import; import or delete one of them first "
                "(GET /api/imports lists the imports; DELETE /api/imports/files/ID removes an upload)"
            )
        upload_id = secrets.token_hex(8)
        folder = self.uploads / upload_id
        folder.mkdir(mode=0o700)
        return upload_id, folder / safe_name(name)

    def finished_upload(self, upload_id: str, path: Path, gzip: bool) -> Upload:
        return Upload(upload_id, path.name, path.stat().st_size, gzip, guess_kind(path))

    def upload_path(self, upload_id: str) -> Path:
        if not records.valid_id(upload_id):
            raise UploadError(f"unknown upload {upload_id!r}")
        folder = self.uploads / upload_id
        files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        if len(files) != 1:
            raise UploadError(f"unknown upload {upload_id!r} (uploads are removed once imported)")
        return files[0]

    def delete_upload(self, upload_id: str) -> None:
        if not records.valid_id(upload_id) or not (self.uploads / upload_id).is_dir():
            raise UploadError(f"unknown upload {upload_id!r}")
        shutil.rmtree(self.uploads / upload_id, ignore_errors=True)

    def _drop_file_of(self, record: records.ImportRecord) -> None:
        path = Path(record.file)
        if path.parent.parent == self.uploads.resolve():
            shutil.rmtree(path.parent, ignore_errors=True)

    # -- preview ----------------------------------------------------------------------------------

    @staticmethod
    def source(kind: str) -> Source:
        found = SOURCES.get(kind)
        if found is None:
            known = [*SOURCES, *aggregates.AGGREGATE_SOURCES]
            raise WrongKind(f"unknown kind {kind!r}; one of: {', '.join(known)}")
        return found

    @classmethod
    def check(cls, kind: str, path: Path) -> None:
        """Raises WrongKind for a file not of `kind` by its first bytes (or an unknown kind)."""
        aggregate = aggregates.AGGREGATE_SOURCES.get(kind)
        (aggregate.check if aggregate is not None else cls.source(kind).check)(path)

    def preview_start(self, upload_id: str, kind: str, site: str) -> dict[str, Any]:
        """A preview read in a thread (a large file takes minutes); its id and state. A file that is not of
        `kind` by its first bytes is refused at once (`WrongKind`)."""
        path = self.upload_path(upload_id)
        self.check(kind, path)
        job = PreviewJob(secrets.token_hex(8), upload_id, kind, site, total_bytes=path.stat().st_size)
        with self.lock:
            if sum(1 for v in self.previews.values() if v.status == "running") >= RUNNING_PREVIEWS:
                raise ImportBusy(
                    f"{RUNNING_PREVIEWS} previews are being read; try again when one has finished"
                )
            for old in [k for k, v in self.previews.items() if v.status != "running"][:-KEEP_PREVIEWS]:
                del self.previews[old]
            self.previews[job.id] = job
        threading.Thread(
            target=self._preview_work, args=(job,), name=f"preview {job.id}", daemon=True
        ).start()
        return self.preview_state(job.id)

    def _preview_work(self, job: PreviewJob) -> None:
        try:
            job.result = self.preview(job.upload, job.kind, job.site, job)
            job.status = "done"
        except ImportCancelled:
            job.status = "cancelled"
        except Exception as exc:  # WrongKind, a file gone, a store that cannot say its live days
            job.status, job.error = "failed", str(exc)

    def preview_state(self, preview_id: str) -> dict[str, Any]:
        """`{id, status: running|done|failed|cancelled, percent, lines, error}`, and the preview when done.
        Raises UploadError for an unknown id."""
        job = self.previews.get(preview_id)
        if job is None:
            raise UploadError(f"unknown preview {preview_id!r}")
        out: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "percent": 100.0
            if job.status == "done"
            else round(min(job.done_bytes / job.total_bytes, 1.0) * 100, 1)
            if job.total_bytes
            else 0.0,
            "error": job.error,
        }
        if job.result is not None:
            out.update(job.result)
        out["lines"] = job.result["lines"] if job.result else job.lines
        return out

    def preview_cancel(self, preview_id: str) -> None:
        job = self.previews.get(preview_id)
        if job is None:
            raise UploadError(f"unknown preview {preview_id!r}")
        job.cancel.set()

    def preview(self, upload_id: str, kind: str, site: str, job: PreviewJob | None = None) -> dict[str, Any]:
        """What importing the upload as `kind` into `site` would do (nothing written): the run's own line
        processing with every day included, then the days split by live data. A file none of whose lines is
        of `kind` raises WrongKind (after its first `EARLY_VERDICT` lines when all are malformed)."""
        path = self.upload_path(upload_id)
        if kind in aggregates.AGGREGATE_SOURCES:
            return self._aggregate_preview(upload_id, path, kind, site)
        source = self.source(kind)
        source.check(path)
        processor = run.LineProcessor(self.settings, site, "preview", set(), {}, source.parser(path))
        shown = run.Preview()
        rows: list[run.Row] = []
        position = RawPosition()
        try:
            for number, offset, _end, text in read_lines(path, position=position):
                processor.process(number, offset, text, shown, rows)
                rows.clear()
                if number % 2000 == 0:
                    if job is not None:
                        job.done_bytes, job.lines = position.tell(), number
                        if job.cancel.is_set():
                            raise ImportCancelled
                    if shown.rows == 0 and not shown.skipped and shown.malformed_count >= EARLY_VERDICT:
                        break
        except TruncatedFile as exc:
            shown.error = str(exc)
        if shown.rows == 0 and not shown.skipped and shown.malformed_count:
            guess = guess_kind(path)
            hint = f"; it looks like {guess}" if guess and guess != kind else ""
            first = f" (line {shown.malformed[0][0]}: {shown.malformed[0][1]})" if shown.malformed else ""
            raise WrongKind(f"none of the lines of {path.name} is {source.what}{first}{hint}")
        live = set(run.live_days(self.store, site.strip().lower()))
        days = [{"day": d, "rows": n, "live": d in live} for d, n in sorted(shown.days.items())]
        overlap = sum(n for d, n in shown.days.items() if d in live)
        return {
            "upload": upload_id,
            "file": path.name,
            "kind": kind,
            "site": site,
            "lines": shown.lines,
            "first": _iso(shown.first_ms),
            "last": _iso(shown.last_ms),
            "days": days,
            "rows": {"skip": shown.rows - overlap, "include": shown.rows},
            "overlap_days": [d["day"] for d in days if d["live"]],
            "hosts": dict(shown.hosts.most_common(50)),
            "skipped": dict(shown.skipped),
            "malformed": [list(m) for m in shown.malformed],
            "malformed_count": shown.malformed_count,
            "error": shown.error,
        }

    def _aggregate_preview(self, upload_id: str, path: Path, kind: str, site: str) -> dict[str, Any]:
        """An aggregate source's preview in the shape of the raw sources' (rows: one per day, dimension and
        value; `lines`: those rows; no hosts)."""
        shown = aggregates.preview(None, path, site, "include", aggregates.AGGREGATE_SOURCES[kind])
        live = set(run.live_days(self.store, site.strip().lower()))
        days = [{"day": d, "rows": n, "live": d in live} for d, n in sorted(shown.days.items())]
        overlap = sum(n for d, n in shown.days.items() if d in live)
        return {
            "upload": upload_id,
            "file": path.name,
            "kind": kind,
            "site": site,
            "lines": shown.rows,
            "first": shown.first,
            "last": shown.last,
            "days": days,
            "rows": {"skip": shown.rows - overlap, "include": shown.rows},
            "overlap_days": [d["day"] for d in days if d["live"]],
            "hosts": {},
            "visitors": shown.visitors,
            "pageviews": shown.pageviews,
            "skipped": dict(shown.skipped),
            "malformed": [list(m) for m in shown.malformed],
            "malformed_count": shown.malformed_count,
            "error": "",
        }

    # -- runs -------------------------------------------------------------------------------------

    def start(self, upload_id: str, kind: str, site: str, overlap: str) -> dict[str, Any]:
        """Start importing the upload. An aggregate source (a ZIP of daily reports: seconds) is imported before
        this returns, its upload removed; a raw source runs in a thread."""
        path = self.upload_path(upload_id)
        site = site.strip().lower()
        aggregate = aggregates.AGGREGATE_SOURCES.get(kind)
        if aggregate is not None:
            with self.lock:
                self._check_free(site)
                record = aggregates.import_file(self.settings, self.store, path, site, overlap, aggregate)
            self._drop_file_of(record)
            self._changed(site)
            return self.status(record.id)
        source = self.source(kind)
        with self.lock:
            self._check_free(site)
            record = run.start(self.settings, self.store, path, site, overlap, source)
            self._launch(record)
        return self.status(record.id)

    def _check_free(self, site: str) -> None:
        for job in self.jobs.values():
            if job.site == site and job.thread is not None and job.thread.is_alive():
                raise ImportBusy(
                    f"an import of {site} is running ({job.import_id}); wait for it or cancel it"
                )

    def _launch(self, record: records.ImportRecord) -> None:
        job = Job(record.id, record.site, record.source, Path(record.file).name, total_bytes=record.file_size)
        job.thread = threading.Thread(
            target=self._work, args=(job, record), name=f"import {record.id}", daemon=True
        )
        self.jobs[record.id] = job
        job.thread.start()

    def _work(self, job: Job, record: records.ImportRecord) -> None:
        def progress(done: int, total: int, lines: int) -> None:
            job.done_bytes, job.total_bytes, job.lines = done, total, lines
            if job.cancel.is_set():
                raise ImportCancelled

        try:
            if job.cancel.is_set():
                raise ImportCancelled
            finished = run.run(
                self.settings, self.store, record, progress=progress, batch_lines=self.batch_lines
            )
            if job.cancel.is_set():  # it ended before the cancel was seen: undo it all the same
                raise ImportCancelled
            self._drop_file_of(finished)
            job.done_bytes = job.total_bytes
            job.state = "finished"
        except ImportCancelled:
            self._undo_cancelled(job, record)
        except (run.ImportFailed, ImportFileError, StoreError, OSError) as exc:
            job.state, job.error = "failed", str(exc)
            log.warning("import %s stopped: %s", job.import_id, exc)
        except Exception as exc:  # a thread must say why it ended
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("import %s failed", job.import_id)
        self._changed(record.site)

    def _changed(self, site: str) -> None:
        if self.on_change is not None:
            try:
                self.on_change(site)
            except Exception:  # the import's own outcome stands; the caches then catch up on their own
                log.exception("import: telling the caches about %s failed", site)

    def _undo_cancelled(self, job: Job, record: records.ImportRecord) -> None:
        undo = aggregates.undo if record.source in aggregates.AGGREGATE_SOURCES else run.undo
        try:
            undo(self.settings, self.store, job.import_id)
            self._changed(record.site)
            self._drop_file_of(record)
            job.state = "cancelled"
        except (run.ImportFailed, StoreError) as exc:
            job.state, job.error = "failed", f"cancelled, but its rows could not be removed: {exc}"

    def resume_interrupted(self) -> list[str]:
        """Run again the records left `running` (a crash of the store process) whose file is an upload."""
        resumed = []
        with self.lock:
            for record in records.all_records(self.settings.state_dir):
                alive = record.id in self.jobs and self.jobs[record.id].state in ("running", "cancelling")
                if record.status != "running" or alive or record.source in aggregates.AGGREGATE_SOURCES:
                    continue  # an aggregate import cut short is finished by importing its file again
                path = Path(record.file)
                if path.parent.parent != self.uploads.resolve() or not path.exists():
                    continue
                log.info("import %s: resuming at line %d", record.id, record.line)
                self._launch(record)
                resumed.append(record.id)
        return resumed

    def cancel(self, import_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(import_id)
            if job is not None and job.thread is not None and job.thread.is_alive():
                job.state = "cancelling"
                job.cancel.set()
                return self.status(import_id)
        record = records.load(self.settings.state_dir, import_id)
        if record is None or record.status != "running":
            raise run.ImportFailed(f"import {import_id} is not running (undo removes a finished one)")
        job = Job(
            import_id, record.site, record.source, Path(record.file).name, state="cancelling"
        )  # interrupted and not resumed: undo it now
        self.jobs[import_id] = job
        self._undo_cancelled(job, record)
        return self.status(import_id)

    def undo(self, import_id: str) -> int:
        job = self.jobs.get(import_id)
        if job is not None and job.thread is not None and job.thread.is_alive():
            raise ImportBusy(f"import {import_id} is running; cancel it instead")
        record = records.load(self.settings.state_dir, import_id)
        if record is not None and record.source in aggregates.AGGREGATE_SOURCES:
            deleted = aggregates.undo(self.settings, self.store, import_id)
        else:
            deleted = run.undo(self.settings, self.store, import_id)
        if record is not None:
            self._changed(record.site)
            self._drop_file_of(record)
        self.jobs.pop(import_id, None)
        return deleted

    # -- reading ----------------------------------------------------------------------------------

    def _describe(self, record: records.ImportRecord | None, job: Job | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if record is not None:
            out = {
                "id": record.id,
                "kind": record.source,
                "site": record.site,
                "file": Path(record.file).name,
                "file_size": record.file_size,
                "overlap": record.overlap,
                "status": record.status,
                "rows": record.rows,
                "lines": record.line - 1,
                "days": dict(sorted(record.days.items())),
                "skipped": record.skipped,
                "malformed": record.malformed,
                "malformed_count": record.malformed_count,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "error": record.error,
            }
            done = record.file_size if record.status in ("done", "truncated") else 0
        else:
            assert job is not None
            out = {"id": job.import_id, "site": job.site, "kind": job.kind, "file": job.file}
            out.update(status=job.state, rows=0, lines=job.lines)
            done = 0
        if job is not None:
            if job.state in ("cancelling", "cancelled", "failed"):
                out["status"] = job.state
            if job.error:
                out["error"] = job.error
            done = max(done, job.done_bytes)
            out["running"] = job.thread is not None and job.thread.is_alive()
        else:
            out["running"] = False
        total = out.get("file_size") or (job.total_bytes if job else 0)
        out["percent"] = (
            100.0
            if out["status"] in ("done", "truncated")
            else (round(min(done / total, 1.0) * 100, 1) if total else 0.0)
        )
        return out

    def status(self, import_id: str) -> dict[str, Any]:
        record = records.load(self.settings.state_dir, import_id)
        job = self.jobs.get(import_id)
        if record is None and job is None:
            raise run.ImportFailed(f"unknown import id {import_id!r}")
        return self._describe(record, job)

    def all(self) -> list[dict[str, Any]]:
        found = {r.id: r for r in records.all_records(self.settings.state_dir)}
        shown = [self._describe(r, self.jobs.get(i)) for i, r in found.items()]
        shown += [self._describe(None, j) for i, j in list(self.jobs.items()) if i not in found]
        return sorted(shown, key=lambda d: (-(d.get("started_at") or time.time()), d["id"]))

    def wait(self, import_id: str, timeout: float | None = None) -> None:
        """Until the import's thread has ended (tests, shutdown)."""
        job = self.jobs.get(import_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
