"""The docker/sshd/chromium markers tests/conftest.py applies: collected in a fresh pytest, each known module gets
exactly the markers its machinery calls for, so `-m "not docker and not sshd and not chromium"` selects what a
machine without them can run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> markers every one of its tests must carry (and no others of the three)
EXPECTED = {
    "tests/stack/test_stack_lifecycle.py": {"docker"},  # the docker_client fixture
    "tests/stack/test_stack_remote.py": {"docker", "sshd"},
    "tests/tracker/test_browser.py": {"chromium"},  # the browser fixture of tests/tracker
    "tests/desktop/test_stack_page.py": {"docker"},  # a provisioner on the local engine
    "tests/collector/test_collector_http.py": set(),
    "tests/stack/test_edge_spec.py": set(),
}


def _collected(expression: str, *paths: str) -> list[str]:
    """The test ids a fresh `pytest --collect-only -m expression paths` lists."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "-m",
            expression,
            *paths,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 5), out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if "::" in line]


def _selected(expression: str) -> set[str]:
    return {line.split("::")[0] for line in _collected(expression, *EXPECTED)}


def test_each_marker_selects_exactly_the_modules_that_need_it() -> None:
    for marker in ("docker", "sshd", "chromium"):
        assert _selected(marker) == {m for m, needs in EXPECTED.items() if marker in needs}, marker


def test_a_machine_without_them_runs_the_rest() -> None:
    assert _selected("not docker and not sshd and not chromium") == {m for m, n in EXPECTED.items() if not n}


def test_one_test_can_carry_a_marker_of_its_own() -> None:
    assert _collected("docker", "tests/stack/test_docker_host.py") == [
        "tests/stack/test_docker_host.py::test_this_machines_engine"
    ]
