"""A ClickHouse server as the store, over HTTP(S) through clickhouse-connect.

Same SQL, same server-side parameters (`{name:Type}`), same JSONCompact results and JSONEachRow
inserts as the embedded engine, so the shipper and the API cannot tell the two apart.

- Compression is on both ways: insert bodies are sent compressed (lz4, else zstd) and results are
  asked for zstd-compressed (urllib3 decodes them).
- No HTTP session: every request stands alone, so one store can serve the shipper and the API from
  several threads at once (clickhouse-connect refuses concurrent queries in one session).
- The target database is created when missing, on the first successful connection. If the server
  cannot be reached then, the next call tries again: a store opened while the server is down starts
  working as soon as it is back.
- Console queries (`Store.console_query`) are requests of their own like every other, sent with a
  query id; past their deadline they are cancelled with `KILL QUERY` on that id.
- Errors: cannot connect, the server is overloaded (timeouts, too many parts, memory, disk full) or
  refuses Pixel's user (credentials, rights, read-only) → `StoreUnavailable`: retry later, the
  message names the URL tried. Anything else the server refuses (bad SQL, bad data) → `StoreError`
  with the server's own message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pixel.server.store.base import Store, StoreClosed, StoreError, StoreUnavailable, insert_settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from pixel.server.settings import Settings

# Results in the same shape whatever the server version (and as chDB gives them): 64-bit integers
# as JSON numbers (servers before 25.x quote them by default), compressed on the wire.
_RESULT_SETTINGS = {"output_format_json_quote_64bit_integers": 0, "enable_http_compression": 1}
DEFAULT_PORTS = {"http": 8123, "https": 8443}
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,256}$")

# Server error codes that say "not now" rather than "never": retrying the same request later can
# succeed, so the shipper keeps the batch and retries instead of giving up on it.
RETRYABLE_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        999,  # KEEPER_EXCEPTION
    }
)
# The server refuses Pixel itself (credentials, rights), not the data: nothing Pixel sends can
# succeed until the operator fixes it, so these are StoreUnavailable too. The shipper then keeps
# the spool and retries, instead of dead-lettering every row of the batch.
ACCESS_CODES = frozenset(
    {
        164,  # READONLY
        192,  # UNKNOWN_USER
        194,  # REQUIRED_PASSWORD
        195,  # IP_ADDRESS_NOT_ALLOWED
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
    }
)


class ClickHouseStore(Store):
    engine = "clickhouse"

    def __init__(
        self,
        url: str,
        *,
        user: str = "default",
        password: str = "",
        database: str = "pixel",
        connect: bool = True,
        connect_timeout: float = 5,
        send_receive_timeout: float = 300,
    ) -> None:
        parts = _parse_url(url)
        if not _DATABASE_NAME.match(database):
            raise StoreError(f"PIXEL_CLICKHOUSE_DATABASE={database!r} is not a plain identifier")
        self.interface, self.host, self.port, self._proxy_path = (
            parts["scheme"],
            parts["host"],
            parts["port"],
            parts["path"],
        )
        # URL credentials (http://user:pass@host) win over the separate settings.
        self.user = parts["user"] if parts["user"] is not None else user
        self.password = parts["password"] if parts["password"] is not None else password
        self.database = database
        self.url = _display_url(self.interface, self.host, self.port, self._proxy_path)
        self._timeouts = (connect_timeout, send_receive_timeout)
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.writes = 0  # see Store.writes; other processes may write too (sole_writer stays False)
        self._writes_guard = threading.Lock()
        if connect:
            self._connected()

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickHouseStore:
        return cls(
            settings.clickhouse_url,
            user=settings.clickhouse_user,
            password=settings.clickhouse_password,
            database=settings.clickhouse_database,
        )

    # -- connection -----------------------------------------------------------------------

    def _connected(self) -> Client:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise StoreClosed(f"the store at {self.host} is closed")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Client:
        import clickhouse_connect

        try:
            client = clickhouse_connect.get_client(
                interface=self.interface,
                host=self.host,
                port=self.port,
                username=self.user,
                password=self.password,
                database=None,  # it may not exist yet
                compress=True,
                proxy_path=self._proxy_path,
                connect_timeout=self._timeouts[0],
                send_receive_timeout=self._timeouts[1],
                autogenerate_session_id=False,
                query_retries=2,
                client_name="pixel",
                dedicated_pool=True,
            )
        except Exception as exc:
            raise self._translate(exc) from None
        try:
            client.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        except Exception as exc:
            client.close()
            raise self._translate(exc) from None
        client.database = self.database
        return client

    def ping(self) -> bool:
        """True when the server answers /ping (no exception: for health checks)."""
        try:
            return self._connected().ping()
        except StoreError:
            return False

    # -- engine calls ---------------------------------------------------------------------

    def _execute(self, sql: str, params: Mapping[str, Any] | None, fmt: str | None) -> bytes:
        client = self._connected()
        if fmt is None:
            self._wrote()
        try:
            return client.raw_query(
                sql,
                parameters=dict(params) if params else None,
                fmt=fmt,
                settings=_RESULT_SETTINGS if fmt else None,
                transport_settings={"Accept-Encoding": "zstd"} if fmt else None,
            )
        except Exception as exc:
            raise self._translate(exc) from None

    def _console_execute(self, sql: str, tag: str) -> bytes:
        client = self._connected()
        try:
            return client.raw_query(
                sql,
                fmt="JSONCompact",
                settings={**_RESULT_SETTINGS, "query_id": tag},
                transport_settings={"Accept-Encoding": "zstd"},
            )
        except Exception as exc:
            raise self._translate(exc) from None

    def _console_cancel(self, tag: str) -> None:
        self.command("KILL QUERY WHERE query_id = {tag:String} ASYNC", {"tag": tag})

    def insert_json(
        self, table: str, data: bytes, *, token: str | None = None, settings: Mapping[str, int] | None = None
    ) -> None:
        from clickhouse_connect.driver.compression import get_compressor

        if token is not None and not _TOKEN.match(token):
            raise ValueError("dedup token must be 1-256 characters of [A-Za-z0-9_.:-]")
        extra: dict[str, Any] = {"insert_deduplication_token": token} if token else {}
        extra.update(insert_settings(settings))
        client = self._connected()
        self._wrote()
        compression = client.write_compression
        block = get_compressor(compression).compress_block(data) if compression else data
        try:
            client.raw_insert(
                table,
                insert_block=bytes(block),
                fmt="JSONEachRow",
                settings=extra or None,
                compression=compression,
            )
        except Exception as exc:
            raise self._translate(exc) from None

    def _wrote(self) -> None:
        with self._writes_guard:
            self.writes += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True  # a thread still running after the close does not connect again
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, exc: Exception) -> StoreError:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        code = getattr(exc, "code", None)
        text = str(exc)
        if isinstance(exc, OperationalError) and code is None:
            # Transport failure (refused, reset, timeout, DNS) or a 429/503/504 after retries.
            return StoreUnavailable(f"cannot reach ClickHouse at {self.url} ({_transport_reason(text)})")
        if isinstance(code, int) and code in RETRYABLE_CODES:
            return StoreUnavailable(f"ClickHouse at {self.url} is busy, retry later: {_server_message(text)}")
        if code in (516, 192, 194):
            return StoreUnavailable(f"ClickHouse at {self.url} refused the credentials of user {self.user!r}")
        if isinstance(code, int) and code in ACCESS_CODES:
            return StoreUnavailable(
                f"ClickHouse at {self.url} refused user {self.user!r}: {_server_message(text)}"
            )
        if isinstance(exc, DatabaseError):
            return StoreError(_server_message(text))
        return StoreError(f"ClickHouse at {self.url}: {text}")


def _parse_url(url: str) -> dict[str, Any]:
    hint = "PIXEL_CLICKHOUSE_URL must look like http://host:8123 or https://host:8443"
    try:
        split = urlsplit(url.strip())
        port = split.port
    except ValueError as exc:
        raise StoreError(f"{hint}, not {url!r} ({exc})") from None
    if split.scheme not in DEFAULT_PORTS or not split.hostname:
        raise StoreError(f"{hint}, not {url!r}")
    if split.query or split.fragment:
        raise StoreError(f"{hint} (no ?query or #fragment), not {url!r}")
    return {
        "scheme": split.scheme,
        "host": split.hostname,
        "port": port or DEFAULT_PORTS[split.scheme],
        "path": split.path.strip("/"),  # a reverse proxy's prefix, e.g. /clickhouse
        "user": unquote(split.username) if split.username is not None else None,
        "password": unquote(split.password) if split.password is not None else None,
    }


def _display_url(scheme: str, host: str, port: int, path: str) -> str:
    """The URL tried, without credentials, for messages."""
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}/{path + '/' if path else ''}"


_CODE_PREFIX = re.compile(r"^Received ClickHouse exception, code: \d+, server response: ")
_URL_SUFFIX = re.compile(r"\s*\(for url [^)]*\)\s*$")
_VERSION_SUFFIX = re.compile(r"\s*\(version [^)]*\)\s*$")


def _server_message(text: str) -> str:
    """The server's own error text, without clickhouse-connect's wrapping."""
    text = _URL_SUFFIX.sub("", text.strip())
    text = _CODE_PREFIX.sub("", text)
    return _VERSION_SUFFIX.sub("", text).strip()


def _transport_reason(text: str) -> str:
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("Connection reset", "connection reset"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("HTTP status 503", "HTTP 503: server unavailable"),
        ("HTTP status 429", "HTTP 429: too many requests"),
        ("HTTP status 504", "HTTP 504: gateway timeout"),
    ):
        if needle in text:
            return reason
    return _URL_SUFFIX.sub("", text.strip())[:300]
