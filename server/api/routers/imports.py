"""`/api/imports`: history imports through the API (admins only; the desktop's import dialog uses it).

- `POST /imports/files?name=...`: the request body is the file (plain or gzip), streamed to the data folder;
  201 with the upload's id, size and the guessed kind. Larger than `PIXEL_IMPORT_MAX_BYTES`: 413; a gzip that
  ends early or is damaged, or an empty body: 422 (nothing kept). `DELETE /imports/files/{upload}` drops it.
- `POST /imports/preview` `{upload, kind, site_id}`: reads the file in the background (202, its id; a file not of
  that kind by its first bytes: 422 at once); `GET /imports/previews/{id}` gives its `percent` while `running`,
  then (`done`) the date range, rows per UTC day (each marked `live` when the site already has live data that
  day: the overlap), rows under each overlap choice, sites (hosts) found, skipped lines by reason, malformed
  lines with their numbers; a file none of whose lines is of that kind: 422. `DELETE` it to stop reading.
- `POST /imports` `{upload, kind, site_id, overlap}`: starts the import in the store process (202); one at a
  time per site (409), the same file already imported for the site: 409.
- `GET /imports`, `GET /imports/{id}`: the imports with their progress (`percent`, `lines`, `rows`, `status`:
  running, done, truncated, cancelling, cancelled, failed), counters and malformed lines.
- `POST /imports/{id}/cancel`: stops it and removes what it imported. `DELETE /imports/{id}`: undo.
The work itself is `pixel.server.importer.jobs` (its docstring holds the contract).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pixel.server.api.deps import Admin, AppState, Principal, State, site_for
from pixel.server.api.errors import ApiError
from pixel.server.importer import records, run
from pixel.server.importer.jobs import GzipCheck, ImportBusy, ImportJobs, UploadError
from pixel.server.importer.lines import GZIP_MAGIC, ImportFileError

router = APIRouter(prefix="/imports", tags=["imports"])

_MAKING = threading.Lock()


class PreviewBody(BaseModel):
    upload: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=40)
    site_id: int = Field(ge=1, le=2**53)


class StartBody(PreviewBody):
    overlap: Literal["skip", "include"] = "skip"


def jobs_of(state: AppState) -> ImportJobs:
    """The app's import jobs, made at the first use (which resumes runs a crash interrupted)."""
    with _MAKING:
        jobs: ImportJobs | None = vars(state).get("_imports")
        if jobs is None:
            jobs = ImportJobs(state.settings, state.store, on_change=state.report_cache.changed)
            vars(state)["_imports"] = jobs  # per app: each app (and test) its own jobs
            jobs.resume_interrupted()
    return jobs


def resume_at_start(state: AppState) -> None:
    """For the store process's start: run again the imports a crash cut (nothing made when there are none)."""
    if any(r.status == "running" for r in records.all_records(state.settings.state_dir)):
        jobs_of(state)


def _refusal(exc: Exception) -> ApiError:
    if isinstance(exc, ImportBusy):
        return ApiError(409, "import_busy", str(exc))
    if isinstance(exc, UploadError):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, ImportFileError):
        return ApiError(422, "bad_import_file", str(exc))
    if isinstance(exc, run.ImportFailed) and "unknown import id" in str(exc):
        return ApiError(404, "not_found", str(exc))
    return ApiError(409, "import_refused", str(exc))


def _domain(state: AppState, principal: Principal, site_id: int) -> str:
    return str(site_for(state, principal, site_id)["domain"])


@router.post("/files", status_code=201)
async def upload(
    principal: Admin, state: State, request: Request, name: Annotated[str, Query(max_length=255)] = "upload"
) -> dict[str, Any]:
    jobs = await run_in_threadpool(jobs_of, state)
    limit = state.settings.import_max_bytes
    try:
        upload_id, path = jobs.new_upload(name)
    except ImportBusy as exc:
        raise _refusal(exc) from None
    check: GzipCheck | None = None
    size, problem = 0, ""
    try:
        with open(path, "wb") as out:
            async for chunk in request.stream():
                if not chunk:
                    continue
                if size == 0 and chunk[:2] == GZIP_MAGIC:
                    check = GzipCheck()
                size += len(chunk)
                if size > limit:
                    problem = "too_large"
                    break
                await run_in_threadpool(out.write, chunk)
                if check is not None:
                    await run_in_threadpool(check.feed, chunk)
        if problem == "too_large":
            raise ApiError(
                413,
                "file_too_large",
                f"the file is larger than the import limit of {limit:,} bytes (PIXEL_IMPORT_MAX_BYTES)",
            )
        if size == 0:
            raise ApiError(422, "bad_import_file", "the file is empty")
        if check is not None and (why := check.finish()):
            raise ApiError(422, "bad_import_file", f"{path.name}: {why}")
        found = await run_in_threadpool(jobs.finished_upload, upload_id, path, check is not None)
    except BaseException:
        jobs.delete_upload(upload_id)
        raise
    return found.as_dict


@router.delete("/files/{upload_id}", status_code=204)
def drop_upload(principal: Admin, state: State, upload_id: str) -> None:
    try:
        jobs_of(state).delete_upload(upload_id)
    except UploadError as exc:
        raise _refusal(exc) from None


@router.post("/preview", status_code=202)
def preview(principal: Admin, state: State, body: PreviewBody) -> dict[str, Any]:
    domain = _domain(state, principal, body.site_id)
    try:
        return jobs_of(state).preview_start(body.upload, body.kind, domain)
    except (UploadError, ImportFileError, ImportBusy) as exc:
        raise _refusal(exc) from None


@router.get("/previews/{preview_id}")
def preview_state(principal: Admin, state: State, preview_id: str) -> dict[str, Any]:
    try:
        shown = jobs_of(state).preview_state(preview_id)
    except UploadError as exc:
        raise _refusal(exc) from None
    if shown["status"] == "failed":
        raise ApiError(422, "bad_import_file", shown["error"])
    return shown


@router.delete("/previews/{preview_id}", status_code=204)
def preview_cancel(principal: Admin, state: State, preview_id: str) -> None:
    try:
        jobs_of(state).preview_cancel(preview_id)
    except UploadError as exc:
        raise _refusal(exc) from None


@router.post("", status_code=202)
def start(principal: Admin, state: State, body: StartBody) -> dict[str, Any]:
    domain = _domain(state, principal, body.site_id)
    try:
        return jobs_of(state).start(body.upload, body.kind, domain, body.overlap)
    except (UploadError, ImportFileError, ImportBusy, run.ImportFailed) as exc:
        raise _refusal(exc) from None


@router.get("")
def list_imports(principal: Admin, state: State) -> list[dict[str, Any]]:
    return jobs_of(state).all()


@router.get("/{import_id}")
def one(principal: Admin, state: State, import_id: str) -> dict[str, Any]:
    try:
        return jobs_of(state).status(import_id)
    except run.ImportFailed as exc:
        raise _refusal(exc) from None


@router.post("/{import_id}/cancel", status_code=202)
def cancel(principal: Admin, state: State, import_id: str) -> dict[str, Any]:
    try:
        return jobs_of(state).cancel(import_id)
    except run.ImportFailed as exc:
        raise _refusal(exc) from None


@router.delete("/{import_id}")
def undo(principal: Admin, state: State, import_id: str) -> dict[str, Any]:
    try:
        deleted = jobs_of(state).undo(import_id)
    except (ImportBusy, run.ImportFailed) as exc:
        raise _refusal(exc) from None
    return {"id": import_id, "rows_deleted": deleted}
