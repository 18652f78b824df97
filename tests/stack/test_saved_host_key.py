"""The SSH host key kept in a desktop profile (one known_hosts line, no file): the engine connection
and the API tunnel accept exactly that key, refuse a changed one in plain words, and reject a
damaged line. A real sshd on 127.0.0.1 (test_stack_remote's fixture) whose docker CLI reaches the
real engine."""

from __future__ import annotations

import subprocess

import pytest
from test_stack_remote import sshd  # noqa: F401 - the real sshd fixture

from pixel.app.profiles import Profile, ProfileError
from pixel.app.stack.engine import EngineTarget, HostKey, connect, fetch_host_key, parse_host_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.tunnel import SSHTunnel


def _line(sshd, pub: str) -> str:  # noqa: F811
    kind, key = open(f"{pub}.pub").read().split()[:2]
    return f"[127.0.0.1]:{sshd['url'].rsplit(':', 1)[1]} {kind} {key}"


def test_known_hosts_line_round_trip(sshd):  # noqa: F811
    key = fetch_host_key(sshd["url"])
    port = int(sshd["url"].rsplit(":", 1)[1])
    assert key.known_hosts_line == _line(sshd, sshd["known_hosts"].parent.parent / "host_key")
    back = parse_host_key(key.known_hosts_line)
    assert (back.host, back.port, back.fingerprint) == ("127.0.0.1", port, sshd["fingerprint"])
    plain = parse_host_key("server.example " + key.known_hosts_line.split(" ", 1)[1])
    assert (plain.host, plain.port, plain.known_hosts_name) == ("server.example", 22, "server.example")
    assert isinstance(plain, HostKey)


@pytest.mark.parametrize(
    "line", ["", "server.example", "server.example ssh-ed25519", "server.example ssh-ed25519 !!not-base64"]
)
def test_damaged_host_key_line_is_refused(line: str) -> None:
    with pytest.raises(StackError) as err:
        parse_host_key(line)
    assert err.value.code == "bad-host-key"
    assert err.value.problem.startswith("The saved SSH host key")
    assert err.value.action == "Remove it from the stack's settings and trust the server's fingerprint again."


def test_profile_keeps_one_known_hosts_line() -> None:
    line = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMzmt1lQ"
    assert Profile("p", host_key=line).host_key == line
    with pytest.raises(ProfileError, match="expected one known_hosts line"):
        Profile("p", host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMzmt1lQ")


def test_engine_and_tunnel_accept_only_the_saved_key(sshd):  # noqa: F811
    root = sshd["known_hosts"].parent.parent
    saved = _line(sshd, root / "host_key")
    target = EngineTarget(url=sshd["url"], ssh_key=sshd["key"], host_key=saved)  # no known_hosts file
    client = connect(target)
    try:
        assert client.ping() is True
    finally:
        client.close()
    with SSHTunnel(target, 9).start() as tunnel:  # logged in with the saved key (port 9: nothing needed)
        assert tunnel._ssh is not None
    assert not sshd["known_hosts"].exists()

    impostor = _line(sshd, root / "id_other")  # another key saved for this host: the server "changed"
    for attempt in (lambda t: connect(t), lambda t: SSHTunnel(t, 9).start()):
        with pytest.raises(StackError) as err:
            attempt(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], host_key=impostor))
        assert err.value.code == "host-key-changed"
        assert err.value.problem == (
            f"The SSH host key of 127.0.0.1:{sshd['url'].rsplit(':', 1)[1]} has CHANGED since you trusted it. "
            "This can mean the server was reinstalled, or that someone is intercepting the connection."
        )
    # a key saved for another host does not vouch for this one
    elsewhere = "server.example " + saved.split(" ", 1)[1]
    with pytest.raises(StackError) as err:
        connect(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], host_key=elsewhere))
    assert err.value.code == "host-key-unknown"
    with pytest.raises(StackError) as err:
        SSHTunnel(EngineTarget(url=sshd["url"], ssh_key=sshd["key"], host_key="x y"), 9).start()
    assert err.value.code == "bad-host-key"


def test_key_with_a_passphrase(sshd):  # noqa: F811
    root = sshd["known_hosts"].parent.parent
    locked = root / "id_locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "right-pass", "-f", str(locked)], check=True)
    with open(root / "authorized_keys", "a") as fh:  # sshd reads it at each login
        fh.write(locked.with_suffix(".pub").read_text())
    saved = _line(sshd, root / "host_key")

    def target(passphrase: str) -> EngineTarget:
        return EngineTarget(url=sshd["url"], ssh_key=locked, host_key=saved, ssh_passphrase=passphrase)

    assert "right-pass" not in repr(target("right-pass"))  # never in logs or tracebacks
    for attempt in (lambda t: connect(t), lambda t: SSHTunnel(t, 9).start()):
        with pytest.raises(StackError) as err:
            attempt(target(""))
        assert (err.value.code, err.value.problem) == (
            "ssh-key-locked",
            "The SSH key is protected by a passphrase.",
        )
        with pytest.raises(StackError) as err:
            attempt(target("wrong-pass"))
        assert err.value.code == "ssh-key-unreadable"
        assert err.value.problem.startswith("The SSH key could not be opened: the passphrase is wrong")
    client = connect(target("right-pass"))
    try:
        assert client.ping() is True
    finally:
        client.close()
    with SSHTunnel(target("right-pass"), 9) as tunnel:
        assert tunnel._ssh is not None
