"""Checks across the stacks that share one Traefik (prod and dev on the host)."""

from __future__ import annotations

from pathlib import Path

from config.errors import Problem, StackConfigError
from config.loading import PROJECT_DIR, StackFile, stack_names
from config.models import StackConfig

from .build import build_plan
from .model import Plan


def edge_owner(stack: str, config: StackConfig) -> str:
    return config.edge_stack if config.role == "sites" and config.edge_stack else stack


def check_shared_edge(stack: str, config: StackConfig, plan: Plan,
                      project_dir: Path = PROJECT_DIR) -> None:
    """One Traefik cannot route a hostname to two stacks: reject the second."""
    owner = edge_owner(stack, config)
    problems: list[Problem] = []
    siblings = [name for name in stack_names(project_dir) if name != stack]
    if config.role == "sites" and owner not in siblings:
        problems.append(Problem("fourlb:edgeStack", owner,
                                "allowed: a platform stack of this project: "
                                + ", ".join(siblings)))
    mine = {host: container.name for container in plan.containers
            for host in container.public_hostnames}
    for other in siblings:
        try:
            other_file = StackFile(other, project_dir)
            other_config = other_file.config()
        except StackConfigError:
            continue  # that stack reports its own problems when it is deployed
        if other == owner and other_config.role != "platform":
            problems.append(Problem("fourlb:edgeStack", owner, "allowed: a stack whose role is platform"))
        if edge_owner(other, other_config) != owner:
            continue
        try:
            other_plan = build_plan(other_config, other)
        except StackConfigError:
            continue
        for container in other_plan.containers:
            for host in container.public_hostnames:
                if host in mine:
                    problems.append(Problem(
                        f"fourlb:sites.{mine[host]}" if mine[host] in config.sites
                        else f"fourlb:services.{mine[host]}",
                        host,
                        f"allowed: a hostname that stack '{other}' (same Traefik) does not "
                        f"already route to {container.name}"))
    if problems:
        raise StackConfigError(stack, problems)


def load_plan(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[StackConfig, Plan]:
    """From the stack file alone: the validated config and its plan."""
    config = StackFile(stack, project_dir).config()
    plan = build_plan(config, stack)
    check_shared_edge(stack, config, plan, project_dir)
    return config, plan
