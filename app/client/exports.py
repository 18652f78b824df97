"""Qt-free downloads of the API's exports (`/api/sites/{id}/exports/...`) into a file, streamed.

Contract: the bytes go to a temporary file next to the destination, which replaces the destination only once
the whole answer arrived; a refusal (`ApiRequestError` with the API's own text), a dropped connection
(`Unreachable`), a cancel (`on_chunk` raising) or a disk error leave no partial file and the destination as it
was. An expired access token is renewed once, as `ApiClient.request` does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pixel.app.client.api import ApiClient, Unreachable, report_params


@dataclass(frozen=True)
class ExportKind:
    key: str
    label: str
    path: str  # under /api/sites/{id}/exports/, may hold {dimension}
    suffix: str
    file_filter: str


KINDS: dict[str, ExportKind] = {
    k.key: k
    for k in (
        ExportKind("dashboard", "Whole dashboard (ZIP of CSV files)", "dashboard.zip", "zip", "ZIP (*.zip)"),
        ExportKind(
            "breakdown", "One report (CSV, every row)", "breakdown/{dimension}.csv", "csv", "CSV (*.csv)"
        ),
        ExportKind("timeseries", "Visitors over time (CSV)", "timeseries.csv", "csv", "CSV (*.csv)"),
        ExportKind("summary", "Summary numbers (CSV)", "summary.csv", "csv", "CSV (*.csv)"),
        ExportKind(
            "events", "Raw events (Parquet, for analysts)", "events.parquet", "parquet", "Parquet (*.parquet)"
        ),
    )
}


def suggested_name(domain: str, kind: str, period: str, dimension: str = "") -> str:
    what = dimension if kind == "breakdown" and dimension else kind
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{domain}-{what}-{period}")
    return f"{safe}.{KINDS[kind].suffix}"


def export_path(site_id: int, kind: str, dimension: str = "") -> str:
    spec = KINDS[kind]
    if "{dimension}" in spec.path and not dimension:
        raise ValueError("this export needs a dimension")
    return f"/api/sites/{int(site_id)}/exports/" + spec.path.format(dimension=dimension)


def download(
    client: ApiClient,
    path: str,
    params: dict[str, Any],
    dest: Path,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Stream GET `path` (report parameters as `ApiClient.report` takes them) into `dest`; the byte count."""
    query = report_params(params)
    for attempt in (1, 2):
        with client._lock:
            if client._access is None:
                client.login()
            headers = {"Authorization": f"Bearer {client._access}"}
        try:
            with client._http.stream("GET", path, params=query, headers=headers) as response:
                if response.status_code == 401 and attempt == 1:
                    with client._lock:
                        client._access = None
                        client._renew()
                    continue
                if response.status_code in (502, 503, 504):
                    raise Unreachable(f"{client.base_url} answered {response.status_code}")
                if response.status_code >= 400:
                    response.read()
                    raise ApiClient._error(response)
                return _save(response, dest, on_chunk)
        except httpx.TransportError as exc:
            raise Unreachable(f"{client.base_url} did not answer: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _save(response: httpx.Response, dest: Path, on_chunk: Callable[[int], None] | None) -> int:
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
                total += len(chunk)
                if on_chunk is not None:
                    on_chunk(total)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return total
