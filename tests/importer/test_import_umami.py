"""`pixel import umami` (Umami's CSV export / website_event dump) end to end on both engines: the fixture's
known numbers in the store and the API's reports, undo, the overlap rule, bad files; and, for every raw
source, a crash between a batch's insert and its checkpoint resumed without a duplicate; the CLI."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
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
UMAMI = FIXTURES / "umami_export.csv"
SOURCE = SOURCES["umami"]
SITE = "example.com"
PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS d, countIf(event_name = 'pageview'), count(), uniqExact(visitor_id), "
    "uniqExact(session_id) FROM events FINAL WHERE site = {site:String} AND import_id != '' GROUP BY d ORDER BY d"
)
# umami_export.csv, by hand (created_at in UTC unless it has a zone):
#   2024-03-05: line 2 10:00:00.123 "/" from google (+00), line 3 10:05 "/pricing" (no zone, utm newsletter),
#     line 4 10:06 custom "signup" (T...Z): session S1, visit v1.
#   2024-03-06: line 6 01:30 "/blog/a" (23:30 -02 on the 5th) and line 7 08:00 "www.example.com/about"
#     (09:00 +01:00): session S2, visits v2 and v3; line 10 12:00 "/contact" without hostname (the site): S3.
#   line 5 is shop.other.org (another site), line 8 has too few fields, line 9 a bad created_at.
UMAMI_DAYS = [["2024-03-05", 2, 3, 1, 1], ["2024-03-06", 3, 3, 2, 3]]
UMAMI_MALFORMED = [[8, "7 fields, the header has 22"], [9, "bad created_at 'yesterday'"]]


def settings_for(tmp_path: Path) -> Settings:
    return Settings.from_env(data_dir=tmp_path / "data")


def import_file(
    settings: Settings, store: Store, path: Path, overlap: str = "skip", source: str = "umami"
) -> records.ImportRecord:
    return run.run(settings, store, run.start(settings, store, path, SITE, overlap, SOURCES[source]))


def test_umami_known_numbers_in_store_and_reports_then_undo(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    record = import_file(settings, store, UMAMI)
    assert (record.source, record.status, record.rows) == ("umami", "done", 6)
    assert (record.skipped, record.malformed) == ({"another site (host)": 1}, UMAMI_MALFORMED)
    assert store.query(PER_DAY, {"site": SITE}).rows == UMAMI_DAYS
    rows = store.query(
        "SELECT toString(timestamp), event_name, host, path, query, referrer, source, utm_source, title, "
        "browser, os, device_type, country, language, screen, is_bot, ip_hash FROM events FINAL "
        "ORDER BY timestamp"
    ).rows
    assert rows == [
        ["2024-03-05 10:00:00.123", "pageview", "example.com", "/", "", "https://www.google.com/search?q=pixel",
         "Google", "", "Home", "Chrome", "Windows 10", "desktop", "US", "en-US", "1920x1080", 0, ""],
        ["2024-03-05 10:05:00.000", "pageview", "example.com", "/pricing",
         "utm_source=newsletter&utm_medium=email", "", "newsletter", "newsletter", "Pricing", "Chrome",
         "Windows 10", "desktop", "US", "en-US", "1920x1080", 0, ""],
        ["2024-03-05 10:06:00.000", "signup", "example.com", "/pricing", "", "", "", "", "Pricing", "Chrome",
         "Windows 10", "desktop", "US", "en-US", "1920x1080", 0, ""],
        ["2024-03-06 01:30:00.000", "pageview", "example.com", "/blog/a", "", "https://duckduckgo.com/",
         "DuckDuckGo", "", 'Hello, "world"', "Mobile Safari", "iOS", "mobile", "DE", "de-DE", "390x844", 0, ""],
        ["2024-03-06 08:00:00.000", "pageview", "www.example.com", "/about", "", "", "", "", "About",
         "Mobile Safari", "iOS", "mobile", "DE", "de-DE", "390x844", 0, ""],
        ["2024-03-06 12:00:00.000", "pageview", "example.com", "/contact", "", "", "", "", "Contact", "Firefox",
         "Linux", "desktop", "GB", "en-GB", "1366x768", 0, ""],
    ]  # fmt: skip
    dump = str(store.query("SELECT * FROM events").rows)
    assert "5f1e7a2c" not in dump and "9c2d-v" not in dump  # Umami's session and visit ids are not stored

    with reports(settings, store, SITE) as api:
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (5, 3, 4)
        series = api.get("timeseries", period="custom", interval="day", metrics="pageviews,visitors",
                         **{"from": "2024-03-05", "to": "2024-03-06"})  # fmt: skip
        assert [(p["bucket"], p["pageviews"], p["visitors"]) for p in series["points"]] == [
            ("2024-03-05", 2, 1),
            ("2024-03-06", 3, 2),
        ]
        assert run.undo(settings, store, record.id) == 6
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
    assert store.scalar("SELECT count() FROM events") == 0
    assert [p.name for p in records.folder(settings.state_dir).iterdir()] == []


def test_umami_overlap_rule_and_only_its_own_rows_undone(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    live = {"timestamp": "2024-03-05 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview"}
    store.insert_rows("events", [live])
    shown = run.preview(settings, store, UMAMI, SITE, source=SOURCE)
    assert dict(shown.days) == {"2024-03-06": 3} and shown.skipped[run.LIVE] == 3
    assert dict(shown.hosts) == {"example.com": 5, "www.example.com": 1, "shop.other.org": 1}
    assert store.scalar("SELECT count() FROM events") == 1
    a = import_file(settings, store, UMAMI)
    assert (a.rows, a.days) == (3, {"2024-03-06": 3})
    b = import_file(settings, store, FIXTURES / "ga4_events.ndjson", overlap="include", source="ga4")
    assert run.undo(settings, store, a.id) == 3
    assert store.query("SELECT import_id, count() FROM events FINAL GROUP BY 1 ORDER BY 1").rows == [
        ["", 1],
        [b.id, 5],
    ]


def test_umami_bad_files_and_variants(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = ChdbStore(tmp_path / "data" / "store")
    store.migrate()
    try:
        for name, content, why in (
            ("ga4.csv", (FIXTURES / "ga4_events.ndjson").read_bytes(), "not an Umami CSV export"),
            ("access.csv", (FIXTURES / "combined.log").read_bytes(), "not an Umami CSV export"),
            ("other.csv", b"date,visitors\n2024-03-05,3\n", "no created_at, url_path column"),
            ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(100), "not a text or gzip"),
        ):
            path = tmp_path / name
            path.write_bytes(content)
            with pytest.raises(WrongKind, match=why):
                run.start(settings, store, path, SITE, source=SOURCE)

        # a Postgres dump of website_event alone (no session columns, no hostname), a BOM, CRLF, gzip
        dump = tmp_path / "website_event.csv.gz"
        dump.write_bytes(
            gzip.compress(
                b"\xef\xbb\xbfevent_id,website_id,session_id,created_at,url_path,url_query,referrer_domain,"
                b"page_title,event_type,event_name\r\n"
                b"e1,w1,s1,2024-03-05 10:00:00.5+00,/,,news.ycombinator.com,Home,1,\r\n"
                b"e2,w1,s1,2024-03-05 10:01:00+00,/docs,a=1,,Docs,1,\r\n"
                b'e3,w1,s1,2024-03-05 10:02:00+00,/docs,,,Docs,2,"download, pdf"\r\n'
                b'e4,w1,s2,2024-03-05 10:03:00+00,/x,,,"an open quote,1,\r\n'
                b"e5,w1,s2,2024-03-05 10:04:00+00,no-slash,,,X,1,\r\n"
            )
        )
        record = import_file(settings, store, dump)
        assert (record.rows, record.malformed) == (
            3,
            [[5, "not a CSV line"], [6, "url_path does not start with /"]],
        )
        assert store.query(
            "SELECT event_name, path, source, browser, uniqExact(visitor_id) FROM events FINAL "
            "WHERE import_id = {i:String} GROUP BY 1, 2, 3, 4 ORDER BY 2, 1",
            {"i": record.id},
        ).rows == [
            ["pageview", "/", "Hacker News", "", 1],
            ["download, pdf", "/docs", "", "", 1],
            ["pageview", "/docs", "", "", 1],
        ]
    finally:
        store.close()


def generated(source: str, path: Path, n: int) -> int:
    """`n` events of `source` over two days; returns how many are imported (all of them)."""
    out = []
    for i in range(n):
        second = 1_709_596_800 + i * 50
        if source == "ga4":
            out.append(
                f'{{"event_timestamp":"{second}000000","event_name":"page_view","user_pseudo_id":"u{i % 50}",'
                f'"event_params":[{{"key":"page_location","value":{{"string_value":"https://{SITE}/p/{i % 9}"}}}}]}}'
            )
        else:
            if not out:
                out.append("session_id,created_at,url_path,hostname")
            out.append(f"s{i % 50},{second},/p/{i % 9},{SITE}".replace(f",{second},", f",@{second},"))
    text = "\n".join(out) + "\n"
    if source == "umami":
        from datetime import UTC, datetime

        text = "\n".join(
            line
            if "@" not in line
            else line.split("@")[0]
            + datetime.fromtimestamp(int(line.split("@")[1].split(",")[0]), UTC).strftime("%Y-%m-%d %H:%M:%S")
            + "," + ",".join(line.split("@")[1].split(",")[1:])
            for line in text.splitlines()
        ) + "\n"  # fmt: skip
    path.write_text(text)
    return n


@pytest.mark.parametrize("source", ["ga4", "umami"])
def test_a_crash_after_an_insert_before_its_checkpoint_leaves_no_duplicate(
    store: Store, tmp_path: Path, source: str
) -> None:
    """The checkpoint of batch 1 is kept; batch 2 is inserted and checkpointed, then everything after batch 1's
    checkpoint is lost (as a crash right after batch 2's insert): the resume inserts batch 2 again under the
    same token and the same event ids, and the store keeps one copy."""
    settings = settings_for(tmp_path)
    path = tmp_path / f"big.{source}"
    expected = generated(source, path, 2000)
    folder = records.folder(settings.state_dir)
    saved = tmp_path / "saved"
    batches = 0

    class Crash(Exception):
        pass

    def progress(done: int, total: int, lines: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 1:
            shutil.copytree(folder, saved)
        if batches == 2:
            raise Crash

    record = run.start(settings, store, path, SITE, "skip", SOURCES[source])
    with pytest.raises(Crash):
        run.run(settings, store, record, progress=progress, batch_lines=500)
    assert store.scalar("SELECT count() FROM events") == 1000 - (source == "umami")  # a CSV header is line 1
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)  # back to batch 1's checkpoint: batch 2 landed but was never committed
    again = run.start(settings, store, path, SITE, "skip", SOURCES[source])
    assert (again.id, again.offset > 0) == (record.id, True)
    done = run.run(settings, store, again, batch_lines=500)
    assert (done.status, done.rows) == ("done", expected)
    assert store.scalar("SELECT count() FROM events") == expected  # no copy, even before FINAL
    assert store.scalar("SELECT uniqExact(event_id) FROM events") == expected
    assert store.scalar("SELECT uniqExact(visitor_id) FROM events") == 100  # 50 visitors on each of two days


@pytest.mark.parametrize(
    ("source", "fixture", "events", "malformed"),
    [
        ("ga4", "ga4_events.ndjson", 5, "line 8: not a JSON object"),
        ("umami", "umami_export.csv", 6, "line 9: bad created_at 'yesterday'"),
    ],
)
def test_cli_preview_import_undo(
    tmp_path: Path, source: str, fixture: str, events: int, malformed: str
) -> None:
    data = tmp_path / "data"
    base = [sys.executable, "-m", "pixel.server.cli", "import", source]
    where = ["--site", SITE, "--data-dir", str(data)]
    shown = subprocess.run(
        [*base, str(FIXTURES / fixture), *where, "--preview"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert f"  events: {events}\n" in shown.stdout and malformed in shown.stdout
    assert "shop.other.org (1)" in shown.stdout
    done = subprocess.run([*base, str(FIXTURES / fixture), *where], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"  events: {events}\n" in done.stdout and "100% import" in done.stderr
    import_id = done.stdout.split(f"pixel import {source} --undo ")[1].split()[0]
    wrong = subprocess.run([*base, str(FIXTURES / "combined.log"), *where], capture_output=True, text=True)
    assert wrong.returncode == 1 and "not a" in wrong.stderr
    undone = subprocess.run(
        [*base, "--undo", import_id, "--data-dir", str(data)], capture_output=True, text=True
    )
    assert undone.returncode == 0 and f"{events} rows deleted" in undone.stdout, undone.stderr
    store = ChdbStore(data / "store")
    try:
        assert store.scalar("SELECT count() FROM events") == 0
    finally:
        store.close()
