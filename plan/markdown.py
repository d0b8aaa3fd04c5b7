"""Small Markdown helpers shared by the plan and diff renderings."""

from __future__ import annotations

from typing import Iterable, Sequence


def code(text: object) -> str:
    # a backtick inside inline code would end it early
    return "`" + str(text).replace("`", "'") + "`"


def cell(text: object) -> str:
    """One table cell: pipes would split it, newlines would end the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["_none_"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines
