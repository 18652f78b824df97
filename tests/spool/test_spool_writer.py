"""The spool writer's split between the event loop (append, rotate, measure) and the fsync thread (sync).

Real files in a temp folder and a real process killed with SIGKILL; the shipper's side is its own reader.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.spool import HEADER, SpoolWriter, encode_record
from pixel.server.store.chdb_engine import ChdbStore

MB = 1024 * 1024


def record(i: int) -> bytes:
    body = b'{"event_name":"pageview","site":"w.example","event_id":"e%d"}' % i
    return encode_record(1_795_000_000_000 + i, b"192.0.2.1", b"ua", b"en", b"w.example", b"", b"", body)


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_tick_hands_out_duplicates_that_sync_flushes_and_closes(tmp_path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=MB, max_age=3600)
    assert writer.tick() == []  # nothing written: nothing to flush
    writer.append(record(1))
    handles = writer.tick()
    assert (
        len(handles) == 1 and handles[0] != writer._fd
    )  # a duplicate: a rotation cannot close it under sync
    assert writer.tick() == []  # not dirty again until the next append
    writer.sync(handles)
    assert not is_open(handles[0]) and is_open(writer._fd)
    assert writer.backlog_bytes == len(HEADER) + len(record(1))  # re-measured by tick
    writer.close()


def test_a_rotation_hands_the_sealed_segment_to_the_next_sync(tmp_path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=MB, max_age=3600)
    writer.append(record(1))
    fd = writer._fd
    writer.rotate()  # on the loop: rename and unlock, no fsync there
    assert [p.suffix for p in tmp_path.iterdir()] == [".seg"]
    assert is_open(fd)  # still open: the sync thread owns it now
    writer.max_age = 0
    writer.append(record(2))  # a new segment ...
    handles = writer.tick()  # ... sealed by age; both sealed descriptors come back, the open one no more
    assert fd in handles and len(handles) == 2 and writer._fd == -1
    writer.sync(handles)
    assert not any(is_open(h) for h in handles)
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == sorted(
        [HEADER + record(1), HEADER + record(2)]
    )
    assert writer.tick() == []
    writer.close()


def test_with_fsync_interval_zero_every_append_and_rotation_is_synced_at_once(tmp_path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=MB, fsync_interval=0)
    writer.append(record(1))
    fd = writer._fd
    writer.rotate()
    assert not is_open(fd)  # synced and closed in rotate: nothing waits for a tick
    assert writer.tick() == []


# A writer in its own process, killed with SIGKILL before it ever fsyncs, seals or rotates.
WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from pixel.server.spool import SpoolWriter, encode_record
    writer = SpoolWriter(Path(sys.argv[1]), max_bytes=1 << 30, fsync_interval=3600)
    for i in range(int(sys.argv[2])):
        writer.append(encode_record(1_795_000_000_000 + i, b"192.0.2.1", b"ua", b"en", b"", b"", b"",
                                    b'{"event_name":"pageview","site":"k.example","event_id":"k%d"}' % i))
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_writer_loses_nothing_it_appended(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, batch_max_rows=10_000)
    proc = subprocess.run([sys.executable, "-c", WRITER, str(settings.spool_dir), "2000"], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p.suffix for p in settings.spool_dir.iterdir()] == [".open"]
    store = ChdbStore(settings.store_dir)
    store.migrate()
    try:
        shipper = Shipper(settings, store)
        assert shipper.step() == 2000
        for _ in range(2):  # nothing left: the dead writer's segment is sealed, then deleted
            shipper.reader.last_seal_check = 0.0
            shipper.step()
        assert store.scalar("SELECT count() FROM events") == 2000
        assert store.scalar("SELECT uniqExact(event_id) FROM events") == 2000
        assert store.scalar("SELECT count() FROM dead_letters") == 0
        assert list(settings.spool_dir.iterdir()) == []
    finally:
        store.close()


@pytest.mark.parametrize("fsync_interval", [0.1, 0])
def test_close_seals_and_syncs_everything(tmp_path, fsync_interval) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=MB, fsync_interval=fsync_interval)
    writer.append(record(1))
    writer.rotate()
    writer.append(record(2))
    sealed_fd, open_fd = (writer._to_sync or [None])[0], writer._fd
    writer.close()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".seg", ".seg"]
    assert not is_open(open_fd) and (sealed_fd is None or not is_open(sealed_fd))
