"""Bench: `pixel import accesslog` on N generated combined-format lines, with the full enrichment, on chDB.

    .venv/bin/python bench/import_accesslog.py --lines 1000000 [--gzip] [--parse]

Generates a log (realistic mix: 20,000 client addresses (`--addresses`, one in ten IPv6), 200 user agents of browsers and a few bots,
pages with query strings, static assets, 4xx, POSTs, referrers), runs the real command in a child
process (`python -m pixel.server.cli import accesslog ...`) and reports lines/s and the child's peak RSS
(ru_maxrss of the waited child) and its CPU time per line (less sensitive to the machine's load than lines/s). The generated file and data folder are in a temporary folder.
`--parse` also times the line parser alone in this process (reading, `parse_line`, `classify`: what an access-log
line costs before the enrichment and the store), best of three passes.

`--before PKG` is an A/B in one run: PKG is a folder holding `pixel/__init__.py` and `pixel/server` (a link to the
`server` folder of a `git worktree` of the revision to compare); each round runs the line stage (child processes,
the same salts and import id, CPU per line, a digest of every row made, asserted equal) and then the whole import,
the revision's tree (through `PYTHONPATH`) and the working tree alternating, with the load average.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import hashlib
import importlib.util
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def address_pool(count: int, rng: random.Random) -> list[str]:
    """`count` client addresses, one in ten IPv6 (0: a fresh IPv4 address for every line, the worst case of the
    per-address caches)."""
    return [
        f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
        if i % 10 == 9
        else f"10.{rng.randrange(80)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
        for i in range(count)
    ]


def generate(path: Path, lines: int, compress: bool, seed: int = 1, addresses: int = 20_000) -> None:
    rng = random.Random(seed)
    pool = address_pool(addresses, rng)
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
            ip = (
                rng.choice(pool)
                if pool
                else f"10.{rng.randrange(80)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
            )
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


def line_stage_cpu(log: Path, run_module: Any, passes: int) -> float:
    """CPU seconds per line of `run_module.LineProcessor.process` over `log` (parse, rows, enrichment; no store),
    the best of `passes` passes, each with a new processor (cold caches) and the same salts."""
    from pixel.server.importer.lines import read_lines
    from pixel.server.settings import Settings

    salts = {f"2023-{m:02d}-{d:02d}": f"{m:02d}{d:02d}" * 16 for m in (1, 2, 3, 4) for d in range(1, 32)}
    best = float("inf")
    with tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env(data_dir=Path(data))
        for _ in range(passes):
            processor = run_module.LineProcessor(settings, "example.com", "bench", set(), salts)
            out, rows = run_module.Preview(), []
            count = 0
            t0 = time.process_time()
            for number, offset, _end, text in read_lines(log):
                processor.process(number, offset, text, out, rows)
                count += 1
                if len(rows) >= 50_000:
                    rows.clear()
            best = min(best, (time.process_time() - t0) / count)
    return best


def canonical(rows: list[Any]) -> bytes:
    """Rows as dicts or JSON bytes (a tree's `LineProcessor` makes either), as JSON with sorted keys."""
    import orjson

    return b"\n".join(
        orjson.dumps(orjson.loads(row) if type(row) is bytes else row, option=orjson.OPT_SORT_KEYS)
        for row in rows
    )


def line_stage_child(log: Path) -> None:
    """In a child process (the tree on its `PYTHONPATH`): the line stage over `log` as the import runs it (GC paused,
    one pass per batch), pinned salts and import id; prints CPU µs per line, rows and a digest of the rows."""

    from pixel.server.importer import run as module
    from pixel.server.importer.lines import read_lines
    from pixel.server.settings import Settings

    salts = {f"2023-{m:02d}-{d:02d}": f"{m:02d}{d:02d}" * 16 for m in (1, 2, 3, 4) for d in range(1, 32)}
    digest = hashlib.blake2b(digest_size=16)
    with tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env(data_dir=Path(data))
        processor = module.LineProcessor(settings, "example.com", "bench", set(), salts)
        out, rows = module.Preview(), []
        count = 0
        aside = 0.0  # the digest's CPU time, not the line stage's
        gc.disable()
        t0 = time.process_time()
        for number, offset, _end, text in read_lines(log):
            processor.process(number, offset, text, out, rows)
            count += 1
            if len(rows) >= 50_000:
                t1 = time.process_time()
                digest.update(canonical(rows))
                aside += time.process_time() - t1
                rows.clear()
                gc.collect()
        cpu = time.process_time() - t0 - aside
        digest.update(canonical(rows))
    print(f"{cpu / count * 1e6:.3f} {out.rows} {digest.hexdigest()} {sorted(out.skipped.items())}")


def ab(log: Path, lines: int, before: Path, rounds: int, tmp: Path) -> None:
    """Alternating A/B of the revision on `before` (PYTHONPATH) and the working tree (see the docstring)."""
    here = Path(__file__).resolve()
    old_env = {**os.environ, "PYTHONPATH": str(before)}
    trees = (("before", old_env), ("after", None))
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    stage: dict[str, list[str]] = {"before": [], "after": []}
    for r in range(rounds):
        for name, env in trees:
            cwd = str(before) if env is not None else None  # the old tree's child: not the working tree's
            done = subprocess.run(
                [sys.executable, str(here), "--line-stage-child", str(log)],
                capture_output=True, text=True, env=env, cwd=cwd, check=True,
            )  # fmt: skip
            stage[name].append(done.stdout.strip())
            us, rows, digest = done.stdout.split()[:3]
            print(f"round {r + 1} {name}: line stage {float(us):.1f} µs/line ({1e6 / float(us):,.0f} lines/s), "
                  f"{rows} rows, digest {digest}")  # fmt: skip
    firsts = {line.split(" ", 1)[1] for lines_ in stage.values() for line in lines_}
    assert len(firsts) == 1, f"the trees made different rows: {firsts}"
    print("line stage: the same rows (digest and skip counts) from both trees")
    for r in range(rounds):
        for name, env in trees:
            (seconds, cpu, peak_mb), summary = _timed_import(
                log, tmp / f"data-{name}-{r}", env, str(before) if env is not None else None
            )
            print(f"round {r + 1} {name}: {seconds:.1f} s, {lines / seconds:,.0f} lines/s, "
                  f"CPU {cpu / lines * 1e6:.1f} µs/line, peak RSS {peak_mb:.0f} MB; {summary.strip()}")  # fmt: skip
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")


def _timed_import(
    log: Path, data: Path, env: dict[str, str] | None, cwd: str | None
) -> tuple[tuple[float, float, float], str]:
    """(wall seconds, child CPU seconds, child peak RSS MB) and the summary line of one whole import."""
    command = [
        sys.executable, "-m", "pixel.server.cli", "import", "accesslog", str(log),
        "--site", "example.com", "--data-dir", str(data),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(stderr.decode())
    text = stdout.decode().splitlines()
    summary = text[1] if len(text) > 1 else ""
    return (seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), summary


def thread_cpu(child: subprocess.Popen[bytes]) -> dict[str, float]:
    """CPU seconds of `child`'s threads by name (Python's are `python`, chDB's pools have their own names), read
    from /proc every 0.2 s until it ends. Returns when the child has ended (it is waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[str, tuple[str, float]] = {}
    tasks = Path(f"/proc/{child.pid}/task")
    while child.poll() is None:
        try:
            for task in tasks.iterdir():
                stat = (task / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                seen[task.name] = (
                    stat[stat.index("(") + 1 : stat.rindex(")")],
                    (int(fields[11]) + int(fields[12])) / tick,
                )
        except OSError:  # a thread (or the child) ended while being read
            pass
        time.sleep(0.2)
    totals: dict[str, float] = {}
    for name, seconds in seen.values():
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def compare(log: Path, revision: str, passes: int) -> None:
    """The line stage of `revision`'s run.py against the working tree's, alternating, in this process."""
    from pixel.server.importer import run as current

    source = subprocess.run(
        ["git", "show", f"{revision}:server/importer/run.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    spec = importlib.util.spec_from_loader("pixel.server.importer.run_before", loader=None)
    assert spec is not None
    before = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = before  # dataclasses look their module up
    exec(compile(source, f"{revision}:server/importer/run.py", "exec"), before.__dict__)
    old = new = float("inf")
    for _ in range(passes):
        old = min(old, line_stage_cpu(log, before, 1))
        new = min(new, line_stage_cpu(log, current, 1))
    print(
        f"line stage, CPU per line, best of {passes}: {revision} {old * 1e6:.1f} µs ({1 / old:,.0f} lines/s), "
        f"working tree {new * 1e6:.1f} µs ({1 / new:,.0f} lines/s), x {old / new:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--parse", action="store_true", help="also time the line parser alone")
    parser.add_argument(
        "--compare", metavar="REV", help="also time the line stage of REV's run.py against this one"
    )
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--before", type=Path, help="A/B: the revision's package folder (see the docstring)")
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds (--before)")
    parser.add_argument("--line-stage-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-import", action="store_true", help="skip the whole-import run")
    parser.add_argument(
        "--addresses", type=int, default=20_000, help="client addresses in the log (0: a new one per line)"
    )
    args = parser.parse_args()
    if args.line_stage_child:
        line_stage_child(args.line_stage_child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / ("access.log.gz" if args.gzip else "access.log")
        t0 = time.perf_counter()
        generate(log, args.lines, args.gzip, addresses=args.addresses)
        print(
            f"generated {args.lines:,} lines ({log.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        if args.parse:
            print(f"line parser alone: {parse_rate(log):,.0f} lines/s")
        if args.compare:
            compare(log, args.compare, args.passes)
        if args.before:
            ab(log, args.lines, args.before.resolve(), args.rounds, Path(tmp))
            return 0
        if args.no_import:
            return 0
        command = [
            sys.executable, "-m", "pixel.server.cli", "import", "accesslog", str(log),
            "--site", "example.com", "--data-dir", str(Path(tmp) / "data"),
        ]  # fmt: skip
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = subprocess.Popen(command, stdout=out, stderr=err)
            by_thread = thread_cpu(child)  # until it ends
            seconds = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        if child.returncode != 0:
            print(stderr, file=sys.stderr)
            return 1
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        lines = stdout.splitlines()
        print(lines[0], lines[1] if len(lines) > 1 else "")
        print(f"load average at the end: {Path('/proc/loadavg').read_text().strip()}")
        print("CPU by thread name (sampled every 0.2 s; the last moments before the end are not seen):")
        for name, seconds_ in sorted(by_thread.items(), key=lambda item: -item[1]):
            print(f"  {name:16s} {seconds_:8.1f} s  {seconds_ / args.lines * 1e6:5.1f} µs per line")
        print(f"imported {args.lines:,} lines in {seconds:.1f} s: {args.lines / seconds:,.0f} lines/s, "
              f"peak RSS {peak_mb:.0f} MB")  # fmt: skip
        print(f"child CPU time {cpu:.1f} s: {cpu / args.lines * 1e6:.1f} µs per line, "
              f"{args.lines / cpu:,.0f} lines per CPU second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
