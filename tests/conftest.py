"""Shared fixtures: real Pixel processes on free 127.0.0.1 ports in temporary data folders."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixel.server.metrics import read_totals  # noqa: F401 - re-exported for tests
from tests.ports import free_port


def parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{out}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class PixelProcess:
    """A running `pixel <command>` (serve, collect or ship) with its ports and data folder."""

    command: str
    data_dir: Path
    port: int
    api_port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.command}-{self.port}-{self.api_port}.log"

    @property
    def collector(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, wait: bool = True) -> PixelProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pixel.server.cli",
                self.command,
                "--data-dir",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--api-port",
                str(self.api_port),
            ],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            if self.command in ("serve", "collect"):
                self._wait(f"{self.collector}/health")
            if self.command in ("serve", "ship"):
                self._wait(f"{self.api}/health")
            if self.proc.poll() is not None:  # what answered was not this process (its port taken meanwhile?)
                raise RuntimeError(f"pixel {self.command} exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def _wait(self, url: str) -> None:
        try:
            wait_http(url, 60, self.proc)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- log ---\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL the process (only it, not its group), as a crash would."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def metrics(self, which: str = "api") -> dict[str, float]:
        base = self.api if which == "api" else self.collector
        return parse_metrics(httpx.get(f"{base}/metrics", timeout=5).text)

    def wait_shipped(self, count: int, timeout: float = 60.0) -> dict[str, float]:
        """Wait until the shipper has inserted (or dead-lettered, or dropped for DNT) `count` events and the
        spool is drained."""
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.metrics()
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            done = sum(
                seen.get(f"pixel_shipper_events_{kind}_total", 0) for kind in ("inserted", "dead", "dropped")
            )
            if done >= count and seen.get("pixel_spool_backlog_bytes", 1) == 0:
                return seen
            time.sleep(0.1)
        raise TimeoutError(f"not shipped within {timeout} s: {seen}\n--- log ---\n{self.log()}")

    @contextmanager
    def open_store(self) -> Iterator[object]:
        """The chDB store of this data folder, opened here after the process is stopped."""
        from pixel.server.store.chdb_engine import ChdbStore

        self.stop()
        store = ChdbStore(self.data_dir / "store")
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def pixel_factory(tmp_path: Path) -> Iterator:
    """Start real `pixel serve|collect|ship` processes; all are stopped at the end of the test."""
    started: list[PixelProcess] = []

    def start(
        command: str = "serve",
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        api_port: int | None = None,
        wait: bool = True,
        **env: str,
    ) -> PixelProcess:
        env = {
            "PIXEL_WORKERS": "2",
            "PIXEL_LOG_LEVEL": "WARNING",
            **{k.upper(): str(v) for k, v in env.items()},
        }
        p = PixelProcess(
            command, data_dir or tmp_path / "data", port or free_port(), api_port or free_port(), env
        )
        started.append(p)
        return p.start(wait)

    yield start
    for p in reversed(started):
        p.stop()


@pytest.fixture
def pixel_server(pixel_factory) -> PixelProcess:
    """A real `pixel serve` (collector with 2 workers + store process on chDB) in a temp data folder."""
    return pixel_factory("serve")


# -- markers: what machinery a test needs -------------------------------------------------------------------
# A module needs Docker, sshd or Chromium when its source uses them (a Docker client or provisioner, the stack
# tests' helpers, an sshd started by the test, Playwright), or when a test asks for a fixture that does; the
# marker is applied here so that a new test cannot forget it (a single test can also carry one explicitly). `scripts/test -m "not docker and not sshd and not
# chromium"` then runs everything a laptop without them can run. A test whose machinery is missing still fails
# (it is not skipped): the markers only select.
_NEEDS: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    (
        "docker",
        re.compile(
            r"docker_client|stack_helpers|edge_helpers|connect\(EngineTarget|Provisioner\(|docker\.from_env|DockerClient"
        ),
        frozenset({"docker_client", "pixel_image"}),
    ),
    ("sshd", re.compile(r"\bsshd\b"), frozenset()),
    ("chromium", re.compile(r"\bplaywright\b"), frozenset({"browser"})),
)


@functools.cache
def _source(path: Path) -> str:
    """A test module's source, read once per run."""
    return path.read_text(encoding="utf-8")


@functools.cache
def needs_of(path: Path) -> frozenset[str]:
    """The markers a test module's source calls for."""
    return frozenset(name for name, pattern, _ in _NEEDS if pattern.search(_source(path)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(needs_of(item.path))
        fixtures = set(getattr(item, "fixturenames", ()))
        names.update(name for name, _, wanted in _NEEDS if wanted & fixtures)
        for name in sorted(names):
            item.add_marker(getattr(pytest.mark, name))
        if item.get_closest_marker("docker") and not in_docker_scope(item.path):
            raise pytest.UsageError(
                f"{item.nodeid} needs Docker but its module does not say so in its source (name a docker "
                "fixture or write @pytest.mark.docker): it could run beside another Docker test on a parallel worker"
            )


# -- parallel runs: all Docker tests on one worker ----------------------------------------------------------
# scripts/test runs pytest-xdist with `--dist loadfile`: one module per worker at a time, so module-scoped
# fixtures (a store filled with a data set) are built once. The Docker tests share the one engine, its image tags,
# published ports and a second dockerd, so they form one work unit together: xdist's controller sees only test
# ids, hence the decision by the module's source.


@functools.cache
def in_docker_scope(path: Path) -> bool:
    """Whether a test module runs in the Docker work unit: it uses Docker's machinery or marks a test docker."""
    return "docker" in needs_of(path) or "mark.docker" in _source(path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    root = Path(str(config.rootpath))

    class DockerTogether(LoadFileScheduling):
        """loadfile, but every module in the Docker scope is one work unit."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "docker" if in_docker_scope(root / module) else module

    return DockerTogether(config, log)
