"""The upgrade as the CLI and the desktop run it (`manage.upgrade_to_image`) on the compact stack with the
real Pixel image (built once per session by conftest.pixel_image): the exact steps it reports, and
`pixel stack upgrade` reporting the very same steps on its progress bar."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

from stack_helpers import PIXEL_TAG, compact_test_values, unique_project

from pixel.app.stack.cli import Bar
from pixel.app.stack.manage import open_stack, upgrade_to_image
from pixel.app.stack.progress import Progress
from pixel.server.cli import main

V2 = f"{PIXEL_TAG}-v2"  # the same image under new names: an upgrade that replaces the container
V3 = f"{PIXEL_TAG}-v3"


def _steps(events: list[Progress]) -> list[tuple[str, int | None, str]]:
    """(step, percent, message); the health waits are left out: how many depends on the host's speed."""
    return [
        (e.step, None if e.fraction is None else round(e.fraction * 100), e.message)
        for e in events
        if not (e.step == "health" and e.fraction is None)
    ]


def _bar_lines(text: str) -> list[str]:
    """The progress bar's lines, without the health waits, a backup's time stamp made neutral."""
    return [
        re.sub(r"-\d{8}-\d{6}\.tar\.gz", "-STAMP.tar.gz", line)
        for line in text.splitlines()
        if "] health: waiting for " not in line
    ]


def _rendered(events: list[Progress]) -> list[str]:
    """What the CLI's progress bar draws for `events` on a stderr that is not a terminal."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        bar = Bar()
        for event in events:
            bar(event)
    return _bar_lines(out.getvalue())


def test_upgrade_steps_are_one_sequence_for_function_and_cli(docker_client, pixel_image, cleanup, capsys):
    project = unique_project("pxu")
    values = compact_test_values(pixel_image)
    prov = open_stack(docker_client, project, "compact", values)
    cleanup.append(prov)
    image = docker_client.images.get(pixel_image)
    for ref in (V2, V3):
        image.tag(*ref.rsplit(":", 1))
    try:
        prov.install()
        with tempfile.TemporaryDirectory(prefix="pxu") as tmp:  # short: the bar's lines are cut at 150
            events: list[Progress] = []
            backup = upgrade_to_image(prov, V2, backup_dir=Path(tmp), progress=events.append)
            assert backup.parent == Path(tmp) and backup.name.startswith(f"{project}-before-upgrade-")
            assert _steps(events) == [
                ("stop", None, "stopping pixel"),
                ("backup", 0, "copying volume data"),
                ("health", 100, "pixel is healthy"),
                ("backup", 100, f"backup written to {backup}"),
                ("stop", None, "stopping pixel"),
                ("upgrade", None, "starting new pixel"),
                ("start", None, "pixel changed: replacing its container"),
                ("health", 100, "pixel is healthy"),
                ("upgrade", 100, "upgrade complete"),
            ]
            assert prov.container("pixel").attrs["Config"]["Image"] == V2
            assert prov.settings["PIXEL_IMAGE"] == V2

            capsys.readouterr()
            assert main(["stack", "upgrade", "--name", project, "--image", V3, "--backup-dir", tmp]) == 0
            out, err = capsys.readouterr()
            assert out.startswith(f"upgraded to {V3}; backup kept at {tmp}/{project}-before-upgrade-")
            assert _bar_lines(err) == _rendered(events)
        again = open_stack(docker_client, project)
        assert again.container("pixel").attrs["Config"]["Image"] == V3
        assert again.settings == {**values, "PIXEL_IMAGE": V3}
    finally:
        for ref in (V2, V3):
            docker_client.images.remove(ref)
