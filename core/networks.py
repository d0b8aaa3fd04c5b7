"""Who reaches whom inside the host: the plan's networks.

A container reaches another only where the two share a network. Traefik reaches
each routed container on a network of that container's own, `edge-<container>`
(Traefik and it, nothing else; `edge-<container>-out` when it has a way out), so a client site reaches nothing but Traefik and
an admin UI is out of every site's reach. The sites of a sites stack (dev) share
one network with the edge, `edge-stack-<stack>`, declared by the edge's stack:
adding a dev site then changes nothing in prod, and they reach nothing of prod's
but Traefik.

Traefik is created on its fixed networks and connected to each client site's
network by a connection of its own (Container.connected_networks, rendered as a
`docker network connect` by components.connection): a container's networks are
replace-on-change in the Docker provider, so a site added to its creation list
would restart the edge. A connection made afterwards is not read back into the
container's state (the provider sets `networks_advanced` on read only when the
program declares none), so it causes no drift either.

The other networks are the catalog's (core.catalog): each joins the services
that talk to each other. An internal one that only one container of the stack
would join (its peers are switched off) connects nothing and is left out.

On a swarm a service's networks cannot change without replacing it (the Docker
provider), so the edge joins `fourlb:swarm.edgeSlots` networks in advance,
`edge-slot-<k>`, and each client site takes one (`fourlb:sites.<name>.edgeSlot`):
adding a site leaves the edge as it is. A site's way out is then a network of its
own, `<site>-out`.

Docker's default address pools hold 31 bridge networks (15 /16 networks in
172.17-31.0.0, the first taken by docker0, and 16 /20 networks in 192.168.0.0/16);
`DEFAULT_POOL_NETWORKS` is what `python -m plan` counts against. More sites
than that need a larger pool in /etc/docker/daemon.json (README).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Iterable

from config.errors import MISSING
from config.models import StackConfig

from . import catalog
from .model import Container, Network

EDGE = "traefik"
DEFAULT_POOL_NETWORKS = 30  # 31 less docker0


def edge_network(container: str, egress: bool = False) -> str:
    """The network of Traefik and one container. Its name carries whether it has a
    way out of the host: Docker's `internal` flag cannot change on a network, so a
    flipped `egress` makes a network of another name, created before the container
    moves to it, and the old one is deleted once empty (an unchanged name would be
    created again while it still exists, and fail)."""
    return f"edge-{container}-out" if egress else f"edge-{container}"


def stack_edge_network(stack: str) -> str:
    return f"edge-stack-{stack}"


def edge_slot_network(slot: int) -> str:
    """On a swarm, one of the networks the edge joins in advance; one client site
    takes it (fourlb:sites.<name>.edgeSlot)."""
    return f"edge-slot-{slot}"


def site_egress_network(site: str) -> str:
    """On a swarm, a client site's way out of the host: a network of its own,
    beside its edge slot, which stays internal."""
    return f"{site}-out"


def edge_slots(config: StackConfig) -> tuple[str, ...]:
    """The edge's slot networks: on a swarm's platform stack only."""
    if config.engine != "swarm" or config.role != "platform" or config.swarm is None:
        return ()
    return tuple(edge_slot_network(k) for k in range(1, config.swarm.edge_slots + 1))


def check_edge_slots(config: StackConfig) -> list[tuple[str, object, str]]:
    """(key, value, what is allowed) for each client site of a swarm without a slot
    of its own."""
    slots = edge_slots(config)
    if not slots:
        return []
    taken: dict[int, str] = {}
    problems = []
    for name, site in config.sites.items():
        if site.edge_slot is not None and site.edge_slot <= len(slots) and site.edge_slot not in taken:
            taken[site.edge_slot] = name
    free = [k for k in range(1, len(slots) + 1) if k not in taken]
    hint = f"free: {', '.join(map(str, free))}" if free else "none is free: raise fourlb:swarm.edgeSlots"
    for name, site in config.sites.items():
        key = f"sites.{name}.edgeSlot"
        if site.edge_slot is None:
            problems.append((key, MISSING, f"required on a swarm: a slot of 1-{len(slots)} "
                             f"(fourlb:swarm.edgeSlots), one site each; {hint}"))
        elif site.edge_slot > len(slots):
            problems.append((key, site.edge_slot, f"allowed: 1-{len(slots)} (fourlb:swarm.edgeSlots); {hint}"))
        elif taken[site.edge_slot] != name:
            problems.append((key, site.edge_slot, f"allowed: a slot no other site takes "
                             f"({taken[site.edge_slot]} has it; sites on one network reach each other); {hint}"))
    return problems


def with_edge_networks(containers: list[Container], config: StackConfig, stack: str,
                       served_stacks: Iterable[str]) -> list[Container]:
    """Each routed container on its network with Traefik; Traefik on all of them."""
    if config.role == "sites":
        shared = stack_edge_network(stack)
        return [replace(c, networks=(shared,) + c.networks, edge_network=shared) if c.routes else c
                for c in containers]
    result: list[Container] = []
    edges: list[str] = []
    sites: list[str] = []  # the networks that come and go with the stack's client sites
    for container in containers:
        if container.routes and container.name != EDGE and container.listen_on:
            # reached where it listens, with the peers already there
            edges.append(container.listen_on[0])
            container = replace(container, edge_network=container.listen_on[0])
        elif container.routes and container.role == "site" and edge_slots(config):
            # a slot the edge joined in advance: adding the site changes nothing of the edge
            own = edge_slot_network(config.sites[container.name].edge_slot or 0)
            out = (site_egress_network(container.name),) if container.egress else ()
            container = replace(container, networks=(own,) + out + container.networks, edge_network=own)
        elif container.routes and container.name != EDGE:
            own = edge_network(container.name, container.egress)
            (sites if container.role == "site" else edges).append(own)
            container = replace(container, networks=(own,) + container.networks, edge_network=own)
        result.append(container)
    edges += [stack_edge_network(other) for other in served_stacks] + list(edge_slots(config))
    # a swarm service's networks are declared with it (a change replaces it, so the
    # client sites' slots are joined in advance): nothing to connect later
    connected = tuple(sites) if config.engine == "docker" else ()
    return [replace(c, networks=c.networks + tuple(edges + sites), connected_networks=connected,
                    edge_network=config.shared_network)
            if c.name == EDGE else c for c in result]


def without_lonely_networks(containers: list[Container]) -> list[Container]:
    members = Counter(n for c in containers for n in c.networks)
    lonely = {n for n in catalog.INTERNAL_NETWORKS if members[n] == 1}
    return [replace(c, networks=tuple(n for n in c.networks if n not in lonely),
                    connected_networks=tuple(n for n in c.connected_networks if n not in lonely))
            for c in containers]


def declared_networks(containers: Iterable[Container], config: StackConfig, stack: str,
                      served_stacks: Iterable[str]) -> tuple[Network, ...]:
    containers = tuple(containers)
    used = {n for c in containers for n in c.networks}
    networks: list[Network] = []
    if config.role == "sites":
        if stack_edge_network(stack) in used:
            networks.append(Network(
                stack_edge_network(stack), internal=False, external=True,
                purpose=f"Traefik and this stack's sites; declared by stack {config.edge_stack}"))
    elif config.shared_network in used:
        networks.append(Network(config.shared_network, internal=False,
                                purpose="the edge: ports 80 and 443, Traefik's way out"))
    for container in containers:
        if container.edge_network == edge_network(container.name, container.egress):
            way_out = ", with a way out of the host" if container.egress else ""
            networks.append(Network(container.edge_network, internal=not container.egress,
                                    purpose=f"Traefik and {container.name}{way_out}"))
    for container in containers:
        if container.role == "site" and site_egress_network(container.name) in container.networks:
            networks.append(Network(site_egress_network(container.name), internal=False,
                                    purpose=f"{container.name}'s way out of the host"))
    if config.role == "platform" and any(c.name == EDGE for c in containers):
        # one purpose whoever takes it: a network's label cannot change in place
        for slot in edge_slots(config):
            networks.append(Network(slot, internal=True, purpose="Traefik and the client site that takes "
                                    "this slot (fourlb:sites.<name>.edgeSlot)"))
        for other in served_stacks:
            networks.append(Network(stack_edge_network(other), internal=False,
                                    purpose=f"Traefik and the sites of stack {other}"))
    for name, purpose in catalog.INTERNAL_NETWORKS.items():
        if name in used:
            networks.append(Network(name, internal=True, purpose=purpose))
    for name, purpose in catalog.EGRESS_NETWORKS.items():
        if name in used:
            networks.append(Network(name, internal=False, purpose=purpose))
    return tuple(networks)


def reachability(containers: Iterable[Container]) -> dict[tuple[str, str, str], bool]:
    """(from, to, network of `to`) -> whether `from` reaches `to`'s port there:
    exactly when it is on that network too, and `to` listens there. Every
    listening container of every given plan (the stacks of one host together),
    from every other."""
    containers = tuple(containers)
    return {(source.name, target.name, network):
            network in source.networks and (target.listen_on is None or target.listen_on[0] == network)
            for target in containers if target.port
            for network in target.networks
            for source in containers if source.name != target.name}
