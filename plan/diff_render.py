"""A plan diff for people (plain text, Markdown for the pull-request comment)
and for programs (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Iterable

from .diff import Change, FieldChange, StackDiff
from .markdown import code, table

# The pull-request workflow finds its previous comment by this first line and
# edits it instead of adding a new one on every push.
COMMENT_MARKER = "<!-- fourlb-plan-diff -->"

# Label keys carry router names that change on each replacement: a handful is
# enough to see what moved, the rest would drown the comment.
MAX_NAMES_SHOWN = 6

_SYMBOLS = {"added": "+", "removed": "-", "re-pointed": "~", "changed": "~",
            "replaced": "±", "rolled": "±", "updated": "~", "unprotected": "!", "renamed": "!"}


def diffs_json(diffs: Iterable[StackDiff]) -> str:
    data = [asdict(d) | {"volumes_at_risk": list(d.volumes_at_risk)} for d in diffs]
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


def field_summary(change: FieldChange) -> str:
    if change.before is not None or change.after is not None:
        return f"{change.field}: {change.before} -> {change.after}"
    if change.names:
        shown = ", ".join(change.names[:MAX_NAMES_SHOWN])
        more = len(change.names) - MAX_NAMES_SHOWN
        return f"{change.field} ({shown}{f' and {more} more' if more > 0 else ''})"
    return change.field


def _what(change: Change) -> str:
    if change.kind == "added":
        return change.after
    if change.kind == "removed":
        return f"was {change.before}"
    if change.kind == "re-pointed" or not change.fields:
        text = f"{change.before} -> {change.after}"
    else:
        text = "; ".join(field_summary(f) for f in change.fields)
    return f"{text} ({change.note})" if change.note else text


def _title(diff: StackDiff) -> str:
    return f"{diff.stack}: {diff.base} -> {diff.head}"


# Plain text


def diffs_text(diffs: Iterable[StackDiff]) -> str:
    lines: list[str] = []
    for diff in diffs:
        lines.append(_title(diff))
        lines += [f"  note: {note}" for note in diff.notes]
        if diff.is_empty:
            lines.append("  no changes")
        for volume in diff.volumes_at_risk:
            lines.append(f"  DATA AT RISK: volume {volume} would be removed or left unprotected")
        for section, changes in _sections(diff):
            if changes:
                lines.append(f"  {section}:")
                lines += [f"    {_SYMBOLS[c.kind]} {c.subject} {c.kind}: {_what(c)}"
                          for c in changes]
    return "\n".join(lines) + "\n"


def _sections(diff: StackDiff) -> tuple[tuple[str, tuple[Change, ...]], ...]:
    return (("routes", diff.routes), ("DNS records", diff.dns), ("containers", diff.containers),
            ("volumes", diff.volumes), ("networks", diff.networks))


# Markdown (the pull-request comment)


def diffs_markdown(diffs: Iterable[StackDiff]) -> str:
    diffs = list(diffs)
    lines = [COMMENT_MARKER, "## Plan diff", ""]
    if all(d.is_empty for d in diffs):
        lines += ["No change to routes, DNS, containers, volumes or networks.", ""]
    for diff in diffs:
        lines += _stack_markdown(diff)
    lines.append("_Computed from the stack files alone (`python -m plan diff`); Pulumi's "
                 "previews compare with the deployed state._")
    return "\n".join(lines) + "\n"


def _stack_markdown(diff: StackDiff) -> list[str]:
    lines = [f"### {code(diff.stack)}: {code(diff.base)} → {code(diff.head)}", ""]
    lines += [f"> Note: {note}" for note in diff.notes]
    if diff.volumes_at_risk:
        names = ", ".join(code(v) for v in diff.volumes_at_risk)
        lines += ["> [!CAUTION]", f"> **Data at risk**: volume {names} would be removed or "
                  "left unprotected. Its data is lost if Pulumi deletes it.", ""]
    if diff.is_empty:
        return lines + ["No changes.", ""]
    lines.append(_counts(diff))
    lines.append("")
    sections = (("Routes", "Hostname", diff.routes), ("DNS records", "Record", diff.dns),
                ("Containers", "Container", diff.containers), ("Volumes", "Volume", diff.volumes),
                ("Networks", "Network", diff.networks))
    for title, subject, changes in sections:
        if changes:
            lines += [f"#### {title}", ""] + table(
                (subject, "Change", "What"),
                ((code(c.subject), _kind_markdown(c, diff), _what(c)) for c in changes)) + [""]
    return lines


def _kind_markdown(change: Change, diff: StackDiff) -> str:
    at_risk = change in diff.volumes and change.subject in diff.volumes_at_risk
    if change.kind == "replaced" or at_risk:
        return f"**{change.kind}**"
    return change.kind


def _counts(diff: StackDiff) -> str:
    kinds = [c.kind for c in diff.containers]
    containers = ", ".join(f"{kinds.count(kind)} {kind}"
                           for kind in ("replaced", "rolled", "updated", "added", "removed")
                           if kind in kinds) or "none changed"
    return (f"**Routes: {len(diff.routes)} changed. DNS records: {len(diff.dns)} changed. "
            f"Containers: {containers}.**")
