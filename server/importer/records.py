"""The record of one import, which is also its checkpoint: a JSON file per import in `<state>/imports/`.

Written atomically (temporary file, fsync, rename), owner-only. It holds what a resume and an undo need:
the source, site, file (path, size, a hash of its first 64 KiB), the overlap choice and the live days found
at the start (so a resume skips exactly the same days), the committed byte offset and line number, the
batch in flight (`pending`: its offsets and token, saved before its insert), the counters, the import's own
salts (dropped when the import completes, `salts.py`) and the sessions open at the checkpoint
(`identity`). `status`: running, done, truncated (a gzip that ended early: what was whole is imported),
undoing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass
class ImportRecord:
    id: str
    source: str
    site: str
    file: str
    file_size: int
    file_head: str
    overlap: str
    live_days: list[str] = field(default_factory=list)
    status: str = "running"
    offset: int = 0
    line: int = 1
    pending: list[Any] | None = None  # [start offset, end offset, token]
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    malformed: list[list[Any]] = field(default_factory=list)  # the first [line, reason] pairs
    malformed_count: int = 0
    salts: dict[str, str] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)  # UTC day -> rows imported
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    error: str = ""


def new_id() -> str:
    return time.strftime("%Y%m%d", time.gmtime()) + "-" + secrets.token_hex(4)


def file_identity(path: Path) -> tuple[int, str]:
    with open(path, "rb") as f:
        head = f.read(65_536)
    return path.stat().st_size, hashlib.blake2b(head, digest_size=16).hexdigest()


def folder(state_dir: Path) -> Path:
    return state_dir / "imports"


def valid_id(import_id: str) -> bool:
    return 0 < len(import_id) <= 64 and all(c.isalnum() or c in "-_" for c in import_id)


def path_of(state_dir: Path, import_id: str) -> Path:
    return folder(state_dir) / f"{import_id}.json"


def save(state_dir: Path, record: ImportRecord) -> None:
    where = folder(state_dir)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = path_of(state_dir, record.id)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, orjson.dumps(asdict(record)))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load(state_dir: Path, import_id: str) -> ImportRecord | None:
    if not valid_id(import_id):
        return None
    try:
        data = orjson.loads(path_of(state_dir, import_id).read_bytes())
    except FileNotFoundError:
        return None
    return ImportRecord(**data)


def all_records(state_dir: Path) -> list[ImportRecord]:
    found = []
    for path in sorted(folder(state_dir).glob("*.json")):
        record = load(state_dir, path.stem)
        if record is not None:
            found.append(record)
    return found


def delete(state_dir: Path, import_id: str) -> None:
    path_of(state_dir, import_id).unlink(missing_ok=True)
