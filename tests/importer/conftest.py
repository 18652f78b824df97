"""The store fixtures of tests/store (chDB, and ClickHouse through chfront or PIXEL_TEST_CLICKHOUSE_URL)."""

from tests.store.conftest import bare_store, chfront, clickhouse_url, store  # noqa: F401
