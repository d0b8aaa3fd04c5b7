"""A whole plan -> resources. The only place that knows the order of things."""

from __future__ import annotations

from typing import Optional

import pulumi

from core.import_file import DNS_COMPONENT_NAME
from core.model import Plan
from core.swarm import SwarmPlan

from .dns import DnsRecords
from .network import Networks
from .secret_values import Secrets
from .service import Service
from .swarm import SwarmServiceResource
from .volume import Volumes


def deploy(plan: Plan, swarm: Optional[SwarmPlan] = None) -> None:
    """On one Docker host, or (`swarm`) as the services of a Docker Swarm."""
    secrets = Secrets("secrets", plan.stack, plan.secrets)
    if swarm is None:
        networks = Networks("networks", plan.networks)
        volumes = Volumes("volumes", plan.volumes)
        services: dict[str, Service] = {}
        for container in plan.containers:  # in plan order: what a container starts after comes first
            # a site starts once Traefik is on its network: a new network (a new
            # site, a flipped egress) is connected before the site is routed there
            edge_connections = [s.connections[container.edge_network] for s in services.values()
                                if container.edge_network in s.connections]
            services[container.name] = Service(
                container, secrets=secrets.values, networks=networks.names, volumes=volumes.names,
                after=[services[name].container for name in container.starts_after] + edge_connections)
        names = {name: s.container.name for name, s in services.items()}
        records = plan.dns_records
    else:
        # a volume is local to the node its service is pinned to: the task's mount
        # makes it there (core.swarm), so no volume resource on the manager
        networks = Networks("networks", plan.networks, driver="overlay")
        built: dict[str, pulumi.Output[str]] = {}  # each image the program builds, once
        declared: dict[str, SwarmServiceResource] = {}
        for service in swarm.services:  # in plan order: what a service starts after comes first
            declared[service.container.name] = SwarmServiceResource(
                service, secrets=secrets.values, networks=networks.ids, endpoint_mode=swarm.endpoint_mode,
                platform=swarm.platform, built=built,
                after=[declared[name].service for name in service.container.starts_after])
        names = {name: s.service.name for name, s in declared.items()}
        records = swarm.dns_records
    if records:
        DnsRecords(DNS_COMPONENT_NAME, plan.stack, plan.dns_zones, records)

    pulumi.export("hostnames", {
        host: container.name for container in plan.containers for host in container.public_hostnames})
    pulumi.export("containers", names)
    # every generated or provided password a person types, readable with
    # `pulumi stack output <key> --show-secrets`
    for spec in plan.secrets:
        if spec.login:
            pulumi.export(spec.config_key, pulumi.Output.secret(secrets.values[spec.name]))
