"""Report answers for the GUI: live from the API when it answers (and then cached), else the cached
answer marked with the time it was fetched ("as of")."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pixel.app.client.api import ApiClient, Unreachable, report_params
from pixel.app.client.cache import ReportCache, list_key, request_key
from pixel.app.errors import AppError


class NoData(AppError):
    """The host is unreachable and nothing for this request was cached yet."""


@dataclass(frozen=True)
class Fetched:
    data: Any
    as_of: float  # when the answer left the API (epoch seconds)
    live: bool  # False: served from the cache because the host did not answer
    problem: str = ""  # why the live answer is missing

    def as_of_text(self) -> str:
        return "as of " + datetime.fromtimestamp(self.as_of).strftime("%Y-%m-%d %H:%M:%S")


class ReportSource:
    def __init__(self, client: ApiClient | None, cache: ReportCache, profile: str) -> None:
        self.client = client
        self.cache = cache
        self.profile = profile

    def get(self, path: str, params: dict[str, Any] | None = None) -> Fetched:
        """GET `path` live; on Unreachable fall back to the cache. API errors (bad input) are raised."""
        query = report_params(params or {})
        return self._live(request_key(self.profile, path, query), lambda client: client.get(path, query))

    def every(self, path: str, params: dict[str, Any] | None = None) -> Fetched:
        """Every item of a paged list (`ApiClient.every`) as one answer, `{"items": [...], "total": n}`, cached
        as one: a list longer than a page is drawn whole offline too."""
        query = report_params(params or {})

        def read(client: ApiClient) -> dict[str, Any]:
            items = client.every(path, query)
            return {"items": items, "total": len(items)}

        return self._live(list_key(self.profile, path, query), read)

    def _live(self, key: str, read: Callable[[ApiClient], Any]) -> Fetched:
        """`read` live and cached under `key`; the cached answer when the host does not answer."""
        if self.client is None:
            return self._cached(key, "not connected")
        try:
            data = read(self.client)
        except Unreachable as exc:
            return self._cached(key, str(exc))
        now = time.time()
        self.cache.put(key, data, now)
        return Fetched(data, now, True)

    def cached_every(self, path: str, params: dict[str, Any] | None = None) -> Fetched | None:
        """Only the cache of `every`."""
        found = self.cache.get(list_key(self.profile, path, report_params(params or {})))
        return None if found is None else Fetched(found[0], found[1], False, "from cache")

    def cached(self, path: str, params: dict[str, Any] | None = None) -> Fetched | None:
        """Only the cache (for an instant first paint)."""
        found = self.cache.get(request_key(self.profile, path, report_params(params or {})))
        return None if found is None else Fetched(found[0], found[1], False, "from cache")

    def _cached(self, key: str, problem: str) -> Fetched:
        found = self.cache.get(key)
        if found is None:
            raise NoData(f"The host cannot be reached and nothing is cached yet ({problem}).")
        return Fetched(found[0], found[1], False, problem)

    # ---------------------------------------------------------------- the API's resources
    def sites(self) -> Fetched:
        """Every site the caller sees."""
        return self.every("/api/sites")

    def cached_sites(self) -> Fetched | None:
        return self.cached_every("/api/sites")

    def report(self, site_id: int, name: str, params: dict[str, Any] | None = None) -> Fetched:
        return self.get(f"/api/sites/{site_id}/reports/{name}", params)

    def dashboards(self, site_id: int) -> Fetched:
        """Every saved dashboard of the site."""
        return self.every(f"/api/sites/{site_id}/dashboards")

    def cached_dashboards(self, site_id: int) -> Fetched | None:
        return self.cached_every(f"/api/sites/{site_id}/dashboards")
