"""Keyed IP hashing with a salt that rotates daily and is deleted after its day.

The hash is BLAKE2b keyed with a random 32-byte salt per UTC day, kept only in the data folder
(state/salts/YYYY-MM-DD.key). Salts older than yesterday are deleted, so a stored hash can no
longer be recomputed from an IP: hashes cannot be joined across days nor reversed by brute force
over the IPv4 space (unlike the original's MD5 with a fixed, public salt). Yesterday's salt is kept
so that events received just before midnight and shipped after it still hash with their own day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path


class DailySalt:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, bytes] = {}
        self._day_start = self._day_end = 0  # [start, end) in epoch ms of the day whose key is `_day_key`
        self._day_key = b""

    def key_for(self, received_ms: int) -> bytes:
        if self._day_start <= received_ms < self._day_end:  # the hot path: same day as the last call
            return self._day_key
        start = received_ms - received_ms % 86_400_000
        key = self._key_for_day(received_ms)
        self._day_start, self._day_end, self._day_key = start, start + 86_400_000, key
        return key

    def _key_for_day(self, received_ms: int) -> bytes:
        day = dt.datetime.fromtimestamp(received_ms / 1000, dt.UTC).date().isoformat()
        key = self._cache.get(day)
        if key is None:
            key = self._load_or_create(day)
            self._cache = {day: key}  # one day at a time in memory; older keys are forgotten
            self._delete_old(day)
        return key

    def hash_ip(self, ip: str, received_ms: int) -> str:
        return hashlib.blake2b(ip.encode(), key=self.key_for(received_ms), digest_size=16).hexdigest()

    def _load_or_create(self, day: str) -> bytes:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{day}.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(32)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # first writer wins if two processes race
        except FileExistsError:
            pass
        os.unlink(tmp)
        return path.read_bytes()

    def _delete_old(self, today: str) -> None:
        keep = {today, (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()}
        for old in self.folder.glob("*.key"):
            if old.stem not in keep and old.stem < today:
                old.unlink(missing_ok=True)
