"""The edge joins a client site's network while it runs (components.connection):
the program's own connect and disconnect scripts, run with the docker CLI against
this engine, leave the running container as it was."""

from __future__ import annotations

from components.connection import CONTAINER_VAR, NETWORK_VAR

from .changes import E2E_LABEL
from .declared import Declared
from .platform import Platform

NEW_SITE_NETWORK = "edge-e2e-new-site"


def networks_of(platform: Platform, name: str) -> list[str]:
    return sorted(platform.engine.inspect(name)["NetworkSettings"]["Networks"])


def test_a_new_site_network_is_connected_and_disconnected_while_the_edge_runs(
        platform: Platform, stacks: dict[str, Declared]) -> None:
    traefik = stacks["prod"].container("traefik")
    connection = next(c for c in stacks["prod"].connections if c.service == "traefik")
    before = platform.engine.inspect(traefik.name)
    network = platform.engine.create_network({"Name": NEW_SITE_NETWORK, "Internal": True,
                                              "Labels": dict([E2E_LABEL])})
    environment = {**connection.environment, NETWORK_VAR: NEW_SITE_NETWORK,
                   CONTAINER_VAR: before["Id"]}
    try:
        for attempt in ("connect", "connect again"):  # the second finds it there
            result = platform.run_script(connection.create, environment)
            assert result.returncode == 0, (attempt, result.stdout + result.stderr)
            assert NEW_SITE_NETWORK in networks_of(platform, traefik.name), attempt
        after = platform.engine.inspect(traefik.name)
        assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])
        assert after["State"]["Running"]

        result = platform.run_script(connection.delete, environment)
        assert result.returncode == 0, result.stdout + result.stderr
        assert networks_of(platform, traefik.name) == sorted(before["NetworkSettings"]["Networks"])
        # a container already gone is connected to nothing: its deletion succeeds
        gone = platform.run_script(connection.delete, {**environment, CONTAINER_VAR: "no-such-container"})
        assert gone.returncode == 0, gone.stdout + gone.stderr
    finally:
        platform.engine.remove_network(network)
    assert not platform.engine.networks(name=NEW_SITE_NETWORK)
