"""A swarm service's running tasks, the lab node each runs on, and commands in them."""

from __future__ import annotations

from typing import Any, Sequence

from .lab import Lab, Node


def running_tasks(lab: Lab, service: str) -> list[dict[str, Any]]:
    tasks = lab.manager.api("GET", "/tasks", query={"filters": {"service": [service],
                                                                "desired-state": ["running"]}})
    return [task for task in tasks if task["Status"]["State"] == "running"]


def node_of(lab: Lab, task: dict[str, Any]) -> Node:
    hostname = lab.manager.api("GET", f"/nodes/{task['NodeID']}")["Description"]["Hostname"]
    (node,) = [node for node in lab.nodes if node.name == hostname]
    return node


def exec_in(lab: Lab, task: dict[str, Any], argv: Sequence[str]) -> str:
    """`argv` in the task's container, on its node (`docker exec`); its stdout. A failure
    raises with the command's stderr."""
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    return node_of(lab, task).docker("exec", container, *argv, timeout=300).stdout
