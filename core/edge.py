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
    """One Traefik cannot route a hostname to two stacks, and one Docker engine
    cannot hold two containers of one name: reject the second stack."""
    owner = edge_owner(stack, config)
    problems: list[Problem] = []
    siblings = [name for name in stack_names(project_dir) if name != stack]
    if config.role == "sites" and owner not in siblings:
        problems.append(Problem("fourlb:edgeStack", owner,
                                "allowed: a platform stack of this project: "
                                + ", ".join(siblings)))
    neighbours: dict[str, Plan] = {}
    for other in siblings:
        try:
            other_config = StackFile(other, project_dir).config()
        except StackConfigError:
            continue  # that stack reports its own problems when it is deployed
        if other == owner and other_config.role != "platform":
            problems.append(Problem("fourlb:edgeStack", owner, "allowed: a stack whose role is platform"))
        if edge_owner(other, other_config) != owner:
            continue
        try:
            neighbours[other] = build_plan(other_config, other)
        except StackConfigError:
            continue
    problems += shared_edge_problems(config, plan, neighbours)
    if problems:
        raise StackConfigError(stack, problems)


def shared_edge_problems(config: StackConfig, plan: Plan,
                         neighbours: dict[str, Plan]) -> list[Problem]:
    """What `plan` may not share with the plans of the stacks on the same edge."""
    def key(container_name: str) -> str:
        section = "sites" if container_name in config.sites else "services"
        return f"fourlb:{section}.{container_name}"

    problems = []
    mine = {host: c.name for c in plan.containers for host in c.public_hostnames}
    for other, other_plan in sorted(neighbours.items()):
        for container in other_plan.containers:
            if any(container.name == c.name for c in plan.containers):
                problems.append(Problem(
                    key(container.name), container.name,
                    f"allowed: a name that stack '{other}' (same Docker host) does not use"))
            for host in container.public_hostnames:
                if host in mine:
                    problems.append(Problem(
                        key(mine[host]), host,
                        f"allowed: a hostname that stack '{other}' (same Traefik) does not "
                        f"already route to {container.name}"))
    return problems


def served_stacks(stack: str, config: StackConfig, project_dir: Path = PROJECT_DIR) -> tuple[str, ...]:
    """The sites stacks of this project whose edge is `stack`'s Traefik."""
    if config.role != "platform":
        return ()
    served = []
    for other in stack_names(project_dir):
        if other == stack:
            continue
        try:
            other_config = StackFile(other, project_dir).config()
        except StackConfigError:
            continue  # that stack reports its own problems when it is deployed
        if other_config.role == "sites" and other_config.edge_stack == stack:
            served.append(other)
    return tuple(sorted(served))


def load_plan(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[StackConfig, Plan]:
    """From the stack file alone: the validated config and its plan."""
    config = StackFile(stack, project_dir).config()
    plan = build_plan(config, stack, served_stacks(stack, config, project_dir))
    check_shared_edge(stack, config, plan, project_dir)
    return config, plan
