"""The docker/sshd/chromium markers tests/conftest.py applies: collected in a fresh pytest, each known module gets
exactly the markers its machinery calls for, so `-m "not docker and not sshd and not chromium"` selects what a
machine without them can run."""

from __future__ import annotations

import os
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


def _pytest(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A fresh `pytest -q args` (no cache) in `cwd`, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _collected(expression: str, *paths: str) -> list[str]:
    """The test ids a fresh `pytest --collect-only -m expression paths` lists."""
    out = _pytest("--collect-only", "-m", expression, *paths)
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


# -- the parallel scheduler (scripts/test: pytest-xdist, `--dist loadfile`) ---------------------------------
# A small suite in a temporary folder that loads tests/conftest.py as a plugin, so its hooks run on made-up modules.

_PLUGIN_CONFTEST = """
import os
import pytest

pytest_plugins = ["tests.conftest"]


@pytest.fixture
def docker_client():
    return None


@pytest.fixture
def hidden(docker_client):  # needs Docker without the test module naming it
    return None


@pytest.fixture
def worker_log(request):
    def write():
        with open(os.environ["WORKER_LOG"], "a") as out:
            out.write(f"{request.node.path.name} {os.environ.get('PYTEST_XDIST_WORKER', '-')}\\n")
    return write
"""


def _run_suite(
    folder: Path, modules: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    (folder / "conftest.py").write_text(_PLUGIN_CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\nmarkers =\n    docker: d\n    sshd: s\n    chromium: c\n")
    for name, source in modules.items():
        (folder / name).write_text(source)
    log = folder / "workers.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKER_LOG": str(log)}
    out = _pytest("--rootdir", str(folder), *args, str(folder), cwd=folder, env=env)
    return out, log


def test_every_docker_module_runs_on_one_worker_and_the_others_spread(tmp_path: Path) -> None:
    """Three Docker modules (a docker fixture, a Docker client, one test marked) and three plain ones on three
    workers: plain loadfile would hand each worker a Docker module first."""
    body = "def test_{n}(worker_log):\n    worker_log()\n"
    modules = {
        "test_a_fixture.py": "def test_a(docker_client, worker_log):\n    worker_log()\n",
        "test_b_client.py": "DockerClient = None\n\n" + body.format(n="b"),
        "test_c_marked.py": "import pytest\n\n\n@pytest.mark.docker\n"
        + body.format(n="c")
        + "\n\n"
        + body.format(n="c2"),
        **{f"test_plain_{i}.py": body.format(n=i) + "\n\n" + body.format(n=f"{i}b") for i in range(3)},
    }
    out, log = _run_suite(tmp_path, modules, "-n", "3", "--dist", "loadfile")
    assert out.returncode == 0, out.stdout + out.stderr
    ran = [line.split() for line in log.read_text().splitlines()]
    assert len(ran) == 10
    workers = {module: {w for m, w in ran if m == module} for module, _ in ran}
    docker = set().union(*(workers[m] for m in ("test_a_fixture.py", "test_b_client.py", "test_c_marked.py")))
    assert len(docker) == 1, workers
    # a module stays on one worker
    assert all(len(workers[f"test_plain_{i}.py"]) == 1 for i in range(3)), workers
    assert len(set().union(*workers.values())) == 3, workers  # the other workers were used


def test_a_test_needing_docker_through_another_fixture_stops_the_collection(tmp_path: Path) -> None:
    """The scheduler decides by the module's source; a test that gets Docker only through a fixture of a fixture
    would escape the Docker work unit, so collection refuses it by name."""
    out, _ = _run_suite(tmp_path, {"test_hidden.py": "def test_h(hidden):\n    pass\n"}, "--collect-only")
    assert out.returncode != 0
    assert "test_hidden.py::test_h needs Docker but its module does not say so" in out.stdout + out.stderr
