"""The provisioning and API-client layers stay Qt-free, so the CLI (`pixel stack install --site`) and
the desktop app share them: importing every module of `pixel.app.stack` and `pixel.app.client` (the
onboarding and the API connection included) in a fresh interpreter loads no PySide6 module."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import pixel.app.client, pixel.app.stack
names = []
for package in (pixel.app.stack, pixel.app.client):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(sorted(n for n in ("pixel.app.stack.onboarding", "pixel.app.client.connect") if n in names))
print(sorted(m for m in sys.modules if m.split(".")[0] == "PySide6"))
"""


def test_stack_and_client_load_no_qt() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    onboarding, qt = out.stdout.splitlines()
    assert onboarding == "['pixel.app.client.connect', 'pixel.app.stack.onboarding']"
    assert qt == "[]"
