"""The SQL console: every escape refused with a 400 and its reason; limits; one site only."""

from __future__ import annotations

import pytest

from tests.api import dataset
from tests.api.conftest import Api

ENGINES = ("chdb", "clickhouse")

ESCAPES = [
    ("DROP TABLE events", "only SELECT queries are allowed"),
    ("ALTER TABLE events DELETE WHERE 1", "only SELECT queries are allowed"),
    ("INSERT INTO events (site) VALUES ('x')", "only SELECT queries are allowed"),
    ("TRUNCATE TABLE events", "only SELECT queries are allowed"),
    ("CREATE TABLE t (a Int8) ENGINE = Memory", "only SELECT queries are allowed"),
    ("CREATE USER eve IDENTIFIED BY 'x'", "only SELECT queries are allowed"),
    ("SET readonly = 0", "only SELECT queries are allowed"),
    ("SELECT 1; DROP TABLE events", "only one statement is allowed"),
    ("SELECT count() FROM events; SELECT 2", "only one statement is allowed"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is not allowed"),
    (
        "SELECT * FROM url('http://127.0.0.1:8081/track', 'JSONEachRow')",
        "table function url() is not allowed",
    ),
    ("SELECT * FROM s3('http://127.0.0.1/b/k.csv')", "table function s3() is not allowed"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote() is not allowed"),
    ("SELECT * FROM system.numbers", "system tables are not allowed (system.numbers)"),
    ("SELECT * FROM numbers(10)", "table function numbers() is not allowed"),
    ("SELECT file('x')", "function file() is not allowed"),
    ("SELECT dictGet('d', 'a', toUInt64(1))", "function dictGet() is not allowed"),
    ("SELECT joinGet('j', 'a', 1)", "function joinGet() is not allowed"),
    ("SELECT * FROM system.tables", "system tables are not allowed (system.tables)"),
    ("SELECT (SELECT count() FROM system.users)", "system tables are not allowed (system.users)"),
    ("SELECT * FROM events WHERE site IN system.one", "IN system.one reads a table"),
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "system tables are not allowed"),
    ("SELECT * FROM dead_letters", "table dead_letters is not allowed"),
    ("SELECT * FROM schema_migrations", "table schema_migrations is not allowed"),
    ("SELECT * FROM pixel.events", "table pixel.events is not allowed"),
    (
        "SELECT 1 INTO OUTFILE '/tmp/pixel-escape.txt'",
        "INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed",
    ),
    ("SELECT 1 FORMAT TabSeparated", "INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed"),
    ("SELECT site FROM events SETTINGS additional_table_filters = {}", "SETTINGS"),
    ("SELECT site FROM (SELECT site FROM events SETTINGS readonly = 0)", "SETTINGS clauses are not allowed"),
    ("SELECT 1 /* unterminated", "syntax error"),
    ("SELEKT 1", "syntax error"),
    ("", "the query is empty"),
    ("SHOW TABLES", "only SELECT queries are allowed"),
    ("DESCRIBE TABLE events", "only SELECT queries are allowed"),
    ("EXPLAIN SELECT 1", "only SELECT queries are allowed"),
    ("SELECT * FROM (EXPLAIN SYNTAX SELECT 1)", "table function viewExplain() is not allowed"),
]


def sql(api: Api, query: str, **extra: object) -> tuple[int, dict]:
    r = api.client.post("/api/sql", json={"site_id": api.site_id, "query": query, **extra}, headers=api.admin)
    return r.status_code, r.json()


@pytest.mark.parametrize(("query", "reason"), ESCAPES, ids=[q[:40] or "empty" for q, _ in ESCAPES])
def test_each_escape_is_refused_with_its_reason(api: Api, query: str, reason: str) -> None:
    status, body = sql(api, query)
    if query == "":
        assert status == 422  # the body model refuses an empty query before the guard
        return
    assert status == 400, body
    assert body["error"] == "sql_refused" and reason in body["detail"], body


def test_refusals_leave_everything_in_place(api: Api) -> None:
    for query, _ in ESCAPES:
        if query:
            sql(api, query)
    assert api.store.scalar("SELECT count() FROM events WHERE site = 'x'") == 0
    assert api.store.scalar("EXISTS TABLE events") == 1
    assert api.store.scalar("SELECT count() FROM system.tables WHERE name = 't'") == 0


def test_select_runs_and_sees_only_its_site(api: Api) -> None:
    status, body = sql(api, "SELECT site, count() AS n FROM events GROUP BY site ORDER BY site")
    assert status == 200, body
    expected = sum(1 for e in api.events if e["site"] == dataset.SITE) + 1  # + the bot row
    assert body["rows"] == [[dataset.SITE, expected]]  # FINAL: the replayed rows count once
    assert body["columns"] == [
        {"name": "site", "type": "LowCardinality(String)"},
        {"name": "n", "type": "UInt64"},
    ]
    assert body["truncated"] is False and body["row_count"] == 1
    # asking for the other site's rows explicitly gives nothing
    status, body = sql(api, "SELECT count() FROM events WHERE site = 'other.example'")
    assert body["rows"] == [[0]]
    status, body = sql(
        api,
        "SELECT count() FROM (SELECT * FROM events AS a) AS x JOIN events AS b USING event_id "
        "WHERE b.site != 'shop.example'",
    )
    assert status == 200 and body["rows"] == [[0]]
    # comments, string literals with semicolons, CTE-free subqueries and UNIONs are fine
    status, body = sql(
        api, "-- pages\nSELECT 'a;b' AS s UNION ALL SELECT path FROM events WHERE path = '/pricing' LIMIT 1"
    )
    assert status == 200 and body["row_count"] == 2
    status, body = sql(
        api, "SELECT path, uniq(visitor_id) FROM events WHERE event_name = 'pageview' GROUP BY path"
    )
    assert status == 200 and len(body["rows"]) == 5


def test_row_and_time_limits(api: Api) -> None:
    status, body = sql(api, "SELECT event_id FROM events", max_rows=7)
    assert status == 200
    assert body["row_count"] == 7 and body["truncated"] is True and body["truncated_reason"] == "row limit"
    status, body = sql(api, "SELECT sleepEachRow(0.5), event_id FROM events SETTINGS max_block_size = 1")
    assert status == 400 and "SETTINGS" in body["detail"]
    status, body = sql(
        api,
        "SELECT count() FROM events AS a, events AS b, events AS c, events AS d "
        "WHERE cityHash64(a.event_id, b.event_id, c.event_id, d.event_id) % 7 = 0",
    )
    assert status == 200, body
    assert body["truncated"] is True and body["truncated_reason"] == "time limit"
    assert 1900 <= body["elapsed_ms"] < 6000  # the fixture sets a 2 s limit
    status, body = sql(api, "SELECT nosuchcolumn FROM events")
    assert status == 400 and "the query failed" in body["detail"] and "nosuchcolumn" in body["detail"]
    assert (
        api.client.post(
            "/api/sql",
            json={"site_id": api.site_id, "query": "SELECT 1", "max_rows": 100_000},
            headers=api.admin,
        ).status_code
        == 422
    )


def test_console_needs_a_visible_site(api: Api) -> None:
    r = api.client.post("/api/sql", json={"site_id": 999, "query": "SELECT 1"}, headers=api.admin)
    assert r.status_code == 404
