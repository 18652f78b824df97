"""Desktop speed: (1) cold start of `pixel-desktop` to the first chart drawn from the cache, with the
host unreachable; (2) redraw of a year of hourly points (8,760) in the time-series chart.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_desktop.py

(1) fills a cache in a temporary XDG folder with generated answers (examples/dashboard_offline.py),
writes a profile whose API is a closed port, then runs `python -m pixel.app.desktop.main
--first-chart-exit` N times: each prints the seconds from its first line of Python to the first chart
(in-process) and the wall time from spawn (interpreter start and imports included) is measured here.
(2) renders the chart offscreen: setData with a new 8,760-point series, then a synchronous repaint.
"""

from __future__ import annotations

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


def cold_start(runs: int = 7) -> None:
    from dashboard_offline import fill_cache

    from pixel.app.client import ReportCache
    from pixel.app.profiles import Profile, ProfileStore

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            **{
                v: f"{tmp}/{v.lower()}"
                for v in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
            },
        }
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        os.environ.update({k: env[k] for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")})
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        cache = ReportCache()
        fill_cache(cache, "example")
        cache.close()
        ProfileStore().save(Profile("example", api_url=f"http://127.0.0.1:{closed}"))
        walls, inner = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "pixel.app.desktop.main", "--first-chart-exit"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            walls.append(time.perf_counter() - t0)
            line = next((x for x in out.stdout.splitlines() if x.startswith("first chart after")), "")
            if not line:
                raise SystemExit(f"no chart drawn:\n{out.stdout}\n{out.stderr}")
            inner.append(float(line.split()[3]))
        print(
            f"cold start to first chart from cache ({runs} runs): wall from spawn median {statistics.median(walls):.3f} s"
            f" (min {min(walls):.3f}, max {max(walls):.3f}); in-process median {statistics.median(inner):.3f} s"
        )
        print(f"  last run said: {line}")


def redraw(points: int = 8760, runs: int = 50) -> None:
    import numpy as np
    import pyqtgraph as pg

    from pixel.app.desktop.charts import TimeSeriesChart

    app = pg.mkQApp()
    chart = TimeSeriesChart()
    chart.resize(1200, 400)
    chart.show()
    start = 1_767_225_600.0  # 2026-01-01 00:00 (site wall time)
    x = start + np.arange(points, dtype=np.float64) * 3600
    rng = np.random.default_rng(0)
    chart.set_data_fast(x, rng.poisson(50, points).astype(np.float64))
    chart.autoRange()
    app.processEvents()
    times = []
    for _ in range(runs):
        y = rng.poisson(50, points).astype(np.float64)
        t0 = time.perf_counter()
        chart.set_data_fast(x, y)
        chart.viewport().repaint()  # synchronous paint of the whole scene
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(
        f"redraw {points:,} hourly points ({runs} runs): median {statistics.median(times):.1f} ms, "
        f"p90 {times[int(runs * 0.9)]:.1f} ms, max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    redraw()
    cold_start()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown of Qt objects (PySide6 may abort while finalizing)
