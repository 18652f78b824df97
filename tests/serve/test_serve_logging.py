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
