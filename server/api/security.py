"""Passwords (argon2), the JWT signing key, access/refresh/API tokens and login rate limiting.

- The signing key is 64 random bytes generated on first use and kept in the data folder
  (`state/api-signing.key`, mode 0600). There is no fallback key: without a writable data folder the
  API does not start.
- Access tokens are HS256 JWTs valid for 15 minutes, bound to the user's id (`sub`) and to the user's
  session generation (`gen`, `users.generation`). Every request re-reads the user: a token whose
  generation differs (the user was disabled, got a new password, role or grants, or logged out
  everywhere), whose user is gone, or whose `jti` was revoked by logout is refused. Ids are never reused,
  so a token never names another user. The role and site limits come from the DB, never from the token.
- Any token that is not exactly what `issue_access` makes (wrong key or algorithm, missing claims, a
  claim of the wrong type, a `sub` that is not a canonical positive integer, a number out of range, a
  wrong `typ`) raises `jwt.InvalidTokenError`, which the API answers with 401; no other exception leaves
  `decode_access`.
- Time comes from the `clock` given to `Tokens` (default `time.time`), so expiry is testable.
- Refresh tokens are opaque random strings stored only as SHA-256 hashes, with the generation they
  were issued under; each use rotates them, and a replayed (already used) refresh token revokes every
  refresh token of that user.
- API tokens (`pxt_...`) are read-only, long-lived, stored as hashes, and shown once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
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


# The largest id or generation SQLite stores; a claim above it is malformed, not a lookup.
MAX_INT = 2**63 - 1
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")
_JTI = re.compile(r"[0-9a-f]{32}")
# Tokens are issued with these claims only; an access token with any other set is not one of ours.
_CLAIMS = {"sub", "gen", "role", "typ", "jti", "iat", "exp"}
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    generation: int
    jti: str
    exp: int


def _int_claim(claims: dict[str, Any], name: str, low: int = 0) -> int:
    value = claims.get(name)
    if type(value) is not int or not low <= value <= MAX_INT:
        raise jwt.InvalidTokenError(f"claim {name!r} is not an integer in range")
    return value


class Tokens:
    def __init__(
        self, key: bytes, access_ttl: int = ACCESS_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self.access_ttl = access_ttl
        self.clock = clock

    def now(self) -> float:
        return self.clock()

    def issue_access(self, user_id: int, role: str, generation: int) -> tuple[str, dict[str, Any]]:
        now = int(self.clock())
        claims = {
            "sub": str(user_id),
            "gen": generation,
            "role": role,
            "typ": "access",
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), claims

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token; raises jwt.InvalidTokenError (jwt.ExpiredSignatureError
        when it is well-formed and expired) for anything else."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise jwt.InvalidTokenError("not a token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                # Expiry and issue time are checked below, against the injected clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError, UnicodeError) as exc:
            raise jwt.InvalidTokenError(f"undecodable token: {type(exc).__name__}") from None
        if header != {"alg": "HS256", "typ": "JWT"}:
            raise jwt.InvalidTokenError("not the header of an access token")
        if not isinstance(claims, dict) or set(claims) != _CLAIMS:
            raise jwt.InvalidTokenError("not the claims of an access token")
        if claims["typ"] != "access" or claims["role"] not in ("admin", "viewer"):
            raise jwt.InvalidTokenError("not an access token")
        sub, jti = claims["sub"], claims["jti"]
        if type(sub) is not str or not _CANONICAL_ID.fullmatch(sub) or int(sub) > MAX_INT:
            raise jwt.InvalidTokenError("claim 'sub' is not a user id")
        if type(jti) is not str or not _JTI.fullmatch(jti):
            raise jwt.InvalidTokenError("claim 'jti' is malformed")
        generation = _int_claim(claims, "gen", low=1)
        iat = _int_claim(claims, "iat")
        exp = _int_claim(claims, "exp")
        now = self.clock()
        if not 0 < exp - iat <= self.access_ttl or iat > now + 60:
            raise jwt.InvalidTokenError("claims 'iat'/'exp' are not a token lifetime")
        if now >= exp:
            raise jwt.ExpiredSignatureError("access token expired")
        return AccessClaims(int(sub), generation, jti, exp)


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
