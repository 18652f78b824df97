"""The root of the desktop side's errors: every exception class in `pixel.app` descends from `AppError`.

Contract:
- Each error class lives next to the code that raises it and derives from `AppError`, keeping the
  built-in base its callers catch (`ValueError` for bad input, `RuntimeError` for a missing facility):
  `class ProfileError(AppError, ValueError)`. `except AppError` catches every error the app raises on
  purpose; what is not an `AppError` is a bug or a library's own error.
- `retryable` (a class attribute) says whether the same call, unchanged, may succeed later: True only for
  `Unreachable` (the host did not answer: the GUI shows the cached answer, marked "as of"); False for an
  answer that refused the request (`ApiRequestError`, `AuthError`) and for what needs the user to act
  (`StackError`: its `action` says what to do; `SpecError`, `ProfileError`, `KeyringUnavailable`).
- The app does not import `pixel.server`: this root is separate from the server's
  (`pixel.server.errors.PixelError`), and no two error classes of the two sides share a name
  (`tests/test_error_hierarchy.py` checks both).

The hierarchy (module: classes):

    AppError
    ├── profiles: ProfileError (ValueError)
    ├── secret_store: KeyringUnavailable (RuntimeError)
    ├── client.api: ApiRequestError (the API answered with an error)
    │   ├── AuthError
    │   └── client.site_admin: EmptyName (refused before any request)
    ├── client.api: Unreachable (retryable)
    ├── client.source: NoData (unreachable, and nothing cached)
    ├── stack.errors: StackError (problem, action, code)
    │   └── stack.onboarding: SiteNotCreated
    ├── stack.spec: SpecError (ValueError)
    ├── stack.backup_schedule: BackupPlanError (ValueError)
    ├── demo_profile: DemoError (RuntimeError)
    └── desktop.workers: Cancelled (a cancelled background task stops with it)
"""

from __future__ import annotations

from typing import ClassVar


class AppError(Exception):
    """An error the desktop side raises on purpose; its message is meant for the person who reads it."""

    retryable: ClassVar[bool] = False
