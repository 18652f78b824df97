"""CPU time and resident memory of a process group, from /proc (Linux), for the benchmarks."""

from __future__ import annotations

import os


def group_processes(pgid: int) -> dict[int, tuple[float, int]]:
    """{pid: (CPU seconds, user + system; resident bytes)} of every process in the process group `pgid`."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group; 14-15 utime, stime; 24 rss (pages)
            out[int(pid)] = ((int(fields[11]) + int(fields[12])) / tick, int(fields[21]) * page)
    return out


def cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every process in the process group `pgid` (a server and its workers)."""
    return sum(cpu for cpu, _rss in group_processes(pgid).values())


def rss_bytes(pgid: int) -> int:
    """Resident memory of every process in the process group `pgid`."""
    return sum(rss for _cpu, rss in group_processes(pgid).values())


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)
