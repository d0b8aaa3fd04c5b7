"""The local stack as the real engine deploys it: reaching it, and clearing it.

Traefik is the program's own container, publishing 80 and 443 on the host as
the stack declares; every request goes to 127.0.0.1 with the SNI and Host of a
`*.localhost` name.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from tests.e2e.client import Response, https_get
from tests.e2e.engine import Engine

HTTPS_PORT = 443  # what the local stack publishes
LOAD_MAX_REQUESTS = 20000
LOAD_MAX_SECONDS = 900
# under every rate limit the tests set (300/min per client IP): a refusal is a failure
LOAD_INTERVAL_S = 0.25


def route_path(route: dict[str, Any]) -> str:
    return (route.get("path_prefix") or "") + "/"


def get(route: dict[str, Any], auth: Optional[tuple[str, str]] = None) -> Response:
    return https_get(HTTPS_PORT, route["hostname"], route_path(route), auth=auth)


def answered(response: Response) -> bool:
    """Answered by the route's backend: not Traefik's 404 (no router), 502/503/504
    (no healthy server), nor a refusal of the admin middlewares."""
    return response.status < 400


@dataclass
class Load:
    """GETs to one route in a loop on a thread, bounded in count and time; every
    status kept."""

    route: dict[str, Any]
    statuses: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, status)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def __enter__(self) -> "Load":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_MAX_SECONDS
        while not self.stop.is_set() and len(self.statuses) < LOAD_MAX_REQUESTS \
                and time.monotonic() < deadline:
            try:
                status = str(get(self.route).status)
            except OSError as error:
                status = type(error).__name__
            self.statuses.append(status)
            self.timeline.append((time.monotonic(), status))
            self.stop.wait(LOAD_INTERVAL_S)

    @property
    def failures(self) -> list[str]:
        return [s for s in self.statuses if not (s.isdigit() and int(s) < 400)]


# a start-first container's Docker name: its plan name and a random suffix (components.service)
INSTANCE_SUFFIX = re.compile(r"-[0-9a-f]{6}$")


def is_instance_of(docker_name: str, name: str) -> bool:
    """Whether the Docker container `docker_name` is the plan's container `name`."""
    return docker_name == name or INSTANCE_SUFFIX.sub("", docker_name) == name


def platform_names(document: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The Docker names of the stack's containers, networks and volumes."""
    containers = set(document["containers"])
    networks = {name for name, network in document["networks"].items() if not network.get("external")}
    volumes = {volume.get("docker_name", name) for name, volume in document["volumes"].items()}
    return containers, networks, volumes


def clear(docker: Engine, document: dict[str, Any]) -> list[str]:
    """Removes every container, network and volume of the stack's names (a
    start-first container's name carries a suffix: <name>-<hex>), whoever made
    them. Returns what was removed."""
    containers, networks, volumes = platform_names(document)
    removed = []
    for container in docker.request("GET", "/containers/json", {"all": "1"}):
        names = [n.lstrip("/") for n in container.get("Names", [])]
        if any(is_instance_of(n, c) for n in names for c in containers):
            docker.request("DELETE", f"/containers/{container['Id']}", {"force": 1}, ok=(204, 404))
            removed.append(f"container {names[0]}")
    for network in docker.networks():
        if network["Name"] in networks:
            docker.remove_network(network["Id"])
            removed.append(f"network {network['Name']}")
    for volume in docker.volumes():
        if volume["Name"] in volumes:
            docker.remove_volume(volume["Name"])
            removed.append(f"volume {volume['Name']}")
    return removed
