"""Files for `pulumi import --file`: existing resources adopted under the exact
URNs the program declares (type, logical name and parent component), so that
the next `pulumi up` finds them instead of creating duplicates.

Pure: the Pulumi layer (components/) takes the component types and names from
here, and a test compares the URNs these files imply with the program's own.
"""

from __future__ import annotations

from typing import Any, Mapping

from .model import Plan

PROJECT = "fourlb"
# the DNS component: components/dns.py DnsRecords, declared by components/platform.py
DNS_COMPONENT_TYPE = "fourlb:cloudflare:DnsRecords"
DNS_COMPONENT_NAME = "dns"
DNS_RECORD_TYPE = "cloudflare:index/dnsRecord:DnsRecord"
# the Docker components: components/volume.py Volumes and components/network.py
# Networks, declared by components/platform.py
VOLUMES_COMPONENT_TYPE = "fourlb:docker:Volumes"
VOLUMES_COMPONENT_NAME = "volumes"
VOLUME_TYPE = "docker:index/volume:Volume"
NETWORKS_COMPONENT_TYPE = "fourlb:docker:Networks"
NETWORKS_COMPONENT_NAME = "networks"
NETWORK_TYPE = "docker:index/network:Network"


def component_urn(stack: str, typ: str, name: str) -> str:
    """The URN of a component declared at the top of the program (parent: the stack)."""
    return f"urn:pulumi:{stack}::{PROJECT}::{typ}::{name}"


def dns_record_id_placeholder(zone: str, name: str, typ: str) -> str:
    return f"<zone id of {zone}>/<id of the {typ} record {name}>"


def dns_import_file(plan: Plan) -> dict[str, Any]:
    """Every DNS record of the plan, its ID to be filled in: `<zone id>/<record id>`
    (Cloudflare's dashboard, or GET /zones/<zone id>/dns_records?name=<name>)."""
    return {
        "nameTable": {DNS_COMPONENT_NAME: component_urn(plan.stack, DNS_COMPONENT_TYPE,
                                                        DNS_COMPONENT_NAME)},
        "resources": [
            {"type": DNS_RECORD_TYPE, "name": record.logical_name, "parent": DNS_COMPONENT_NAME,
             "id": dns_record_id_placeholder(record.zone, record.name, record.type)}
            for record in plan.dns_records
        ],
    }


def docker_import_file(volumes: Mapping[str, str], networks: Mapping[str, str]) -> dict[str, Any]:
    """Existing Docker volumes and networks under the program's names: `volumes` maps
    a plan volume to the Docker volume holding its data (a volume's import ID is its
    name), `networks` a plan network to the existing network's ID.

    For a stack without state (the first deployment on a host): the parent
    components are created by the import too (empty, `component: true`), under the
    URNs the program then declares them with."""
    resources: list[dict[str, Any]] = []
    for component_type, component, typ, ids in (
            (VOLUMES_COMPONENT_TYPE, VOLUMES_COMPONENT_NAME, VOLUME_TYPE, volumes),
            (NETWORKS_COMPONENT_TYPE, NETWORKS_COMPONENT_NAME, NETWORK_TYPE, networks)):
        if not ids:
            continue
        resources.append({"type": component_type, "name": component, "component": True})
        resources += [{"type": typ, "name": name, "parent": component, "id": ident}
                      for name, ident in sorted(ids.items())]
    return {"resources": resources}
