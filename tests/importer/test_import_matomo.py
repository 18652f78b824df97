"""`pixel import matomo` (Matomo's raw data: log_link_visit_action joined with log_visit and log_action, as CSV
or `mysql -B` TSV) end to end on both engines: the fixture's known numbers in the store and the API's reports,
undo, the overlap rule, bad files, the CLI; and the parser never raises on hostile lines."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.importer import jobs, matomo, records, run
from pixel.server.importer.accesslog import Malformed
from pixel.server.importer.hits import Hit
from pixel.server.importer.lines import WrongKind
from pixel.server.importer.sources import SOURCES
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from tests.importer.reports import reports

FIXTURES = Path(__file__).parent / "fixtures"
MATOMO = FIXTURES / "matomo_export.csv"
SOURCE = SOURCES["matomo"]
SITE = "example.com"
PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS d, countIf(event_name = 'pageview'), count(), uniqExact(visitor_id), "
    "uniqExact(session_id) FROM events FINAL WHERE site = {site:String} AND import_id != '' GROUP BY d ORDER BY d"
)
# matomo_export.csv, by hand (server_time in UTC unless it has a zone; idsite 1 is example.com, 2 shop.other.org):
#   2024-03-05: line 2 10:00 "/" (https, visit 101's entry, from google), line 3 10:05 "/pricing" (utm
#     newsletter; the visit's referrer is its entry's only), line 4 10:06 a download (type 3, skipped).
#   2024-03-06: line 6 01:30 "/blog/a" (23:30 -02:00 on the 5th, its own scheme, from duckduckgo) and line 7
#     08:00 "www.example.com/about" (09:00 +01:00, prefix 3, direct): visitor 0011..., visits 102 and 103;
#     line 11 12:00 "/contact" (http, referrer type website without a URL): visitor 8899..., visit 104.
#   line 5 is shop.other.org (site 2), line 8 has too few fields, line 9 a bad server_time, line 10 an action
#   without a URL.
MATOMO_DAYS = [["2024-03-05", 2, 2, 1, 1], ["2024-03-06", 3, 3, 2, 3]]
MATOMO_MALFORMED = [[8, "7 fields, the header has 17"], [9, "bad server_time 'yesterday'"]]
MATOMO_SKIPPED = {"another site (host)": 1, "Matomo download": 1, "Matomo action without a URL": 1}


def settings_for(tmp_path: Path) -> Settings:
    return Settings.from_env(data_dir=tmp_path / "data")


def import_file(
    settings: Settings, store: Store, path: Path, overlap: str = "skip", source: str = "matomo"
) -> records.ImportRecord:
    return run.run(settings, store, run.start(settings, store, path, SITE, overlap, SOURCES[source]))


def test_matomo_known_numbers_in_store_and_reports_then_undo(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    record = import_file(settings, store, MATOMO)
    assert (record.source, record.status, record.rows) == ("matomo", "done", 5)
    assert (record.skipped, record.malformed) == (MATOMO_SKIPPED, MATOMO_MALFORMED)
    assert store.query(PER_DAY, {"site": SITE}).rows == MATOMO_DAYS
    rows = store.query(
        "SELECT toString(timestamp), event_name, host, path, query, referrer, source, utm_source, title, "
        "browser, os, device_type, country, language, screen, is_bot, ip_hash FROM events FINAL "
        "ORDER BY timestamp"
    ).rows
    assert rows == [
        ["2024-03-05 10:00:00.000", "pageview", "example.com", "/", "", "https://www.google.com/search?q=pixel",
         "Google", "", "Home", "Chrome", "Windows", "desktop", "US", "en-US", "1920x1080", 0, ""],
        ["2024-03-05 10:05:00.000", "pageview", "example.com", "/pricing",
         "utm_source=newsletter&utm_medium=email", "", "newsletter", "newsletter", "Pricing", "Chrome",
         "Windows", "desktop", "US", "en-US", "1920x1080", 0, ""],
        ["2024-03-06 01:30:00.000", "pageview", "example.com", "/blog/a", "", "https://duckduckgo.com/",
         "DuckDuckGo", "", 'Hello, "world"', "Safari", "iOS", "mobile", "DE", "de-DE", "390x844", 0, ""],
        ["2024-03-06 08:00:00.000", "pageview", "www.example.com", "/about", "", "", "", "", "About",
         "Safari", "iOS", "mobile", "DE", "de-DE", "390x844", 0, ""],
        ["2024-03-06 12:00:00.000", "pageview", "example.com", "/contact", "", "", "", "", "Contact", "Firefox",
         "Linux", "desktop", "GB", "en-GB", "1366x768", 0, ""],
    ]  # fmt: skip
    dump = str(store.query("SELECT * FROM events").rows)
    assert "A1B2C3D4E5F60718" not in dump and "'101'" not in dump  # Matomo's visitor and visit ids not stored

    with reports(settings, store, SITE) as api:
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (5, 3, 4)
        series = api.get("timeseries", period="custom", interval="day", metrics="pageviews,visitors",
                         **{"from": "2024-03-05", "to": "2024-03-06"})  # fmt: skip
        assert [(p["bucket"], p["pageviews"], p["visitors"]) for p in series["points"]] == [
            ("2024-03-05", 2, 1),
            ("2024-03-06", 3, 2),
        ]
        assert run.undo(settings, store, record.id) == 5
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
    assert store.scalar("SELECT count() FROM events") == 0
    assert [p.name for p in records.folder(settings.state_dir).iterdir()] == []


def test_matomo_preview_overlap_rule_and_only_its_own_rows_undone(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    live = {"timestamp": "2024-03-05 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview"}
    store.insert_rows("events", [live])
    shown = run.preview(settings, store, MATOMO, SITE, source=SOURCE)
    assert dict(shown.days) == {"2024-03-06": 3} and shown.skipped[run.LIVE] == 2
    assert dict(shown.hosts) == {"example.com": 4, "www.example.com": 1, "shop.other.org": 1}
    assert store.scalar("SELECT count() FROM events") == 1
    a = import_file(settings, store, MATOMO)
    assert (a.rows, a.days) == (3, {"2024-03-06": 3})
    assert run.undo(settings, store, a.id) == 3
    assert store.query("SELECT import_id, count() FROM events FINAL GROUP BY 1 ORDER BY 1").rows == [["", 1]]


def test_matomo_bad_files_tsv_gzip_and_guess(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = ChdbStore(tmp_path / "data" / "store")
    store.migrate()
    try:
        for name, content, why in (
            ("umami.csv", (FIXTURES / "umami_export.csv").read_bytes(), "not a Matomo raw data export"),
            ("access.csv", (FIXTURES / "combined.log").read_bytes(), "not a Matomo raw data export"),
            ("visits.csv", b"idvisit,idsite,visit_first_action_time\n1,1,2024-03-05 10:00:00\n",
             "no server_time, url column"),
            ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(100), "not a text or gzip"),
        ):  # fmt: skip
            path = tmp_path / name
            path.write_bytes(content)
            with pytest.raises(WrongKind, match=why):
                run.start(settings, store, path, SITE, source=SOURCE)

        # `mysql -B` output (tabs, NULL), log_action's column under its own name, a BOM, CRLF, gzip; no
        # visit_first_action_time: the visit's referrer on each of its actions
        dump = tmp_path / "matomo.tsv.gz"
        dump.write_bytes(
            gzip.compress(
                b"\xef\xbb\xbfidvisit\tidvisitor\tserver_time\ttype\turl_prefix\tname\treferer_type\treferer_url"
                b"\tconfig_browser_name\tconfig_device_type\r\n"
                b"7\tAB\t2024-03-05 10:00:00\t1\t2\texample.com/\t3\thttps://news.ycombinator.com/\tOP\t2\r\n"
                b"7\tAB\t2024-03-05 10:01:00\t1\t2\texample.com/docs?a=1\t3\thttps://news.ycombinator.com/\tZZ\t2\r\n"
                b"7\tAB\t2024-03-05 10:02:00\t2\tNULL\tgithub.com/x\t3\tNULL\tOP\t2\r\n"
                b"8\tCD\t2024-03-05 10:03:00\t1\t2\t/nohost\t1\tNULL\tOP\t2\r\n"
            )
        )
        assert jobs.guess_kind(dump) == "matomo"
        record = import_file(settings, store, dump)
        assert (record.rows, record.skipped, record.malformed) == (
            2,
            {"Matomo outlink": 1},
            [[5, "url without a host '/nohost'"]],
        )
        assert store.query(
            "SELECT path, query, source, browser, device_type, uniqExact(session_id) FROM events FINAL "
            "WHERE import_id = {i:String} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1",
            {"i": record.id},
        ).rows == [
            ["/", "", "Hacker News", "Opera", "tablet", 1],
            ["/docs", "a=1", "Hacker News", "ZZ", "tablet", 1],
        ]
    finally:
        store.close()


def test_cli_preview_import_undo(tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = [sys.executable, "-m", "pixel.server.cli", "import", "matomo"]
    where = ["--site", SITE, "--data-dir", str(data)]
    shown = subprocess.run([*base, str(MATOMO), *where, "--preview"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "  events: 5\n" in shown.stdout and "line 9: bad server_time 'yesterday'" in shown.stdout
    assert "shop.other.org (1)" in shown.stdout
    done = subprocess.run([*base, str(MATOMO), *where], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "  events: 5\n" in done.stdout and "100% import" in done.stderr
    import_id = done.stdout.split("pixel import matomo --undo ")[1].split()[0]
    undone = subprocess.run(
        [*base, "--undo", import_id, "--data-dir", str(data)], capture_output=True, text=True
    )
    assert undone.returncode == 0 and "5 rows deleted" in undone.stdout, undone.stderr


HEADER = ["idvisit", "idvisitor", "visit_first_action_time", "server_time", "type", "url_prefix", "url",
          "referer_type", "referer_url", "location_country", "location_browser_lang", "config_browser_name",
          "config_device_type", "config_os"]  # fmt: skip
PROPS = settings(max_examples=300, deadline=None, derandomize=True)


def _ok(got: object) -> None:
    assert got is None or isinstance(got, (Hit, Malformed, str))
    if isinstance(got, Hit):
        assert got.path.startswith("/") and got.ts_ms > 0 and got.host


@PROPS
@given(text=st.text(max_size=200))
def test_matomo_parser_never_raises_on_any_text(text: str) -> None:
    _ok(matomo.MatomoParser(HEADER)(text))
    _ok(matomo.MatomoParser(HEADER, "\t")(text))


@PROPS
@given(
    cells=st.lists(st.text(max_size=30), min_size=14, max_size=14),
    time=st.text(max_size=40) | st.just("2024-03-05 10:00:00"),
    kind=st.sampled_from(["1", "2", "NULL", ""]) | st.text(max_size=3),
    prefix=st.sampled_from(["0", "1", "2", "3", "NULL"]) | st.text(max_size=3),
)
def test_matomo_parser_never_raises_on_any_cells(cells: list[str], time: str, kind: str, prefix: str) -> None:
    cells[2] = cells[3] = time
    cells[4], cells[5] = kind, prefix
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    _ok(matomo.MatomoParser(HEADER)(out.getvalue()))
