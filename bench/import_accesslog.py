"""Bench: `pixel import accesslog` on N generated combined-format lines, with the full enrichment, on chDB.

    .venv/bin/python bench/import_accesslog.py --lines 1000000 [--gzip] [--parse]

Generates a log (realistic mix: ~20,000 client addresses, 200 user agents of browsers and a few bots,
pages with query strings, static assets, 4xx, POSTs, referrers), runs the real command in a child
process (`python -m pixel.server.cli import accesslog ...`) and reports lines/s and the child's peak RSS
(ru_maxrss of the waited child). The generated file and data folder are in a temporary folder.
`--parse` also times the line parser alone in this process (reading, `parse_line`, `classify`: what an access-log
line costs before the enrichment and the store), best of three passes.
"""

from __future__ import annotations

import argparse
import gzip
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENTS = (
    [
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
        "Safari/537.36"
        for v in range(100, 160)
    ]
    + [
        f"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_{v}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} "
        "Safari/605.1.15"
        for v in range(8)
    ]
    + [f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0" for v in range(100, 130)]
    + [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    ]
)
REFERRERS = ["-", "-", "https://www.google.com/", "https://duckduckgo.com/", "https://news.ycombinator.com/"]
MONTHS = ["Jan", "Feb", "Mar"]


def generate(path: Path, lines: int, compress: bool, seed: int = 1) -> None:
    rng = random.Random(seed)
    opener = gzip.open if compress else open
    with opener(path, "wt") as out:  # type: ignore[operator]
        chunk = []
        for i in range(lines):
            second = i * 90 * 86400 // max(lines, 1)
            day, rest = second // 86400, second % 86400
            month, dom = MONTHS[min(day // 30, 2)], day % 30 + 1
            roll = rng.random()
            if roll < 0.25:
                target = f"/static/{rng.randrange(50)}.{rng.choice(['css', 'js', 'png', 'woff2'])}"
            elif roll < 0.28:
                target = "/api/form"
            else:
                target = f"/blog/post-{rng.randrange(2000)}" + (
                    "?utm_source=news" if rng.random() < 0.05 else ""
                )
            method = "POST" if target == "/api/form" else "GET"
            status = 404 if rng.random() < 0.03 else 200
            ip = f"10.{rng.randrange(80)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
            chunk.append(
                f"{ip} - - [{dom:02d}/{month}/2023:{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d} +0000] "
                f'"{method} {target} HTTP/1.1" {status} {rng.randrange(100, 90000)} "{rng.choice(REFERRERS)}" '
                f'"{rng.choice(AGENTS)}"\n'
            )
            if len(chunk) >= 10_000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))


def parse_rate(log: Path) -> float:
    """Lines per second of reading and parsing `log` (no enrichment, no store): best of three passes."""
    from pixel.server.importer.lines import read_lines
    from pixel.server.importer.sources import accesslog_line

    best = float("inf")
    count = 0
    for _ in range(3):
        t0 = time.perf_counter()
        count = 0
        for _n, _o, _e, text in read_lines(log):
            accesslog_line(text)
            count += 1
        best = min(best, time.perf_counter() - t0)
    return count / best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--parse", action="store_true", help="also time the line parser alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / ("access.log.gz" if args.gzip else "access.log")
        t0 = time.perf_counter()
        generate(log, args.lines, args.gzip)
        print(
            f"generated {args.lines:,} lines ({log.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        if args.parse:
            print(f"line parser alone: {parse_rate(log):,.0f} lines/s")
        command = [
            sys.executable, "-m", "pixel.server.cli", "import", "accesslog", str(log),
            "--site", "example.com", "--data-dir", str(Path(tmp) / "data"),
        ]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            done.stdout.splitlines()[0],
            done.stdout.splitlines()[1] if len(done.stdout.splitlines()) > 1 else "",
        )
        print(f"imported {args.lines:,} lines in {seconds:.1f} s: {args.lines / seconds:,.0f} lines/s, "
              f"peak RSS {peak_mb:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
