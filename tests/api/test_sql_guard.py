"""The SQL console's guard, form by form: every way a statement can name a table other than `events`,
a table function, a dictionary or a server-introspection function is refused with its reason; the
forms that read `events` (subqueries, CTEs, IN lists, EXISTS, UNION) see the caller's site only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pixel.server.api import sqlguard
from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_sql_console import sql

ENGINES = ("chdb", "clickhouse")
OTHER_TABLES = ("event_counts", "dead_letters", "schema_migrations", "day_builds", "day_dimensions")

REFUSED: list[tuple[str, str]] = [
    # x IN <table>, in every spelling
    *((f"SELECT count() FROM events WHERE site IN {t}", f"IN {t} reads a table") for t in OTHER_TABLES),
    ("SELECT count() FROM events WHERE site NOT IN event_counts", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE site GLOBAL IN event_counts", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE site GLOBAL NOT IN dead_letters", "IN dead_letters reads a table"),
    ("SELECT count() FROM events WHERE site IN (event_counts)", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE site IN ((event_counts))", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE (site, path) IN event_counts", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE in(site, event_counts)", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE notIn(site, event_counts)", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE globalIn(site, event_counts)", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE nullIn(site, event_counts)", "IN event_counts reads a table"),
    ("SELECT count() FROM events WHERE globalNotNullIn(site, event_counts)", "IN event_counts reads a table"),
    ("SELECT site IN pixel.event_counts FROM events", "IN pixel.event_counts reads a table"),
    ("SELECT count() FROM events WHERE site IN system.tables", "IN system.tables reads a table"),
    ("WITH s AS (SELECT site FROM events) SELECT count() FROM events WHERE site IN s", "IN s reads a table"),
    # a newline in a quoted name cannot forge the tree (the old guard read EXPLAIN AST as text)
    ("SELECT count() FROM events WHERE site IN `x\n      TableIdentifier events`", "reads a table"),
    # JOINs, subqueries, CTEs, EXISTS, UNION
    ("SELECT count() FROM events JOIN event_counts USING site", "table event_counts is not allowed"),
    ("SELECT count() FROM events AS e, dead_letters AS d", "table dead_letters is not allowed"),
    ("SELECT count() FROM events ARRAY JOIN [1] AS x LEFT JOIN day_builds AS d ON 1", "table day_builds"),
    ("SELECT * FROM (SELECT * FROM dead_letters)", "table dead_letters is not allowed"),
    ("SELECT count() FROM events WHERE site IN (SELECT site FROM event_counts)", "table event_counts"),
    ("SELECT (SELECT count() FROM schema_migrations)", "table schema_migrations is not allowed"),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM dead_letters)", "table dead_letters"),
    ("SELECT 1 UNION ALL SELECT count() FROM event_counts", "table event_counts is not allowed"),
    ("SELECT 1 INTERSECT SELECT count() FROM event_counts", "table event_counts is not allowed"),
    ("WITH x AS (SELECT * FROM dead_letters) SELECT count() FROM x", "table dead_letters is not allowed"),
    ("WITH events AS (SELECT * FROM dead_letters) SELECT count() FROM events", "table dead_letters"),
    (
        "SELECT * FROM (WITH dead_letters AS (SELECT 1 AS a) SELECT a FROM dead_letters) "
        "UNION ALL SELECT count() FROM dead_letters",
        "table dead_letters is not allowed",
    ),
    ("SELECT * FROM events AS dead_letters, dead_letters", "table dead_letters is not allowed"),
    # a CTE's own name inside its body is the table of that name, WITH RECURSIVE or not
    ("WITH dead_letters AS (SELECT * FROM dead_letters) SELECT * FROM dead_letters", "table dead_letters"),
    ("WITH RECURSIVE event_counts AS (SELECT * FROM event_counts) SELECT 1", "table event_counts"),
    (
        "WITH x AS (SELECT * FROM dead_letters), dead_letters AS (SELECT 1 AS a) SELECT * FROM x",
        "table dead_letters is not allowed",
    ),
    (
        "WITH dead_letters AS (SELECT 1 AS a) SELECT * FROM "
        "(WITH dead_letters AS (SELECT * FROM dead_letters) SELECT * FROM dead_letters)",
        "table dead_letters is not allowed",
    ),
    (
        "SELECT * FROM (SELECT * FROM dead_letters) AS y, "
        "(WITH dead_letters AS (SELECT 1 AS a) SELECT * FROM dead_letters) AS z",
        "table dead_letters is not allowed",
    ),
    ("SELECT count() FROM pixel.events", "table pixel.events is not allowed"),
    ("SELECT count() FROM default.events", "table default.events is not allowed"),
    ("SELECT * FROM `system`.`one`", "system tables are not allowed (system.one)"),
    ("SELECT * FROM information_schema.tables", "system tables are not allowed"),
    ("SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "system tables are not allowed"),
    ("SELECT * FROM system.processes", "system tables are not allowed"),
    ("SELECT system.one.dummy FROM events", "system tables are not allowed"),
    # table functions, anywhere
    ("SELECT * FROM merge('pixel', '.*')", "table function merge() is not allowed"),
    ("SELECT * FROM merge(currentDatabase(), '^event')", "table function merge() is not allowed"),
    ("SELECT * FROM cluster('default', pixel.event_counts)", "table function cluster() is not allowed"),
    ("SELECT * FROM clusterAllReplicas('default', system.one)", "table function clusterAllReplicas()"),
    ("SELECT * FROM remoteSecure('127.0.0.1', system.one)", "table function remoteSecure() is not allowed"),
    ("SELECT * FROM view(SELECT * FROM dead_letters)", "table function view() is not allowed"),
    ("SELECT * FROM dictionary('d')", "table function dictionary() is not allowed"),
    ("SELECT * FROM executable('x.sh', 'TSV', 'a String')", "table function executable() is not allowed"),
    ("SELECT * FROM input('a String')", "table function input() is not allowed"),
    ("SELECT * FROM values('a String', 'x')", "table function values() is not allowed"),
    ("SELECT * FROM generateRandom('a String')", "table function generateRandom() is not allowed"),
    ("SELECT * FROM numbers(3)", "table function numbers() is not allowed"),
    ("SELECT count() FROM events WHERE site IN (SELECT * FROM file('x', 'LineAsString'))", "file()"),
    ("SELECT * FROM events JOIN url('http://127.0.0.1:1/', 'TSV', 'a String') AS u ON 1", "url()"),
    # dictionaries, joinGet and functions naming tables in strings
    ("SELECT dictGet('d', 'a', toUInt64(1))", "function dictGet() is not allowed"),
    ("SELECT dictGetOrNull('d', 'a', 1)", "function dictGetOrNull() is not allowed"),
    ("SELECT dictHas('d', 1)", "function dictHas() is not allowed"),
    ("SELECT joinGet('event_counts', 'n', 'x')", "function joinGet() is not allowed"),
    ("SELECT joinGetOrNull(event_counts, 'n', 'x')", "function joinGetOrNull() is not allowed"),
    ("SELECT hasColumnInTable('pixel', 'dead_letters', 'payload')", "function hasColumnInTable()"),
    ("SELECT regionToName(toUInt32(1))", "function regionToName() is not allowed"),
    # server introspection
    ("SELECT getServerSetting('path')", "function getServerSetting() is not allowed"),
    ("SELECT getSetting('max_threads')", "function getSetting() is not allowed"),
    ("SELECT getSettingOrDefault('x', 1)", "function getSettingOrDefault() is not allowed"),
    ("SELECT getMergeTreeSetting('index_granularity')", "function getMergeTreeSetting() is not allowed"),
    ("SELECT currentDatabase()", "function currentDatabase() is not allowed"),
    ("SELECT DATABASE()", "function DATABASE() is not allowed"),
    ("SELECT currentUser()", "function currentUser() is not allowed"),
    ("SELECT version()", "function version() is not allowed"),
    ("SELECT VERSION()", "function VERSION() is not allowed"),
    ("SELECT hostName()", "function hostName() is not allowed"),
    ("SELECT fqdn()", "function fqdn() is not allowed"),
    ("SELECT uptime()", "function uptime() is not allowed"),
    ("SELECT filesystemAvailable()", "function filesystemAvailable() is not allowed"),
    ("SELECT getMacro('replica')", "function getMacro() is not allowed"),
    ("SELECT tcpPort()", "function tcpPort() is not allowed"),
    ("SELECT getServerPort('tcp_port')", "function getServerPort() is not allowed"),
    ("SELECT serverUUID()", "function serverUUID() is not allowed"),
    ("SELECT displayName()", "function displayName() is not allowed"),
    ("SELECT buildId()", "function buildId() is not allowed"),
    ("SELECT getOSKernelVersion()", "function getOSKernelVersion() is not allowed"),
    ("SELECT queryID()", "function queryID() is not allowed"),
    ("SELECT getClientHTTPHeader('Authorization')", "function getClientHTTPHeader() is not allowed"),
    ("SELECT globalVariable('x')", "function globalVariable() is not allowed"),
    ("SELECT file('x')", "function file() is not allowed"),
    ("SELECT aiGenerate('x')", "function aiGenerate() is not allowed"),
    ("SELECT naiveBayesClassifier('m', 'x')", "function naiveBayesClassifier() is not allowed"),
    ("SELECT addressToSymbol(1)", "function addressToSymbol() is not allowed"),
    ("SELECT formatQuery('SELECT 1')", "function formatQuery() is not allowed"),
    ("SELECT noSuchFunction(1)", "function noSuchFunction() is not allowed"),
    ("SELECT count() FROM events WHERE length(getServerSetting('path')) > 0", "getServerSetting()"),
    ("SELECT arrayMap(x -> hostName(), [1])", "function hostName() is not allowed"),
    ("SELECT sumIf(1, uptime() > 0) FROM events", "function uptime() is not allowed"),
    ("SELECT hostNameIf(1)", "function hostNameIf() is not allowed"),
    ("SELECT site APPLY(hostName) FROM events", "syntax error"),
    ("SELECT * APPLY(getSetting) FROM events", "function getSetting() is not allowed"),
    ("SELECT * APPLY(x -> getSetting(x)) FROM events", "function getSetting() is not allowed"),
    ("SELECT count() OVER (PARTITION BY version()) FROM events", "function version() is not allowed"),
    ("SELECT editDistance(repeat('a', 60000), repeat('b', 60000))", "function editDistance() is not allowed"),
    ("SELECT levenshteinDistance('a', 'b')", "function levenshteinDistance() is not allowed"),
    ("SELECT jaroWinklerSimilarity('a', 'b')", "function jaroWinklerSimilarity() is not allowed"),
    ("SELECT multiFuzzyMatchAny('a', 1, ['b'])", "function multiFuzzyMatchAny() is not allowed"),
    ("SELECT {p:String}", "query parameters"),
    # nesting: refused with a reason, never a 500 (Python's JSON reader has a recursion limit)
    ("SELECT " + "plus(" * 300 + "1" + ", 1)" * 300, "the query is nested too deeply"),
    ("SELECT " + "[" * 490 + "1" + "]" * 490, "the query is nested too deeply"),
    ("SELECT " + "[" * 900 + "1" + "]" * 900, "too deep"),
    ("SELECT " + "(SELECT " * 300 + "1" + ")" * 300, "syntax error"),
    ("SELECT count() FROM events WHERE site IN (SELECT site FROM events SETTINGS readonly = 0)", "SETTINGS"),
]


@pytest.mark.parametrize(("query", "reason"), REFUSED, ids=[q[:60] + f"-{len(q)}" for q, _ in REFUSED])
def test_each_form_is_refused_with_its_reason(api: Api, query: str, reason: str) -> None:
    status, body = sql(api, query)
    assert status == 400, body
    assert body["error"] == "sql_refused" and reason in body["detail"], body


def own_count(api: Api) -> int:
    return sum(1 for e in api.events if e["site"] == dataset.SITE) + 1  # + the bot row; FINAL: once


ALLOWED: list[tuple[str, object]] = [
    ("SELECT count() FROM events WHERE site IN (SELECT site FROM events)", "own"),
    ("SELECT count() FROM events WHERE site IN ('shop.example', 'other.example')", "own"),
    ("SELECT count() FROM events WHERE site NOT IN ('nobody')", "own"),
    ("SELECT count() FROM events WHERE site IN (SELECT 'other.example')", 0),
    ("SELECT (SELECT count() FROM events)", "own"),
    ("WITH s AS (SELECT * FROM events) SELECT count() FROM s", "own"),
    ("WITH s AS (SELECT * FROM events) SELECT (SELECT count() FROM s)", "own"),
    ("WITH s AS (SELECT * FROM events), t AS (SELECT * FROM s) SELECT count() FROM t", "own"),
    (
        "WITH s AS (SELECT * FROM events) SELECT count() FROM (WITH t AS (SELECT * FROM s) SELECT * FROM t)",
        "own",
    ),
    ("WITH dead_letters AS (SELECT * FROM events) SELECT count() FROM dead_letters", "own"),
    (
        "WITH s AS (SELECT site FROM events) SELECT count() FROM events WHERE site IN (SELECT site FROM s)",
        "own",
    ),
    ("WITH events AS (SELECT * FROM events WHERE site = 'other.example') SELECT count() FROM events", 0),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM events WHERE site = 'other.example')", 0),
    ("SELECT countIf(site = 'other.example') FROM events", 0),
    ("SELECT count() FROM (SELECT * FROM events) AS dead_letters", "own"),
    ("SELECT count() FROM events AS a JOIN events AS b USING event_id WHERE b.site = 'other.example'", 0),
    ("SELECT count() FROM events WHERE site = 'other.example' UNION ALL SELECT 0", 0),
]


@pytest.mark.parametrize(("query", "expected"), ALLOWED, ids=[q[:60] for q, _ in ALLOWED])
def test_reads_of_events_see_the_callers_site_only(api: Api, query: str, expected: object) -> None:
    status, body = sql(api, query)
    assert status == 200, body
    want = own_count(api) if expected == "own" else expected
    assert body["rows"][0] == [want], body


def test_pure_functions_aggregates_and_combinators_run(api: Api) -> None:
    status, body = sql(
        api,
        "SELECT toTypeName(1), formatReadableSize(1024), arrayMap(x -> x + 1, [1, 2]), lower('AbC'), "
        "countIf(event_name = 'pageview') > 0, uniqExactIf(visitor_id, 1) > 0, "
        "quantileExact(0.5)(toUInt8(1)), sumArray([toUInt8(1)]), toDate('2024-03-05'), "
        "if(1, 'a', 'b'), multiIf(0, 1, 2), cityHash64('x') > 0, domain('https://a.example/x'), "
        "JSONExtractString('{\"a\":\"b\"}', 'a'), IPv4NumToString(toUInt32(1)), "
        "row_number() OVER (ORDER BY 1) FROM events LIMIT 1",
    )
    assert status == 200, body
    assert body["rows"] == [
        ["UInt8", "1.00 KiB", [2, 3], "abc", 1, 1, 1, own_count(api), "2024-03-05", "a", 2, 1]
        + ["a.example", "b", "0.0.0.1", 1]
    ]


def test_catalog_comes_from_the_engine_and_fails_closed() -> None:
    rows = [
        ["plus", 0, "", "Arithmetic", 0],
        ["sum", 1, "", "Aggregate Functions", 1],
        ["hostName", 0, "", "Other", 0],
        ["toTypeName", 0, "", "Other", 0],
        ["HOSTNAME", 1, "hostName", "", 0],
        ["SUM2", 1, "sum", "", 1],
        ["mystery", 0, "", "", 0],
    ]
    cat = sqlguard.build_catalog(rows, ["If", "Array", "State", "Merge"])
    assert [cat.allows(n) for n in ("plus", "sum", "SUM", "sumIf", "sumArrayIf", "sumStateMerge")] == [
        True
    ] * 6
    assert [cat.allows(n) for n in ("toTypeName", "lambda", "sum2", "Sum2")] == [True] * 4
    assert [cat.allows(n) for n in ("hostName", "hostname", "HOSTNAME", "mystery", "plusIf", "If", "")] == [
        False
    ] * 7


LOCAL_PARSER_SCRIPT = """
import json, sys
from pixel.server.api import sqlguard
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import dataset

store = ClickHouseStore(sys.argv[1], database="pixel_local_parser")
store.migrate()
events = dataset.generate()[:10]
store.insert_rows("events", events + dataset.noise())
parser = sqlguard.LocalParser()
out = {"own": sqlguard.run(store, "SELECT count() FROM events", dataset.SITE, parser=parser)["rows"]}
for query in ("SELECT count() FROM events WHERE site IN event_counts", "SELECT getServerSetting('path')"):
    try:
        sqlguard.run(store, query, dataset.SITE, parser=parser)
        out[query] = "ran"
    except sqlguard.SqlRefused as exc:
        out[query] = str(exc)
print(json.dumps(out))
"""


def test_a_server_without_the_json_parser_is_checked_by_chdb_in_process(api_chfront: Any) -> None:
    """ClickHouse before 26.8 (the stack's 25.8) has no parseQueryToJSON: `pixel api` then parses with chDB
    in memory, in a process that holds no chDB folder (here a fresh one), against the real server engine."""
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_PARSER_SCRIPT, api_chfront.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "own": [[11]],  # ten events and the bot row of noise(); not the other site's
        "SELECT count() FROM events WHERE site IN event_counts": (
            "IN event_counts reads a table; after IN write a subquery or a list of values"
        ),
        "SELECT getServerSetting('path')": "function getServerSetting() is not allowed",
    }
