"""What `python -m plan diff` says a change does, next to what the engine will do.

Both sides are reduced to one word per container, network and volume: added,
removed, replaced, updated (a subject missing from the result is unchanged).
The engine's side comes from `pulumi preview --diff --json`; plan diff's from
`plan.diff.diff_documents` on the plan documents before and after the change,
which is what the command prints.
"""

from __future__ import annotations

from typing import Any

from plan.diff import PLACEMENT_SUFFIX, diff_documents

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SERVICE = "docker:index/service:Service"
CONNECTION = "command:local:Command"
# components.service names a container's connection to one more network so
CONNECTION_INFIX = "-on-"

KINDS_BY_OP = {
    "create": "added",
    "delete": "removed",
    "update": "updated",
    "replace": "replaced",
    "create-replacement": "replaced",
    "delete-replaced": "replaced",
}
SUBJECTS = {CONTAINER: "containers", SERVICE: "containers", NETWORK: "networks", VOLUME: "volumes"}


def _type_and_name(urn: str) -> tuple[str, str]:
    qualified_type, name = urn.split("::")[-2:]
    return qualified_type.split("$")[-1], name


def engine_changes(steps: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per subject kind, the name of each container, network and volume the engine
    changes, and how. A connection of a running container to one more network
    (components.connection) that is made, remade or undone is an update of that
    container, as plan diff counts it."""
    changes: dict[str, dict[str, str]] = {"containers": {}, "networks": {}, "volumes": {}}
    connected: set[str] = set()
    for step in steps:
        kind = KINDS_BY_OP.get(step["op"])
        if kind is None:
            continue
        resource_type, name = _type_and_name(step["urn"])
        if resource_type in SUBJECTS:
            changes[SUBJECTS[resource_type]][name] = kind
        elif resource_type == CONNECTION and CONNECTION_INFIX in name:
            connected.add(name.split(CONNECTION_INFIX)[0])
    for container in connected:
        changes["containers"].setdefault(container, "updated")
    return changes


def plan_diff_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The same, from plan diff: a network whose kind changes (internal or with a
    way out) is a new network for Docker, so plan diff's "changed" is a replacement.
    On a swarm a service that rolls, or whose placement changes, is one the engine
    updates (plan.diff._on_swarm)."""
    diff = diff_documents(before, after, "engine-suite", "before", "after")
    containers: dict[str, str] = {}
    for change in diff.containers:
        name, placement = change.subject.removesuffix(PLACEMENT_SUFFIX), change.subject.endswith(PLACEMENT_SUFFIX)
        kind = "updated" if change.kind == "rolled" or placement else change.kind
        if containers.get(name) not in ("replaced", "added", "removed"):
            containers[name] = kind
    return {
        "containers": containers,
        "networks": {c.subject: "replaced" if c.kind == "changed" else c.kind for c in diff.networks},
        "volumes": {c.subject: c.kind for c in diff.volumes},
    }


def counts(changes: dict[str, dict[str, str]]) -> tuple[int, int]:
    """(replaced, updated) over every subject."""
    kinds = [kind for subject in changes.values() for kind in subject.values()]
    return kinds.count("replaced"), kinds.count("updated")


def disagreements(predicted: dict[str, dict[str, str]],
                  engine: dict[str, dict[str, str]]) -> list[str]:
    """Each subject on which plan diff and the engine differ, as one line."""
    lines = []
    for subject in ("containers", "networks", "volumes"):
        for name in sorted(predicted[subject].keys() | engine[subject].keys()):
            said = predicted[subject].get(name, "unchanged")
            done = engine[subject].get(name, "unchanged")
            if said != done:
                lines.append(f"{subject[:-1]} {name}: plan diff says {said}, the engine {done}")
    return lines
