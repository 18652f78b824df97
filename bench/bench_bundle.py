"""Cold start to the first chart: the installable bundle (dist/desktop/pixel-desktop, scripts/build-desktop)
against the venv's `python -m pixel.app.desktop.main`, as bench_desktop.py measures it: a cache filled with
generated answers, a profile whose API is a closed port, `--first-chart-exit`; the two alternate, N runs
each; wall time from spawn and the app's own in-process figure.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_bundle.py [--runs 5] [--bundle PATH] [--sizes]

`--sizes` prints only what each part of the bundle weighs unpacked (bytes of its files, MB = 10^6 bytes).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "--first-chart-exit"], env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    line = next((x for x in out.stdout.splitlines() if x.startswith("first chart after")), "")
    if not line:
        raise SystemExit(f"no chart drawn by {cmd[0]}:\n{out.stdout}\n{out.stderr}")
    return wall, float(line.split()[3])


# (part, glob patterns relative to the bundle folder); a file counts in the first part that matches it
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("ICU (libicu*)", ("_internal/PySide6/Qt/lib/libicu*",)),
    ("Qt libraries", ("_internal/PySide6/Qt/lib/*",)),
    ("Qt plugins", ("_internal/PySide6/Qt/plugins/**/*",)),
    ("PySide6 bindings", ("_internal/PySide6/*", "_internal/shiboken6/**/*")),
    ("OpenBLAS (numpy.libs)", ("_internal/numpy.libs/*",)),
    ("numpy", ("_internal/numpy/**/*",)),
    ("cryptography + OpenSSL", ("_internal/cryptography/**/*", "_internal/libcrypto*", "_internal/libssl*")),
    (
        "Python (libpython, stdlib)",
        ("_internal/libpython*", "_internal/python3*/**/*", "_internal/base_library.zip"),
    ),
    ("pure-Python archive (launcher)", ("pixel-desktop",)),
]


def sizes(bundle: Path) -> list[tuple[str, int]]:
    files = {p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()}
    out: list[tuple[str, int]] = []
    for name, patterns in PARTS:
        part = {p for pattern in patterns for p in bundle.glob(pattern) if p in files}
        files -= part
        out.append((name, sum(p.stat().st_size for p in part)))
    out.append(("everything else", sum(p.stat().st_size for p in files)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist/desktop/pixel-desktop/pixel-desktop")
    parser.add_argument("--sizes", action="store_true", help="only the size of each part of the bundle")
    args = parser.parse_args()
    if args.sizes:
        parts = sizes(args.bundle.parent)
        for name, size in parts:
            print(f"{name:32} {size / 1e6:7.1f} MB")
        print(f"{'total':32} {sum(s for _, s in parts) / 1e6:7.1f} MB")
        return
    from dashboard_offline import fill_cache

    from pixel.app.client import ReportCache
    from pixel.app.profiles import Profile, ProfileStore

    with tempfile.TemporaryDirectory() as tmp:
        xdg = {v: f"{tmp}/{v.lower()}" for v in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")}
        env = {**os.environ, **xdg}
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        os.environ.update(xdg)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        cache = ReportCache()
        fill_cache(cache, "example")
        cache.close()
        ProfileStore().save(Profile("example", api_url=f"http://127.0.0.1:{closed}"))
        kinds = {"bundle": [str(args.bundle)], "venv": [sys.executable, "-m", "pixel.app.desktop.main"]}
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for cmd in kinds.values():  # one warm-up each: the page cache, as after a first start
            once(cmd, env)
        for _ in range(args.runs):
            for kind, cmd in kinds.items():
                results[kind].append(once(cmd, env))
        for kind, runs in results.items():
            walls, inner = [w for w, _ in runs], [i for _, i in runs]
            print(
                f"{kind:6} cold start to first chart ({args.runs} runs): wall from spawn median "
                f"{statistics.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f}); "
                f"in-process median {statistics.median(inner):.3f} s"
            )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
