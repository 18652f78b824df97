"""Cold start to the first chart: the installable bundle (dist/desktop/pixel-desktop, scripts/build-desktop)
against the venv's `python -m pixel.app.desktop.main`, as bench_desktop.py measures it: a cache filled with
generated answers, a profile whose API is a closed port, `--first-chart-exit`; the two alternate, N runs
each; wall time from spawn and the app's own in-process figure.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_bundle.py [--runs 5] [--bundle PATH]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist/desktop/pixel-desktop/pixel-desktop")
    args = parser.parse_args()
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
