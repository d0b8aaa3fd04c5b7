"""The suite's figures, printed in pytest's summary (conftest.pytest_terminal_summary):
what the engine did, how long it took, how many requests failed. Printed, never
asserted on time."""

from __future__ import annotations

LINES: list[str] = []


def say(line: str) -> None:
    LINES.append(line)
