"""A collector worker down behind the real edge (issue 14): Caddy (Debian's package, as offline installs run it)
in front of the two collector workers on their Unix sockets. A worker killed while tracking requests keep coming
costs none of them: its socket is held by the process that supervises the workers
(server/processes.upstream_listeners), so Caddy's connection is never refused (a refused one made Caddy retry
the request on the other worker with its body already closed: 502 for about half of the requests), and the
requests wait for the worker that replaces it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from edge_helpers import EdgeStack, start_edge_stack, stop_edge_stack
from stack_helpers import api_call

from pixel.server.settings import Settings

# Prints the pid of collector worker N: the process holding the listening socket collector-N.sock and no other
# worker's socket (the supervising process holds them all). The connections a worker accepted are listed under
# its socket's path too: only the listener has the accepting flag (__SO_ACCEPTCON). A descriptor closed while
# it is read (a connection just answered) is skipped, not its process.
_WORKER_PID = r"""
import os, sys
mine = "/run/pixel-upstream/collector-%s.sock" % sys.argv[1]
inodes = {}
for line in open("/proc/net/unix").read().splitlines()[1:]:
    f = line.split()
    if len(f) == 8 and f[7].startswith("/run/pixel-upstream/") and f[3] == "%08X" % 0x10000:
        inodes[f[7]] = "socket:[%s]" % f[6]
others = {v for k, v in inodes.items() if k != mine}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        continue
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink("/proc/%s/fd/%s" % (pid, fd)))
        except OSError:
            continue
    if inodes[mine] in links and not links & others:
        print(pid)
"""


@pytest.fixture(scope="module")
def edge_stack(docker_client, pixel_image, tmp_path_factory) -> Iterator[EdgeStack]:
    stack = start_edge_stack(docker_client, tmp_path_factory.mktemp("edge-down"), workers=2)
    try:
        stack.wait_certificate()
        yield stack
    finally:
        stop_edge_stack(stack)


def _pixel(stack: EdgeStack):
    container = stack.prov.container("pixel")
    assert container is not None
    return container


def _worker_pid(stack: EdgeStack, number: int) -> int:
    done = _pixel(stack).exec_run(["python3", "-c", _WORKER_PID, str(number)])
    assert done.exit_code == 0, done.output
    [pid] = done.output.decode().split()
    return int(pid)


def _kill(stack: EdgeStack, pid: int) -> None:
    done = _pixel(stack).exec_run(["python3", "-c", f"import os; os.kill({pid}, 9)"])
    assert done.exit_code == 0, done.output


def _gone(stack: EdgeStack, pid: int) -> bool:
    """Whether `pid` is dead in the collector's container (a zombie not yet reaped counts)."""
    script = (
        "import sys\n"
        "try:\n"
        f"    print(open('/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0])\n"
        "except FileNotFoundError:\n"
        "    print('X')\n"
    )
    done = _pixel(stack).exec_run(["python3", "-c", script])
    assert done.exit_code == 0, done.output
    return done.output.decode().strip() in ("Z", "X")


def _event(path: str) -> bytes:
    return json.dumps(
        {
            "event_name": "pageview",
            "ts": 1_796_400_000_000,
            "site": "pixel.test",
            "page": {"url": "https://pixel.test" + path, "path": path, "title": "t", "referrer": ""},
        }
    ).encode()


def _count(stack: EdgeStack, prefix: str) -> dict[str, int]:
    token = api_call(
        stack.api_port,
        "POST",
        "/api/auth/login",
        {"username": stack.admin.username, "password": stack.admin.password},
    )["access_token"]
    [site] = [
        s
        for s in api_call(stack.api_port, "GET", "/api/sites", token=token)["items"]
        if s["domain"] == "pixel.test"
    ]
    query = f"SELECT path, count() AS n FROM events WHERE startsWith(path, '{prefix}') GROUP BY path"
    rows = api_call(stack.api_port, "POST", "/api/sql", {"site_id": site["id"], "query": query}, token=token)[
        "rows"
    ]
    return {
        r["path"] if isinstance(r, dict) else r[0]: int(r["n"] if isinstance(r, dict) else r[1]) for r in rows
    }


def _send_all(stack: EdgeStack, paths: list[str], threads: int) -> dict[str, int]:
    """POST one pageview per path through the edge (HTTPS, a new connection each), from `threads` threads at
    once; the status answered for each path."""
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def run(mine: list[str]) -> None:
        for path in mine:
            try:
                status, _, _ = stack.https("POST", "/track", {"Content-Type": "text/plain"}, _event(path))
            except OSError as exc:  # pragma: no cover - reported by the assertion below
                status = -1
                print(path, exc)
            with lock:
                statuses[path] = status

    workers = [threading.Thread(target=run, args=(paths[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return statuses


def _wait_counts(stack: EdgeStack, prefix: str, want: dict[str, int], timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        got = _count(stack, prefix)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_every_tracking_request_lands_while_a_worker_is_down_and_restarts(edge_stack):
    paths = [f"/down-{i:02d}" for i in range(32)]
    before = _worker_pid(edge_stack, 1)
    assert not _gone(edge_stack, before)
    _kill(edge_stack, before)
    deadline = time.monotonic() + 10
    while not _gone(edge_stack, before):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    statuses = _send_all(edge_stack, paths, threads=4)  # the first ones while worker 1 is dead
    assert statuses == dict.fromkeys(paths, 204)
    after = _worker_pid(edge_stack, 1)
    assert after != before  # worker 1 was started again meanwhile
    assert _wait_counts(edge_stack, "/down-", dict.fromkeys(paths, 1)) == dict.fromkeys(paths, 1)


def test_a_body_over_the_collectors_limit_is_refused_through_the_edge(edge_stack):
    limit = Settings().max_body_bytes
    status, _, body = edge_stack.https("POST", "/track", {"Content-Type": "text/plain"}, b"x" * (limit + 1))
    assert status == 413, body
    assert b"body too large" in body
    status, _, _ = edge_stack.https("POST", "/track", {"Content-Type": "text/plain"}, _event("/small"))
    assert status == 204
