"""One error type for every bad stack setting, always naming key, value and rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    key: str  # as the user writes it in the stack file, e.g. fourlb:sites.jsr-dev.port
    value: Any
    allowed: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else repr(self.value)
        return f"{self.key} = {shown}: {self.allowed}"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING: Any = _Missing()
MISSING = _MISSING


class StackConfigError(ValueError):
    """Raised before any resource is declared; the message lists every problem."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"stack '{stack}' has an invalid configuration:\n{lines}")
