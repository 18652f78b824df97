"""The report cache and the query runner are per app: two apps in one process, or a new app after an old
one's store was closed, never see each other's builds, knowledge or settings.

Real stores (chDB in a temp folder, and the server engine against the test-only front: chDB admits one
data folder per process), real apps, requests through the HTTP interface.
"""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api.conftest import ADMIN_PASSWORD, Api
from tests.api.test_daycache import (
    EVERYTHING,
    FIRST,
    LAST,
    RANGE,
    _row,
    answers,
    builds,
    expected_summary,
    generate,
    report_cache,
)
from tests.chfront import ChFront

SITE, TZ = "twin.example", "Europe/Berlin"


@contextmanager
def serving(data_dir: Path, store: Store, rows: list[dict[str, Any]]) -> Iterator[tuple[Api, int]]:
    """An app of its own over `store` (migrated, `rows` inserted), with site SITE and a logged-in admin."""
    store.migrate()
    store.insert_rows("events", rows)
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(ADMIN_PASSWORD), "admin")
    site_id = meta.insert("sites", {"domain": SITE, "name": SITE, "timezone": TZ, "created_at": 0.0})
    with TestClient(create_app(settings, store)) as client:
        api = Api(client, settings, store, data_dir, {}, site_id, site_id, rows)
        api.admin = api.headers()
        report_cache(api).rebuild_min_seconds = 0.0
        yield api, site_id


def late_session(n: int) -> list[dict[str, Any]]:
    """Two pageviews of a new visitor at noon UTC on a day inside RANGE, received now."""
    t = datetime(FIRST.year, FIRST.month, FIRST.day, 12, tzinfo=UTC) + timedelta(days=2)
    rnd = random.Random(n)
    return [
        _row(n + i, SITE, t + timedelta(minutes=3 * i), f"late-{n}", f"late-{n}", "pageview", "/late", rnd)
        for i in range(2)
    ]


def summary(api: Api, site_id: int) -> dict[str, float]:
    body = answers(api, site_id, **RANGE)["summary"]["metrics"]
    return {k: v["value"] for k, v in body.items()}


def test_two_apps_in_one_process_keep_their_own_caches(tmp_path: Path, api_chfront: ChFront) -> None:
    rows_a, rows_b = generate(SITE, TZ, seed=11), generate(SITE, TZ, seed=12)
    chdb = ChdbStore(tmp_path / "a" / "store")
    server = ClickHouseStore(api_chfront.url, database=f"pixel_twin_{uuid.uuid4().hex[:12]}")
    try:
        with (
            serving(tmp_path / "a", chdb, rows_a) as (a, a_id),
            serving(tmp_path / "b", server, rows_b) as (b, b_id),
        ):
            cache_a, cache_b = report_cache(a), report_cache(b)
            assert cache_a is not cache_b and cache_a.store is chdb and cache_b.store is server
            # the same site name and zone in both: each answers from its own store and its own builds
            first_a, first_b = answers(a, a_id, **RANGE), answers(b, b_id, **RANGE)
            assert builds(a, SITE) > 0 and builds(b, SITE) > 0
            assert first_a == answers(a, a_id, filters=EVERYTHING, **RANGE)
            assert first_b == answers(b, b_id, filters=EVERYTHING, **RANGE)
            assert summary(a, a_id) == expected_summary(rows_a, TZ, FIRST, LAST)
            assert summary(b, b_id) == expected_summary(rows_b, TZ, FIRST, LAST)
            assert first_a["summary"] != first_b["summary"]
            # settings are the app's own: A may lag behind changed days for an hour, B rebuilds at once
            cache_a.rebuild_min_seconds = 3600.0
            chdb.insert_rows("events", late_session(80_000))
            server.insert_rows("events", late_session(80_000))
            assert answers(a, a_id, **RANGE) == first_a  # its builds are younger than its setting
            after_b = summary(b, b_id)
            assert after_b == expected_summary(rows_b + late_session(80_000), TZ, FIRST, LAST)
            assert after_b["sessions"] == first_b["summary"]["metrics"]["sessions"]["value"] + 1
            cache_a.rebuild_min_seconds = 0.0
            assert summary(a, a_id) == expected_summary(rows_a + late_session(80_000), TZ, FIRST, LAST)
            assert answers(a, a_id, **RANGE) == answers(a, a_id, filters=EVERYTHING, **RANGE)
    finally:
        server.command(f"DROP DATABASE IF EXISTS `{server.database}`")
        server.close()
        chdb.close()


def test_a_new_app_over_a_new_store_starts_from_nothing(tmp_path: Path) -> None:
    """The old app's store is closed and gone (its id() free for reuse); the new app's cache and runner
    know only the new store: its answers are the new store's raw answers."""
    old_rows, new_rows = generate(SITE, TZ, seed=11), generate(SITE, TZ, seed=13)
    old = ChdbStore(tmp_path / "old" / "store")
    with serving(tmp_path / "old", old, old_rows) as (api, site_id):
        assert summary(api, site_id) == expected_summary(old_rows, TZ, FIRST, LAST)
        assert builds(api, SITE) > 0
    old.close()
    del old, api
    gc.collect()
    new = ChdbStore(tmp_path / "new" / "store")
    try:
        with serving(tmp_path / "new", new, new_rows) as (api, site_id):
            assert report_cache(api).store is new
            assert builds(api, SITE) == 0  # nothing carried over
            assert summary(api, site_id) == expected_summary(new_rows, TZ, FIRST, LAST)
            assert answers(api, site_id, **RANGE) == answers(api, site_id, filters=EVERYTHING, **RANGE)
            assert builds(api, SITE) > 0
    finally:
        new.close()


class ProbeCountingStore(ChdbStore):
    """The embedded engine, counting the runner's escaping probes (`SELECT {v:String}`)."""

    probes = 0

    def query(self, sql: str, params: Any = None) -> Any:
        if sql == "SELECT {v:String}":
            self.probes += 1
        return super().query(sql, params)


def test_each_runner_probes_its_own_store_once(tmp_path: Path) -> None:
    store = ProbeCountingStore(tmp_path / "store")
    try:
        first = QueryRunner(store)
        for value in ("a", "C:\\path", "two\nlines", "tab\there"):
            assert first.query("SELECT {v:String} AS v", {"v": value}).scalar() == value
        assert store.probes == 1 and first.needs_escaping() is False and store.probes == 1
        second = QueryRunner(store)  # another app's runner: its own answer, asked once
        assert second.query("SELECT {v:String} AS v", {"v": "x\\y"}).scalar() == "x\\y"
        assert second.query("SELECT {v:String} AS v", {"v": "z"}).scalar() == "z"
        assert store.probes == 2
        assert first.query("SELECT 1").scalar() == 1 and store.probes == 2  # no parameters: no probe
    finally:
        store.close()
