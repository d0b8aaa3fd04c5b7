"""Named Docker volumes: the platform's data."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from core.model import Volume


class Volumes(pulumi.ComponentResource):
    """Declares volumes under their exact names, so Docker hands back the host's
    existing volume (and its data) instead of creating an empty one.

    Protected and retained: neither a removed line of config nor `pulumi destroy`
    deletes a database's files.
    """

    def __init__(self, name: str, volumes: tuple[Volume, ...],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("fourlb:docker:Volumes", name, None, opts)
        self.names: dict[str, pulumi.Output[str]] = {}
        for volume in volumes:
            resource = docker.Volume(
                volume.name,
                name=volume.name,
                opts=pulumi.ResourceOptions(
                    parent=self, protect=volume.protected, retain_on_delete=volume.protected),
            )
            self.names[volume.name] = resource.name
        self.register_outputs({"names": self.names})
