"""Progress is per call: every provisioner operation reports to the callback it was given, the object
keeps none (so two operations on one provisioner, on two threads, never report to each other's callback,
and a finished caller's callback hears nothing more). Real busybox stacks on the local engine."""

from __future__ import annotations

import ast
import inspect
import threading
from pathlib import Path

from stack_helpers import BUSYBOX, busybox_spec, unique_project

from pixel.app.stack.progress import Progress
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import HealthCheck, Service, replace_image

APP = Path(__file__).resolve().parents[2] / "app"


def _late(name: str, delay: str) -> Service:
    """A service that turns healthy `delay` seconds after it starts (its check reads a file made then)."""
    return Service(
        name=name,
        image=BUSYBOX,
        command=("sh", "-c", f"rm -f /tmp/ready; sleep {delay}; touch /tmp/ready; exec sleep 3600"),
        healthcheck=HealthCheck(
            test=("cat", "/tmp/ready"), interval=0.3, timeout=2.0, retries=30, start_period=0.0
        ),
        mem_limit="32m",
        stop_grace=1.0,
    )


def _texts(events: list[Progress]) -> list[tuple[str, float | None, str]]:
    return [(e.step, e.fraction, e.message) for e in events]


def test_two_concurrent_operations_report_to_their_own_callbacks(docker_client, cleanup):
    p = Provisioner(docker_client, busybox_spec(unique_project(), _late("early", "2"), _late("late", "4")))
    cleanup.append(p)
    p.install()
    p.stop(timeout=1)
    early: list[Progress] = []
    late: list[Progress] = []
    both = threading.Barrier(2)
    errors: list[BaseException] = []

    def wait(service: str, events: list[Progress]) -> None:
        both.wait()
        try:
            p.container(service).start()  # starting again: healthy after its delay
            p.wait_healthy(service, 30, progress=events.append)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=a) for a in (("early", early), ("late", late))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for service, events in (("early", early), ("late", late)):
        # each waited at least once (they overlapped), and heard only its own service
        assert _texts(events)[-1] == ("health", 1.0, f"{service} is healthy")
        assert {m for _, f, m in _texts(events)[:-1]} == {f"waiting for {service} (starting)"}
    assert len(late) > len(early)  # the later service was waited for longer, on its own callback


def test_a_finished_callers_callback_hears_nothing_more(docker_client, cleanup, tmp_path):
    p = Provisioner(docker_client, busybox_spec(unique_project()))
    cleanup.append(p)
    first: list[Progress] = []
    p.install(progress=first.append)
    heard = len(first)
    assert _texts(first)[-1] == ("start", 1.0, "all services healthy")
    p.restart()
    p.backup(tmp_path / "b.tar.gz")
    assert len(first) == heard
    second: list[Progress] = []
    p.stop(timeout=1, progress=second.append)
    assert _texts(second) == [("stop", None, "stopping web")]
    assert len(first) == heard


def test_the_provisioner_keeps_no_progress_callback(docker_client, cleanup, tmp_path):
    assert "progress" not in inspect.signature(Provisioner).parameters
    p = Provisioner(docker_client, busybox_spec(unique_project()))
    cleanup.append(p)
    events: list[Progress] = []
    p.install(progress=events.append)
    p.backup(tmp_path / "b.tar.gz", progress=events.append)
    docker_client.images.get(BUSYBOX).tag("pixel-test/busybox", "v2")
    p.upgrade(
        replace_image(p.spec, BUSYBOX, "pixel-test/busybox:v2"), backup_dir=tmp_path, progress=events.append
    )
    assert events and not hasattr(p, "progress")
    assert [k for k, v in vars(p).items() if callable(v)] == []


def _progress_assignments(source: str, where: Path) -> list[str]:
    """`<something>.progress = …` statements in `source` (the file `where` under app/): the provisioner's
    own (`self.progress`) anywhere under app/stack, any object's but `self`'s (`prov.progress = …`) elsewhere."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Attribute) and t.attr == "progress":
                owner = ast.unparse(t.value)
                if owner != "self" or where.parts[0] == "stack":
                    found.append(f"{where}:{node.lineno}: {owner}.progress")
    return found


def test_no_code_assigns_a_progress_callback_onto_an_object():
    assert (APP / "stack" / "provisioner").is_dir()  # the scan reads this checkout's app/
    hits = [
        hit
        for path in sorted(APP.rglob("*.py"))
        for hit in _progress_assignments(path.read_text(), path.relative_to(APP))
    ]
    assert hits == []


def test_the_assignment_scan_sees_the_old_patterns():
    """The scan above is not blind: the stack page's former `prov.progress = …` and the provisioner's
    former `self.progress = progress` are found; a widget's own `self.progress` outside app/stack is not."""
    page = (
        "def work(task):\n    prov.progress = task.progress_callback\n    prov.progress = lambda _e: None\n"
    )
    assert _progress_assignments(page, Path("desktop/stack_page.py")) == [
        "desktop/stack_page.py:2: prov.progress",
        "desktop/stack_page.py:3: prov.progress",
    ]
    init = "class P:\n    def __init__(self, progress):\n        self.progress: object = progress\n"
    assert _progress_assignments(init, Path("stack/provisioner/core.py")) == [
        "stack/provisioner/core.py:3: self.progress"
    ]
    assert _progress_assignments(init, Path("desktop/wizard.py")) == []
