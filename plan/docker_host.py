"""What `python -m plan adopt` reads of a Docker host: a read-only Engine API client.

GET requests only, over the engine's unix socket (DOCKER_HOST=unix://..., default
/var/run/docker.sock). The answers are reduced at once to `adopt.HostFacts`, which
hold no secret: of a container's env only the names are kept (plus the values of
a few settings that are not secret, e.g. POSTGRES_USER, and of `*_FILE` paths), of
its labels only the keys (plus Compose's own), and the word after a password flag
of its command is dropped.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from typing import Any, Mapping, Optional

from .adopt import (COMPOSE_PROJECT, COMPOSE_SERVICE, COMPOSE_VOLUME, PLAIN_ENV, REDACTED,
                    SECRET_FLAGS, HostContainer, HostFacts, HostMount, HostNetwork, HostVolume)

DEFAULT_SOCKET = "/var/run/docker.sock"
# a Redis 7 append-only file always comes with this manifest (relative to its /data)
AOF_MANIFEST = "appendonlydir/appendonly.aof.manifest"


class DockerHostError(RuntimeError):
    pass


def socket_path(docker_host: Optional[str]) -> str:
    if not docker_host:
        return DEFAULT_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://")
    raise DockerHostError(
        f"DOCKER_HOST={docker_host}: adopt reads the engine through its unix socket; run it on "
        "the host (DOCKER_HOST unset or unix:///var/run/docker.sock), or forward the socket: "
        "ssh -nNT -L /tmp/4lb-docker.sock:/var/run/docker.sock deploy@<host> & and "
        "DOCKER_HOST=unix:///tmp/4lb-docker.sock")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class DockerHost:
    """GET-only access to one engine. `timeout`: /system/df sums every volume's size."""

    def __init__(self, docker_host: Optional[str], timeout: float = 300.0):
        self.url = docker_host or f"unix://{DEFAULT_SOCKET}"
        self.path = socket_path(docker_host)
        self.timeout = timeout

    def get(self, path: str, query: Optional[Mapping[str, Any]] = None,
            missing_ok: bool = False) -> Any:
        url = path + ("?" + urllib.parse.urlencode(
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in query.items()})
            if query else "")
        connection = UnixHTTPConnection(self.path, self.timeout)
        try:
            connection.request("GET", url)
            response = connection.getresponse()
            data = response.read()
        except OSError as error:
            raise DockerHostError(f"no Docker engine at {self.url} ({error})") from None
        finally:
            connection.close()
        if missing_ok and response.status == 404:
            return None
        if response.status != 200:
            raise DockerHostError(f"GET {path}: HTTP {response.status}: "
                                  f"{data.decode(errors='replace').strip()[:300]}")
        return json.loads(data) if data and data[:1] in (b"{", b"[") else data

    def exists(self, container: str, path: str) -> bool:
        """Whether `path` exists in the container (or a volume it mounts): the stat
        header of GET /containers/{id}/archive, on a small file only."""
        return self.get(f"/containers/{container}/archive", {"path": path},
                        missing_ok=True) is not None

    def facts(self, probe_aof_at: tuple[str, ...] = ("/data",)) -> HostFacts:
        version = self.get("/version")
        df = self.get("/system/df")
        sizes = {v["Name"]: (v.get("UsageData") or {}).get("Size", -1) for v in df.get("Volumes") or []}
        volumes = tuple(HostVolume(
            name=v["Name"], labels=dict(v.get("Labels") or {}),
            size=sizes.get(v["Name"], -1) if sizes.get(v["Name"], -1) >= 0 else None)
            for v in self.get("/volumes").get("Volumes") or [])
        containers = []
        for summary in self.get("/containers/json", {"all": 1}):
            inspected = self.get(f"/containers/{summary['Id']}/json")
            container = reduce_container(inspected)
            aof = None
            for mount in container.mounts:
                if mount.destination in probe_aof_at:
                    aof = self.exists(container.id, f"{mount.destination}/{AOF_MANIFEST}")
            containers.append(container if aof is None else container.with_aof(aof))
        networks = tuple(HostNetwork(
            name=n["Name"], id=n["Id"], driver=n.get("Driver", ""),
            internal=bool(n.get("Internal")),
            compose_project=(n.get("Labels") or {}).get(COMPOSE_PROJECT))
            for n in self.get("/networks"))
        images = frozenset(tag for image in self.get("/images/json")
                           for tag in image.get("RepoTags") or () if tag != "<none>:<none>")
        return HostFacts(docker_host=self.url, version=version.get("Version", "?"),
                         volumes=volumes, containers=tuple(containers), networks=networks,
                         images=images)


def reduce_container(inspected: Mapping[str, Any]) -> HostContainer:
    """A container as `GET /containers/{id}/json` shows it, without its secrets."""
    config = inspected.get("Config") or {}
    host = inspected.get("HostConfig") or {}
    labels = config.get("Labels") or {}
    env_names, env = set(), {}
    for entry in config.get("Env") or ():
        name, _, value = entry.partition("=")
        env_names.add(name)
        if name in PLAIN_ENV or name.endswith("_FILE"):
            env[name] = value
    words = list(config.get("Cmd") or ())
    command = tuple(REDACTED if index and words[index - 1] in SECRET_FLAGS else word
                    for index, word in enumerate(words))
    ports = sorted({int(binding["HostPort"]) for bindings in (host.get("PortBindings") or {}).values()
                    for binding in bindings or () if binding.get("HostPort")})
    return HostContainer(
        name=inspected["Name"].lstrip("/"),
        id=inspected["Id"],
        image=config.get("Image", ""),
        running=bool((inspected.get("State") or {}).get("Running")),
        compose_project=labels.get(COMPOSE_PROJECT),
        compose_service=labels.get(COMPOSE_SERVICE),
        label_keys=frozenset(labels),
        env_names=frozenset(env_names),
        env=env,
        command=command,
        mounts=tuple(HostMount(type=m.get("Type", ""), name=m.get("Name") or "",
                               source=m.get("Source") or "", destination=m.get("Destination", ""))
                     for m in inspected.get("Mounts") or ()),
        host_ports=tuple(ports),
        networks=tuple(sorted((inspected.get("NetworkSettings") or {}).get("Networks") or {})),
    )


__all__ = ["DockerHost", "DockerHostError", "reduce_container", "COMPOSE_VOLUME"]
