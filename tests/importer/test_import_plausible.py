"""`pixel import plausible` (Plausible's CSV export ZIP) end to end on both engines: the fixture's known numbers in
`imported_aggregates` and in the API's reports (summary, timeseries, breakdowns), the overlap rule (a day with
live events skipped at import, and left out of the reports when live events arrive later), undo leaving nothing,
and bad files with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pixel.server.importer import aggregates, records
from pixel.server.importer.lines import ImportFileError, WrongKind
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from tests.importer.reports import reports
from tests.importer.test_import_api import preview, upload

FIXTURES = Path(__file__).parent / "fixtures"
EXPORT = FIXTURES / "plausible_export"
SITE = "example.com"
RANGE = {"period": "custom", "from": "2024-01-01", "to": "2024-01-03", "compare": "false"}

# The fixture, by hand (Plausible's columns; visit_duration is the day's summed seconds):
#   visitors: 01-01 10 visitors, 25 pageviews, 4 bounces, 12 visits, 600 s; 01-02 20, 50, 10, 22, 1320 s;
#     01-03 5, 8, 2, 6, 300 s; line 5 is dated 01-05 (outside the file's 20240101-20240103: skipped), line 6 has
#     a bad date.
#   sources: Google 6+8+5 visitors (referrer google.com twice, www.google.com once), direct 4, Hacker News 8,
#     Newsletter 4 (utm_source newsletter); line 8 has pageviews 'x'.
#   The custom events table is listed as skipped.
VISITORS = 10 + 20 + 5
PAGEVIEWS = 25 + 50 + 8
VISITS = 12 + 22 + 6
BOUNCES = 4 + 10 + 2
SECONDS = 600 + 1320 + 300


def export_zip(tmp_path: Path, name: str = "plausible_export.zip") -> Path:
    """The fixture's CSV files in a ZIP, in a folder as Plausible's export has them."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted(EXPORT.iterdir()):
            archive.write(member, f"example.com_export/{member.name}")
    return path


def summary(api: object, **extra: str) -> dict[str, float]:
    body = api.get("summary", **{**RANGE, **extra})  # type: ignore[attr-defined]
    return {name: item["value"] for name, item in body["metrics"].items()}


def breakdown(api: object, dimension: str, metric: str = "visitors") -> dict[str, int]:
    body = api.get(f"breakdown/{dimension}", **RANGE)  # type: ignore[attr-defined]
    return {row["value"]: row[metric] for row in body["rows"]}


def test_plausible_export_known_numbers_in_reports_then_undo(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = export_zip(tmp_path)
    shown = aggregates.preview(store, path, SITE)
    assert (shown.first, shown.last, shown.visitors, shown.pageviews) == ("2024-01-01", "2024-01-03", 35, 83)
    assert shown.malformed == [
        ("imported_sources_20240101_20240103.csv:8", "pageviews is 'x', not a whole number"),
        ("imported_visitors_20240101_20240103.csv:6", "bad date '2024-01-0x'"),
    ]
    assert shown.skipped == {
        "imported_custom_events_20240101_20240103.csv: custom events (not imported)": 1,
        "imported_visitors_20240101_20240103.csv: dated outside the file's range": 1,
    }
    record = aggregates.import_file(settings, store, path, SITE)
    assert (record.source, record.status, record.rows, record.days) == (
        "plausible",
        "done",
        shown.rows,
        shown.days,
    )
    assert store.query(
        "SELECT toString(date), visitors, pageviews, visits, bounces, visit_duration FROM imported_aggregates "
        "WHERE dimension = '' ORDER BY date"
    ).rows == [
        ["2024-01-01", 10, 25, 12, 4, 600],
        ["2024-01-02", 20, 50, 22, 10, 1320],
        ["2024-01-03", 5, 8, 6, 2, 300],
    ]

    with reports(settings, store, SITE) as api:
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (VISITORS, PAGEVIEWS, VISITS)
        assert got["bounce_rate"] == pytest.approx(100 * BOUNCES / VISITS, abs=0.1)
        assert got["visit_duration"] == pytest.approx(SECONDS / VISITS, abs=0.6)
        series = api.get("timeseries", interval="day", metrics="visitors,pageviews", **RANGE)
        assert [(p["bucket"][:10], p["visitors"], p["pageviews"]) for p in series["points"]] == [
            ("2024-01-01", 10, 25),
            ("2024-01-02", 20, 50),
            ("2024-01-03", 5, 8),
        ]
        assert breakdown(api, "source") == {"Google": 19, "": 4, "Hacker News": 8, "Newsletter": 4}
        assert breakdown(api, "referrer") == {"google.com": 11, "www.google.com": 8, "": 8,
                                              "news.ycombinator.com": 8}  # fmt: skip
        assert breakdown(api, "utm_source") == {"": 31, "newsletter": 4}
        assert breakdown(api, "page", "pageviews") == {"/": 53, "/blog": 30}
        assert breakdown(api, "entry_page") == {"/": 33, "/blog": 3}
        assert breakdown(api, "exit_page") == {"/": 15, "/blog": 20}
        assert breakdown(api, "country") == {"DE": 26, "US": 4, "FR": 5}
        assert breakdown(api, "device") == {"desktop": 15, "mobile": 20}
        assert breakdown(api, "browser") == {"Chrome": 15, "Firefox": 20}
        assert breakdown(api, "os") == {"Windows": 10, "iOS": 20, "Mac": 5}
        board = api.get("dashboard", interval="day", **RANGE)  # the one-call dashboard: the same numbers
        assert board["summary"]["metrics"]["visitors"]["value"] == VISITORS
        assert [p["visitors"] for p in board["timeseries"]["points"]] == [10, 20, 5]
        by_source = {r["value"]: r["visitors"] for r in board["breakdowns"]["source"]["rows"]}
        assert by_source == {"Google": 19, "": 4, "Hacker News": 8, "Newsletter": 4}
        # a filtered report reads the raw events: imported aggregates are left out (module docstring of imported.py)
        assert summary(api, filters='[["country", "is", "DE"]]')["visitors"] == 0

        assert aggregates.undo(settings, store, record.id) == record.rows
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (0, 0, 0)
        assert breakdown(api, "source") == {}
    assert store.scalar("SELECT count() FROM imported_aggregates") == 0
    assert list(records.folder(settings.state_dir).glob("*.json")) == []
    with pytest.raises(Exception, match="unknown import id"):
        aggregates.undo(settings, store, record.id)


def test_plausible_days_with_live_events(store: Store, tmp_path: Path) -> None:
    """A day with live events when the import begins is not imported (overlap skip); a day that gets live events
    after the import shows the live events only; overlap include adds the imported rows to the live ones."""
    settings = Settings.from_env(data_dir=tmp_path / "data")
    live = {"timestamp": "2024-01-02 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview",
            "visitor_id": "v1", "session_id": "s1", "path": "/live"}  # fmt: skip
    store.insert_rows("events", [live])
    path = export_zip(tmp_path)
    assert aggregates.preview(store, path, SITE).days.keys() == {"2024-01-01", "2024-01-03"}
    record = aggregates.import_file(settings, store, path, SITE)
    # the rows of 2024-01-02: the day, 3 sources, 3 referrers, 8 utm_* values, 2 pages and a hostname, an entry and
    # an exit page, a country and a region, a device, a browser and its version, an OS and its version
    assert record.skipped["day has live data"] == 1 + 3 + 3 + 8 + 3 + 2 + 2 + 5
    with reports(settings, store, SITE) as api:
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (10 + 1 + 5, 25 + 1 + 8, 12 + 1 + 6)
        late = {
            **live,
            "timestamp": "2024-01-03 09:00:00",
            "event_id": "live-2",
            "visitor_id": "v2",
            "session_id": "s2",
        }
        store.insert_rows("events", [late])
        api.client.app.state.pixel.report_cache.changed(SITE)  # type: ignore[attr-defined]
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (10 + 1 + 1, 25 + 1 + 1, 12 + 1 + 1)
        aggregates.undo(settings, store, record.id)
        both = aggregates.import_file(settings, store, path, SITE, overlap="include")
        got = summary(api)
        assert (got["pageviews"], got["sessions"]) == (PAGEVIEWS + 2, VISITS + 2)
        assert aggregates.undo(settings, store, both.id) == both.rows


def test_plausible_same_file_twice_refused_and_resume(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = export_zip(tmp_path)
    record = aggregates.import_file(settings, store, path, SITE)
    with pytest.raises(Exception, match="already imported .* undo it first"):
        aggregates.import_file(settings, store, path, SITE)
    record.status = "running"  # as a crash after the insert leaves it
    records.save(settings.state_dir, record)
    again = aggregates.import_file(settings, store, path, SITE)
    assert again.id == record.id
    assert store.scalar("SELECT count() FROM imported_aggregates") == record.rows  # no duplicates


@pytest.mark.parametrize(
    ("members", "error", "why"),
    [
        (None, WrongKind, "not a ZIP file"),
        ({"notes.txt": "hello"}, WrongKind, "holds no Plausible export table"),
        ({"imported_visitors_20240101_20240103.csv": "date,visitors\n2024-01-01,3\n"}, ImportFileError,
         r"imported_visitors_20240101_20240103.csv: line 1 \(the header\) lacks the column\(s\) pageviews, "
         "bounces, visits, visit_duration"),
        ({"imported_devices_20240101_20240103.csv": ""}, ImportFileError, "empty"),
    ],
)  # fmt: skip
def test_plausible_bad_files(
    store: Store, tmp_path: Path, members: dict[str, str] | None, error: type[Exception], why: str
) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "export.zip"
    if members is None:
        path.write_text("date,visitors\n")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in members.items():
                archive.writestr(name, text)
    with pytest.raises(error, match=why):
        aggregates.import_file(settings, store, path, SITE)
    assert store.scalar("SELECT count() FROM imported_aggregates") == 0


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pixel.server.cli",
        "import",
        *args,
        "--data-dir",
        str(tmp_path / "data"),
    ]
    env = {**os.environ, "PIXEL_GEOIP_DB": str(tmp_path / "none.mmdb")}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_plausible_cli_preview_import_undo(tmp_path: Path) -> None:
    path = export_zip(tmp_path)
    shown = _cli(tmp_path, "plausible", str(path), "--site", SITE, "--preview")
    assert shown.returncode == 0, shown.stderr
    assert "dates: 2024-01-01 .. 2024-01-03 (3 days)" in shown.stdout
    assert "visitors: 35 (summed over the days" in shown.stdout
    assert "imported_sources_20240101_20240103.csv:8: pageviews is 'x', not a whole number" in shown.stdout
    done = _cli(tmp_path, "plausible", str(path), "--site", SITE)
    assert done.returncode == 0, done.stderr
    import_id = done.stdout.split("undo with: pixel import plausible --undo ")[1].strip()
    store = ChdbStore(tmp_path / "data" / "store")
    try:
        rows = store.scalar(
            "SELECT count() FROM imported_aggregates WHERE import_id = {i:String}", {"i": import_id}
        )
    finally:
        store.close()
    assert rows > 0 and f"import {import_id} (done):" in done.stdout
    # an aggregate import's id undone under another source's command goes to the aggregate undo
    undone = _cli(tmp_path, "accesslog", "--undo", import_id)
    assert undone.returncode == 0, undone.stderr
    assert f"import {import_id} undone: {rows:,} rows deleted" in undone.stdout
    bad = tmp_path / "not.zip"
    bad.write_text("date,visitors\n")
    refused = _cli(tmp_path, "plausible", str(bad), "--site", SITE)
    assert refused.returncode == 1
    assert "not.zip is not a ZIP file" in refused.stderr


def test_plausible_through_the_import_api(store: Store, tmp_path: Path) -> None:
    """The desktop's path: upload (kind guessed), preview in the raw sources' shape, start (done on return), the
    reports, undo (the caches told at once: shown with an hour's rebuild wait)."""
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = export_zip(tmp_path)
    with reports(settings, store, SITE) as api:
        up = upload(api, path.read_bytes(), "plausible export.zip").json()
        assert (up["name"], up["kind"]) == ("plausible_export.zip", "plausible")
        body = {"upload": up["id"], "kind": "plausible", "site_id": api.site_id}
        shown = preview(api, json=body, headers=api.headers).json()
        assert (shown["status"], shown["first"], shown["last"], shown["visitors"]) == (
            "done",
            "2024-01-01",
            "2024-01-03",
            VISITORS,
        )
        assert [d["day"] for d in shown["days"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
        assert shown["malformed_count"] == 2 and shown["overlap_days"] == []
        r = api.client.post("/api/imports", json={**body, "overlap": "skip"}, headers=api.headers)
        assert r.status_code == 202, r.text
        done = r.json()
        assert (done["status"], done["kind"], done["rows"]) == ("done", "plausible", shown["rows"]["skip"])
        assert not list((records.folder(settings.state_dir) / "uploads").iterdir())  # the upload is gone
        got = summary(api)
        assert (got["visitors"], got["pageviews"], got["sessions"]) == (VISITORS, PAGEVIEWS, VISITS)
        api.client.app.state.pixel.report_cache.rebuild_min_seconds = 3600.0  # type: ignore[attr-defined]
        r = api.client.delete(f"/api/imports/{done['id']}", headers=api.headers)
        assert r.status_code == 200 and r.json() == {"id": done["id"], "rows_deleted": done["rows"]}
        assert summary(api)["visitors"] == 0
    assert store.scalar("SELECT count() FROM imported_aggregates") == 0


@pytest.mark.parametrize("source", ["plausible", "accesslog"])
def test_bad_arguments_are_refused_alike_by_raw_and_aggregate_sources(tmp_path: Path, source: str) -> None:
    """Both commands check their arguments in one place (`cli.open_for_import`): exit 2, nothing opened."""
    existing = tmp_path / "export.zip"
    existing.write_bytes(b"PK")
    cases = [
        (["--undo", "abc", str(existing)], "--undo takes an import id only"),
        (["--undo", "abc", "--preview"], "--undo takes an import id only"),
        ([str(existing)], "give the FILE and --site (or --undo ID)"),
        (["--site", SITE], "give the FILE and --site (or --undo ID)"),
        ([str(tmp_path / "missing.zip"), "--site", SITE], f"no such file: {tmp_path / 'missing.zip'}"),
    ]
    for args, message in cases:
        done = _cli(tmp_path, source, *args)
        assert (done.returncode, done.stderr.strip()) == (2, f"pixel import: {message}"), args
    assert not (tmp_path / "data" / "store").exists()  # refused before the store was opened
