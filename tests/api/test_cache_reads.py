"""Reads of the report caches (`Scope.run_cached`) run with `CACHE_READ_SETTINGS`: a part is read on several
threads from a small number of rows (the caches' rows are few and heavy: sketches, quantile states), on both
engines, whatever the statement's shape (one SELECT, a UNION ALL of branches as the cached dashboard sends, a
statement with parameters over a cache table). Reads of the events (`Scope.run`) keep the store's settings.
"""

from __future__ import annotations

import pytest

from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.scope import Scope
from tests.api import dataset
from tests.api.conftest import Api, report_cache

ENGINES = ("chdb", "clickhouse")

SETTING = "merge_tree_min_rows_for_concurrent_read"
ASKED = f"toUInt32(getSetting('{SETTING}')) AS v"


@pytest.fixture
def scope(api: Api) -> Scope:
    rng = resolve("custom", dataset.TZ, date_from="2024-03-01", date_to="2024-03-07")
    return Scope(report_cache(api).runner, dataset.SITE, rng)


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT {ASKED}",
        f"SELECT {ASKED}\nUNION ALL\nSELECT {ASKED}\nUNION ALL\nSELECT {ASKED}",
        f"SELECT {ASKED}, count() AS n FROM page_engagement_by_value WHERE site = {{site:String}} AND tz = {{tz:String}}",
        f"SELECT * FROM (SELECT {ASKED}) ORDER BY v LIMIT 10 OFFSET 0",
    ],
    ids=["select", "union", "cache-table", "paged"],
)
def test_cached_reads_split_a_part_from_1024_rows(scope: Scope, sql: str) -> None:
    rows = scope.run_cached(sql)
    assert rows and [int(r["v"]) for r in rows] == [1024] * len(rows)


def test_reads_of_the_events_keep_the_stores_settings(api: Api, scope: Scope) -> None:
    default = int(api.store.scalar(f"SELECT toUInt32(getSetting('{SETTING}'))"))
    assert [int(r["v"]) for r in scope.run(f"SELECT {ASKED}", SqlParams())] == [default]
    assert default != 1024
