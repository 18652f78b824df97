"""GeoIP from the first minute (server/enrich/geo_refresh.py): the store process fetches the database from a real
HTTP server on 127.0.0.1 standing in for DB-IP / MaxMind, on its first start and when due (time pinned); every kind
of failure leaves a good database in place and says why; `pixel serve` fetches it on its own and the enrichment
uses it without a restart; GET /api/geoip shows it."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import struct
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

from pixel.server.enrich.geo import GeoLocator
from pixel.server.enrich.geo_refresh import ATTRIBUTION, GeoipRefresher, geoip_status, source_of
from pixel.server.settings import Settings, SettingsError
from tests.ports import free_port

DATA = Path(__file__).parent / "data"
CITY = (DATA / "GeoLite2-City-Test.mmdb").read_bytes()
FEB = 1770245369  # the fixtures' build time: 2026-02-04


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()  # type: ignore[misc]


def with_build_epoch(db: bytes, epoch: int) -> bytes:
    """The database with another build time in its metadata (same encoded size), as a newer release has."""
    meta = db.rindex(b"\xab\xcd\xefMaxMind.com")
    key = db.index(b"build_epoch", meta) + len(b"build_epoch")
    control = db[key]
    assert control >> 5 == 0 and db[key + 1] == 2  # extended type: uint64
    size = control & 0x1F
    value = struct.pack(">Q", epoch)[-size:]
    assert int.from_bytes(value, "big") == epoch
    return db[: key + 2] + value + db[key + 2 + size :]


MARCH = int(utc(2026, 3, 3))
CITY_MARCH = with_build_epoch(CITY, MARCH)


def _tar_gz(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("GeoLite2-City_20260303/GeoLite2-City.mmdb")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


class Downloads(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        status, body = self.routes.get(self.path, (404, b"not found"))
        if self.path.startswith("/geoip/") and self.headers.get("Authorization") != (
            "Basic " + base64.b64encode(b"4242:key-from-file").decode()
        ):
            status, body = 401, b"Invalid license key"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def downloads() -> Iterator[str]:
    Downloads.routes = {}
    Downloads.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Downloads)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCOUNT_ID", "LICENSE_KEY", "LICENSE_KEY_FILE"):
        monkeypatch.delenv(f"PIXEL_MAXMIND_{name}", raising=False)
    monkeypatch.delenv("PIXEL_GEOIP_DB", raising=False)


def settings_for(tmp_path: Path, base: str, mode: str = "dbip") -> Settings:
    return Settings(
        data_dir=tmp_path,
        geoip_auto_update=mode,
        geoip_dbip_url=base + "/free/dbip-city-lite-{month}.mmdb.gz",
        geoip_maxmind_url=base + "/geoip/databases/{edition}/download?suffix=tar.gz",
    )


def test_first_start_fetches_db_ip_and_reports_it(tmp_path: Path, downloads: str) -> None:
    Downloads.routes["/free/dbip-city-lite-2026-02.mmdb.gz"] = (200, gzip.compress(CITY))
    now = utc(2026, 2, 10, 9, 30)
    refresher = GeoipRefresher(settings_for(tmp_path, downloads), clock=lambda: now)
    assert refresher.due(now) is True  # no database yet
    status = refresher.check_once()
    db = tmp_path / "geoip" / "city.mmdb"
    assert db.read_bytes() == CITY
    assert sorted(p.name for p in db.parent.iterdir()) == ["city.mmdb"]  # no temporary file left
    assert status == {
        "available": True,
        "auto_update": "dbip",
        "database_type": "GeoLite2-City",
        "build_date": "2026-02-04",
        "source": "dbip",  # fetched from DB-IP's URL: the refresher recorded where from
        "attribution": "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0",
        "last_check": "2026-02-10T09:30:00+00:00",
        "last_success": "2026-02-10T09:30:00+00:00",
        "last_error": None,
    }
    assert geoip_status(refresher.settings) == status  # what the API reads, from the status file
    assert Downloads.seen == [("/free/dbip-city-lite-2026-02.mmdb.gz", "")]  # no credentials sent to DB-IP
    # the same month: nothing is due, later checks included
    assert refresher.due(utc(2026, 2, 28, 23, 59)) is False


def test_due_monthly_for_db_ip_and_not_more_often_than_the_check_interval(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, geoip_auto_update="dbip", geoip_check_interval=6 * 3600)
    (tmp_path / "geoip").mkdir()
    (tmp_path / "geoip" / "city.mmdb").write_bytes(CITY)  # built 2026-02-04
    refresher = GeoipRefresher(settings)
    assert refresher.due(utc(2026, 2, 27)) is False
    assert refresher.due(utc(2026, 3, 1, 0, 5)) is True  # a new month
    refresher.state["last_check"] = utc(2026, 3, 1, 0, 5)
    assert refresher.due(utc(2026, 3, 1, 6, 4)) is False  # checked (and failed, or found no newer) 5 h 59 ago
    assert refresher.due(utc(2026, 3, 1, 6, 5)) is True


def test_no_database_and_no_network_retries_hourly(tmp_path: Path) -> None:
    refresher = GeoipRefresher(Settings(data_dir=tmp_path, geoip_auto_update="dbip"))
    refresher.state["last_check"] = utc(2026, 2, 10, 9, 0)
    assert refresher.due(utc(2026, 2, 10, 9, 59)) is False
    assert refresher.due(utc(2026, 2, 10, 10, 0)) is True


def test_monthly_refresh_installs_the_newer_build_and_the_enrichment_reloads_it(
    tmp_path: Path, downloads: str
) -> None:
    Downloads.routes["/free/dbip-city-lite-2026-03.mmdb.gz"] = (200, gzip.compress(CITY_MARCH))
    db = tmp_path / "geoip" / "city.mmdb"
    db.parent.mkdir()
    db.write_bytes(CITY)
    locator = GeoLocator(db, check_interval=0)
    assert locator.lookup("81.2.69.142").country == "GB"
    generation = locator.generation
    refresher = GeoipRefresher(settings_for(tmp_path, downloads))
    now = utc(2026, 3, 4, 12)
    assert refresher.due(now) is True
    status = refresher.check_once(now)
    assert status["build_date"] == "2026-03-03"
    assert db.read_bytes() == CITY_MARCH
    locator.maybe_reload()
    assert locator.generation == generation + 1  # reopened: no restart needed
    assert locator.lookup("81.2.69.142").city == "London"
    locator.close()


def test_an_older_download_keeps_the_newer_database(tmp_path: Path, downloads: str) -> None:
    # on the 1st, this month's file is not out yet: last month's comes back, older than what is in place
    Downloads.routes["/free/dbip-city-lite-2026-02.mmdb.gz"] = (200, gzip.compress(CITY))
    db = tmp_path / "geoip" / "city.mmdb"
    db.parent.mkdir()
    db.write_bytes(CITY_MARCH)
    status = GeoipRefresher(settings_for(tmp_path, downloads)).check_once(utc(2026, 3, 1, 0, 10))
    assert db.read_bytes() == CITY_MARCH
    assert [p for p, _ in Downloads.seen] == [
        "/free/dbip-city-lite-2026-03.mmdb.gz",
        "/free/dbip-city-lite-2026-02.mmdb.gz",
    ]
    assert (status["build_date"], status["last_error"], status["source"]) == ("2026-03-03", None, "maxmind")
    # (the database's type names MaxMind: only what the refresher installed itself is credited to DB-IP)


BROKEN = {
    "404": (404, b"not found", "DB-IP answered HTTP 404 for the City Lite database"),
    "truncated gzip": (200, gzip.compress(CITY)[:5000], "the DB-IP download is not a valid .gz file"),
    "not an mmdb": (200, gzip.compress(b"<html>offline page</html>" * 40), "not a MaxMind-format database"),
    "not gzip": (200, CITY, "the DB-IP download is not a valid .gz file"),
}


@pytest.mark.parametrize("case", [*BROKEN, "refused"])
def test_no_failure_replaces_a_good_database(
    case: str, tmp_path: Path, downloads: str, caplog: pytest.LogCaptureFixture
) -> None:
    base = downloads
    if case == "refused":
        base, message = f"http://127.0.0.1:{free_port()}", "cannot reach 127.0.0.1"
    else:
        status_code, body, message = BROKEN[case]
        for month in ("2026-03", "2026-02"):
            Downloads.routes[f"/free/dbip-city-lite-{month}.mmdb.gz"] = (status_code, body)
    db = tmp_path / "geoip" / "city.mmdb"
    db.parent.mkdir()
    db.write_bytes(CITY)
    now = utc(2026, 3, 2, 8)
    refresher = GeoipRefresher(settings_for(tmp_path, base), clock=lambda: now)
    with caplog.at_level("WARNING", logger="pixel.geoip"):
        status = refresher.check_once()
    assert db.read_bytes() == CITY
    assert sorted(p.name for p in db.parent.iterdir()) == ["city.mmdb"]
    assert status["available"] is True and status["build_date"] == "2026-02-04"
    assert message in status["last_error"]
    assert status["last_check"] == "2026-03-02T08:00:00+00:00" and status["last_success"] is None
    assert [r.getMessage() for r in caplog.records] == [
        f"GeoIP: could not fetch the dbip database: {status['last_error']}"
    ]
    assert refresher.due(now + 3600) is False  # not hammered: the next try after the check interval


def test_offline_without_any_database_leaves_geo_empty(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"http://127.0.0.1:{free_port()}")
    status = GeoipRefresher(settings).check_once(utc(2026, 3, 2, 8))
    assert status["available"] is False and status["database_type"] is None and status["source"] is None
    assert status["last_error"].startswith("cannot reach 127.0.0.1")
    assert not (tmp_path / "geoip" / "city.mmdb").exists()
    locator = GeoLocator(tmp_path / "geoip" / "city.mmdb")
    assert locator.lookup("81.2.69.142").country == ""
    locator.close()


def test_maxmind_with_the_key_in_a_secret_file(
    tmp_path: Path, downloads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Downloads.routes["/geoip/databases/GeoLite2-City/download?suffix=tar.gz"] = (200, _tar_gz(CITY_MARCH))
    key_file = tmp_path / "maxmind-key"
    key_file.write_text("key-from-file\n")
    monkeypatch.setenv("PIXEL_MAXMIND_ACCOUNT_ID", "4242")
    monkeypatch.setenv("PIXEL_MAXMIND_LICENSE_KEY_FILE", str(key_file))
    refresher = GeoipRefresher(settings_for(tmp_path / "data", downloads, mode="auto"))
    assert refresher.source() == "maxmind"
    status = refresher.check_once(utc(2026, 3, 4))
    assert (status["source"], status["build_date"], status["last_error"]) == ("maxmind", "2026-03-03", None)
    assert status["attribution"] == ATTRIBUTION["maxmind"]
    assert "key-from-file" not in (tmp_path / "data" / "state" / "geoip-status.json").read_text()
    # GeoLite2 is rebuilt twice a week: due again a week after its build (the last check is long past by then)
    assert refresher.due(MARCH + 7 * 86400 - 60) is False
    assert refresher.due(MARCH + 7 * 86400) is True


def test_an_unreadable_key_file_is_a_plain_error(
    tmp_path: Path, downloads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXEL_MAXMIND_ACCOUNT_ID", "4242")
    monkeypatch.setenv("PIXEL_MAXMIND_LICENSE_KEY_FILE", str(tmp_path / "missing"))
    status = GeoipRefresher(settings_for(tmp_path, downloads, mode="maxmind")).check_once(utc(2026, 3, 4))
    assert status["last_error"] == (
        f"cannot read the MaxMind licence key file {tmp_path / 'missing'}: No such file or directory"
    )
    assert Downloads.seen == []


def test_source_of_database_types() -> None:
    assert [
        source_of(t) for t in ("DBIP-City-Lite", "dbip-country-lite", "GeoLite2-City", "GeoIP2-City", "X")
    ] == [
        "dbip",
        "dbip",
        "maxmind",
        "maxmind",
        "other",
    ]


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(
        SettingsError, match="PIXEL_GEOIP_AUTO_UPDATE must be 'off', 'auto', 'dbip' or 'maxmind'"
    ):
        Settings.from_env({"PIXEL_GEOIP_AUTO_UPDATE": "yes"})
    with pytest.raises(SettingsError, match="PIXEL_GEOIP_DBIP_URL must be an http"):
        Settings.from_env({"PIXEL_GEOIP_DBIP_URL": "file:///etc/passwd"})
    assert Settings().geoip_auto_update == "off"


def _make_admin(data: Path) -> None:
    from pixel.server.api.app import open_meta
    from pixel.server.api.security import hash_password

    open_meta(Settings(data_dir=data)).create_user("admin", hash_password("admin-password-1"), "admin")


def _admin_headers(api: str) -> dict[str, str]:
    r = httpx.post(f"{api}/api/auth/login", json={"username": "admin", "password": "admin-password-1"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _wait_status(api: str, headers: dict[str, str], key: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{api}/api/geoip", headers=headers, timeout=5).json()
        if status.get(key):
            return status
        time.sleep(0.2)
    raise AssertionError(f"no {key} in {status}")


def _event() -> bytes:
    return orjson.dumps(
        {
            "event_name": "pageview",
            "ts": int(time.time() * 1000),
            "site": "example.com",
            "page": {"url": "https://example.com/", "path": "/", "title": "", "referrer": ""},
        }
    )


def test_pixel_serve_fetches_the_database_on_first_start_and_fills_the_country(
    pixel_factory, tmp_path: Path, downloads: str
) -> None:
    for month in range(1, 13):  # whatever the month of the run
        for year in (2026, 2027, 2028):
            Downloads.routes[f"/free/dbip-city-lite-{year}-{month:02d}.mmdb.gz"] = (200, gzip.compress(CITY))
    data = tmp_path / "data"
    _make_admin(data)
    server = pixel_factory(
        "serve",
        data_dir=data,
        pixel_geoip_auto_update="dbip",
        pixel_geoip_dbip_url=downloads + "/free/dbip-city-lite-{month}.mmdb.gz",
        pixel_trusted_proxies="127.0.0.1",
        pixel_segment_max_age="0.3",
    )
    headers = _admin_headers(server.api)
    status = _wait_status(server.api, headers, "available")
    assert (status["source"], status["database_type"], status["last_error"]) == (
        "dbip",
        "GeoLite2-City",
        None,
    )
    assert httpx.get(f"{server.api}/api/geoip", timeout=5).status_code == 401  # owners only
    time.sleep(5.5)  # past the enrichment's look at the file (at most every 5 s): a batch after it reloads
    r = httpx.post(f"{server.collector}/track", content=_event(), headers={"X-Forwarded-For": "81.2.69.142"})
    assert r.status_code == 204
    server.wait_shipped(1)
    with server.open_store() as store:
        assert store.query("SELECT country, city FROM events").rows == [["GB", "London"]]  # type: ignore[attr-defined]


def test_pixel_serve_offline_says_so_and_counts_without_geo(pixel_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_admin(data)
    server = pixel_factory(
        "serve",
        data_dir=data,
        pixel_geoip_auto_update="auto",
        pixel_geoip_dbip_url=f"http://127.0.0.1:{free_port()}/dbip-city-lite-{{month}}.mmdb.gz",
        pixel_trusted_proxies="127.0.0.1",
        pixel_segment_max_age="0.3",
        pixel_log_level="INFO",
    )
    headers = _admin_headers(server.api)
    status = _wait_status(server.api, headers, "last_error")
    assert status["available"] is False and status["last_error"].startswith("cannot reach 127.0.0.1")
    r = httpx.post(f"{server.collector}/track", content=_event(), headers={"X-Forwarded-For": "81.2.69.142"})
    assert r.status_code == 204
    server.wait_shipped(1)
    assert "GeoIP: could not fetch the dbip database: cannot reach 127.0.0.1" in server.log()
    with server.open_store() as store:
        assert store.query("SELECT country FROM events").rows == [[""]]  # type: ignore[attr-defined]
