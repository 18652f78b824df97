"""`pixel serve`'s log lines reach the handler its logging setup installs (`processes.configure_logging`), in
the `pixel` process itself and in the store process it spawns, named after the module that wrote them and
filtered by PIXEL_LOG_LEVEL through the `pixel` package logger."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx

TIME = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "  # the asctime of the format configure_logging sets


def _lines(log: str, level: str, logger: str, message: str) -> list[str]:
    pattern = re.compile(TIME + re.escape(f"{level} {logger}: {message}"))
    return [line for line in log.splitlines() if pattern.match(line)]


def _wait_for(proc, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s:\n{proc.log()}"
        time.sleep(0.1)


def test_serve_and_store_process_lines_reach_the_handler_with_their_module_names(
    pixel_factory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # open to other users: `pixel serve` closes it and says so (server/datadir.py)
    server = pixel_factory("serve", data_dir=data, pixel_unregistered_sites="drop", pixel_log_level="INFO")
    event = {"event_name": "pageview", "site": "spam.example", "page": {"url": "https://spam.example/"}}
    assert httpx.post(f"{server.collector}/track", json=event).status_code == 204
    _wait_for(server, "dropping the events of 'spam.example'")
    server.stop()
    log = server.log()
    # written by the `pixel serve` process
    assert (
        len(
            _lines(log, "WARNING", "pixel.server.datadir", f"the data folder was open to other users: {data}")
        )
        == 1
    )
    # written by the store process `pixel serve` spawned
    assert _lines(
        log,
        "WARNING",
        "pixel.server.enrich.pipeline",
        "dropping the events of 'spam.example': not a registered site",
    )


def test_the_level_applies_to_every_pixel_module(pixel_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    server = pixel_factory("serve", data_dir=data, pixel_unregistered_sites="drop", pixel_log_level="ERROR")
    event = {"event_name": "pageview", "site": "spam.example", "page": {"url": "https://spam.example/"}}
    assert httpx.post(f"{server.collector}/track", json=event).status_code == 204
    server.wait_shipped(1)
    server.stop()
    log = server.log()
    assert "open to other users" not in log and "dropping the events of" not in log
    assert " WARNING " not in log and " INFO " not in log


def test_every_spawned_child_logs_in_the_one_format(tmp_path: Path) -> None:
    """The collector workers and the store process start with `child_setup`: a worker's warning carries its
    time, level and module like the parent's lines (before, a worker's records went through Python's
    last-resort handler as a bare message)."""
    import ast
    import inspect
    import subprocess
    import sys

    from pixel.server import processes

    for child in (processes._collector_worker, processes._store_child):
        first = ast.parse(inspect.getsource(child)).body[0]
        assert isinstance(first, ast.FunctionDef)
        calls = [ast.unparse(n.func) for n in ast.walk(first) if isinstance(n, ast.Call)]
        assert calls[0] == "child_setup", (child.__name__, calls[:3])
    code = (
        "import logging\n"
        "from pixel.server.processes import child_setup\n"
        "child_setup({'PIXEL_LOG_LEVEL': 'INFO'})\n"
        "logging.getLogger('pixel.server.collector.core').warning('collector: a worker speaks')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert _lines(out.stderr, "WARNING", "pixel.server.collector.core", "collector: a worker speaks"), (
        out.stderr
    )
