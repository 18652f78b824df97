"""The data folder is the service user's alone: after a real `pixel serve` stored events (spool, chDB's own
files, salts, checkpoints, metadata DB), every folder is 0700 and every file 0600, and another real user
(`nobody`, through setpriv: the tests run as root) can read none of them. A folder left open by an older
version is tightened at the next start, with a warning naming what was open; a file of another user is named."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pixel.server import datadir

NOBODY = 65534
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to act as nobody"
)


@pytest.fixture()
def open_parent() -> Iterator[Path]:
    """A folder everyone may traverse (unlike pytest's own tmp folders), so only the data folder's own
    permissions stand between `nobody` and the data."""
    parent = Path(tempfile.mkdtemp(prefix="pixel-perm-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def _as_nobody(script: str, *args: str) -> str:
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ]
        + list(args),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout


def _readable_by_nobody(root: Path) -> list[str]:
    """Every file under root that nobody could read, and every folder it could list (by full path, so a
    folder it cannot traverse does not hide what is below)."""
    files = [str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    folders = [str(p) for p in [root, *root.rglob("*")] if p.is_dir() and not p.is_symlink()]
    read = _as_nobody('for f in "$@"; do head -c 1 "$f" >/dev/null 2>&1 && echo "$f"; done', *files)
    listed = _as_nobody('for d in "$@"; do ls "$d" >/dev/null 2>&1 && echo "$d"; done', *folders)
    return read.split() + listed.split()


def _open_entries(root: Path) -> list[str]:
    out = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != os.geteuid():
            out.append(f"{path} {stat.S_IMODE(st.st_mode):04o} uid {st.st_uid}")
    return out


def test_nobody_reads_nothing_of_a_served_data_folder(pixel_factory, open_parent: Path) -> None:
    data = open_parent / "data"
    server = pixel_factory("serve", data_dir=data, pixel_segment_max_age="0.3")
    subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "admin", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    events = [
        {"event_name": "pageview", "site": "example.com", "page": {"url": f"https://example.com/secret-{i}"}}
        for i in range(20)
    ]
    assert httpx.post(f"{server.collector}/track", json=events).status_code == 204
    server.wait_shipped(20)
    time.sleep(0.5)  # a segment rotated meanwhile, parts merged: new files while the service runs
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any("store" in p.parts for p in files) and (data / "state" / "meta.sqlite3").exists()
    assert (
        data / "spool"
    ).is_dir()  # shipped segments are deleted; the open ones are among the entries checked below
    assert _open_entries(data) == []
    assert _readable_by_nobody(data) == []
    server.stop()
    assert _open_entries(data) == []  # what the shutdown wrote too (identity state, checkpoint)


def test_an_open_data_folder_is_tightened_at_start_with_a_warning(open_parent: Path) -> None:
    data = open_parent / "data"
    (data / "spool").mkdir(parents=True)
    data.chmod(0o755)
    (data / "spool").chmod(0o755)
    seg = data / "spool" / "old.seg"
    seg.write_text("https://example.com/?ip=203.0.113.7\n")
    seg.chmod(0o644)
    assert _readable_by_nobody(data) == [str(seg), str(data), str(data / "spool")]

    result = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "admin", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"the data folder was open to other users: {data} (mode 0755) and 2 more" in result.stderr
    assert "their group and other permissions were removed" in result.stderr
    assert stat.S_IMODE(seg.stat().st_mode) == 0o600
    assert _open_entries(data) == []
    assert _readable_by_nobody(data) == []


def test_an_entry_of_another_user_is_named(open_parent: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = open_parent / "data"
    data.mkdir(mode=0o700)
    theirs = data / "restored.sqlite3"
    theirs.write_bytes(b"x")
    os.chown(theirs, NOBODY, NOBODY)
    theirs.chmod(0o644)
    link = data / "elsewhere"
    link.symlink_to(open_parent)  # not followed: the parent stays as it is
    with caplog.at_level("WARNING", logger="pixel"):
        report = datadir.secure(data)
    assert report.foreign == [(theirs, NOBODY)] and report.loosened == []
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o644  # not ours to change
    assert stat.S_IMODE(open_parent.stat().st_mode) == 0o755
    assert f"{theirs} in the data folder belong(s) to uid {NOBODY}" in caplog.text
    assert f"fix: chown -R {os.geteuid()} {data}" in caplog.text
    assert os.umask(0o022) == 0o077  # and the process's umask is set (restored here for the other tests)


def test_a_home_folder_is_not_walked(monkeypatch: pytest.MonkeyPatch, open_parent: Path) -> None:
    loose = open_parent / "notes.txt"
    loose.write_text("x")
    loose.chmod(0o644)
    monkeypatch.setenv("HOME", str(open_parent))
    report = datadir.secure(open_parent)
    os.umask(0o022)
    assert report.loosened == [] and stat.S_IMODE(loose.stat().st_mode) == 0o644


def test_a_command_run_in_process_leaves_the_callers_umask(open_parent: Path) -> None:
    from pixel.server.api.cli import main as api_main
    from pixel.server.cli import main

    old = os.umask(0o022)
    try:
        assert main(["user", "add", "admin", "--data-dir", str(open_parent / "a")]) == 0
        assert os.umask(0o022) == 0o022
        assert api_main(["user", "add", "admin", "--data-dir", str(open_parent / "b")]) == 0
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)
    for data in (open_parent / "a", open_parent / "b"):
        assert _open_entries(data) == []  # what the command made was private all the same
