"""Qt-free calls of the API's history imports (`/api/imports`, admins): upload a file, preview, start, follow,
cancel, list and undo.

Contract: `upload` streams the file from disk in chunks (never whole in memory), calling `on_chunk(bytes sent)`
after each; a callback that raises stops the upload (the server keeps nothing of a cut upload). An expired
access token is renewed once, as `ApiClient.request` does. Refusals are `ApiRequestError` with the API's own
words (a file of the wrong kind, a truncated gzip, too large, one import of the site already running);
a server that does not answer is `Unreachable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from pixel.app.client.api import ApiClient, Unreachable

CHUNK = 1 << 20
# The kinds the API knows (server/importer/sources.py), with the words the dialog shows.
KINDS: dict[str, str] = {
    "accesslog": "Server access log (nginx / Apache, gzip too)",
    "ga4": "Google Analytics 4 (BigQuery export, NDJSON)",
    "umami": "Umami (CSV export)",
    "goatcounter": "GoatCounter (CSV export)",
    "matomo": "Matomo (raw data export, CSV / TSV)",
    "plausible": "Plausible (CSV export, the ZIP of daily reports)",
    "ga4-reports": "Google Analytics 4 (report CSV downloads with a Date column)",
}
OVERLAP = {
    "skip": "Skip days that already have live data (recommended)",
    "include": "Import those days too (adds to the live numbers)",
}


def _chunks(path: Path, on_chunk: Callable[[int], None] | None) -> Iterator[bytes]:
    sent = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
            sent += len(chunk)
            if on_chunk is not None:
                on_chunk(sent)


def upload(client: ApiClient, path: Path, on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
    """POST the file's bytes; the upload's description (`id`, `name`, `size`, `gzip`, guessed `kind`)."""
    path = Path(path)
    for attempt in (1, 2):
        with client._lock:
            if client._access is None:
                client.login()
            headers = {
                "Authorization": f"Bearer {client._access}",
                "Content-Type": "application/octet-stream",
            }
        try:
            response = client._http.post(
                "/api/imports/files",
                params={"name": path.name},
                content=_chunks(path, on_chunk),
                headers={**headers, "Content-Length": str(path.stat().st_size)},
                timeout=httpx.Timeout(client._http.timeout.read or 10.0, write=120.0),
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"{client.base_url} did not answer: {exc}") from exc
        if response.status_code == 401 and attempt == 1:
            with client._lock:
                client._access = None
                client._renew()
            continue
        if response.status_code in (502, 503, 504):
            raise Unreachable(f"{client.base_url} answered {response.status_code}")
        if response.status_code >= 400:
            raise ApiClient._error(response)
        result: dict[str, Any] = response.json()
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def delete_upload(client: ApiClient, upload_id: str) -> None:
    client.request("DELETE", f"/api/imports/files/{upload_id}")


def preview(
    client: ApiClient,
    upload_id: str,
    kind: str,
    site_id: int,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    poll_seconds: float = 0.3,
) -> dict[str, Any]:
    """The preview of importing the upload as `kind` into the site (the server reads the file in the
    background: its state is asked every `poll_seconds` and given to `on_progress`). A callback that raises
    stops the server's reading and the exception goes on; a file not of that kind: `ApiRequestError` (422)."""
    body = {"upload": upload_id, "kind": kind, "site_id": int(site_id)}
    state: dict[str, Any] = client.request("POST", "/api/imports/preview", body=body)
    while state["status"] == "running":
        try:
            if on_progress is not None:
                on_progress(state)
            time.sleep(poll_seconds)
        except BaseException:
            client.request("DELETE", f"/api/imports/previews/{state['id']}")
            raise
        state = client.get(f"/api/imports/previews/{state['id']}")
    return state


def start(client: ApiClient, upload_id: str, kind: str, site_id: int, overlap: str) -> dict[str, Any]:
    body = {"upload": upload_id, "kind": kind, "site_id": int(site_id), "overlap": overlap}
    result: dict[str, Any] = client.request("POST", "/api/imports", body=body)
    return result


def status(client: ApiClient, import_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client.get(f"/api/imports/{import_id}")
    return result


def cancel(client: ApiClient, import_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client.request("POST", f"/api/imports/{import_id}/cancel")
    return result


def list_imports(client: ApiClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.get("/api/imports")
    return result


def undo(client: ApiClient, import_id: str) -> int:
    """Rows deleted."""
    return int(client.request("DELETE", f"/api/imports/{import_id}")["rows_deleted"])


def finished(state: dict[str, Any]) -> bool:
    """Whether an import's status is final (it will not move by itself any more)."""
    return not state.get("running") and state.get("status") != "running"
