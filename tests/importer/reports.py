"""The real API (its app over the test's store and data folder) to read the reports after an import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store import Store

PASSWORD = "admin-password-123"


@dataclass
class Reports:
    client: TestClient
    site_id: int
    headers: dict[str, str]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = self.client.get(f"/api/sites/{self.site_id}/reports/{path}", params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def metrics(self, first: str, last: str) -> dict[str, Any]:
        body = self.get("summary", period="custom", compare="false", **{"from": first, "to": last})
        return {name: item["value"] for name, item in body["metrics"].items()}


@contextmanager
def reports(settings: Settings, store: Store, domain: str) -> Iterator[Reports]:
    """An admin's view of `domain` (a site in UTC) through the API."""
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(PASSWORD), "admin")
    site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": "UTC", "created_at": 0.0})
    app = create_app(settings, store, sql_seconds=5.0)
    # the report cache may serve a day's build for a few seconds after a change (in service); read changes at once
    app.state.pixel.report_cache.rebuild_min_seconds = 0.0
    with TestClient(app) as client:
        r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield Reports(client, site_id, {"Authorization": f"Bearer {r.json()['access_token']}"})
