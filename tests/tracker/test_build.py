"""The committed tracker builds: reproducible with the pinned esbuild, and within their size budgets.

tracker/build.mjs builds three files from one source: pixel.js (the consent-free default, at most 2,000 bytes
gzip -9), pixel.ext.js (web vitals, errors, tagging without code and the device id after consent, at most
3,000 bytes) and pixel.debug.js (the extended build with config validation and console warnings, no budget).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pixel.tracker import dist_file

ROOT = Path(__file__).resolve().parents[2]
TRACKER = ROOT / "tracker"
BUDGETS = {"pixel.js": 2000, "pixel.ext.js": 3000}
BUILDS = ("pixel.js", "pixel.ext.js", "pixel.debug.js")


def gzip9(raw: bytes) -> int:
    assert shutil.which("gzip"), "gzip is needed to measure the tracker"
    return len(subprocess.run(["gzip", "-9", "-c"], input=raw, capture_output=True, check=True).stdout)


def test_committed_builds_are_what_the_sources_build_to(tmp_path) -> None:
    esbuild = TRACKER / "node_modules" / "esbuild"
    assert esbuild.is_dir(), (
        "tracker/node_modules missing: run scripts/system.d/30-browser.sh (npm ci in tracker/)"
    )
    subprocess.run(["node", str(TRACKER / "build.mjs"), str(tmp_path)], check=True, cwd=TRACKER, timeout=120)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BUILDS)
    for name in BUILDS:
        assert (tmp_path / name).read_bytes() == (TRACKER / "dist" / name).read_bytes(), (
            f"tracker/dist/{name} is stale: run `npm run build` in tracker/ and commit it"
        )


def test_package_serves_the_committed_builds() -> None:
    for name in BUILDS:
        assert dist_file(name).read_bytes() == (TRACKER / "dist" / name).read_bytes()


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_gzip_size_is_within_the_budget(name: str) -> None:
    raw = (TRACKER / "dist" / name).read_bytes()
    gz = gzip9(raw)
    print(f"tracker/dist/{name}: {len(raw)} bytes, {gz} bytes gzip -9 (budget {BUDGETS[name]})")
    assert gz <= BUDGETS[name], f"{name} is {gz} bytes gzip -9, over its {BUDGETS[name]}-byte budget"


def test_the_default_build_holds_no_device_signal_or_storage_of_ids() -> None:
    # what the consent-free build must not even contain (the Chromium tests prove it touches none of it)
    text = (TRACKER / "dist" / "pixel.js").read_text()
    for api in (
        "canvas",
        "webgl",
        "OfflineAudioContext",
        "hardwareConcurrency",
        "deviceMemory",
        "devicePixelRatio",
        "platform",
        "colorDepth",
        "PerformanceObserver",
        "cookie",
        "sessionStorage",
        "indexedDB",
    ):
        assert api not in text, api
    assert text.count("localStorage") == 1
    ext = (TRACKER / "dist" / "pixel.ext.js").read_text()
    assert "WEBGL_debug_renderer_info" in ext and "PerformanceObserver" in ext


def test_feature_cost_script_still_patches_every_feature_out() -> None:
    # bench/README.md's per-feature table comes from tracker/feature-cost.mjs: every patch must still apply to src/
    # (the script throws when a patch's text is gone) and remove something.
    out = subprocess.run(
        ["node", str(TRACKER / "feature-cost.mjs")],
        check=True,
        cwd=TRACKER,
        timeout=300,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name, line in zip(("pixel.js", "pixel.ext.js"), out[:2], strict=True):
        raw = (TRACKER / "dist" / name).read_bytes()
        assert line == f"{name}: {len(raw)} bytes minified, {gzip9(raw)} gzip -9"
    rows = [line.split(" | ") for line in out[2:]]
    assert len(rows) >= 10
    assert all(int(r[1]) > 0 for r in rows), rows
