"""Errors a non-technical person can act on: what went wrong, and what to do about it."""

from __future__ import annotations

from pixel.app.errors import AppError


class StackError(AppError):
    """`problem` says what is wrong in plain words; `action` says what the user can do."""

    def __init__(self, problem: str, action: str = "", *, code: str = "error") -> None:
        super().__init__(problem)
        self.problem = problem
        self.action = action
        self.code = code  # stable identifier for the GUI and tests, e.g. "port-in-use"

    def __str__(self) -> str:
        return f"{self.problem}\n  What to do: {self.action}" if self.action else self.problem
