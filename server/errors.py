"""The root of the server's errors: every exception class in `pixel.server` descends from `PixelError`.

Contract:
- Each error class lives next to the code that raises it and derives from `PixelError`, keeping the
  built-in base its callers catch (`ValueError` for bad input, `RuntimeError` for a failed operation):
  `class SettingsError(PixelError, ValueError)`. `except PixelError` catches every error Pixel raises on
  purpose; what is not a `PixelError` is a bug or a library's own error.
- `retryable` (a class attribute) says whether the same call, unchanged, may succeed later: True for the
  store being unreachable (`StoreUnavailable`) or busy with another console query (`StoreBusy`,
  `ConsoleBusy`); False for everything refused (bad input, bad SQL, a query past its deadline: it would run
  as long again), which retrying cannot fix. The shipper waits out an unreachable store and retries, and
  splits or dead-letters a refused batch; the API answers an unreachable store and a busy console 503 with
  `Retry-After`.
- No two error classes share a name across `pixel.server` and `pixel.app` (the app's root is
  `pixel.app.errors.AppError`); `tests/test_error_hierarchy.py` walks both packages and checks it.

The hierarchy (module: classes):

    PixelError
    ├── settings: SettingsError (ValueError)
    ├── processes: StartupError (RuntimeError)
    ├── collector.unix_socket: SocketPathError (RuntimeError)
    ├── spool.record: BadRecord (ValueError)
    ├── shipper.normalize: BadEvent (ValueError)
    ├── collector.limits: Refused (stops uvicorn's parser after a refusal was written)
    ├── enrich.geoip_update: GeoipUpdateError (RuntimeError)
    ├── proxyrecipes: RecipeError (ValueError)
    ├── installcheck: _TooLarge (a fetched page over the size the check reads; caught there)
    ├── store.base: StoreError (RuntimeError)
    │   ├── StoreUnavailable (retryable), StoreBusy (retryable), QueryTimeout
    │   │   └── StoreClosed (retryable: the process is stopping, the next one may answer)
    │   └── store.chdb_engine: FolderInUse, EngineHeld (this process's chDB holds another folder)
    ├── api.errors: ApiError (an HTTP answer: status, code, detail)
    ├── api.sqlguard: SqlRefused (ValueError)
    │   └── ConsoleBusy (retryable)
    ├── api.meta: Conflict, UnknownSites, LastAdmin, LimitReached (ValueError); MigrationError (RuntimeError)
    ├── api.share_links: Gone (an expired share link)
    ├── api.plausible.schema: QueryError (ValueError; a v2 query Plausible would refuse)
    ├── api.share_map: MapDataMissing (the country shapes are not in this install)
    ├── importer.lines: ImportFileError (ValueError)
    │   └── TruncatedFile, WrongKind
    ├── importer.run: ImportFailed (an import that cannot go on)
    └── importer.jobs: ImportBusy (one import per site at a time), UploadError (an upload that cannot be kept),
        ImportCancelled (stops a run after a committed batch; caught there)
"""

from __future__ import annotations

from typing import ClassVar


class PixelError(Exception):
    """An error the server raises on purpose; its message is meant for the person who reads it."""

    retryable: ClassVar[bool] = False
