"""`pixel import ga4` (GA4's BigQuery export as newline-delimited JSON) end to end on both engines: the
fixture's known numbers in the store and in the API's reports, preview, the overlap rule, undo leaving
nothing behind, and bad files (wrong kind, truncated gzip, malformed lines with their numbers)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from pixel.server.importer import records, run
from pixel.server.importer.lines import WrongKind
from pixel.server.importer.sources import SOURCES
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from tests.importer.reports import reports

FIXTURES = Path(__file__).parent / "fixtures"
GA4 = FIXTURES / "ga4_events.ndjson"
SOURCE = SOURCES["ga4"]
SITE = "example.com"
PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS d, countIf(event_name = 'pageview'), count(), uniqExact(visitor_id), "
    "uniqExact(session_id) FROM events FINAL WHERE site = {site:String} AND import_id != '' GROUP BY d ORDER BY d"
)
# ga4_events.ndjson, by hand (times are event_timestamp, UTC; event_date is the property's zone, unused):
#   line 1 10:00 "/" from Google, line 2 10:02 "/pricing" (utm newsletter, no referrer, a numeric timestamp),
#   line 4 10:03 sign_up (custom, two params): visitor A, one session (ga_session_id 1709632800);
#   line 6 20:30 "/blog/post" from DuckDuckGo (event_date 20240306 in the property's zone): visitor B;
#   2024-03-06 line 7 00:10 "www.example.com/about": visitor B again, a new day (daily visitor ids).
#   Skipped: session_start, first_visit, user_engagement (GA4's bookkeeping), shop.other.org (another site);
#   line 8 is cut JSON, line 9 has no event_timestamp, line 10 is blank (nothing).
GA4_DAYS = [["2024-03-05", 3, 4, 2, 2], ["2024-03-06", 1, 1, 1, 1]]
GA4_SKIPPED = {
    "GA4 automatic event (session_start)": 1,
    "GA4 automatic event (first_visit)": 1,
    "GA4 automatic event (user_engagement)": 1,
    "another site (host)": 1,
}
GA4_MALFORMED = [[8, "not a JSON object"], [9, "no event_timestamp"]]


def settings_for(tmp_path: Path) -> Settings:
    return Settings.from_env(data_dir=tmp_path / "data")


def import_file(settings: Settings, store: Store, path: Path, overlap: str = "skip") -> records.ImportRecord:
    return run.run(settings, store, run.start(settings, store, path, SITE, overlap, SOURCE))


def test_ga4_known_numbers_in_store_and_reports_then_undo(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    record = import_file(settings, store, GA4)
    assert (record.source, record.status, record.rows, record.skipped) == ("ga4", "done", 5, GA4_SKIPPED)
    assert (record.malformed_count, record.malformed) == (2, GA4_MALFORMED)
    assert store.query(PER_DAY, {"site": SITE}).rows == GA4_DAYS
    rows = store.query(
        "SELECT toString(timestamp), event_name, path, query, source, utm_source, title, browser, os, "
        "device_type, country, is_bot, ip_hash, props FROM events FINAL ORDER BY timestamp"
    ).rows
    assert rows == [
        ["2024-03-05 10:00:00.000", "pageview", "/", "", "Google", "", "Home", "Chrome", "Windows", "desktop",
         "", 0, "", {}],
        ["2024-03-05 10:02:00.000", "pageview", "/pricing", "utm_source=newsletter&utm_medium=email",
         "newsletter", "newsletter", "", "Chrome", "Windows", "desktop", "", 0, "", {}],
        ["2024-03-05 10:03:00.000", "sign_up", "/pricing", "", "", "", "", "Chrome", "Windows", "desktop", "",
         0, "", {"method": "email", "plan_seats": "3"}],
        ["2024-03-05 20:30:00.000", "pageview", "/blog/post", "", "DuckDuckGo", "", "", "Safari", "iOS",
         "mobile", "", 0, "", {}],
        ["2024-03-06 00:10:00.000", "pageview", "/about", "", "", "", "", "Safari", "iOS", "mobile", "", 0, "",
         {}],
    ]  # fmt: skip
    # GA4's own ids are never stored as they were written
    dump = str(store.query("SELECT * FROM events").rows)
    for raw in ("1234567890.1709632800", "987654321.1709670600", "1709632800"):
        assert raw not in dump.replace("1709632800000", "")

    with reports(settings, store, SITE) as api:
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (4, 3, 3)
        series = api.get("timeseries", period="custom", interval="day", metrics="pageviews,visitors",
                         **{"from": "2024-03-05", "to": "2024-03-06"})  # fmt: skip
        assert [(p["bucket"], p["pageviews"], p["visitors"]) for p in series["points"]] == [
            ("2024-03-05", 3, 2),
            ("2024-03-06", 1, 1),
        ]
        assert run.undo(settings, store, record.id) == 5
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
    assert store.scalar("SELECT count() FROM events") == 0
    assert records.load(settings.state_dir, record.id) is None
    assert [p.name for p in records.folder(settings.state_dir).iterdir()] == []


def test_ga4_preview_writes_nothing_and_the_overlap_rule(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    live = {"timestamp": "2024-03-06 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview"}
    store.insert_rows("events", [live])
    shown = run.preview(settings, store, GA4, SITE, source=SOURCE)
    assert dict(shown.hosts) == {"example.com": 4, "www.example.com": 1, "shop.other.org": 1}
    assert dict(shown.days) == {"2024-03-05": 4}
    assert shown.skipped[run.LIVE] == 1 and shown.malformed == [
        (8, "not a JSON object"),
        (9, "no event_timestamp"),
    ]
    assert (shown.first_ms, shown.last_ms) == (1_709_632_800_000, 1_709_683_800_000)
    assert store.scalar("SELECT count() FROM events") == 1
    assert not records.folder(settings.state_dir).exists()
    record = import_file(settings, store, GA4)
    assert (record.rows, record.days) == (4, {"2024-03-05": 4})
    run.undo(settings, store, record.id)
    record = import_file(settings, store, GA4, overlap="include")
    assert (record.rows, record.days) == (5, {"2024-03-05": 4, "2024-03-06": 1})
    assert store.scalar("SELECT count() FROM events FINAL WHERE import_id = ''") == 1


def test_ga4_bad_files(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = ChdbStore(tmp_path / "data" / "store")
    store.migrate()
    try:
        for name, content, why in (
            ("access.log", (FIXTURES / "combined.log").read_bytes(), "not a GA4 BigQuery export"),
            ("umami.csv", (FIXTURES / "umami_export.csv").read_bytes(), "not a GA4 BigQuery export"),
            ("array.json", b'[{"event_timestamp": "1", "event_name": "x"}]\n', "not a GA4 BigQuery export"),
            ("image.json", b"\x89PNG\r\n\x1a\n" + bytes(100), "not a text or gzip"),
            ("export.zip", b"PK\x03\x04" + bytes(100), "not a text or gzip"),
            ("empty.json", b"\n\n", "is empty"),
        ):
            path = tmp_path / name
            path.write_bytes(content)
            with pytest.raises(WrongKind, match=why):
                run.start(settings, store, path, SITE, source=SOURCE)
            with pytest.raises(WrongKind, match=why):
                run.preview(settings, store, path, SITE, source=SOURCE)
        assert not records.folder(settings.state_dir).exists() or not list(
            records.folder(settings.state_dir).glob("*.json")
        )

        # a gzip cut short: the whole lines before the cut are imported, the record says truncated
        lines = GA4.read_bytes().splitlines(keepends=True)
        many = lines[0] * 3000
        whole = gzip.compress(many)
        cut = tmp_path / "cut.json.gz"
        cut.write_bytes(whole[: len(whole) // 2])
        whole_lines = zlib.decompressobj(31).decompress(whole[: len(whole) // 2]).count(b"\n")
        record = run.run(
            settings, store, run.start(settings, store, cut, SITE, "include", SOURCE), batch_lines=500
        )
        assert record.status == "truncated" and "ends early" in record.error
        assert record.rows == whole_lines > 0
        assert store.scalar("SELECT count() FROM events WHERE import_id = {i:String}", {"i": record.id}) == (
            whole_lines
        )

        # hostile lines: nested junk, huge numbers, wrong types, a line over the length limit
        junk = tmp_path / "junk.json"
        junk.write_bytes(
            lines[0]
            + b'{"event_name": "page_view", "event_timestamp": "99999999999999999999999"}\n'
            + b'{"event_name": ["x"], "event_timestamp": "1709632800000000"}\n'
            + b'{"event_name": "page_view", "event_timestamp": {"a": 1}}\n'
            + b'{"event_name": "page_view", "event_timestamp": "1709632800000000", "event_params": 7}\n'
            + b'{"event_name": "page_view", "event_timestamp": "1709632800000000", "event_params": '
            + b'[{"key": "page_location", "value": {"string_value": "javascript:alert(1)"}}]}\n'
            + b'{"event_name": "page_view", "event_timestamp": "1709632800000000", "x": "'
            + b"y" * 70_000
            + b'"}\n'
            + b"[1, 2]\n"
            + lines[1]
        )
        record = run.run(settings, store, run.start(settings, store, junk, SITE, "include", SOURCE))
        assert record.malformed == [
            [2, "event_timestamp out of range"],
            [3, "no event_name"],
            [4, "no event_timestamp"],
            [7, "line too long"],
            [8, "not a JSON object"],
        ]
        assert (record.rows, record.skipped) == (
            2,
            {"no page_location": 1, "page_location not an http(s) URL": 1},
        )
    finally:
        store.close()
