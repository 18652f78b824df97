"""Every Pixel module logs to `logging.getLogger(__name__)`: its records are named after the module that wrote
them (`pixel.server.shipper.shipper`, ...) and, as children of the `pixel` package logger, follow the level
and handler that `pixel`'s logging setup gives that logger. Checked on the source (AST), for `server/` and
`app/`: a module-level logger named by a string, or any logger named `pixel...` other than the package logger
itself, fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("server", "app")


def _is_get_logger(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    return (isinstance(fn, ast.Attribute) and fn.attr == "getLogger") or (
        isinstance(fn, ast.Name) and fn.id == "getLogger"
    )


def _named_by_module(call: ast.Call) -> bool:
    return len(call.args) == 1 and not call.keywords and ast.unparse(call.args[0]) == "__name__"


def _files() -> list[Path]:
    return sorted(
        p for folder in SOURCES for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def module_loggers_not_named_by_module(source: str) -> list[int]:
    """Lines of module-level `x = logging.getLogger(...)` whose argument is not `__name__`."""
    bad = []
    for stmt in ast.parse(source).body:
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        if value is not None and _is_get_logger(value):
            assert isinstance(value, ast.Call)
            if not _named_by_module(value):
                bad.append(stmt.lineno)
    return bad


def pixel_loggers_by_string(source: str) -> list[int]:
    """Lines of any `getLogger("pixel.<something>")`: a Pixel module's logger is named by `__name__`."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if _is_get_logger(node) and isinstance(node, ast.Call) and node.args:
            arg = node.args[0]
            if (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and arg.value.startswith("pixel.")
            ):
                bad.append(node.lineno)
    return bad


def test_the_checks_see_what_they_look_for() -> None:
    old = 'import logging\nlog = logging.getLogger("pixel.collector")\nlog2 = logging.getLogger(__name__)\n'
    assert module_loggers_not_named_by_module(old) == [2]
    assert pixel_loggers_by_string(old) == [2]
    assert module_loggers_not_named_by_module(
        'from logging import getLogger\nlog = getLogger("pixel")\n'
    ) == [2]
    assert pixel_loggers_by_string('def f():\n    logging.getLogger("pixel").setLevel(10)\n') == []


def test_every_module_logger_is_named_by_its_module() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in _files()
        if (
            lines := module_loggers_not_named_by_module(path.read_text())
            + pixel_loggers_by_string(path.read_text())
        )
    }
    assert found == {}


def test_the_modules_that_log_are_found() -> None:
    # the walk reaches the modules that log (a broken glob would pass the test above vacuously)
    logging_modules = {
        str(path.relative_to(ROOT))
        for path in _files()
        if any(
            isinstance(stmt, ast.Assign) and _is_get_logger(stmt.value)
            for stmt in ast.parse(path.read_text()).body
        )
    }
    assert {"server/shipper/shipper.py", "server/collector/core.py", "server/datadir.py"} <= logging_modules
