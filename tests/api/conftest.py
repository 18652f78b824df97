"""API fixtures: a real store (chDB in a temp folder, or the server engine against the test-only front),
the app over it, users, and a logged-in client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query.report_cache import ReportCache
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import dataset
from tests.chfront import ChFront

# Filters every event passes that no per-day cache answers together (a property beside a country filter: alone,
# a property no event carries is a filter on every path the engagement and link caches answer): the raw path.
RAW_ONLY: list[list[str]] = [
    ["prop:no-such-property", "is", ""],
    ["country", "not_contains", "never-a-country"],
]
ADMIN_PASSWORD = "admin-password-123"
VIEWER_PASSWORD = "viewer-password-123"


@dataclass
class Api:
    client: TestClient
    settings: Settings
    store: Store
    data_dir: Path
    admin: dict[str, str]
    site_id: int
    other_site_id: int
    events: list[dict[str, Any]]

    def login(self, username: str, password: str) -> dict[str, Any]:
        r = self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def headers(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(username, password)['access_token']}"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set ENGINES = ("chdb", "clickhouse") run on both store engines."""
    if "api" in metafunc.fixturenames:
        metafunc.parametrize("engine", getattr(metafunc.module, "ENGINES", ("chdb",)), scope="module")


@pytest.fixture(scope="session")
def api_chfront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChFront]:
    """The server engine (clickhouse-connect) against the test-only HTTP front on chDB."""
    front = ChFront.start(tmp_path_factory.mktemp("api-chfront"))
    yield front
    front.stop()


@pytest.fixture(scope="module")
def api(
    engine: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Api]:
    """One store + app per test module, with the fixed data set, an admin, a viewer of one site."""
    data_dir = tmp_path_factory.mktemp("api")
    store: Store
    if engine == "clickhouse":
        front: ChFront = request.getfixturevalue("api_chfront")
        store = ClickHouseStore(front.url, database=f"pixel_api_{data_dir.name.replace('-', '_')}")
    else:
        store = ChdbStore(data_dir / "store")
    store.migrate()
    events = dataset.generate()
    store.insert_rows("events", events)
    store.insert_rows("events", events[:5])  # a replayed delivery: FINAL must hide the copies
    store.insert_rows("events", dataset.noise())
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(ADMIN_PASSWORD), "admin")
    site_id = meta.insert(
        "sites", {"domain": dataset.SITE, "name": "Shop", "timezone": dataset.TZ, "created_at": 0.0}
    )
    other_id = meta.insert(
        "sites", {"domain": dataset.OTHER_SITE, "name": "Other", "timezone": "UTC", "created_at": 0.0}
    )
    meta.create_user("viewer", hash_password(VIEWER_PASSWORD), "viewer", [site_id])
    app = create_app(settings, store, sql_seconds=2.0)
    with TestClient(app) as client:
        api = Api(client, settings, store, data_dir, {}, site_id, other_id, events)
        api.admin = api.headers()
        yield api
    store.close()


def add_site(api: Api, domain: str, tz: str, rows: list[dict[str, Any]]) -> int:
    """Store `rows` as events and add the site `domain` in zone `tz` to the meta store; returns its id."""
    api.store.insert_rows("events", rows)
    return int(
        open_meta(api.settings).insert(
            "sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0}
        )
    )


def report(api: Api, site_id: int, path: str, **params: Any) -> dict[str, Any]:
    """The admin's GET of `/api/sites/{site_id}/reports/{path}`, asserted 200; its JSON body."""
    r = api.client.get(f"/api/sites/{site_id}/reports/{path}", params=params, headers=api.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def report_cache(api: Api) -> ReportCache:
    """The report cache of the app under test (one per app, made by create_app)."""
    cache = api.client.app.state.pixel.report_cache  # type: ignore[attr-defined]
    assert isinstance(cache, ReportCache)
    return cache


@pytest.fixture
def rebuild_at_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Changed days are rebuilt on the next report (in service, at most every rebuild_min_seconds); a test
    module that needs it for every test says `pytestmark = pytest.mark.usefixtures("rebuild_at_once")`."""
    monkeypatch.setattr(report_cache(api), "rebuild_min_seconds", 0.0)


@pytest.fixture
def queries(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL the report cache's runner runs from here on (recorded, then run as it is)."""
    seen: list[str] = []
    runner = report_cache(api).runner
    original = QueryRunner.query

    def recording(sql: str, params: Any = None) -> Any:
        seen.append(sql)
        return original(runner, sql, params)

    monkeypatch.setattr(runner, "query", recording)
    return seen
