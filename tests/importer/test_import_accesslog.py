"""`pixel import accesslog` end to end on both engines: the fixtures' known numbers (pageviews and visitors per
UTC day, computed here by hand from the lines), preview, the overlap rule, undo leaving nothing behind, bad
files (wrong kind, truncated gzip, over-long lines), and a SIGKILL mid-import resumed to the exact count."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import orjson
import pytest

from pixel.server.importer import records, run
from pixel.server.importer.lines import WrongKind
from pixel.server.settings import Settings
from pixel.server.store import Store, StoreClosed
from pixel.server.store.chdb_engine import ChdbStore

FIXTURES = Path(__file__).parent / "fixtures"
COMBINED = FIXTURES / "combined.log"
VHOST = FIXTURES / "vhost.log"
SITE = "example.com"
PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS d, count(), uniqExact(visitor_id) FROM events FINAL "
    "WHERE site = {site:String} AND import_id != '' GROUP BY d ORDER BY d"
)
# combined.log, by hand: the pageviews (GET, 2xx/304, a page, not a bot) and their UTC days
#   2000-10-10: 20:56:01 "/" and 20:57:12 "/pricing" (203.0.113.7, one visitor), 23:00 "/blog/post.html" (IPv6)
#   2000-10-11: 09:17 "/about" (198.51.100.4; its POST, HEAD, 404 and Googlebot's visit are skipped)
#   2000-10-12: 00:59:59 "/search" (23:59:59 -0100 on the 11th)
COMBINED_DAYS = [["2000-10-10", 3, 2], ["2000-10-11", 1, 1], ["2000-10-12", 1, 1]]
COMBINED_SKIPPED = {"static asset or file": 2, "method POST": 1, "method HEAD": 1, "status 4xx": 1, "bot": 1}


def settings_for(tmp_path: Path) -> Settings:
    return Settings.from_env(data_dir=tmp_path / "data")


def import_file(settings: Settings, store: Store, path: Path, overlap: str = "skip") -> records.ImportRecord:
    return run.run(settings, store, run.start(settings, store, path, SITE, overlap))


def test_known_numbers_then_undo_leaves_nothing(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    record = import_file(settings, store, COMBINED)
    assert (record.status, record.rows, record.skipped) == ("done", 5, COMBINED_SKIPPED)
    assert (record.malformed_count, record.malformed) == (
        2,
        [[12, "not a common/combined log line"], [13, "bad time [32/Oct/2000:10:00:00 +0000]"]],
    )
    assert store.query(PER_DAY, {"site": SITE}).rows == COMBINED_DAYS
    rows = store.query(
        "SELECT path, query, source, utm_source, browser, ip_hash != '', is_bot FROM events FINAL "
        "ORDER BY timestamp"
    ).rows
    assert rows == [
        ["/", "", "Google", "", "Chrome", 1, 0],
        ["/pricing", "utm_source=newsletter&utm_medium=email", "newsletter", "newsletter", "Chrome", 1, 0],
        ["/blog/post.html", "", "", "", "Safari", 1, 0],
        ["/about", "", "", "", "Firefox", 1, 0],
        ["/search", 'q="quoted"', "DuckDuckGo", "", "Safari", 1, 0],  # the e-mail parameter stripped
    ]
    # raw addresses are never stored: not in any column
    dump = orjson.dumps(store.query("SELECT * FROM events").rows).decode()
    for ip in ("203.0.113.7", "2001:db8::1", "198.51.100.4", "192.0.2.9"):
        assert ip not in dump
    assert records.load(settings.state_dir, record.id) is not None
    assert record.salts == {} and not list(records.folder(settings.state_dir).glob("*.identity-*"))

    assert run.undo(settings, store, record.id) == 5
    assert store.scalar("SELECT count() FROM events") == 0
    assert store.scalar("SELECT count() FROM events FINAL") == 0
    assert records.load(settings.state_dir, record.id) is None
    assert sorted(p.name for p in records.folder(settings.state_dir).iterdir()) == []
    with pytest.raises(run.ImportFailed, match="unknown import id"):
        run.undo(settings, store, record.id)
    with pytest.raises(run.ImportFailed, match="unknown import id"):
        run.undo(settings, store, "no-such-import")
    with pytest.raises(run.ImportFailed, match="unknown import id"):
        run.undo(settings, store, "../../etc/passwd")


def test_undo_deletes_only_its_own_rows(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store.insert_rows(
        "events",
        [
            {
                "timestamp": "2000-10-11 08:00:00",
                "site": SITE,
                "event_id": "live-1",
                "event_name": "pageview",
                "visitor_id": "v",
            }
        ],
    )
    a = import_file(settings, store, COMBINED, overlap="include")
    b = import_file(settings, store, VHOST)
    assert store.scalar("SELECT count() FROM events FINAL") == 1 + 5 + 4
    assert run.undo(settings, store, a.id) == 5
    assert store.query("SELECT import_id, count() FROM events FINAL GROUP BY 1 ORDER BY 1").rows == [
        ["", 1],
        [b.id, 4],
    ]


def test_the_overlap_rule(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    live = {"timestamp": "2000-10-11 08:00:00", "site": SITE, "event_id": "live-1", "event_name": "pageview"}
    store.insert_rows(
        "events",
        [live, {**live, "site": "other.example", "event_id": "live-2", "timestamp": "2000-10-10 08:00:00"}],
    )
    shown = run.preview(settings, store, COMBINED, SITE)
    assert shown.skipped[run.LIVE] == 2 and dict(shown.days) == {"2000-10-10": 3, "2000-10-12": 1}
    record = import_file(settings, store, COMBINED)
    assert record.rows == 4 and record.skipped[run.LIVE] == 2  # /about and Googlebot
    assert store.query(PER_DAY, {"site": SITE}).rows == [COMBINED_DAYS[0], COMBINED_DAYS[2]]
    run.undo(settings, store, record.id)
    record = import_file(settings, store, COMBINED, overlap="include")
    assert record.rows == 5 and run.LIVE not in record.skipped
    assert store.query(PER_DAY, {"site": SITE}).rows == COMBINED_DAYS


def test_preview_writes_nothing_and_names_the_sites(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    shown = run.preview(settings, store, VHOST, SITE)
    assert dict(shown.hosts) == {"example.com": 3, "www.example.com": 1, "shop.other.org": 1}
    assert dict(shown.days) == {"2024-03-05": 2, "2024-03-06": 2}  # 23:30 -0500 on the 5th is the 6th UTC
    assert dict(shown.skipped) == {"another site (host)": 1, "static asset or file": 1}
    assert (shown.first_ms, shown.last_ms) == (1_709_622_000_000, 1_709_726_405_000)
    assert store.scalar("SELECT count() FROM events") == 0
    assert not records.folder(settings.state_dir).exists()


def test_an_imported_file_is_not_imported_twice(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    record = import_file(settings, store, VHOST)
    with pytest.raises(run.ImportFailed, match=f"already imported for example.com as {record.id}"):
        run.start(settings, store, VHOST, SITE)
    run.undo(settings, store, record.id)
    assert import_file(settings, store, VHOST).rows == 4


def test_bad_files(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = ChdbStore(tmp_path / "data" / "store")
    store.migrate()
    try:
        png = tmp_path / "image.log"
        png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
        with pytest.raises(WrongKind, match="not a text or gzip access log"):
            run.start(settings, store, png, SITE)

        long = tmp_path / "long.log"
        lines = COMBINED.read_bytes().splitlines(keepends=True)
        long.write_bytes(lines[1] + b"x" * 200_000 + b"\n" + lines[2])
        record = import_file(settings, store, long)
        assert (record.rows, record.malformed) == (2, [[2, "line too long"]])

        # a gzip cut short: the whole lines before the cut are imported, the record says truncated
        many = b"".join(lines[1:3]) * 2000  # 4,000 pageview lines
        whole = gzip.compress(many)
        cut = tmp_path / "cut.log.gz"
        cut.write_bytes(whole[: len(whole) // 2])
        got = zlib.decompressobj(31).decompress(whole[: len(whole) // 2])
        whole_lines = got.count(b"\n")
        record = import_file(settings, store, cut)
        assert record.status == "truncated" and "ends early" in record.error
        assert record.rows == whole_lines
        assert store.scalar("SELECT count() FROM events WHERE import_id = {i:String}", {"i": record.id}) == (
            whole_lines
        )
    finally:
        store.close()


def big_log(path: Path, lines: int) -> int:
    """`lines` lines over 3 days, 1 in 5 a static asset; returns the pageviews among them."""
    out = []
    pageviews = 0
    for i in range(lines):
        second = i * 7
        day, rest = 1 + second // 86400, second % 86400
        target = f"/p/{i % 97}" if i % 5 else f"/s/{i}.png"
        pageviews += bool(i % 5)
        out.append(
            f"10.{i % 7}.{i % 251}.{i % 13} - - [{day:02d}/Feb/2023:{rest // 3600:02d}:{rest // 60 % 60:02d}:"
            f'{rest % 60:02d} +0000] "GET {target} HTTP/1.1" 200 100 "-" "Mozilla/5.0 (X11; Linux x86_64; '
            f'rv:{100 + i % 20}.0) Gecko/20100101 Firefox/{100 + i % 20}.0"\n'
        )
    path.write_text("".join(out))
    return pageviews


def test_a_killed_import_resumes_without_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    expected = big_log(log, 30_000)
    data = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "pixel.server.cli",
        "import",
        "accesslog",
        str(log),
        "--site",
        SITE,
        "--data-dir",
        str(data),
        "--batch-lines",
        "1000",
    ]
    env = {**os.environ, "PIXEL_GEOIP_DB": str(tmp_path / "none.mmdb")}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = records.folder(data / "state")
    deadline = time.monotonic() + 120
    killed_at = 0
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(folder.glob("*.json")) if folder.exists() else []
        record = next((p for p in found if ".identity-" not in p.name), None)
        if record is not None:
            try:
                killed_at = orjson.loads(record.read_bytes())["offset"]
            except (orjson.JSONDecodeError, FileNotFoundError):
                killed_at = 0
            if killed_at > 0:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert 0 < killed_at < log.stat().st_size

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming import" in done.stderr
    store = ChdbStore(data / "store")
    try:
        assert store.scalar("SELECT count() FROM events") == expected  # no duplicate even before FINAL
        assert store.scalar("SELECT count() FROM events FINAL") == expected
        assert store.scalar("SELECT uniqExact(event_id) FROM events") == expected
    finally:
        store.close()


def test_an_import_whose_store_closes_stops_and_resumes_without_duplicates(tmp_path: Path) -> None:
    """The store closing under a running import (its process stopping: the import thread is not joined) ends
    the run with `StoreClosed` at once (no retrying a store that will not come back), its record left to resume;
    the next store on the folder resumes it to the exact count."""
    log = tmp_path / "big.log"
    expected = big_log(log, 20_000)
    settings = settings_for(tmp_path)
    store = ChdbStore(settings.data_dir / "store")
    store.migrate()
    record = run.start(settings, store, log, SITE)
    outcome: list[BaseException] = []
    progressed: list[int] = []

    def progress(done: int, total: int, lines: int) -> None:
        progressed.append(lines)
        if len(progressed) == 2:  # a batch or more committed: the process stops
            store.close()

    def work() -> None:
        try:
            run.run(settings, store, record, progress=progress, batch_lines=1000)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)  # a regression must not hold the test process
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the import kept retrying a closed store"
    assert [type(e) for e in outcome] == [StoreClosed]
    saved = records.load(settings.state_dir, record.id)
    assert saved is not None
    assert saved.status == "running" and 0 < saved.offset < log.stat().st_size

    again = ChdbStore(settings.data_dir / "store")
    try:
        resumed = run.start(settings, again, log, SITE)
        assert resumed.id == record.id
        assert run.run(settings, again, resumed).status == "done"
        assert again.scalar("SELECT count() FROM events") == expected  # no duplicate even before FINAL
        assert again.scalar("SELECT uniqExact(event_id) FROM events") == expected
    finally:
        again.close()
