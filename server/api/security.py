"""Passwords (argon2), the JWT signing key, access/refresh/API tokens and login rate limiting.

- The signing key is 64 random bytes generated on first use and kept in the data folder
  (`state/api-signing.key`, mode 0600). There is no fallback key: without a writable data folder the
  API does not start.
- Access tokens are HS256 JWTs valid for 15 minutes. The user's role and site limits are re-read
  from the metadata DB on every request, so a demotion or a deletion takes effect at once; logout
  records the token's `jti` as revoked until it expires.
- Refresh tokens are opaque random strings stored only as SHA-256 hashes; each use rotates them, and
  a replayed (already used) refresh token revokes every refresh token of that user.
- API tokens (`pxt_...`) are read-only, long-lived, stored as hashes, and shown once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ACCESS_TTL = 15 * 60
REFRESH_TTL = 30 * 24 * 3600
API_TOKEN_PREFIX = "pxt_"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified against when the username does not exist, so a miss costs the same as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_signing_key(state_dir: Path) -> bytes:
    """The install's signing key; created (0600, atomically) on first use."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "api-signing.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    tmp = state_dir / f".api-signing.key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(64))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race: use its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class Tokens:
    def __init__(self, key: bytes, access_ttl: int = ACCESS_TTL) -> None:
        self._key = key
        self.access_ttl = access_ttl

    def issue_access(self, user_id: int, role: str) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "role": role,
            "typ": "access",
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), claims

    def decode_access(self, token: str) -> dict[str, Any]:
        """Claims of a valid access token; raises jwt.InvalidTokenError otherwise."""
        claims = jwt.decode(
            token, self._key, algorithms=["HS256"], options={"require": ["exp", "iat", "sub", "jti"]}
        )
        if claims.get("typ") != "access":
            raise jwt.InvalidTokenError("not an access token")
        return claims


class LoginLimiter:
    """Sliding-window limit on failed logins, per (client, username) and per client."""

    def __init__(self, per_user: int = 5, per_client: int = 20, window: float = 900.0) -> None:
        self.per_user = per_user
        self.per_client = per_client
        self.window = window
        self._fails: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, client: str, username: str) -> int:
        """Seconds until this client may try this username again (0 = now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in (((client, username.lower()), self.per_user), ((client, ""), self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window - now)
            return int(max(waits)) + 1 if waits else 0

    def failed(self, client: str, username: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent((client, username.lower()), now).append(now)
            self._recent((client, ""), now).append(now)

    def succeeded(self, client: str, username: str) -> None:
        with self._lock:
            self._fails.pop((client, username.lower()), None)
