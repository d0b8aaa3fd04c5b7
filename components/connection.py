"""A running container connected to one more network (Container.connected_networks).

Docker's own `docker network connect`, run by pulumi-command where `pulumi up`
runs, against the Docker host the provider uses (`docker:host`, else
DOCKER_HOST). A new value of either variable (the container replaced, the
network renamed) runs the connection again; deleting it disconnects.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_command as command

# the variables the scripts read; tests/e2e runs the very scripts with them
NETWORK_VAR = "NETWORK"
CONTAINER_VAR = "CONTAINER"

# Idempotent: a connection that is already there (made before the state was
# lost, or by hand) is left as it is.
CONNECT = r"""set -eu
if docker container inspect --format '{{range $name, $_ := .NetworkSettings.Networks}}{{println $name}}{{end}}' "$CONTAINER" | grep -Fqx "$NETWORK"; then
    exit 0
fi
docker network connect "$NETWORK" "$CONTAINER"
"""
# A container already gone (replaced, removed) is connected to nothing: only
# a running one is disconnected, and a failure to do so stops the deletion
# before its network is deleted under it.
DISCONNECT = r"""set -eu
if docker container inspect "$CONTAINER" >/dev/null 2>&1; then
    docker network disconnect --force "$NETWORK" "$CONTAINER"
fi
"""


def connect(name: str, container_id: pulumi.Input[str], network: pulumi.Input[str],
            opts: pulumi.ResourceOptions) -> command.local.Command:
    environment: dict[str, pulumi.Input[str]] = {NETWORK_VAR: network, CONTAINER_VAR: container_id}
    docker_host: Optional[str] = pulumi.Config("docker").get("host")
    if docker_host:
        environment["DOCKER_HOST"] = docker_host
    return command.local.Command(name, create=CONNECT, delete=DISCONNECT,
                                 environment=environment, opts=opts)
