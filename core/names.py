"""Names the program makes for itself, which no setting may take.

A site's container is named after the site, its network with Traefik after it
too (core.networks), and the shared network after `sharedNetwork`. The program
names its own containers (the platform services, their configuration writers
`<service>-config`, on a swarm each node role's backup `backup-<role>`) and
networks (the catalog's, each routed service's `edge-<service>`, each served
sites stack's `edge-stack-<stack>`). Two things of one name are one thing to
Docker and to the plan's lookups: a site called `traefik-config` would take the
place of Traefik's writer and leave Traefik without its middlewares, a site
called `stack-dev` would share dev's network. So a clash is refused, naming the
setting and what already has that name.
(Volumes: core.build._volumes.)
"""

from __future__ import annotations

from typing import Iterable, Optional

from config.models import StackConfig

from . import catalog
from .backup import node_backup_name
from .live_config import writer_name
from .networks import edge_network, stack_edge_network

Problem = tuple[str, str, str]  # (setting key, its value, what is allowed)


def program_containers(config: Optional[StackConfig] = None) -> dict[str, str]:
    """Container name -> what it is, for every container the program names (with
    `config` on a swarm, each node role's backup it may run, core.backup)."""
    names = {spec.name: f"the platform service {spec.name}" for spec in catalog.PLATFORM_SERVICES}
    names.update({writer_name(spec.name): f"the writer of {spec.name}'s files"
                  for spec in catalog.PLATFORM_SERVICES if spec.live_config})
    if config is not None and config.swarm is not None:
        roles = set(config.swarm.placement.values()) | set(config.swarm.nodes.values())
        names.update({node_backup_name(role): f"the backup of the node role {role}"
                      for role in sorted(roles)})
    return names


def program_networks(served_stacks: Iterable[str]) -> dict[str, str]:
    """Network name -> what it is, for every network the program names."""
    names = {name: f"the platform's network ({purpose})"
             for name, purpose in {**catalog.INTERNAL_NETWORKS, **catalog.EGRESS_NETWORKS}.items()}
    names.update({edge_network(spec.name, spec.egress): f"the network of Traefik and {spec.name}"
                  for spec in catalog.PLATFORM_SERVICES if spec.route and not spec.listen_on})
    names.update({stack_edge_network(stack): f"the network of the sites of stack {stack}"
                  for stack in served_stacks})
    return names


def clashes(config: StackConfig, stack: str, served_stacks: Iterable[str]) -> list[Problem]:
    served_stacks = tuple(served_stacks)
    problems: list[Problem] = []
    containers = program_containers(config)
    networks = program_networks(served_stacks)
    if config.role == "sites":
        networks[stack_edge_network(stack)] = "this stack's network with the edge"
    for name, site in config.sites.items():
        if name in containers and name not in catalog.SERVICES_BY_NAME:  # services: refused in build
            problems.append((f"sites.{name}", name,
                             f"allowed: a name the program does not give a container of its own "
                             f"({name} is {containers[name]})"))
    if config.shared_network in networks and config.shared_network != catalog.PUBLIC_NET:
        problems.append(("sharedNetwork", config.shared_network,
                         f"allowed: a network the program does not name otherwise "
                         f"({config.shared_network} is {networks[config.shared_network]})"))
    networks.setdefault(config.shared_network, "the shared network (sharedNetwork)")
    if config.role == "platform":
        for name, site in sorted(config.sites.items()):
            own = edge_network(name, site.egress)
            if own in networks:
                problems.append((f"sites.{name}", name,
                                 f"allowed: a name whose network with Traefik, {own}, is no other "
                                 f"network of the platform (it is {networks[own]})"))
            networks.setdefault(own, f"the network of Traefik and site {name}")
    return problems
