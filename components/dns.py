"""Cloudflare DNS records, one per public hostname, in the zone it belongs to."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_cloudflare as cloudflare

from core.import_file import DNS_COMPONENT_TYPE
from core.model import DnsRecord


class DnsRecords(pulumi.ComponentResource):
    def __init__(self, name: str, stack: str, zones: tuple[str, ...],
                 records: tuple[DnsRecord, ...], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(DNS_COMPONENT_TYPE, name, None, opts)
        invoke = pulumi.InvokeOptions(parent=self)
        zone_ids = {
            zone: cloudflare.get_zone_output(filter={"name": zone, "match": "all"}, opts=invoke).zone_id
            for zone in zones
        }
        self.records = {
            record.name: cloudflare.DnsRecord(
                record.logical_name,
                zone_id=zone_ids[record.zone],
                name=record.name,
                type=record.type,
                content=record.content,
                ttl=record.ttl,
                proxied=record.proxied,
                comment=f"managed by fourlb stack {stack}",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for record in records
        }
        self.register_outputs({"hostnames": sorted(self.records)})
