"""`pixel geoip update` against a real HTTP server on 127.0.0.1 standing in for MaxMind / DB-IP, and against a
closed port (offline): a clear error, nothing changed."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pixel.server.cli import main
from pixel.server.enrich.geo import GeoLocator
from pixel.server.enrich.geoip_update import GeoipUpdateError, run
from pixel.server.settings import Settings
from tests.ports import free_port

DATA = Path(__file__).parent / "data"
CITY = (DATA / "GeoLite2-City-Test.mmdb").read_bytes()
COUNTRY = (DATA / "GeoLite2-Country-Test.mmdb").read_bytes()
TODAY = dt.date(2026, 11, 27)


def _tar_gz(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in (("GeoLite2-City_20261125/COPYRIGHT.txt", b"test"), (name, payload)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeDownloads(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        status, body = self.routes.get(self.path, (404, b"not found"))
        if (
            self.path.startswith("/geoip/")
            and self.headers.get("Authorization") != "Basic " + base64.b64encode(b"123456:good-key").decode()
        ):
            status, body = 401, b"Invalid license key"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    FakeDownloads.routes = {
        "/geoip/databases/GeoLite2-City/download?suffix=tar.gz": (
            200,
            _tar_gz("GeoLite2-City_20261125/GeoLite2-City.mmdb", CITY),
        ),
        "/free/dbip-city-lite-2026-10.mmdb.gz": (200, gzip.compress(COUNTRY)),  # November's is "not out yet"
    }
    FakeDownloads.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeDownloads)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def no_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXEL_MAXMIND_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("PIXEL_MAXMIND_LICENSE_KEY", raising=False)
    monkeypatch.delenv("PIXEL_GEOIP_DB", raising=False)


def test_maxmind_download_installs_the_city_database(tmp_path: Path, server: str) -> None:
    settings = Settings(data_dir=tmp_path)
    path, kind = run(settings, account_id="123456", license_key="good-key", base_url=server, today=TODAY)
    assert path == tmp_path / "geoip" / "city.mmdb"
    assert kind == "GeoLite2-City"
    assert path.read_bytes() == CITY
    assert [p.name for p in path.parent.iterdir()] == ["city.mmdb"]  # no temporary files left
    loc = GeoLocator(path)
    assert loc.lookup("81.2.69.142").city == "London"
    loc.close()


def test_credentials_from_the_environment_select_maxmind(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXEL_MAXMIND_ACCOUNT_ID", "123456")
    monkeypatch.setenv("PIXEL_MAXMIND_LICENSE_KEY", "good-key")
    _, kind = run(Settings(data_dir=tmp_path), base_url=server, today=TODAY)
    assert kind == "GeoLite2-City"


def test_wrong_licence_key_is_a_clear_error_and_changes_nothing(tmp_path: Path, server: str) -> None:
    settings = Settings(data_dir=tmp_path, geoip_db=str(tmp_path / "current.mmdb"))
    (tmp_path / "current.mmdb").write_bytes(COUNTRY)
    with pytest.raises(GeoipUpdateError, match=r"MaxMind refused the account id / licence key \(HTTP 401\)"):
        run(settings, account_id="123456", license_key="bad-key", base_url=server, today=TODAY)
    assert (tmp_path / "current.mmdb").read_bytes() == COUNTRY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.mmdb"]


def test_maxmind_without_credentials_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(GeoipUpdateError, match="MaxMind needs an account id and a licence key"):
        run(Settings(data_dir=tmp_path), source="maxmind")


def test_dbip_without_account_falls_back_to_last_month(tmp_path: Path, server: str) -> None:
    path, kind = run(Settings(data_dir=tmp_path), base_url=server, today=TODAY)
    assert kind == "GeoLite2-Country"
    assert path.read_bytes() == COUNTRY
    assert [p for p, _ in FakeDownloads.seen] == [
        "/free/dbip-city-lite-2026-11.mmdb.gz",
        "/free/dbip-city-lite-2026-10.mmdb.gz",
    ]
    assert all(auth == "" for _, auth in FakeDownloads.seen)  # no credentials sent to DB-IP


def test_a_download_that_is_no_database_is_refused(tmp_path: Path, server: str) -> None:
    FakeDownloads.routes["/free/dbip-city-lite-2026-11.mmdb.gz"] = (
        200,
        gzip.compress(b"<html>oops</html>" * 50),
    )
    with pytest.raises(GeoipUpdateError, match="not a MaxMind-format database"):
        run(Settings(data_dir=tmp_path), base_url=server, today=TODAY)
    assert list((tmp_path / "geoip").iterdir()) == []


def test_a_truncated_archive_is_refused(tmp_path: Path, server: str) -> None:
    FakeDownloads.routes["/geoip/databases/GeoLite2-City/download?suffix=tar.gz"] = (
        200,
        b"\x1f\x8b\x08garbage",
    )
    with pytest.raises(GeoipUpdateError, match="not a valid tar.gz"):
        run(Settings(data_dir=tmp_path), account_id="123456", license_key="good-key", base_url=server)


def test_offline_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(GeoipUpdateError, match=r"cannot reach 127\.0\.0\.1 .*offline.*Nothing was changed"):
        run(Settings(data_dir=tmp_path), base_url=f"http://127.0.0.1:{port}", today=TODAY)
    assert not (tmp_path / "geoip" / "city.mmdb").exists()


def test_cli_offline_exits_1_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = main(["geoip", "update", "--data-dir", str(tmp_path), "--base-url", f"http://127.0.0.1:{port}"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("pixel geoip update: cannot reach 127.0.0.1")


def test_cli_installs_with_maxmind_credentials(tmp_path: Path, server: str) -> None:
    env = dict(
        os.environ,
        PIXEL_DATA_DIR=str(tmp_path),
        PIXEL_MAXMIND_ACCOUNT_ID="123456",
        PIXEL_MAXMIND_LICENSE_KEY="good-key",
    )
    exe = shutil.which("pixel", path=str(Path(sys.executable).parent))
    assert exe is not None
    proc = subprocess.run(
        [exe, "geoip", "update", "--base-url", server], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"installed GeoLite2-City at {tmp_path / 'geoip' / 'city.mmdb'}"
