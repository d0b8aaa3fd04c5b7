"""Named Docker volumes: the platform's data."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker

from core.import_file import VOLUMES_COMPONENT_TYPE
from core.model import Volume


class Volumes(pulumi.ComponentResource):
    """Declares volumes under their exact Docker names (the plan's key, or the name
    the stack maps it to: fourlb:volumeNames), so Docker hands back the host's
    existing volume (and its data) instead of creating an empty one.

    Protected and retained: neither a removed line of config nor `pulumi destroy`
    deletes a database's files. An adopted volume (fourlb:takeover) is imported:
    if it is not there, the deployment stops instead of creating it empty.
    """

    def __init__(self, name: str, volumes: tuple[Volume, ...],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(VOLUMES_COMPONENT_TYPE, name, None, opts)
        self.names: dict[str, pulumi.Output[str]] = {}
        for volume in volumes:
            resource = docker.Volume(
                volume.name,  # the key: mapping a Docker name keeps the URN
                name=volume.engine_name,
                opts=pulumi.ResourceOptions(
                    parent=self, protect=volume.protected, retain_on_delete=volume.protected,
                    import_=volume.engine_name if volume.adopted else None,
                    # the program sets no labels; Docker Compose puts com.docker.compose.*
                    # on the volumes it creates, the provider reads them back, and a label
                    # change would replace (i.e. fail on) a protected volume
                    ignore_changes=["labels"]),
            )
            self.names[volume.name] = resource.name
        self.register_outputs({"names": self.names})
