"""What the program declares for Docker, read from a mock run as plain values.

These are the exact inputs Pulumi would send to the Docker provider (secrets
unwrapped), keyed the way the provider's inputs are named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Optional

import yaml

from components.connection import CONTAINER_VAR, NETWORK_VAR
from core.edge import load_plan
from core.live_config import writer_name
from core.traefik import DYNAMIC_DIR
from core.model import Plan
from tests.mocks import Run, plain

from .changes import DYNAMIC, TRAEFIK_WRITER_ENV_CHANGES

NETWORK = "docker:index/network:Network"
COMMAND = "command:local:Command"
IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"
_PORT_LABEL = re.compile(r"^traefik\.http\.services\.([^.]+)\.loadbalancer\.server\.port$")
_ROUTER_LABEL = re.compile(r"^traefik\.http\.routers\.([^.]+)\.(.+)$")


@dataclass(frozen=True)
class DeclaredNetwork:
    name: str
    driver: str
    internal: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class DeclaredUpload:
    file: str
    content: str
    permissions: str


@dataclass(frozen=True)
class DeclaredContainer:
    stack: str
    service: str  # the plan's container name (Pulumi logical name, label fourlb.service)
    name: str  # the Docker container name
    image: str  # what the RemoteImage would pull
    labels: dict[str, str]
    networks: tuple[tuple[str, tuple[str, ...]], ...]  # (network, aliases)
    envs: tuple[str, ...]
    command: tuple[str, ...]
    entrypoint: tuple[str, ...]
    user: str  # empty: the image's
    healthcheck: Optional[dict[str, Any]]
    uploads: tuple[DeclaredUpload, ...]
    ports: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    memory_mb: int
    tmpfs: dict[str, str]
    extra_hosts: tuple[str, ...]  # name:address lines of /etc/hosts, as Docker takes them
    security_opts: tuple[str, ...]
    restart: str
    log_driver: str
    log_opts: dict[str, str]
    port: Optional[int]  # where the service listens: its load-balancer port, else the plan's

    def env(self, name: str) -> str:
        """The value of env `name`, declared exactly once."""
        (value,) = [e.split("=", 1)[1] for e in self.envs if e.startswith(name + "=")]
        return value

    def upload(self, path: str) -> DeclaredUpload:
        for upload in self.uploads:
            if upload.file == path:
                return upload
        raise KeyError(f"{self.name} has no upload {path}")

    def routers(self) -> dict[str, dict[str, str]]:
        """Router name -> its label settings (rule, service, middlewares, ...)."""
        routers: dict[str, dict[str, str]] = {}
        for key, value in self.labels.items():
            match = _ROUTER_LABEL.match(key)
            if match:
                routers.setdefault(match.group(1), {})[match.group(2)] = value
        return routers


@dataclass(frozen=True)
class DeclaredConnection:
    """A running container connected to a network (components.connection): the
    scripts and environment the Command runs."""
    service: str  # the container's, whose ID the mocks hand back as "<service>-id"
    network: str
    create: str
    delete: str
    environment: dict[str, str]


@dataclass(frozen=True)
class Declared:
    stack: str
    plan: Plan
    networks: tuple[DeclaredNetwork, ...]
    containers: tuple[DeclaredContainer, ...]
    connections: tuple[DeclaredConnection, ...] = ()

    def container(self, service: str) -> DeclaredContainer:
        for container in self.containers:
            if container.service == service:
                return container
        raise KeyError(f"stack {self.stack} declares no container {service}")


def declared(run: Run) -> Declared:
    assert run.error is None, f"the program failed for stack {run.stack}: {run.error}"
    _, plan = load_plan(run.stack)
    plan_ports = {c.name: c.port for c in plan.containers}
    networks = tuple(
        DeclaredNetwork(name=i["name"], driver=i.get("driver", "bridge"),
                        internal=bool(i.get("internal", False)),
                        labels={item["label"]: item["value"] for item in i.get("labels") or []})
        for i in (plain(r.inputs) for r in run.of_type(NETWORK)))
    containers = tuple(_container(run, service, plain(resource.inputs), plan_ports.get(service))
                       for service, resource in run.containers.items())
    return Declared(run.stack, plan, networks, containers, _connections(run))


def _connections(run: Run) -> tuple[DeclaredConnection, ...]:
    found = []
    for command in run.of_type(COMMAND):
        inputs = plain(command.inputs)
        environment = inputs.get("environment") or {}
        if CONTAINER_VAR not in environment:
            continue  # another command (a start-first settle)
        service = environment[CONTAINER_VAR].removesuffix("-id")
        assert service in run.containers, f"{command.name}: no container {service}"
        found.append(DeclaredConnection(service, environment[NETWORK_VAR], inputs["create"],
                                        inputs["delete"], environment))
    return tuple(found)


def _image_of(run: Run, service: str) -> str:
    """The image reference a container runs: pulled (RemoteImage) or built (Image)."""
    built = [r for r in run.of_type(BUILT_IMAGE) if r.name == service]
    if built:
        return built[0].inputs["imageName"]
    return run.one(IMAGE, service).inputs["name"]


def _container(run: Run, service: str, inputs: dict[str, Any], plan_port: Optional[int]) -> DeclaredContainer:
    labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
    lb_ports = {int(v) for k, v in labels.items() if _PORT_LABEL.match(k)}
    assert len(lb_ports) <= 1, f"{service}: several load-balancer ports {lb_ports}"
    return DeclaredContainer(
        stack=run.stack,
        service=service,
        name=inputs["name"],
        image=_image_of(run, service),
        labels=labels,
        networks=tuple((n["name"], tuple(n.get("aliases") or ())) for n in inputs.get("networksAdvanced") or []),
        envs=tuple(inputs.get("envs") or ()),
        command=tuple(inputs.get("command") or ()),
        entrypoint=tuple(inputs.get("entrypoints") or ()),
        user=inputs.get("user") or "",
        healthcheck=inputs.get("healthcheck"),
        uploads=tuple(DeclaredUpload(u["file"], u["content"], u.get("permissions", "0644"))
                      for u in inputs.get("uploads") or ()),
        ports=tuple(inputs.get("ports") or ()),
        volumes=tuple(inputs.get("volumes") or ()),
        memory_mb=int(inputs.get("memory") or 0),
        tmpfs=dict(inputs.get("tmpfs") or {}),
        extra_hosts=tuple(f"{h['host']}:{h['ip']}" for h in inputs.get("hosts") or ()),
        security_opts=tuple(inputs.get("securityOpts") or ()),
        restart=inputs.get("restart", "no"),
        log_driver=inputs.get("logDriver", "json-file"),
        log_opts=dict(inputs.get("logOpts") or {}),
        port=next(iter(lb_ports), plan_port),
    )


# Where the traefik image looks for its static configuration when given no flags.
TRAEFIK_STATIC_FILE = "/etc/traefik/traefik.yml"


def traefik_files(platform: Declared) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Traefik's static configuration (uploaded into the traefik container), and the
    file provider's files (name -> content), which its writer installs."""
    static = yaml.safe_load(platform.container("traefik").upload(TRAEFIK_STATIC_FILE).content)
    directory = static["providers"]["file"]["directory"].rstrip("/") + "/"
    writer = platform.container(writer_name("traefik"))
    dynamic = {u.file.removeprefix(directory): yaml.safe_load(u.content)
               for u in writer.uploads if u.file.startswith(directory)}
    assert dynamic, f"nothing uploaded into the file provider's directory {directory}"
    return static, dynamic


def with_files(container: DeclaredContainer, files: dict[str, Any]) -> DeclaredContainer:
    """`container` with the uploads at these paths holding this content (YAML for
    anything but text)."""
    def text(value: Any) -> str:
        return value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False)
    uploads = tuple(replace(u, content=text(files[u.file])) if u.file in files else u
                    for u in container.uploads)
    assert set(files) <= {u.file for u in container.uploads}, (set(files), container.service)
    return replace(container, uploads=uploads)


DYNAMIC_VOLUME = "traefik_dynamic"


def dynamic_writer(prod: Declared, tree: dict) -> DeclaredContainer:
    """traefik-config with the file provider's files of `tree` (a configuration
    tree as `changes.production_tree` makes it)."""
    files = {f"{DYNAMIC_DIR}/{name.removeprefix(DYNAMIC)}": content
             for name, content in tree.items() if name.startswith(DYNAMIC)}
    writer = with_files(prod.container(writer_name("traefik")), files)
    envs = tuple(f"{name}={TRAEFIK_WRITER_ENV_CHANGES[name][0]}"
                 if (name := env.partition("=")[0]) in TRAEFIK_WRITER_ENV_CHANGES else env
                 for env in writer.envs)
    assert envs != writer.envs, "changes.TRAEFIK_WRITER_ENV_CHANGES names no env of the writer"
    return replace(writer, envs=envs)
