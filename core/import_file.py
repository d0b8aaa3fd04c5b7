"""Files for `pulumi import --file`: existing resources adopted under the exact
URNs the program declares (type, logical name and parent component), so that
the next `pulumi up` finds them instead of creating duplicates.

Pure: the Pulumi layer (components/) takes the component types and names from
here, and a test compares the URNs these files imply with the program's own.
"""

from __future__ import annotations

from typing import Any

from .model import Plan

PROJECT = "fourlb"
# the DNS component: components/dns.py DnsRecords, declared by components/platform.py
DNS_COMPONENT_TYPE = "fourlb:cloudflare:DnsRecords"
DNS_COMPONENT_NAME = "dns"
DNS_RECORD_TYPE = "cloudflare:index/dnsRecord:DnsRecord"


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
