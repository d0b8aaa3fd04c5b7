"""The plan: what one stack deploys, as plain frozen data (no Pulumi here).

Secrets never appear in a plan. Where a container needs one, its env value or
uploaded file holds a placeholder `${secret:NAME}` that the component layer
replaces with the encrypted Output; `secret_names()` lists which it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal, Optional

# the container that writes a service's live configuration (core.live_config)
WRITER_SUFFIX = "-config"

SECRET_PLACEHOLDER = re.compile(r"\$\{secret:([a-z0-9-]+)\}")


def secret(name: str) -> str:
    """The placeholder for secret `name` inside an env value or a file."""
    return "${secret:" + name + "}"


def secret_names_in(text: str) -> set[str]:
    return set(SECRET_PLACEHOLDER.findall(text))


@dataclass(frozen=True)
class Network:
    name: str
    internal: bool  # no route out of the host; only the listed containers talk
    external: bool = False  # owned by another stack; joined by name, never declared
    purpose: str = ""
    # a stack taking over a host (fourlb:takeover): the network may be one made by
    # hand and imported (`python -m plan adopt --import-file`), without our labels
    adopted: bool = False


@dataclass(frozen=True)
class Volume:
    name: str  # the plan's key: mounts and the Pulumi resource are named by it
    purpose: str = ""
    # Volumes hold data: they are protected and kept by `pulumi destroy`.
    protected: bool = True
    # the Docker volume's name, when the stack maps the key (fourlb:volumeNames),
    # e.g. Compose's `ai-tools_postgres_data`
    docker_name: Optional[str] = None
    # a stack taking over a host (fourlb:takeover) imports this existing volume:
    # a missing one stops the deployment instead of being created empty
    adopted: bool = False

    @property
    def engine_name(self) -> str:
        return self.docker_name or self.name


@dataclass(frozen=True)
class Mount:
    target: str
    volume: Optional[str] = None
    host_path: Optional[str] = None
    read_only: bool = False


@dataclass(frozen=True)
class Upload:
    """A file written into the container before it starts."""

    path: str
    content: str
    mode: str = "0644"


@dataclass(frozen=True)
class PublishedPort:
    internal: int
    external: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]
    interval_s: int = 15
    timeout_s: int = 5
    retries: int = 5
    start_period_s: int = 20


# Placeholder, in a route's middlewares, for the container's own headers middleware.
SELF_HEADERS = "self-headers@docker"


@dataclass(frozen=True)
class Route:
    """One Traefik router: hostnames (and an optional path) to a container port."""

    name: str
    hostnames: tuple[str, ...]
    port: int
    middlewares: tuple[str, ...]
    path_prefix: Optional[str] = None
    # set when the router targets a Traefik internal service (the dashboard)
    internal_service: Optional[str] = None

    @property
    def rule(self) -> str:
        hosts = " || ".join(f"Host(`{host}`)" for host in self.hostnames)
        if len(self.hostnames) > 1:
            hosts = f"({hosts})"
        if self.path_prefix:
            return f"{hosts} && PathPrefix(`{self.path_prefix}`)"
        return hosts


# How Pulumi replaces a container whose inputs changed:
# - "stop-first": the old one is deleted, then the new one created (databases:
#   two processes must never share a data volume); fixed Docker name.
# - "start-first": the new one starts under a fresh name, becomes healthy and
#   takes traffic, then the old one goes (stateless sites and UIs).
UpdateOrder = Literal["stop-first", "start-first"]


@dataclass(frozen=True)
class HeaderPolicy:
    """An application's own response-header needs, where the strict default
    (core.traefik.DEFAULT_CSP, frames denied) would break it."""
    # None: the application sends its own Content-Security-Policy (per request:
    # nonces, script hashes), which a value from Traefik would overwrite
    csp: Optional[str]
    frame_options: Literal["DENY", "SAMEORIGIN"] = "DENY"
    permissions: str = "camera=(), microphone=(), geolocation=(), payment=()"
    why: str = ""  # the application's documented requirement, cited


@dataclass(frozen=True)
class Container:
    name: str  # the stable name users know (`docker logs NAME`, label fourlb.service)
    image: str
    networks: tuple[str, ...]
    role: str  # edge | data | ai | monitoring | tools | site
    port: Optional[int] = None  # the port the service listens on inside its network
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    uploads: tuple[Upload, ...] = ()
    routes: tuple[Route, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    published_ports: tuple[PublishedPort, ...] = ()
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()  # empty: the image's
    user: Optional[str] = None  # uid:gid; None: the image's
    healthcheck: Optional[HealthCheck] = None
    memory_mb: int = 256
    update_order: UpdateOrder = "start-first"
    stop_grace_s: int = 10
    log_max_size: str = "10m"
    log_max_files: int = 3
    restart: str = "unless-stopped"
    security_opts: tuple[str, ...] = ("no-new-privileges=true",)
    # its own response headers (a site's contentSecurityPolicy, a platform
    # service's policy), served by a label-defined headers middleware that its
    # routers reference as SELF_HEADERS
    headers: Optional[HeaderPolicy] = None
    # empty in-memory mounts laid over paths of a host bind mount, e.g. the
    # host's /run under a read-only `/` bind: a read-only bind does not stop
    # connect() on the Docker socket inside it, hiding it does
    tmpfs: tuple[str, ...] = ()
    # built on the host from this directory of the project instead of pulled,
    # for the host's CPU (`linux/amd64`, ...)
    build_context: Optional[str] = None
    build_platform: Optional[str] = None
    # a mutable registry tag: every deployment asks the registry for the tag's
    # digest and pulls (and replaces the container) when it moved
    follow_tag: bool = False
    # start-first: how long the old container keeps serving once the new one is
    # healthy, so that Traefik has taken the new one in before the old one goes
    settle_s: int = 0
    # containers of this plan that must exist first (e.g. the writer of its files)
    starts_after: tuple[str, ...] = ()
    # a routed container: the network on which Traefik reaches it (core.networks),
    # and whether that network also leads out of the host
    edge_network: Optional[str] = None
    egress: bool = False
    # (network, alias): listens only there, under that extra name (catalog.ServiceSpec)
    listen_on: Optional[tuple[str, str]] = None
    # those of `networks` it is connected to once it runs, by a resource of their
    # own, instead of at creation: a container's networks are replace-on-change,
    # a connection is not. The edge joins each client site's network this way
    # (core.networks), so that adding a site restarts nothing.
    connected_networks: tuple[str, ...] = ()
    # (name, address) lines of its /etc/hosts; the address may be Docker's
    # "host-gateway", the host's own address as its containers reach it
    extra_hosts: tuple[tuple[str, str], ...] = ()
    # Docker's --gpus ("all", "device=0,2"): the host's GPUs it may use
    gpus: Optional[str] = None
    # on a swarm, the node role its tasks run on whatever fourlb:swarm says: set by
    # the plan for a container that exists because of that node (a node's own
    # backup, core.backup, reads the volumes only that node has)
    node_role: Optional[str] = None

    @property
    def created_on(self) -> tuple[str, ...]:
        """The networks it is created on: all of them but those connected later."""
        return tuple(n for n in self.networks if n not in self.connected_networks)

    @property
    def address(self) -> str:
        """The name by which its peers reach its port."""
        return self.listen_on[1] if self.listen_on else self.name

    def secret_names(self) -> set[str]:
        names: set[str] = set()
        for _, value in self.env:
            names |= secret_names_in(value)
        for upload in self.uploads:
            names |= secret_names_in(upload.content)
        return names

    @property
    def public_hostnames(self) -> tuple[str, ...]:
        # a hostname served on two paths is still one hostname
        return tuple(dict.fromkeys(h for route in self.routes for h in route.hostnames))


def with_env_default(container: Container, name: str, value: str) -> Container:
    """`container` with env `name` set to `value`, unless it has one already (a
    value from the stack's fourlb:services.<name>.env is the owner's, and wins)."""
    if any(key == name for key, _ in container.env):
        return container
    return replace(container, env=container.env + ((name, value),))


@dataclass(frozen=True)
class DnsRecord:
    zone: str
    name: str  # full name, e.g. ai.4lb.ca
    type: Literal["A", "AAAA", "CNAME"]
    content: Optional[str]  # None until fourlb:dns.targetIpv4 is set (core.deploy_checks)
    proxied: bool = False
    ttl: int = 1  # 1 = automatic in Cloudflare

    @property
    def logical_name(self) -> str:
        return f"{self.name}-{self.type.lower()}"


@dataclass(frozen=True)
class SecretSpec:
    """A secret the stack needs. Taken from `pulumi config set --secret fourlb:<config_key>`
    when set, otherwise generated once (pulumi-random) and kept in the encrypted state."""

    name: str
    config_key: str
    length: int = 32
    generated: bool = True  # False: the user must provide it
    purpose: str = ""
    # for basic auth: a bcrypt hash of the password is also available as `<name>-bcrypt`
    bcrypt: bool = False
    # a password a person types: exported as the secret stack output `config_key`
    login: str = ""  # where, e.g. "grafana.4lb.ca (user admin)"


@dataclass(frozen=True)
class Plan:
    stack: str
    role: str
    networks: tuple[Network, ...]
    volumes: tuple[Volume, ...]
    containers: tuple[Container, ...]
    dns_records: tuple[DnsRecord, ...]
    secrets: tuple[SecretSpec, ...]
    dns_zones: tuple[str, ...] = field(default=())

    def container(self, name: str) -> Container:
        for container in self.containers:
            if container.name == name:
                return container
        raise KeyError(name)

    def files_of(self, name: str) -> tuple[Upload, ...]:
        """Every file container `name` reads that the program writes: its uploads,
        and those its writer installs in its configuration volume (core.live_config)."""
        writers = [c for c in self.containers
                   if c.name == name + WRITER_SUFFIX and c.name in self.container(name).starts_after]
        return self.container(name).uploads + tuple(u for w in writers for u in w.uploads)

    @property
    def public_hostnames(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for c in self.containers for h in c.public_hostnames))
