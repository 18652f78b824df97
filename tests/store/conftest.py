"""Store fixtures: the same contract tests run on both engines.

- `clickhouse_url`: the ClickHouse server in PIXEL_TEST_CLICKHOUSE_URL (credentials may be in the
  URL: http://user:password@host:8123) when set, else a test-only HTTP front on chDB
  (tests/chfront.py) started once per test session.
- `bare_store` (no schema) and `store` (migrated): parametrised over both engines, fresh per test:
  chDB in a temp folder, or the server engine on a database of its own (dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixel.server.store.base import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore

try:
    from chfront import ChFront
except ImportError:  # tests/ made a package
    from tests.chfront import ChFront

FRONT_USER, FRONT_PASSWORD = "pixel", "front-s3cret"


@pytest.fixture(scope="session")
def chfront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChFront]:
    """The test-only HTTP front on chDB (its own process), with a user and password."""
    front = ChFront.start(tmp_path_factory.mktemp("chfront"), user=FRONT_USER, password=FRONT_PASSWORD)
    yield front
    front.stop()


@pytest.fixture(scope="session")
def clickhouse_url(request: pytest.FixtureRequest) -> str:
    url = os.environ.get("PIXEL_TEST_CLICKHOUSE_URL", "")
    if url:
        return url
    front: ChFront = request.getfixturevalue("chfront")
    return front.url.replace("http://", f"http://{FRONT_USER}:{FRONT_PASSWORD}@")


def open_engine(engine: str, tmp_path: Path, clickhouse_url: str | None) -> tuple[Store, str]:
    if engine == "chdb":
        return ChdbStore(tmp_path / "store"), ""
    assert clickhouse_url
    database = f"pixel_test_{uuid.uuid4().hex[:12]}"
    return ClickHouseStore(clickhouse_url, database=database), database


@pytest.fixture(params=["chdb", "clickhouse"])
def bare_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store (no schema yet) on each engine in turn."""
    url = request.getfixturevalue("clickhouse_url") if request.param == "clickhouse" else None
    store, database = open_engine(request.param, tmp_path, url)
    try:
        yield store
    finally:
        if database:
            store.command(f"DROP DATABASE IF EXISTS `{database}`")
        store.close()


@pytest.fixture
def store(bare_store: Store) -> Store:
    """A migrated store on each engine in turn."""
    bare_store.migrate()
    return bare_store


@pytest.fixture
def chdb_store(tmp_path: Path) -> Iterator[ChdbStore]:
    """A migrated embedded store only, for what only chDB has (its in-memory insert files, a second session)."""
    opened = ChdbStore(tmp_path / "store")
    opened.migrate()
    yield opened
    opened.close()
