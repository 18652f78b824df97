"""One `pixel` namespace from top-level folders: an editable install and a built wheel both import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pixel.app
import pixel.server
import pixel.tracker

ROOT = Path(__file__).resolve().parents[2]


def test_editable_install_maps_the_folders() -> None:
    assert Path(pixel.server.__file__).resolve() == ROOT / "server" / "__init__.py"
    assert Path(pixel.app.__file__).resolve() == ROOT / "app" / "__init__.py"
    assert Path(pixel.tracker.__file__).resolve() == ROOT / "tracker" / "__init__.py"


def test_wheel_contains_the_namespace_and_imports(tmp_path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("pixel_analytics-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for module in (
        "pixel/server/cli.py",
        "pixel/server/collector/app.py",
        "pixel/server/shipper/shipper.py",
        "pixel/server/store/schema.py",
        "pixel/app/__init__.py",
        "pixel/tracker/__init__.py",
        "pixel/tracker/dist/pixel.js",
    ):
        assert module in names, module
    assert not [n for n in names if n.startswith(("server/", "app/", "tests/", "tracker/"))]
    assert "pixel/__init__.py" not in names  # an implicit namespace package
    entry_points = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    )
    assert "pixel = pixel.server.cli:main" in entry_points
    # Install the wheel into a folder of its own and import from there, away from the source tree.
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import pixel.server.cli, pixel.server.collector.app, pixel.tracker, sys; "
        f"assert pixel.server.cli.__file__.startswith({str(target)!r}), pixel.server.cli.__file__; "
        "print(len(pixel.tracker.dist_file().read_bytes()))"
    )
    # -S: no site module, so the editable install's .pth finder is not loaded; site-packages only for deps.
    r = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path[:0] = [{str(target)!r}] + "
            f"[p for p in {sys.path!r} if 'site-packages' in p]; {probe}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len((ROOT / "tracker" / "dist" / "pixel.js").read_bytes())
