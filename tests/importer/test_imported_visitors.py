"""Imported aggregate visitors in the report cache (`pixel.server.api.query.imported`): a figure beside the visitor
sketches, added after the sketch merge by every reader, never one synthetic id per imported visitor.

On both engines: a Plausible export whose days hold 10^11 visitors and `MAX_COUNT` (10^12, the importers' bound)
builds the cache (it could not before: one id per visitor went past ClickHouse's `range` limit, and the build
time grew with the visitors) and every cached report gives the exact sums over imported and live days (summary,
day and week timeseries, breakdowns with an "other" row, entry pages, the one-call dashboard); the cache rows
hold the figure and empty sketches; a GA4 report import alike; store migration 17 makes the days cached
before it (with sketches of synthetic ids) be rebuilt."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pixel.server.importer import aggregates
from pixel.server.importer.plausible_csv import MAX_COUNT
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.base import SCHEMA_MIGRATIONS_DDL
from pixel.server.store.schema import migrations
from tests.importer.reports import Reports, reports

SITE = "example.com"
RANGE = {"period": "custom", "from": "2024-01-01", "to": "2024-01-03", "compare": "false"}
BIG = 10**11
MAX = MAX_COUNT

# The export, by hand: 2024-01-01 holds BIG visitors (3 BIG pageviews, 2 BIG visits, BIG bounces), 6/10 of them
# from Google and 4/10 direct, all on "/" (entering there); 2024-01-02 holds MAX visitors (MAX pageviews, MAX
# visits, MAX / 4 bounces), all from Google on "/". 2024-01-03 has live events only: visitor v1 from Google and
# v2 direct, one pageview of "/" each (one session each).
VISITORS_CSV = f"""date,visitors,pageviews,bounces,visits,visit_duration
2024-01-01,{BIG},{3 * BIG},{BIG},{2 * BIG},{MAX}
2024-01-02,{MAX},{MAX},{MAX // 4},{MAX},{MAX}
"""
SOURCES_CSV = f"""date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces
2024-01-01,Google,google.com,,,,,,{2 * BIG},{BIG * 6 // 10},{BIG},{MAX},{BIG // 2}
2024-01-01,,,,,,,,{BIG},{BIG * 4 // 10},{BIG},{MAX},{BIG // 2}
2024-01-02,Google,google.com,,,,,,{MAX},{MAX},{MAX},{MAX},{MAX // 4}
"""
PAGES_CSV = f"""date,hostname,page,visits,visitors,pageviews,scroll_depth,pageleave_visitors
2024-01-01,example.com,/,{2 * BIG},{BIG},{3 * BIG},,0
2024-01-02,example.com,/,{MAX},{MAX},{MAX},,0
"""
ENTRY_CSV = f"""date,entry_page,visitors,entrances,visit_duration,bounces,pageviews
2024-01-01,/,{BIG},{2 * BIG},{MAX},{BIG},{3 * BIG}
2024-01-02,/,{MAX},{MAX},{MAX},{MAX // 4},{MAX}
"""
LIVE = [
    {"timestamp": "2024-01-03 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview",
     "visitor_id": "v1", "session_id": "s1", "path": "/", "source": "Google", "ref_host": "google.com"},
    {"timestamp": "2024-01-03 09:00:00", "site": SITE, "event_id": "live-2", "event_name": "pageview",
     "visitor_id": "v2", "session_id": "s2", "path": "/"},
]  # fmt: skip


def big_export(tmp_path: Path) -> Path:
    path = tmp_path / "big_export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for table, text in (
            ("visitors", VISITORS_CSV),
            ("sources", SOURCES_CSV),
            ("pages", PAGES_CSV),
            ("entry_pages", ENTRY_CSV),
        ):
            archive.writestr(f"export/imported_{table}_20240101_20240102.csv", text)
    return path


def summary(api: Reports, **extra: str) -> dict[str, float]:
    body = api.get("summary", **{**RANGE, **extra})
    return {name: item["value"] for name, item in body["metrics"].items()}


def rows(body: dict[str, object], metric: str = "visitors") -> dict[str, int]:
    return {row["value"]: row[metric] for row in body["rows"]}  # type: ignore[attr-defined]


def test_huge_imported_days_give_exact_sums_in_every_cached_report(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    store.insert_rows("events", LIVE)
    record = aggregates.import_file(settings, store, big_export(tmp_path), SITE)
    assert (record.status, record.malformed_count) == ("done", 0)
    google, direct = BIG * 6 // 10 + MAX + 1, BIG * 4 // 10 + 1
    with reports(settings, store, SITE) as api:
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (BIG + MAX + 2, 3 * BIG + MAX + 2,
                                                                          2 * BIG + MAX + 2)  # fmt: skip
        series = api.get("timeseries", interval="day", metrics="visitors,pageviews", **RANGE)
        assert [(p["bucket"][:10], p["visitors"], p["pageviews"]) for p in series["points"]] == [
            ("2024-01-01", BIG, 3 * BIG),
            ("2024-01-02", MAX, MAX),
            ("2024-01-03", 2, 2),
        ]
        weekly = api.get("timeseries", interval="week", metrics="visitors", **RANGE)  # 2024-01-01 is a Monday
        assert [(p["bucket"][:10], p["visitors"]) for p in weekly["points"]] == [
            ("2024-01-01", BIG + MAX + 2)
        ]
        assert rows(api.get("breakdown/source", **RANGE)) == {"Google": google, "": direct}
        one = api.get("breakdown/source", limit=1, **RANGE)  # the "other" row: later values' visitors added
        assert (rows(one), one["other"]["visitors"]) == ({"Google": google}, direct)
        assert rows(api.get("breakdown/referrer", **RANGE)) == {"google.com": google, "": direct}
        assert rows(api.get("breakdown/page", **RANGE)) == {"/": BIG + MAX + 2}
        assert rows(api.get("breakdown/entry_page", **RANGE)) == {"/": BIG + MAX + 2}
        assert rows(api.get("breakdown/entry_page", **RANGE), "sessions") == {"/": 2 * BIG + MAX + 2}
        board = api.get("dashboard", interval="day", breakdowns="source,page,entry_page", **RANGE)
        assert board["summary"]["metrics"]["visitors"]["value"] == BIG + MAX + 2
        assert [p["visitors"] for p in board["timeseries"]["points"]] == [BIG, MAX, 2]
        assert rows(board["breakdowns"]["source"]) == {"Google": google, "": direct}
        assert rows(board["breakdowns"]["page"]) == {"/": BIG + MAX + 2}
        assert rows(board["breakdowns"]["entry_page"]) == {"/": BIG + MAX + 2}
        board = api.get("dashboard", interval="day", breakdowns="source", limit=1, **RANGE)
        assert board["breakdowns"]["source"]["other"]["visitors"] == direct
        # one imported day alone (not a merged range) and the comparison with the day before
        day = summary(api, **{"from": "2024-01-02", "to": "2024-01-02", "compare": "true"})
        assert day["visitors"] == MAX

        # what the cache holds: the figure on the imported days' rows, their sketches empty (no ids made)
        newest = store.query(
            """SELECT toString(day), argMax(imported_visitors, build), argMax(finalizeAggregation(visitors_total), build)
            FROM day_dimensions WHERE site = {s:String} AND dimension = '' AND day != toDate(0)
            GROUP BY day ORDER BY day""",
            {"s": SITE},
        ).rows
        assert newest == [["2024-01-01", BIG, 0], ["2024-01-02", MAX, 0], ["2024-01-03", 0, 2]]
        by_source = store.query(
            """SELECT value, argMax(imported_visitors, build), argMax(finalizeAggregation(visitors), build)
            FROM day_dimensions WHERE site = {s:String} AND dimension = 'source' AND day = '2024-01-01'
            GROUP BY value ORDER BY value""",
            {"s": SITE},
        ).rows
        assert by_source == [["", BIG * 4 // 10, 0], ["Google", BIG * 6 // 10, 0]]

        assert aggregates.undo(settings, store, record.id) == record.rows
        got = summary(api)
        assert (got["visitors"], got["pageviews"]) == (2, 2)
        assert rows(api.get("breakdown/source", **RANGE)) == {"Google": 1, "": 1}


def test_huge_ga4_report_days_sum_exactly(store: Store, tmp_path: Path) -> None:
    """A GA4 report download whose days count 10^11 users and MAX_COUNT users: exact sums, by day and by page."""
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "ga4.csv"
    path.write_text(
        "# Reports snapshot\n# Start date: 20240101\n# End date: 20240102\n"
        "Date,Total users,Sessions,Engaged sessions,Views,Average session duration\n"
        f"20240101,{BIG},{BIG},{BIG},{2 * BIG},10\n20240102,{MAX},{MAX},{MAX},{MAX},1\n"
        "\n# Pages and screens: Page path and screen class\n"
        "Page path and screen class,Date,Views,Users,Event count\n"
        f"/,20240101,{2 * BIG},{BIG},1\n/,20240102,{MAX},{MAX},1\n"
    )
    record = aggregates.import_file(settings, store, path, SITE, source=aggregates.GA4_REPORTS)
    assert (record.status, record.malformed_count) == ("done", 0)
    two_days = {**RANGE, "to": "2024-01-02"}
    with reports(settings, store, SITE) as api:
        got = summary(api, **two_days)
        assert (got["visitors"], got["pageviews"]) == (BIG + MAX, 2 * BIG + MAX)
        series = api.get("timeseries", interval="day", metrics="visitors", **two_days)
        assert [p["visitors"] for p in series["points"]] == [BIG, MAX]
        assert rows(api.get("breakdown/page", **two_days)) == {"/": BIG + MAX}


def test_migration_17_rebuilds_days_cached_with_synthetic_ids(bare_store: Store, tmp_path: Path) -> None:
    """A store before migration 17 whose imported day was cached as a sketch (of 7 ids here, standing for the
    synthetic ids of the old builds): the migration adds the column and forgets that day's build, so the next
    report rebuilds it and shows the imported figure; a cached day without imported rows keeps its build."""
    store = bare_store
    store.command(SCHEMA_MIGRATIONS_DDL)
    for migration in migrations():
        if migration.version != 17:
            store.apply_migration(migration)
    columns = (
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'day_dimensions'"
    )
    assert "imported_visitors" not in {row[0] for row in store.query(columns).rows}
    store.insert_rows(
        "imported_aggregates",
        [{"site": SITE, "import_id": "old", "date": "2024-01-01", "dimension": "", "value": "", "visitors": BIG,
          "pageviews": 3, "visits": 2, "bounces": 1, "visit_duration": 60, "with_live": 0}],
    )  # fmt: skip
    store.insert_rows(
        "day_builds",
        [
            {"site": SITE, "tz": "UTC", "day": day, "build": 1, "source_rows": 0}
            for day in ("2024-01-01", "2024-01-05")
        ],
    )
    store.command(
        """INSERT INTO day_dimensions (site, tz, day, build, dimension, value, visitors_total, pageviews, events)
        SELECT {s:String}, 'UTC', toDate('2024-01-01'), 1, '', '', uniqCombinedState(14)(toString(number)), 3, 3
        FROM numbers(7)""",
        {"s": SITE},
    )

    assert store.migrate() == [17]
    assert "imported_visitors" in {row[0] for row in store.query(columns).rows}
    kept = store.query("SELECT toString(day) FROM day_builds WHERE site = {s:String}", {"s": SITE}).rows
    assert kept == [["2024-01-05"]]
    settings = Settings.from_env(data_dir=tmp_path / "data")
    with reports(settings, store, SITE) as api:
        got = summary(api, to="2024-01-01")
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (BIG, 3, 2)
