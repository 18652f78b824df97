"""What only the ClickHouse server engine does: URLs, connecting, credentials, compression, threads."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pixel.server.settings import Settings
from pixel.server.store import open_store
from pixel.server.store.base import StoreError, StoreUnavailable
from pixel.server.store.clickhouse_engine import ClickHouseStore
from pixel.server.store.schema import migrations
from tests.ports import free_port

from .conftest import FRONT_PASSWORD, FRONT_USER, ChFront


def fresh_db() -> str:
    return f"pixel_test_{uuid.uuid4().hex[:12]}"


def test_closed_port_is_unavailable_and_names_the_url_without_password() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable) as info:
        ClickHouseStore(f"http://someone:hunter2@127.0.0.1:{port}")
    assert str(info.value) == f"cannot reach ClickHouse at http://127.0.0.1:{port}/ (connection refused)"


def test_store_opened_while_server_down_works_once_it_is_up(tmp_path: Path) -> None:
    port = free_port()
    store = ClickHouseStore(f"http://127.0.0.1:{port}", database="late", connect=False)
    try:
        with pytest.raises(StoreUnavailable, match=rf"cannot reach ClickHouse at http://127.0.0.1:{port}/"):
            store.migrate()
        with ChFront.start(tmp_path / "front", port=port):
            assert store.migrate() == [m.version for m in migrations()]
            assert store.scalar("SELECT currentDatabase()") == "late"
            store.insert_rows("events", [{"site": "a", "event_id": "1"}])
            assert store.scalar("SELECT count() FROM events") == 1
        with pytest.raises(StoreUnavailable, match=rf"at http://127.0.0.1:{port}/"):
            store.scalar("SELECT count() FROM events")
        with ChFront.start(tmp_path / "front", port=port):  # same data, back on the same port
            assert store.scalar("SELECT count() FROM events") == 1
    finally:
        store.close()


def test_wrong_password_is_unavailable_with_a_clear_message(clickhouse_url: str) -> None:
    # Unavailable, not a plain StoreError: the shipper must keep retrying, not dead-letter the rows.
    url = urlsplit(clickhouse_url)
    bad = url._replace(
        netloc=f"{url.username or 'default'}:wrong-password@{url.hostname}:{url.port}"
    ).geturl()
    with pytest.raises(StoreUnavailable) as info:
        ClickHouseStore(bad, database=fresh_db())
    assert str(info.value) == (
        f"ClickHouse at http://{url.hostname}:{url.port}/ refused the credentials of user "
        f"{url.username or 'default'!r}"
    )


def test_credentials_from_settings_when_not_in_url(chfront: ChFront) -> None:
    store = ClickHouseStore(chfront.url, user=FRONT_USER, password=FRONT_PASSWORD, database=fresh_db())
    try:
        assert store.scalar("SELECT 1") == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "localhost:8123",
        "ftp://localhost:8123",
        "http://",
        "http://localhost:99999",
        "http://localhost:8123/?secure=1",
    ],
)
def test_bad_url_is_refused_with_the_expected_form(url: str) -> None:
    with pytest.raises(StoreError, match=r"^PIXEL_CLICKHOUSE_URL must look like http://host:8123"):
        ClickHouseStore(url, connect=False)


def test_default_ports_and_display_url() -> None:
    assert ClickHouseStore("http://db.internal", connect=False).url == "http://db.internal:8123/"
    assert ClickHouseStore("https://u:p@db.internal/", connect=False).url == "https://db.internal:8443/"
    assert ClickHouseStore("https://[::1]:9443/ch", connect=False).url == "https://[::1]:9443/ch/"


def test_bad_database_name_is_refused() -> None:
    with pytest.raises(
        StoreError, match=r"PIXEL_CLICKHOUSE_DATABASE='pixel; DROP' is not a plain identifier"
    ):
        ClickHouseStore("http://localhost:8123", database="pixel; DROP", connect=False)


def test_database_is_created_when_missing(clickhouse_url: str) -> None:
    database = fresh_db()
    store = ClickHouseStore(clickhouse_url, database=database)
    try:
        assert store.scalar("SELECT currentDatabase()") == database
        assert (
            store.scalar("SELECT count() FROM system.databases WHERE name = {d:String}", {"d": database}) == 1
        )
    finally:
        store.command(f"DROP DATABASE `{database}`")
        store.close()


def test_open_store_from_settings(clickhouse_url: str, tmp_path: Path) -> None:
    url = urlsplit(clickhouse_url)
    database = fresh_db()
    settings = Settings(
        data_dir=tmp_path,
        store="clickhouse",
        clickhouse_url=f"http://{url.hostname}:{url.port}",
        clickhouse_user=url.username or "default",
        clickhouse_password=url.password or "",
        clickhouse_database=database,
        retention_days=14,
    )
    store = open_store(settings)
    try:
        assert store.engine == "clickhouse"
        assert store.scalar("SELECT count() FROM schema_migrations") == len(migrations())
        assert "toIntervalDay(14)" in store.scalar(
            "SELECT engine_full FROM system.tables WHERE database = {d:String} AND name = 'events'",
            {"d": database},
        )
    finally:
        store.command(f"DROP DATABASE `{database}`")
        store.close()


def test_compression_is_on_both_ways(chfront: ChFront) -> None:
    def encodings() -> dict[str, int]:
        with urllib.request.urlopen(f"{chfront.url}/chfront/encodings") as response:
            return json.load(response)

    store = ClickHouseStore(chfront.url, user=FRONT_USER, password=FRONT_PASSWORD, database=fresh_db())
    try:
        store.migrate()
        before = encodings()
        store.insert_rows("events", [{"site": "a", "event_id": str(i)} for i in range(1000)])
        assert store.scalar("SELECT count() FROM events") == 1000
        after = encodings()
        assert after.get("request:lz4", 0) - before.get("request:lz4", 0) == 1
        assert after.get("response:zstd", 0) - before.get("response:zstd", 0) == 1
    finally:
        store.command(f"DROP DATABASE `{store.database}`")
        store.close()


def test_one_store_serves_several_threads(clickhouse_url: str) -> None:
    store = ClickHouseStore(clickhouse_url, database=fresh_db())
    errors: list[BaseException] = []
    results: list[int] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                results.append(store.scalar("SELECT {a:UInt32} * 100 + {b:UInt32}", {"a": n, "b": i}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sorted(results) == [n * 100 + i for n in range(4) for i in range(10)]
    finally:
        store.command(f"DROP DATABASE `{store.database}`")
        store.close()


def test_query_timeout_is_retryable(clickhouse_url: str) -> None:
    store = ClickHouseStore(clickhouse_url, database=fresh_db())
    try:
        with pytest.raises(StoreUnavailable, match=r"is busy, retry later: Code: 159\..*TIMEOUT_EXCEEDED"):
            store.query(
                "SELECT sleepEachRow(0.05) FROM numbers(100) SETTINGS max_execution_time = 0.2, "
                "max_block_size = 1"
            )
    finally:
        store.command(f"DROP DATABASE `{store.database}`")
        store.close()


def test_bad_dedup_token_is_refused(clickhouse_url: str) -> None:
    store = ClickHouseStore(clickhouse_url, database=fresh_db())
    try:
        with pytest.raises(ValueError, match="dedup token"):
            store.insert_json("events", b"{}", token="x' SETTINGS y=1")
    finally:
        store.command(f"DROP DATABASE `{store.database}`")
        store.close()
