"""Docker networks of a plan."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from core.model import Network


class Networks(pulumi.ComponentResource):
    """Declares the plan's own networks; external ones are joined by name only.
    On a swarm they are overlay networks, not attachable: only services join."""

    def __init__(self, name: str, networks: tuple[Network, ...], driver: str = "bridge",
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("fourlb:docker:Networks", name, None, opts)
        self.names: dict[str, pulumi.Input[str]] = {}
        self.ids: dict[str, pulumi.Input[str]] = {}  # a swarm service names its networks by ID
        for network in networks:
            if network.external:
                self.names[network.name] = self.ids[network.name] = network.name
                continue
            resource = docker.Network(
                network.name,
                name=network.name,
                driver=driver,
                attachable=False if driver == "overlay" else None,
                internal=network.internal,
                labels=[docker.NetworkLabelArgs(label="fourlb.purpose", value=network.purpose)],
                # a network made by hand and imported on a takeover carries none of our
                # labels: a label change would replace it under the running containers
                opts=pulumi.ResourceOptions(
                    parent=self, ignore_changes=["labels"] if network.adopted else None),
            )
            self.names[network.name] = resource.name
            self.ids[network.name] = resource.id
        self.register_outputs({"names": self.names})
