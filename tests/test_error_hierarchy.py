"""One error hierarchy per side: every exception class of `pixel.server` descends from `PixelError`, every one of
`pixel.app` from `AppError`; no two share a name; each keeps the built-in base its callers catch; `retryable`
is True exactly for the errors a caller may retry unchanged; the roots' docstrings name every class.

The classes are found by importing every module of both packages (modules that need PySide6 are left out only
when PySide6 is not installed), so a new error class is checked without being listed here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import pytest

from pixel.app.errors import AppError
from pixel.server.errors import PixelError

ROOTS: dict[str, type[Exception]] = {"pixel.server": PixelError, "pixel.app": AppError}


def _modules(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    have_qt = importlib.util.find_spec("PySide6") is not None
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        try:
            yield importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if have_qt or not (exc.name or "").startswith("PySide6"):
                raise


@functools.cache
def _errors(package: str) -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _modules(package):
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return sorted(found.values(), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


class _Errors:
    """The error classes of a side, found on first use (an import error then fails a test, not collection)."""

    def __getitem__(self, package: str) -> list[type[BaseException]]:
        return _errors(package)

    def values(self) -> list[list[type[BaseException]]]:
        return [_errors(package) for package in ROOTS]


ERRORS = _Errors()


def test_the_walk_finds_the_errors_of_both_sides() -> None:
    server = {cls.__name__ for cls in ERRORS["pixel.server"]}
    app = {cls.__name__ for cls in ERRORS["pixel.app"]}
    assert {"PixelError", "StoreError", "ApiError", "SqlRefused", "Conflict", "StartupError"} <= server
    assert {"AppError", "StackError", "ApiRequestError", "Unreachable", "ProfileError", "SpecError"} <= app


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_error_descends_from_its_sides_root(package: str) -> None:
    root = ROOTS[package]
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in ERRORS[package] if not issubclass(cls, root)]
    assert strays == []


def test_no_error_descends_from_the_other_sides_root() -> None:
    assert [cls for cls in ERRORS["pixel.server"] if issubclass(cls, AppError)] == []
    assert [cls for cls in ERRORS["pixel.app"] if issubclass(cls, PixelError)] == []


def test_no_two_errors_share_a_name() -> None:
    by_name: dict[str, list[str]] = {}
    for classes in ERRORS.values():
        for cls in classes:
            by_name.setdefault(cls.__name__, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert {name: where for name, where in by_name.items() if len(where) > 1} == {}


def test_the_retryable_errors_are_exactly_these() -> None:
    retryable = sorted(cls.__name__ for classes in ERRORS.values() for cls in classes if cls.retryable)  # type: ignore[attr-defined]
    assert retryable == ["ConsoleBusy", "StoreBusy", "StoreClosed", "StoreUnavailable", "Unreachable"]


def test_the_builtin_bases_callers_catch_are_kept() -> None:
    from pixel.app.profiles import ProfileError
    from pixel.app.secret_store import KeyringUnavailable
    from pixel.app.stack.spec import SpecError
    from pixel.server.api.meta import Conflict, LastAdmin, MigrationError, UnknownSites
    from pixel.server.api.sqlguard import ConsoleBusy, SqlRefused
    from pixel.server.enrich.geoip_update import GeoipUpdateError
    from pixel.server.processes import StartupError
    from pixel.server.settings import SettingsError
    from pixel.server.shipper.normalize import BadEvent
    from pixel.server.spool.record import BadRecord
    from pixel.server.store.base import QueryTimeout, StoreBusy, StoreError, StoreUnavailable
    from pixel.server.store.chdb_engine import FolderInUse

    value_errors = [SettingsError, BadRecord, BadEvent, SqlRefused, ConsoleBusy, Conflict, UnknownSites]
    value_errors += [LastAdmin, ProfileError, SpecError]
    runtime_errors = [StartupError, GeoipUpdateError, StoreError, StoreUnavailable, QueryTimeout, StoreBusy]
    runtime_errors += [FolderInUse, MigrationError, KeyringUnavailable]
    assert [cls.__name__ for cls in value_errors if not issubclass(cls, ValueError)] == []
    assert [cls.__name__ for cls in runtime_errors if not issubclass(cls, RuntimeError)] == []


def test_a_client_error_is_not_the_servers_api_error() -> None:
    from pixel.app.client import ApiRequestError, AuthError
    from pixel.server.api.errors import ApiError

    assert ApiRequestError.__name__ != ApiError.__name__
    assert issubclass(AuthError, ApiRequestError) and issubclass(AuthError, AppError)
    assert not issubclass(ApiRequestError, ApiError) and not issubclass(ApiError, ApiRequestError)


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_the_roots_docstring_names_every_error(package: str) -> None:
    doc = inspect.getdoc(importlib.import_module(ROOTS[package].__module__)) or ""
    unnamed = [cls.__name__ for cls in ERRORS[package] if cls.__name__ not in doc]
    assert unnamed == []
