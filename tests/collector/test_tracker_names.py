"""Where the collector serves the tracker builds: a renamed script serves the same built files."""

from __future__ import annotations

import httpx

from pixel.server.collector.script import extended_name
from pixel.tracker import dist_file
from tests.conftest import PixelProcess, free_port


def test_extended_name() -> None:
    assert extended_name("pixel.js") == "pixel.ext.js"
    assert extended_name("stats.js") == "stats.ext.js"
    assert extended_name("a.b.js") == "a.b.ext.js"
    assert extended_name("s") == "s.ext"
    assert extended_name(".js") == ".js.ext"


def test_a_renamed_script_serves_both_builds(tmp_path) -> None:
    proc = PixelProcess(
        "collect",
        tmp_path / "data",
        free_port(),
        free_port(),
        {"PIXEL_WORKERS": "1", "PIXEL_LOG_LEVEL": "WARNING", "PIXEL_SCRIPT_NAME": "s.js"},
    ).start()
    try:
        r = httpx.get(f"{proc.collector}/s.js")
        assert r.status_code == 200 and r.content == dist_file("pixel.js").read_bytes()
        r = httpx.get(f"{proc.collector}/s.ext.js")
        assert r.status_code == 200 and r.content == dist_file("pixel.ext.js").read_bytes()
        assert httpx.get(f"{proc.collector}/pixel.js").status_code == 404
    finally:
        proc.stop()
