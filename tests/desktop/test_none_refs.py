"""`pin_none` cushions every singleton the affected PySide6 build loses references to: None (void calls) and
True/False (drained in long desktop sessions until the process aborted with "bool_dealloc")."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None, True and False are immortal from CPython 3.12")
def test_pin_none_cushions_none_true_and_false() -> None:
    code = (
        "import sys\n"
        "from pixel.app.desktop.none_refs import CUSHION, pin_none\n"
        "pin_none()\n"
        "pin_none()\n"  # a second call adds nothing
        "print(*(sys.getrefcount(x) // CUSHION for x in (None, True, False)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.split() == ["1", "1", "1"]
