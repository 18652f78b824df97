"""Automatic annotations (server/annotations/watch.py): each cause, observed on real parts (chDB in a temp folder,
the metadata DB, the GeoIP updater against an HTTP server on 127.0.0.1, the built trackers), with time injected.
Each is written once: the same observation again, a second observer, or a restart writes nothing more."""

from __future__ import annotations

import datetime as dt
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pixel.server.annotations.watch import INBOX, AutoAnnotator, announce, release
from pixel.server.api.app import open_meta
from pixel.server.api.meta import MetaDB
from pixel.server.collector.script import DEFAULT_BUILD, EXTENDED_BUILD, load_tracker
from pixel.server.enrich.geo_refresh import GeoipRefresher
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.chfront import ChFront
from tests.enrich.test_geoip_refresh import CITY, with_build_epoch

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0


@dataclass
class Env:
    settings: Settings
    meta: MetaDB
    store: Store
    site: int
    other: int

    def notes(self, kind: str | None = None) -> list[dict[str, Any]]:
        rows = self.meta.all("SELECT * FROM annotations ORDER BY id")
        return [r for r in rows if kind is None or r["kind"] == kind]

    def events(self, domain: str, times: list[float]) -> None:
        self.store.insert_rows(
            "events",
            [
                {
                    "event_id": f"{domain}-{t!r}",
                    "site": domain,
                    "timestamp": dt.datetime.fromtimestamp(t, dt.UTC),
                    "received_at": dt.datetime.fromtimestamp(t, dt.UTC),
                    "event_name": "pageview",
                    "path": "/",
                }
                for t in times
            ],
        )


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    store = ChdbStore(tmp_path_factory.mktemp("auto-store") / "store")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def engine_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_store: ChdbStore
) -> Iterator[Store]:
    """The gap observation's store on both engines: chDB, and the clickhouse-connect client against chDB
    behind the test-only HTTP front (tests/chfront.py)."""
    if request.param == "chdb":
        yield shared_store
        return
    front: ChFront = request.getfixturevalue("api_chfront")
    folder = tmp_path_factory.mktemp("auto-ch")
    store = ClickHouseStore(front.url, database=f"pixel_auto_{folder.name.replace('-', '_')}")
    store.migrate()
    yield store
    store.close()


@pytest.fixture()
def engine_env(tmp_path: Path, engine_store: Store) -> Env:
    return make_env(tmp_path, engine_store)


@pytest.fixture()
def env(tmp_path: Path, shared_store: ChdbStore) -> Env:
    return make_env(tmp_path, shared_store)


def make_env(tmp_path: Path, store: Store) -> Env:
    settings = Settings(data_dir=tmp_path)
    meta = open_meta(settings)
    site = meta.insert(
        "sites", {"domain": f"a-{tmp_path.name}.example", "name": "A", "timezone": "UTC", "created_at": 0.0}
    )
    other = meta.insert(
        "sites", {"domain": f"b-{tmp_path.name}.example", "name": "B", "timezone": "UTC", "created_at": 0.0}
    )
    return Env(settings, meta, store, site, other)


def annotator(env: Env, **kwargs: Any) -> AutoAnnotator:
    kwargs.setdefault("trackers", lambda: {"pixel.js": "a1", "pixel.ext.js": "b1"})
    return AutoAnnotator(env.settings, env.meta, env.store, **kwargs)


def test_an_upgrade_is_annotated_once_per_release_change(env: Env) -> None:
    running = ["1.4.0"]
    watch = annotator(env, running=lambda: running[0])
    assert watch.check_once(T0) == []  # the first start records the release: nothing to say
    assert watch.check_once(T0 + 60) == []
    running[0] = "1.5.0"
    written = watch.check_once(T0 + HOUR)
    assert len(written) == 1
    note = env.notes("upgrade")[0]
    assert (note["text"], note["site_id"], note["author"], note["starts_at"]) == (
        "Pixel upgraded from 1.4.0 to 1.5.0",
        None,
        "pixel",
        T0 + HOUR,
    )
    assert note["details"] == '{"from": "1.4.0", "to": "1.5.0"}'
    # the same again, a second observer (another process), a restart: nothing more
    assert watch.check_once(T0 + 2 * HOUR) == []
    assert annotator(env, running=lambda: "1.5.0").check_once(T0 + 3 * HOUR) == []
    # a rollback to the previous release is a change of its own
    running[0] = "1.4.0"
    assert len(watch.check_once(T0 + 4 * HOUR)) == 1
    assert [n["text"] for n in env.notes("upgrade")] == [
        "Pixel upgraded from 1.4.0 to 1.5.0",
        "Pixel upgraded from 1.5.0 to 1.4.0",
    ]


def test_the_release_is_the_installed_package_version(env: Env) -> None:
    from importlib import metadata

    assert release() == metadata.version("pixel-analytics")


def test_an_announced_restore_is_written_once_and_the_file_removed(env: Env) -> None:
    watch = annotator(env)
    announce(
        env.settings.state_dir,
        "restore",
        "Restored from pixel-2026-03-01.tar.gz",
        T0 - HOUR,
        {"backup": "b1"},
    )
    inbox = env.settings.state_dir / INBOX
    (inbox / "broken.json").write_text("{not json")
    (inbox / "manual.json").write_text('{"id": "m", "kind": "manual", "text": "x", "at": 1}')
    written = watch.check_once(T0)
    assert len(written) == 1
    note = env.notes("restore")[0]
    assert (note["text"], note["starts_at"], note["site_id"], note["details"]) == (
        "Restored from pixel-2026-03-01.tar.gz",
        T0 - HOUR,
        None,
        '{"backup": "b1"}',
    )
    assert list(inbox.iterdir()) == []  # the announcement and the unusable files are gone
    assert env.notes("manual") == []
    assert watch.check_once(T0 + 60) == []


class _Dbip(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.body else 404)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def dbip() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Dbip)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_a_geoip_update_by_the_updater_is_annotated_with_the_builds(
    tmp_path: Path, shared_store: ChdbStore, dbip: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        geoip_auto_update="dbip",
        geoip_dbip_url=dbip + "/free/dbip-city-lite-{month}.mmdb.gz",
    )
    meta = open_meta(settings)
    watch = AutoAnnotator(settings, meta, shared_store, trackers=lambda: {})
    refresher = GeoipRefresher(settings)
    woken: list[bool] = []
    refresher.on_installed = lambda: woken.append(True)
    assert watch.check_once(T0) == []  # no database yet: recorded as none
    _Dbip.body = gzip.compress(CITY)  # built 2026-02-04
    refresher.check_once(T0 + 60)
    assert woken == [True]  # the store process's annotator is woken at once
    assert len(watch.check_once(T0 + 61)) == 1
    march = int(dt.datetime(2026, 3, 3, tzinfo=dt.UTC).timestamp())
    _Dbip.body = gzip.compress(with_build_epoch(CITY, march))
    refresher.check_once(T0 + 86400 * 2)
    assert len(watch.check_once(T0 + 86400 * 2 + 1)) == 1
    refresher.check_once(T0 + 86400 * 3)  # the same build again: not installed, nothing written
    assert woken == [True, True]
    assert watch.check_once(T0 + 86400 * 3 + 1) == []
    texts = [r["text"] for r in meta.all("SELECT text FROM annotations WHERE kind = 'geoip' ORDER BY id")]
    assert texts == [
        "GeoIP database updated: GeoLite2-City built 2026-02-04 22:49 UTC (none before)",
        "GeoIP database updated: GeoLite2-City built 2026-03-03 00:00 UTC (was built 2026-02-04 22:49 UTC)",
    ]


def test_a_geoip_database_present_at_the_first_check_is_only_recorded(env: Env) -> None:
    db = env.settings.data_dir / "geoip" / "city.mmdb"
    db.parent.mkdir(parents=True)
    db.write_bytes(CITY)
    assert annotator(env).check_once(T0) == []
    assert annotator(env).check_once(T0 + 60) == []
    assert env.notes("geoip") == []


def test_a_new_tracker_build_is_annotated_with_the_builds_that_changed(env: Env) -> None:
    served = {"pixel.js": "a1", "pixel.ext.js": "b1"}
    watch = annotator(env, trackers=lambda: dict(served))
    assert watch.check_once(T0) == []
    served["pixel.ext.js"] = "b2"
    assert len(watch.check_once(T0 + 60)) == 1
    assert watch.check_once(T0 + 120) == []
    note = env.notes("tracker")[0]
    assert note["text"] == "Tracker build changed: pixel.ext.js"
    assert note["details"] == (
        '{"builds": ["pixel.ext.js"], "from": {"pixel.ext.js": "b1", "pixel.js": "a1"}, '
        '"to": {"pixel.ext.js": "b2", "pixel.js": "a1"}}'
    )


def test_the_tracker_fingerprint_is_the_etag_the_collector_serves() -> None:
    seen = AutoAnnotator._served_trackers()
    for build in (DEFAULT_BUILD, EXTENDED_BUILD):
        asset = load_tracker(build)
        assert asset is not None
        assert seen[build] == asset.etag.strip('"')


def test_an_ingestion_gap_is_annotated_once_and_closed_when_events_return(engine_env: Env) -> None:
    env = engine_env
    a = env.meta.site(env.site)
    b = env.meta.site(env.other)
    assert a is not None and b is not None
    # site A: an event every 5 minutes for a day, up to T0; site B: too few events to know its rhythm
    env.events(a["domain"], [T0 - 86400 + 300 * i for i in range(289)])
    env.events(b["domain"], [T0 - 10 * HOUR, T0 - 9 * HOUR])
    watch = annotator(env, gap_factor=10.0, min_gap=HOUR, min_events=20)
    assert watch.check_once(T0 + 40 * 60) == []  # 40 min silent: under 10 x 5 min and under an hour
    assert len(watch.check_once(T0 + 61 * 60)) == 1  # over an hour and over 10 x 5 min; B is not judged
    assert len(env.notes("ingestion_gap")) == 1
    note = env.notes("ingestion_gap")[0]
    assert (note["site_id"], note["starts_at"], note["ends_at"]) == (env.site, T0, None)
    assert note["text"] == (
        f"No events stored for {a['domain']} since 2026-03-02 12:00 UTC: 61 min without events where one "
        "arrives every 5 min on average"
    )
    assert watch.check_once(T0 + 3 * HOUR) == []  # the same gap: nothing more
    assert annotator(env).check_once(T0 + 4 * HOUR) == []
    env.events(a["domain"], [T0 + 5 * HOUR, T0 + 5 * HOUR + 300])
    assert watch.check_once(T0 + 6 * HOUR) == []
    closed = env.notes("ingestion_gap")[0]
    assert closed["ends_at"] == T0 + 5 * HOUR  # the first event after the gap
    assert env.meta.all("SELECT * FROM auto_state WHERE key LIKE 'gap_open:%'") == []


def test_a_gap_is_judged_on_the_millisecond_and_sites_without_recent_events_are_left_alone(
    engine_env: Env,
) -> None:
    """The last event's instant comes back to the millisecond on both engines (its key and start), a site
    with no event at all and one whose events are all older than the look-back are not judged."""
    env = engine_env
    a = env.meta.site(env.site)
    b = env.meta.site(env.other)
    assert a is not None and b is not None
    last_ms = int(T0 * 1000) + 123
    times = [(last_ms - 600_000 * i) / 1000 for i in range(30)]  # every 10 minutes, the last at T0 + 0.123 s
    env.events(a["domain"], times)
    env.events(b["domain"], [T0 - 30 * 86400 + 60 * i for i in range(50)])  # a month ago: outside 7 days
    env.meta.insert(  # site C: no event at all
        "sites",
        {
            "domain": f"c-{env.settings.data_dir.name}.example",
            "name": "C",
            "timezone": "UTC",
            "created_at": 0.0,
        },
    )
    watch = annotator(env, gap_factor=10.0, min_gap=HOUR, min_events=20)
    assert watch.check_once(T0 + 100 * 60) == []  # 100 min silent: under 10 x 10 min
    made = watch.check_once(T0 + 2 * HOUR)
    assert len(made) == 1
    note = env.notes("ingestion_gap")[0]
    assert (note["site_id"], note["starts_at"], note["ends_at"]) == (env.site, last_ms / 1000, None)
    assert env.meta.all("SELECT key FROM auto_state WHERE key LIKE 'gap_open:%'") == [
        {"key": f"gap_open:{env.site}"}
    ]
    env.events(a["domain"], [(last_ms + 3 * 3_600_000 + 7) / 1000])
    assert watch.check_once(T0 + 4 * HOUR) == []
    assert env.notes("ingestion_gap")[0]["ends_at"] == (last_ms + 3 * 3_600_000 + 7) / 1000


def test_a_degraded_shipper_is_one_annotation_per_episode(env: Env) -> None:
    health: list[tuple[str, list[str]]] = [("ok", [])]
    watch = annotator(env, status=lambda: health[0])
    assert watch.check_once(T0) == []
    health[0] = ("degraded", ["the store cannot be reached; the spool keeps the events"])
    assert len(watch.check_once(T0 + 60)) == 1
    assert watch.check_once(T0 + 120) == []
    health[0] = ("ok", [])
    assert watch.check_once(T0 + 600) == []
    note = env.notes("shipper_degraded")[0]
    assert (note["text"], note["starts_at"], note["ends_at"], note["site_id"]) == (
        "Ingestion degraded: the store cannot be reached; the spool keeps the events",
        T0 + 60,
        T0 + 600,
        None,
    )
    health[0] = ("degraded", ["the shipper has not advanced for 90 s while the spool holds unshipped events"])
    assert len(watch.check_once(T0 + 900)) == 1
    assert len(env.notes("shipper_degraded")) == 2


def test_an_unreachable_store_does_not_stop_the_other_observations(env: Env) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = ClickHouseStore(f"http://127.0.0.1:{port}", connect=False, connect_timeout=1)
    running = ["1.0"]
    watch = AutoAnnotator(env.settings, env.meta, down, running=lambda: running[0], trackers=lambda: {})
    watch.check_once(T0)
    running[0] = "1.1"
    assert len(watch.check_once(T0 + 60)) == 1  # the gap check failed; the upgrade is written all the same
    assert [n["text"] for n in env.notes()] == ["Pixel upgraded from 1.0 to 1.1"]


def test_an_upgrade_announced_by_the_tool_and_a_new_release_are_one_annotation(env: Env) -> None:
    running = ["1.4.0"]
    watch = annotator(env, running=lambda: running[0])
    watch.check_once(T0)
    announce(env.settings.state_dir, "upgrade", "Stack upgraded from pixel:1.4.0 to pixel:1.5.0", T0 + 30)
    running[0] = "1.5.0"
    assert len(watch.check_once(T0 + 60)) == 1
    [note] = env.notes("upgrade")
    assert note["text"] == "Stack upgraded from pixel:1.4.0 to pixel:1.5.0 (Pixel 1.4.0 → 1.5.0)"
    assert note["details"] == '{"from": "1.4.0", "to": "1.5.0"}'
    assert watch.check_once(T0 + 120) == []


def test_an_announcement_arriving_while_it_runs_is_written_without_waiting_for_the_next_check(
    env: Env,
) -> None:
    watch = annotator(env, interval=3600.0)
    thread = threading.Thread(target=watch.run, args=(lambda: T0,), daemon=True)
    thread.start()
    try:
        announce(env.settings.state_dir, "upgrade", "Stack upgraded from pixel:a to pixel:b", T0 - 5)
        deadline = time.monotonic() + 30
        while not env.notes("upgrade") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [(n["text"], n["starts_at"]) for n in env.notes("upgrade")] == [
            ("Stack upgraded from pixel:a to pixel:b", T0 - 5)
        ]
    finally:
        watch.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
