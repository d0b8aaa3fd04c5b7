"""A whole plan -> resources. The only place that knows the order of things."""

from __future__ import annotations

import pulumi

from core.import_file import DNS_COMPONENT_NAME
from core.model import Plan

from .dns import DnsRecords
from .network import Networks
from .secret_values import Secrets
from .service import Service
from .volume import Volumes


def deploy(plan: Plan) -> dict[str, Service]:
    networks = Networks("networks", plan.networks)
    volumes = Volumes("volumes", plan.volumes)
    secrets = Secrets("secrets", plan.stack, plan.secrets)
    services: dict[str, Service] = {}
    for container in plan.containers:  # in plan order: what a container starts after comes first
        services[container.name] = Service(
            container, secrets=secrets.values, networks=networks.names, volumes=volumes.names,
            after=[services[name].container for name in container.starts_after])
    if plan.dns_records:
        DnsRecords(DNS_COMPONENT_NAME, plan.stack, plan.dns_zones, plan.dns_records)

    pulumi.export("hostnames", {
        host: container.name for container in plan.containers for host in container.public_hostnames})
    pulumi.export("containers", {name: s.container.name for name, s in services.items()})
    # every generated or provided password a person types, readable with
    # `pulumi stack output <key> --show-secrets`
    for spec in plan.secrets:
        if spec.login:
            pulumi.export(spec.config_key, pulumi.Output.secret(secrets.values[spec.name]))
    return services
