"""Remote engines: SSH to an sshd on 127.0.0.1 (host key refused until trusted) and TCP + TLS to a
second dockerd with its own bridge (never `--bridge none`: that deletes the main daemon's docker0)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from stack_helpers import BUSYBOX, busybox_spec, free_port, unique_project, wait_port

from pixel.app.stack import image as images
from pixel.app.stack.engine import EngineTarget, connect, fetch_host_key, trust_host_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.provisioner import Provisioner


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict]:
    host_key, client_key, other_key = tmp_path / "host_key", tmp_path / "id_client", tmp_path / "id_other"
    for key in (host_key, client_key, other_key):
        _keygen(key)
    (tmp_path / "authorized_keys").write_text((tmp_path / "id_client.pub").read_text())
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {tmp_path}/sshd.pid\n"
        f"AuthorizedKeysFile {tmp_path}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        fingerprint = subprocess.run(
            ["ssh-keygen", "-lf", f"{host_key}.pub"], capture_output=True, text=True, check=True
        ).stdout.split()[1]
        yield {
            "url": f"ssh://{os.environ.get('USER', 'root')}@127.0.0.1:{port}",
            "key": client_key,
            "other_key": other_key,
            "fingerprint": fingerprint,
            "known_hosts": tmp_path / "app" / "known_hosts",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_host_key_refused_until_trusted_then_stack_works(sshd, docker_client, cleanup):
    target = EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=sshd["known_hosts"])
    with pytest.raises(StackError) as err:
        connect(target)
    assert err.value.code == "host-key-unknown"
    assert "not trusted yet" in err.value.problem
    assert not sshd["known_hosts"].exists()  # nothing was added silently

    key = fetch_host_key(sshd["url"])
    assert key.fingerprint == sshd["fingerprint"]  # what `ssh-keygen -lf` shows the administrator
    trust_host_key(sshd["known_hosts"], key)
    assert oct(sshd["known_hosts"].stat().st_mode & 0o777) == "0o600"

    client = connect(target)
    try:
        assert client.version()["ApiVersion"] == docker_client.version()["ApiVersion"]
        project = unique_project("pxs")
        p = Provisioner(client, busybox_spec(project), target=target)
        cleanup.append(Provisioner(docker_client, busybox_spec(project)))
        assert p.install().changed[-1] == f"container {project}-web-1"
        assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]
        assert list(p.logs()) == ["started"]
        p.uninstall(delete_data=True)
    finally:
        client.close()

    refused = EngineTarget(url=sshd["url"], ssh_key=sshd["other_key"], known_hosts=sshd["known_hosts"])
    with pytest.raises(StackError) as err:
        connect(refused)
    assert err.value.code == "ssh-key-refused"


def test_ssh_changed_host_key_is_refused(sshd):
    known = sshd["known_hosts"]
    host, port = "127.0.0.1", int(sshd["url"].rsplit(":", 1)[1])
    known.parent.mkdir(parents=True)
    impostor = paramiko.Ed25519Key.from_private_key_file(str(sshd["other_key"]))
    keys = paramiko.HostKeys()
    keys.add(f"[{host}]:{port}", "ssh-ed25519", impostor)
    keys.save(str(known))
    with pytest.raises(StackError) as err:
        connect(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=known))
    assert err.value.code == "host-key-changed"
    assert "CHANGED" in err.value.problem


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certs(d: Path, name: str) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in d/name/."""
    c = d / name
    c.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=c)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem",
             "-out", "server.csr", cwd=c)  # fmt: skip
    (c / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-days", "2", "-extfile", "server.ext", "-out", "server-cert.pem", cwd=c)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout", "key.pem", "-out",
             "client.csr", cwd=c)  # fmt: skip
    (c / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-days", "2", "-extfile", "client.ext", "-out", "cert.pem", cwd=c)  # fmt: skip


@pytest.fixture
def tls_dockerd() -> Iterator[dict]:
    root = Path(tempfile.mkdtemp(prefix="pxd", dir="/tmp"))  # short: socket paths live under it
    bridge = f"pxt{uuid.uuid4().hex[:6]}"
    subnet = f"10.{200 + uuid.uuid4().int % 50}.{uuid.uuid4().int % 250}"
    port = free_port()
    _certs(root, "good")
    _certs(root, "evil")
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    proc = None
    try:
        subprocess.run(["ip", "addr", "add", f"{subnet}.1/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        (root / "daemon.json").write_text("{}")
        good = root / "good"
        proc = subprocess.Popen(
            ["dockerd", "--config-file", str(root / "daemon.json"), "--data-root", str(root / "data"),
             "--exec-root", str(root / "x"), "--pidfile", str(root / "d.pid"),
             "-H", f"tcp://127.0.0.1:{port}", "-H", f"unix://{root}/d.sock",
             "--tlsverify", "--tlscacert", str(good / "ca.pem"), "--tlscert", str(good / "server-cert.pem"),
             "--tlskey", str(good / "server-key.pem"), "--bridge", bridge, "--iptables=false", "--ip-masq=false"],
            stdout=open(root / "dockerd.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_port(port, timeout=60)
        yield {"url": f"tcp://127.0.0.1:{port}", "good": good, "evil": root / "evil"}
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        subprocess.run(["ip", "link", "del", bridge], check=False)
        subprocess.run(["umount", "-R", str(root / "data")], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_tls_engine_with_client_certificates(tls_dockerd, docker_client, tmp_path):
    good, evil = tls_dockerd["good"], tls_dockerd["evil"]
    wrong_ca = EngineTarget(url=tls_dockerd["url"], tls_ca=evil / "ca.pem", tls_cert=good / "cert.pem",
                            tls_key=good / "key.pem")  # fmt: skip
    with pytest.raises(StackError) as err:
        connect(wrong_ca)
    assert err.value.code == "tls-rejected"
    wrong_client = EngineTarget(url=tls_dockerd["url"], tls_ca=good / "ca.pem", tls_cert=evil / "cert.pem",
                                tls_key=evil / "key.pem")  # fmt: skip
    with pytest.raises(StackError) as err:
        connect(wrong_client)
    assert err.value.code == "tls-rejected"
    with pytest.raises(StackError) as err:
        connect(EngineTarget(url=tls_dockerd["url"], tls_ca=good / "missing.pem"))
    assert err.value.code == "tls-files"

    target = EngineTarget(url=tls_dockerd["url"], tls_ca=good / "ca.pem", tls_cert=good / "cert.pem",
                          tls_key=good / "key.pem")  # fmt: skip
    client = connect(target)
    try:
        assert client.info()["DockerRootDir"].startswith("/tmp/pxd")  # the second daemon, not the main one
        saved = tmp_path / "busybox.tar"
        images.save(docker_client, BUSYBOX, saved)
        p = Provisioner(client, busybox_spec(unique_project("pxl")), target=target)
        result = p.install(images.ImageSource("load", saved))  # no registry: the image travels over the API
        assert result.changed[0] == f"image {BUSYBOX}"
        assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]
        assert p.install().changed == []
        p.uninstall(delete_data=True)
    finally:
        client.close()


def test_cli_trust_checks_the_fingerprint(sshd, capsys):
    from pixel.server.cli import main

    base = ["stack", "trust", "--engine", sshd["url"], "--known-hosts", str(sshd["known_hosts"])]
    assert main([*base, "--fingerprint", "SHA256:not-the-right-one"]) == 1
    err = capsys.readouterr().err
    assert f"The server's fingerprint is {sshd['fingerprint']}" in err
    assert not sshd["known_hosts"].exists()
    assert main([*base, "--fingerprint", sshd["fingerprint"]]) == 0
    assert "trusted; saved in" in capsys.readouterr().out
    client = connect(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], known_hosts=sshd["known_hosts"]))
    assert client.ping() is True
    client.close()
