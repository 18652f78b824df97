"""Typed progress events: the provisioner emits them, the CLI draws a progress bar, the GUI a dialog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    step: str  # short machine-friendly name: "pull", "build", "create", "health", "backup", ...
    fraction: float | None  # 0..1 within the step; None = indeterminate
    message: str  # one line for a person


ProgressCallback = Callable[[Progress], None]


def ignore(_event: Progress) -> None:
    """Default callback when the caller does not watch progress."""
