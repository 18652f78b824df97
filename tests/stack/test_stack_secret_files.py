"""The MaxMind licence key reaches a stack as a file in its data volume, never as a setting: not in a
compose file, `.env.example`, a container label, `docker inspect`'s Env, or the settings kept for the
profile; the store process reads it from the file and MaxMind's stand-in (a small HTTP server on the stack
network) checks the key it receives. An install without a key works and never invents one."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
from stack_helpers import BUSYBOX, busybox_spec, busybox_web, compact_test_values, unique_project

from pixel.app.stack import compose, secret_files
from pixel.app.stack.errors import StackError
from pixel.app.stack.manage import open_stack, upgrade_to_image
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import DATA_DIR, LABEL_SERVICE, MAXMIND_LICENSE_KEY_FILE, compact, standard
from pixel.server.enrich.geo_refresh import GeoipRefresher
from pixel.server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CITY = REPO / "tests" / "enrich" / "data" / "GeoLite2-City-Test.mmdb"
KEY = "mm-Secret-Key_0123456789abcdef"
ACCOUNT = "4242"
AUTH = "Basic " + base64.b64encode(f"{ACCOUNT}:{KEY}".encode()).decode()  # what MaxMind's server expects

# MaxMind's download URL stands in: GeoLite2 only with the right basic auth; every Authorization it gets
# is printed, so the test sees what the stack sent. DB-IP's URL answers too (an install without a key).
MIRROR = r"""
import hashlib, http.server, sys
tgz = open("/srv/city.tar.gz", "rb").read()
mmdb_gz = open("/srv/city.mmdb.gz", "rb").read()
want = sys.argv[1]  # the SHA-256 of the expected Authorization: the stand-in itself holds no key
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization") or "-"
        print("GET", self.path, "AUTH", auth, flush=True)
        if self.path.startswith("/geoip/databases/GeoLite2-City/download"):
            ok = hashlib.sha256(auth.encode()).hexdigest() == want
            code, body = (200, tgz) if ok else (401, b"")
        elif self.path.startswith("/free/dbip-city-lite-"):
            code, body = 200, mmdb_gz
        else:
            code, body = 404, b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""


def _tar_gz(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("GeoLite2-City_20260303/GeoLite2-City.mmdb")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


# ---- without an engine: the key is split off before the spec is resolved --------------------------------


def test_split_takes_the_key_out_of_the_settings() -> None:
    settings, secrets = secret_files.split({"PIXEL_WORKERS": "1", "PIXEL_MAXMIND_LICENSE_KEY": f"  {KEY}\n"})
    assert settings == {"PIXEL_WORKERS": "1"}
    assert secrets == {"PIXEL_MAXMIND_LICENSE_KEY": KEY}
    # no key, an empty or a blank one: nothing to deliver, nothing invented
    assert secret_files.split({"PIXEL_WORKERS": "1"}) == ({"PIXEL_WORKERS": "1"}, {})
    for blank in ("", "   ", "\n"):
        assert secret_files.split({"PIXEL_MAXMIND_LICENSE_KEY": blank}) == ({}, {})
    # the key an earlier version kept in the settings label moves to the file, and out of the settings
    assert secret_files.split({"GEOIPUPDATE_LICENSE_KEY": "old", "PIXEL_WORKERS": "2"}) == (
        {"PIXEL_WORKERS": "2"},
        {"PIXEL_MAXMIND_LICENSE_KEY": "old"},
    )
    # a key given now wins over the legacy one
    assert secret_files.split({"GEOIPUPDATE_LICENSE_KEY": "old", "PIXEL_MAXMIND_LICENSE_KEY": "new"})[1] == {
        "PIXEL_MAXMIND_LICENSE_KEY": "new"
    }


@pytest.mark.parametrize("bad", ["two\nlines", "a\rb", "nul\0byte", "x\n\ny"])
def test_a_key_with_a_line_break_or_nul_is_refused(bad: str) -> None:
    with pytest.raises(StackError, match="line break or a NUL") as err:
        secret_files.split({"PIXEL_MAXMIND_LICENSE_KEY": bad})
    assert err.value.code == "bad-secret"
    assert bad not in str(err.value)


def test_the_archive_is_a_private_folder_with_a_read_only_file_of_the_image_user() -> None:
    blob = secret_files.archive({"PIXEL_MAXMIND_LICENSE_KEY": KEY}, now=1_700_000_000)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["secrets", "secrets/maxmind-license-key"]
        folder, key = members["secrets"], members["secrets/maxmind-license-key"]
        assert (folder.isdir(), folder.mode, folder.uid, folder.gid) == (True, 0o700, 10001, 10001)
        assert (key.isfile(), key.mode, key.uid, key.gid) == (True, 0o400, 10001, 10001)
        assert tar.extractfile(key).read() == (KEY + "\n").encode()  # type: ignore[union-attr]
    assert f"{DATA_DIR}/secrets/maxmind-license-key" == MAXMIND_LICENSE_KEY_FILE
    assert secret_files.MAXMIND_LICENSE_KEY.path == MAXMIND_LICENSE_KEY_FILE


def test_no_setting_compose_file_or_env_example_carries_a_licence_key() -> None:
    for name, text in compose.generated_files().items():
        assert "LICENSE_KEY:" not in text and "LICENSE_KEY=" not in text, name
        assert "geoipupdate" not in text, name
        if name != ".env.example":
            assert f"PIXEL_MAXMIND_LICENSE_KEY_FILE: {MAXMIND_LICENSE_KEY_FILE}" in text, name
    for spec in (compact(), standard()):
        names = {v.name for v in spec.variables}
        assert not {n for n in names if "LICENSE" in n}, names
        assert "PIXEL_MAXMIND_ACCOUNT_ID" in names and "PIXEL_GEOIP_MAXMIND_URL" in names
    store = standard().resolve({"CLICKHOUSE_PASSWORD": "x"}).service("shipper").env
    assert store["PIXEL_MAXMIND_LICENSE_KEY_FILE"] == MAXMIND_LICENSE_KEY_FILE
    assert (
        compact().resolve().service("pixel").env["PIXEL_MAXMIND_LICENSE_KEY_FILE"] == MAXMIND_LICENSE_KEY_FILE
    )


def test_auto_uses_dbip_while_the_named_key_file_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stacks always name the key file; it exists only when the owner gave a key."""
    monkeypatch.delenv("PIXEL_MAXMIND_LICENSE_KEY", raising=False)
    monkeypatch.setenv("PIXEL_MAXMIND_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("PIXEL_MAXMIND_LICENSE_KEY_FILE", str(tmp_path / "secrets" / "maxmind-license-key"))
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            body = gzip.compress(CITY.read_bytes())
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        geoip_auto_update="auto",
        geoip_dbip_url=base + "/free/dbip-city-lite-{month}.mmdb.gz",
        geoip_maxmind_url=base + "/geoip/databases/{edition}/download?suffix=tar.gz",
    )
    refresher = GeoipRefresher(settings)
    assert refresher.source() == "dbip"
    monkeypatch.delenv("PIXEL_MAXMIND_ACCOUNT_ID")
    assert refresher.source() == "dbip"
    # and the DB-IP fetch does not trip over the absent key file
    status = refresher.check_once(1_772_323_200)  # 2026-03-01
    server.shutdown()
    assert (status["last_error"], status["available"]) == (None, True)
    assert served == ["/free/dbip-city-lite-2026-03.mmdb.gz"]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "maxmind-license-key").write_text(KEY + "\n")
    monkeypatch.setenv("PIXEL_MAXMIND_ACCOUNT_ID", ACCOUNT)
    assert refresher.source() == "maxmind"


# ---- on the real engine ------------------------------------------------------------------------------------


class Mirror:
    """The download stand-in, on the stack network (made before the install, with the stack's labels)."""

    def __init__(self, client: docker.DockerClient, project: str, image: str, tmp: Path) -> None:
        spec = open_stack(client, project, "compact", {"PIXEL_IMAGE": image}).spec
        self.network = client.networks.create(spec.network_name, driver="bridge", labels=spec.stack_labels())
        srv = tmp / "mirror"
        srv.mkdir()
        payload = CITY.read_bytes()
        (srv / "city.tar.gz").write_bytes(_tar_gz(payload))
        (srv / "city.mmdb.gz").write_bytes(gzip.compress(payload))
        srv.chmod(0o755)
        for f in srv.iterdir():
            f.chmod(0o644)
        self.container = client.containers.create(
            image,
            ["python3", "-c", MIRROR, hashlib.sha256(AUTH.encode()).hexdigest()],
            name=f"{project}-maxmind-mirror",
            labels=spec.stack_labels(),
            volumes={str(srv): {"bind": "/srv", "mode": "ro"}},
            network=spec.network_name,
            networking_config={spec.network_name: client.api.create_endpoint_config(aliases=["mirror"])},
        )
        self.container.start()

    def log(self) -> str:
        return self.container.logs().decode("utf-8", "replace")

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return self.log()
            time.sleep(0.5)
        raise AssertionError(f"the mirror never saw {text!r}:\n{self.log()}")

    def remove(self) -> None:
        self.container.remove(force=True)


def _values(image: str, **more: str) -> dict[str, str]:
    return {
        **compact_test_values(image),
        "PIXEL_GEOIP_AUTO_UPDATE": "auto",
        "PIXEL_GEOIP_MAXMIND_URL": "http://mirror:8000/geoip/databases/{edition}/download?suffix=tar.gz",
        "PIXEL_GEOIP_DBIP_URL": "http://mirror:8000/free/dbip-city-lite-{month}.mmdb.gz",
        **more,
    }


def _exec(prov: Provisioner, cmd: list[str]) -> str:
    c = prov.container("pixel")
    assert c is not None
    res = c.exec_run(cmd)
    return res.output.decode("utf-8", "replace").strip()


def test_install_with_a_key_delivers_it_as_a_file_and_nowhere_else(
    docker_client, pixel_image, cleanup, tmp_path: Path
) -> None:
    project = unique_project("pxsec")
    mirror = Mirror(docker_client, project, pixel_image, tmp_path)
    try:
        prov = open_stack(
            docker_client,
            project,
            "compact",
            _values(pixel_image, PIXEL_MAXMIND_ACCOUNT_ID=ACCOUNT, PIXEL_MAXMIND_LICENSE_KEY=KEY),
        )
        cleanup.append(prov)
        assert KEY not in json.dumps(prov.settings) and "PIXEL_MAXMIND_LICENSE_KEY" not in prov.settings
        assert prov.settings["PIXEL_MAXMIND_ACCOUNT_ID"] == ACCOUNT
        prov.install()
        # the store process fetched GeoLite2 with the key read from the file
        want = "AUTH " + AUTH
        seen = mirror.wait_for(want)
        assert "GET /geoip/databases/GeoLite2-City/download?suffix=tar.gz " + want in seen
        assert "/free/dbip" not in seen
        assert _exec(prov, ["stat", "-c", "%a %u %g", MAXMIND_LICENSE_KEY_FILE]) == "400 10001 10001"
        assert _exec(prov, ["stat", "-c", "%a %u", f"{DATA_DIR}/secrets"]) == "700 10001"
        # absent from everything docker inspect shows, for every container of the stack, and the profile
        for c in prov.containers():
            c.reload()
            assert KEY not in json.dumps(c.attrs), c.name
        assert KEY not in json.dumps(open_stack(docker_client, project).settings)
        for name, text in compose.generated_files().items():
            assert KEY not in text, name
        for committed in (REPO / "compose").iterdir():
            assert KEY not in committed.read_text(), committed

        # a new key is delivered again by the next install (containers unchanged, the file replaced);
        # an install without the key (the CLI holds no keyring) leaves the delivered one in place
        again = open_stack(docker_client, project, values={"PIXEL_MAXMIND_LICENSE_KEY": "second-key"})
        assert again.install().changed == []
        assert _exec(again, ["cat", MAXMIND_LICENSE_KEY_FILE]) == "second-key"
        third = open_stack(docker_client, project)
        assert third.secrets == {}
        third.install()
        assert _exec(third, ["cat", MAXMIND_LICENSE_KEY_FILE]) == "second-key"
        # an upgrade delivers the key it is given before the new containers start
        upgrade_to_image(
            third,
            pixel_image,
            backup_dir=tmp_path / "backups",
            values={"PIXEL_MAXMIND_LICENSE_KEY": "third-key"},
        )
        assert _exec(third, ["cat", MAXMIND_LICENSE_KEY_FILE]) == "third-key"
        assert "third-key" not in json.dumps(third.settings)
        for c in third.containers():
            assert "third-key" not in json.dumps(c.attrs), c.name
    finally:
        mirror.remove()


def test_install_without_a_key_works_and_invents_none(docker_client, pixel_image, cleanup, tmp_path) -> None:
    project = unique_project("pxsec")
    mirror = Mirror(docker_client, project, pixel_image, tmp_path)
    try:
        prov = open_stack(docker_client, project, "compact", _values(pixel_image))
        cleanup.append(prov)
        assert prov.secrets == {}
        prov.install()
        seen = mirror.wait_for("GET /free/dbip-city-lite-")
        assert "/geoip/databases/" not in seen  # no MaxMind attempt without a key
        assert _exec(prov, ["ls", "-A", DATA_DIR]).split().count("secrets") == 0
        env = prov.container("pixel").attrs["Config"]["Env"]  # type: ignore[union-attr]
        assert f"PIXEL_MAXMIND_LICENSE_KEY_FILE={MAXMIND_LICENSE_KEY_FILE}" in env
        assert not [e for e in env if e.startswith("PIXEL_MAXMIND_LICENSE_KEY=")]
    finally:
        mirror.remove()


def test_install_retires_the_old_updater_container_and_delivers_to_the_first_data_mount(
    docker_client, cleanup
) -> None:
    """A stack from an earlier version still has MaxMind's updater container, its Env holding the key: the
    next install removes it (its volume stays). The key goes in through the container mounting the data
    volume, before it starts (a busybox stack: quick, and root inside reads the file's owner and mode)."""
    project = unique_project("pxsec")
    spec = busybox_spec(project, busybox_web())
    prov = Provisioner(docker_client, spec, secrets={"PIXEL_MAXMIND_LICENSE_KEY": KEY})
    cleanup.append(prov)
    old = docker_client.containers.create(
        BUSYBOX,
        ["sleep", "3600"],
        name=f"{project}-geoipupdate-1",
        labels={**spec.stack_labels(), LABEL_SERVICE: "geoipupdate"},
        environment={"GEOIPUPDATE_LICENSE_KEY": KEY},
    )
    result = prov.install()
    assert f"removed container {project}-geoipupdate-1" in result.changed
    assert old.id not in [c.id for c in prov.containers()]
    for c in prov.containers():
        assert KEY not in json.dumps(c.attrs), c.name
    web = prov.container("web")
    assert web is not None
    out = web.exec_run(
        ["stat", "-c", "%a %u %g %n", "/data/secrets", MAXMIND_LICENSE_KEY_FILE]
    ).output.decode()
    assert out.split("\n")[:2] == [
        "700 10001 10001 /data/secrets",
        f"400 10001 10001 {MAXMIND_LICENSE_KEY_FILE}",
    ]
    assert web.exec_run(["cat", MAXMIND_LICENSE_KEY_FILE]).output.decode() == KEY + "\n"
    # a second install changes no container and writes the same key again
    assert (
        Provisioner(docker_client, spec, secrets={"PIXEL_MAXMIND_LICENSE_KEY": KEY}).install().changed == []
    )
