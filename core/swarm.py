"""The plan on Docker Swarm: the same containers, as services placed on nodes.

Pure, like the rest of the core: `swarm_plan(config, plan)` decides, per plan
container, where its tasks run (node label `fourlb.role`), how many, how an
update rolls, and how its files arrive. The renderer (components/swarm.py)
declares exactly that.

- A container that keeps data (a volume) is stateful: one task, pinned to the
  node role that holds its volume, updated stop-first. A volume is local to its
  node, so a stateful service without a node role, or with replicas, is a plan
  error, never a surprise at run time.
- The others are stateless: start-first with automatic rollback, one task at a
  time, each new task given time to be seen by Traefik before the next old one
  stops (Traefik's swarm provider polls: SWARM_REFRESH_S).
- A service the catalog runs on each node (catalog.EVERY_NODE, ITS_NODES) is
  global: one task per node, on every node or on each node of its role. Its
  volumes and host paths are its own node's and it never moves, so it needs no
  node role for them. Its writer runs on the same nodes: it writes the files
  into each node's volume.
- Files become configs, and files holding secrets become secrets; both are
  immutable in a swarm, so their names carry a digest of their content and a
  change creates the new one beside the old. An env value holding a secret is
  delivered as a secret file too, named by `<NAME>_FILE` (its image must read
  it: the official images do, the platform's own software must).
- Every task names its image by digest (`name@sha256:...`, as the manager pulled
  it), which any node pulls and no tag move changes; the images the program builds
  are pushed to the stack's registry (fourlb:swarm.registry) first.
- The edge publishes 80 and 443 in host mode (the client's address survives)
  on the edge nodes, one Traefik on each; every hostname gets one A record per
  edge node address. Each Traefik obtains its own certificates: with more than
  one edge address, only a DNS challenge can prove a hostname (_acme_problems).
- A named volume is local to the node of the task that mounts it, so each one
  is held by one node role (`volume_holders`, the rule): every service that
  mounts it runs there, and that node's own backup archives it (core.backup);
  where a service keeps volumes on each node of its role (the edge), each of
  those nodes runs the role's backup.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Iterable, Literal, Optional

from config.errors import Problem, StackConfigError
from config.models import StackConfig

from . import catalog
from .catalog import EVERY_NODE, ITS_NODES, OnEachNode, ServiceSpec
from .live_config import WRITER_SUFFIX
from .model import Container, DnsRecord, Plan, Upload, secret_names_in
from .traefik import SWARM_REFRESH_S
# an old task keeps serving this long after its replacement started: Traefik
# has polled at least twice (the 502s of traefik/traefik#7886 come from less)
UPDATE_DELAY_S = 3 * SWARM_REFRESH_S
DEFAULT_SITE_REPLICAS = 2
SECRETS_DIR = "/run/secrets"
EDGE_ROLE = "edge"
NODE_LABEL = "fourlb.role"
MAX_FILE_NAME = 64  # a config's or secret's name, in the swarm's API
DIGEST = 12  # hex digits of a content digest in a file's name
DOCKER_SOCKET = "/var/run/docker.sock"
# a swarm template: a task on each node named after its node (node-exporter's
# node_uname_info then names the node its samples come from)
NODE_HOSTNAME = "{{.Node.Hostname}}"
Mode = Literal["replicated", "global"]


@dataclass(frozen=True)
class SwarmFile:
    """A config or a secret: immutable, so named by its content's digest."""

    name: str
    target: str
    content: str  # `${secret:NAME}` placeholders are resolved by the renderer
    mode: str
    secret: bool


@dataclass(frozen=True)
class SwarmService:
    container: Container  # the plan's, with its swarm labels and env
    mode: Mode  # global: one task on each node its constraints allow
    replicas: Optional[int]  # replicated only
    node_role: Optional[str]  # None: any node
    stateful: bool
    on_a_manager: bool  # it reads the Docker socket: only a manager's answers for the swarm
    files: tuple[SwarmFile, ...]
    update_order: Literal["start-first", "stop-first"]
    rollback: bool  # an update that does not converge is rolled back
    hostname: Optional[str] = None  # its tasks' (a swarm template); None: Docker's

    @property
    def constraints(self) -> tuple[str, ...]:
        role = (f"node.labels.{NODE_LABEL}=={self.node_role}",) if self.node_role else ()
        return role + (("node.role==manager",) if self.on_a_manager else ())

    @property
    def task_labels(self) -> tuple[tuple[str, str], ...]:
        """The labels of its tasks' containers: the service's own (Traefik reads
        those) never reach them, and cAdvisor reports a container's labels only
        (container_label_fourlb_service, _stack: core.monitoring.alerts)."""
        return tuple((key, value) for key, value in self.container.labels if key.startswith("fourlb."))

    @property
    def update_delay_s(self) -> int:
        return UPDATE_DELAY_S if self.container.routes and not self.stateful else 0

    @property
    def build_name(self) -> str:
        """The name of the image build its task runs (with a build context): a
        node's own copy of a service (a node's backup, `<service>-<node role>`)
        runs that service's image, built and pushed once for every node."""
        container = self.container
        if container.node_role:
            return container.name.removesuffix(f"-{container.node_role}")
        return container.name


@dataclass(frozen=True)
class SwarmPlan:
    plan: Plan
    services: tuple[SwarmService, ...]
    dns_records: tuple[DnsRecord, ...]
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    # the nodes' os/architecture (fourlb:hostPlatform): the Docker client sets a new
    # service's platforms from its image's manifest, so they are declared as such
    platform: str = "linux/amd64"

    def service(self, name: str) -> SwarmService:
        for service in self.services:
            if service.container.name == name:
                return service
        raise KeyError(name)


def swarm_plan(config: StackConfig, plan: Plan) -> SwarmPlan:
    assert config.swarm is not None, "engine swarm needs fourlb:swarm"
    problems: list[Problem] = _acme_problems(config)
    kept_on_each_node = roles_kept_on_each_node(plan.containers, config)
    services = tuple(_service(c, config, problems, kept_on_each_node) for c in plan.containers)
    problems += volume_problems(plan.containers, config)
    known = {c.name for c in plan.containers}
    for name in sorted(set(config.swarm.nodes) | set(config.swarm.replicas)):
        if name not in known:
            key = "nodes" if name in config.swarm.nodes else "replicas"
            problems.append(Problem(f"fourlb:swarm.{key}.{name}", name,
                                    "allowed: a container of this stack: " + ", ".join(sorted(known))))
    if problems:
        raise StackConfigError(plan.stack, problems)
    return SwarmPlan(plan, services, _dns_records(plan, config.swarm.edge_addresses),
                     config.swarm.endpoint_mode, config.host_platform)


def _acme_problems(config: StackConfig) -> list[Problem]:
    """Traefik's open-source edition keeps its ACME account, challenges and
    certificates in a file of its own (each edge node's volume) and shares none:
    an HTTP-01 (or TLS-ALPN-01) request of Let's Encrypt reaches whichever edge
    address DNS gives it, often a Traefik that never asked, and the certificate is
    refused. A DNS challenge is answered in the zone, whichever Traefik asked, so
    each Traefik obtains its own certificates."""
    assert config.swarm is not None
    edges = len(config.swarm.edge_addresses)
    if config.tls != "letsencrypt" or config.acme is None or config.acme.challenge != "http" or edges < 2:
        return []
    return [Problem("fourlb:acme.challenge", config.acme.challenge, (
        f"allowed: cloudflare-dns while fourlb:swarm.edgeAddresses names more than one edge node "
        f"({edges} here): each edge node's Traefik keeps its own certificates, and Let's Encrypt's "
        "HTTP challenge for a hostname reaches whichever edge address DNS gives it, often another "
        "Traefik than the one that asked; or keep http with one edge address"))]


def _service(container: Container, config: StackConfig, problems: list[Problem],
             kept_on_each_node: set[str]) -> SwarmService:
    swarm = config.swarm
    assert swarm is not None
    stateful = any(m.volume for m in container.mounts) or container.update_order == "stop-first"
    spec = _spec_of(container)
    on_each_node = _on_each_node(container, spec, kept_on_each_node)
    node_role = node_role_of(container, config)
    replicas = None if on_each_node else swarm.replicas.get(
        container.name, DEFAULT_SITE_REPLICAS if container.role == "site" else 1)
    key = f"fourlb:swarm.nodes.{container.name}"
    if on_each_node and container.name in swarm.replicas:
        where = f"node of role {node_role}" if node_role else "node"
        problems.append(Problem(f"fourlb:swarm.replicas.{container.name}", swarm.replicas[container.name],
                                f"allowed: unset; {container.name} runs one task on each {where} "
                                "(global mode)"))
    if container.node_role and container.name in swarm.nodes:
        problems.append(Problem(key, swarm.nodes[container.name],
                                f"allowed: unset; {container.name} runs on node role "
                                f"{container.node_role!r} because it reads the volumes held there"))
    if stateful and node_role is None and not on_each_node:
        problems.append(Problem(key, None, f"required: {container.name} keeps data on its node "
                                "(a volume, or one writer at a time); name the node role that holds it"))
    if stateful and replicas is not None and replicas > 1:
        problems.append(Problem(f"fourlb:swarm.replicas.{container.name}", replicas,
                                f"allowed: 1; {container.name} keeps data on one node"))
    if node_role is None and not on_each_node and any(m.host_path for m in container.mounts):
        problems.append(Problem(key, None, f"required: {container.name} binds a host path, which "
                                "exists on one node; name the node role its tasks run on"))
    if container.published_ports and node_role != EDGE_ROLE:
        problems.append(Problem(key, node_role, f"allowed: {EDGE_ROLE}; {container.name} publishes "
                                "ports 80 and 443 on the edge nodes' addresses"))
    if container.gpus:
        # the provider's service has no GPU request (a task asks for generic
        # resources that each node must advertise)
        problems.append(Problem("fourlb:ollama.gpus", container.gpus,
                                "allowed: unset on a swarm; GPUs are given to containers of one "
                                "Docker host only"))
    if container.build_context:
        container = _pushed(container, swarm.registry, problems)
    env, env_files = _env_without_secrets(container)
    on_a_manager = any(m.host_path == DOCKER_SOCKET for m in container.mounts)
    files = tuple(_file(container.name, u) for u in container.uploads + env_files)
    return SwarmService(
        container=replace(container, env=env, uploads=()),
        mode="global" if on_each_node else "replicated",
        replicas=replicas, node_role=node_role, stateful=stateful, on_a_manager=on_a_manager,
        files=files,
        update_order="stop-first" if stateful else "start-first", rollback=not stateful,
        hostname=NODE_HOSTNAME if on_each_node == EVERY_NODE else None)


def _pushed(container: Container, registry: Optional[str], problems: list[Problem]) -> Container:
    """An image the program builds is pushed to the stack's registry: a node pulls
    the image its task names, and would never find one built on the manager alone."""
    if registry is None:
        problems.append(Problem("fourlb:swarm.registry", None,
                                f"required: {container.name}'s image is built by the program, and every "
                                "node pulls it from a registry (e.g. registry.4lb.ca); or name a "
                                f"pushed image in fourlb:services.{container.name}.image"))
        return container
    return replace(container, image=f"{registry}/{container.image}")


def _spec_of(container: Container) -> Optional[ServiceSpec]:
    """The catalog entry of a platform service, or of the service whose files a
    writer writes (core.live_config); None for a site."""
    if container.role == "site":
        return None
    return catalog.SERVICES_BY_NAME.get(container.name.removesuffix(WRITER_SUFFIX))


def _default_role(container: Container, spec: Optional[ServiceSpec], config: StackConfig) -> Optional[str]:
    """Sites and what runs on every node: any node. A writer: the nodes of its
    service, whose volume it writes (that service's own entry included). The
    others: the node role of their kind (fourlb:swarm.placement)."""
    swarm = config.swarm
    assert swarm is not None
    if spec is None or spec.on_each_node == EVERY_NODE:
        return None
    default = swarm.placement.get(spec.role)
    return swarm.nodes.get(spec.name, default) if spec.name != container.name else default


def node_role_of(container: Container, config: StackConfig) -> Optional[str]:
    """The node role a container's tasks run on (None: any node): a node's own
    container's (core.backup), its entry in fourlb:swarm.nodes, or its default."""
    if container.node_role:
        return container.node_role
    assert config.swarm is not None
    return config.swarm.nodes.get(container.name, _default_role(container, _spec_of(container), config))


def _on_each_node(container: Container, spec: Optional[ServiceSpec],
                  kept_on_each_node: set[str]) -> Optional[OnEachNode]:
    """The catalog's word; a node's own container (a node's backup) runs on each
    node of its role where a service keeps volumes on each of them."""
    if spec is not None:
        return spec.on_each_node
    return ITS_NODES if container.node_role in kept_on_each_node else None


def roles_kept_on_each_node(containers: Iterable[Container], config: StackConfig) -> set[str]:
    """The node roles where a service keeps volumes on each of the role's nodes
    (one task per node: the edge's Traefik, catalog.ITS_NODES): every node of such
    a role holds data of its own."""
    roles = set()
    for container in containers:
        spec = _spec_of(container)
        role = node_role_of(container, config)
        if spec and spec.on_each_node == ITS_NODES and role and any(m.volume for m in container.mounts):
            roles.add(role)
    return roles


def _moved(container: Container, config: StackConfig) -> bool:
    """Placed by its own entry in fourlb:swarm.nodes (or its service's, for a
    writer), not by its kind."""
    assert config.swarm is not None
    spec = _spec_of(container)
    return container.name in config.swarm.nodes or (spec is not None and spec.name in config.swarm.nodes)


# The rule of volumes on a swarm. A named volume lives on the node of the task
# that mounts it: two services on two node roles that mount one name get two
# volumes, one of them empty. So every named volume is mounted by services of
# one node role only, the role that holds it: where the placement puts the
# services that keep data in it. Each node's backup archives the volumes its
# node role holds (core.backup). The backup's own volumes are the exception: each
# node with a backup has its own (catalog.PER_NODE_VOLUMES).

def volume_holders(containers: Iterable[Container], config: StackConfig) -> dict[str, str]:
    """Each volume held by one node role -> that node role. A volume whose services
    disagree goes to the role most of them were placed on by their kind (a service
    moved by fourlb:swarm.nodes is the one that left its data); `volume_problems`
    refuses the disagreement."""
    return {volume: _holder(roles, moved)
            for volume, (roles, moved) in _mounting_services(containers, config).items()}


def volume_problems(containers: Iterable[Container], config: StackConfig) -> list[Problem]:
    """One problem per service that mounts a volume another node role holds."""
    problems = []
    for volume, (roles, moved) in sorted(_mounting_services(containers, config).items()):
        holder = _holder(roles, moved)
        keepers = ", ".join(sorted(name for name, role in roles.items() if role == holder))
        for name, role in sorted(roles.items()):
            if role != holder:
                problems.append(Problem(
                    f"fourlb:swarm.nodes.{name}", role,
                    f"allowed: {holder!r}, the node role that holds {volume} (mounted there by "
                    f"{keepers}); a volume is local to its node, so every service that mounts "
                    "it runs on one node role"))
    return problems


def _mounting_services(containers: Iterable[Container], config: StackConfig
                       ) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Volume -> ({service: its node role}, the services moved by a setting), for
    the volumes one node role must hold; services on no node role yet are left
    out (`_service` refuses a stateful one without a role)."""
    found: dict[str, tuple[dict[str, str], set[str]]] = {}
    for container in containers:
        role = node_role_of(container, config)
        if role is None:
            continue
        for volume in {m.volume for m in container.mounts if m.volume}:
            if volume in catalog.PER_NODE_VOLUMES:
                continue
            roles, moved = found.setdefault(volume, ({}, set()))
            roles[container.name] = role
            if _moved(container, config):
                moved.add(container.name)
    return found


def _holder(roles: dict[str, str], moved: set[str]) -> str:
    """The node role most of a volume's services are on, counting those a setting
    moved only when all were; a tie goes to the first role by name, whatever the
    order of the plan."""
    placed = [role for name, role in roles.items() if name not in moved] or list(roles.values())
    return max(sorted(set(placed)), key=placed.count)


def _env_without_secrets(container: Container) -> tuple[tuple[tuple[str, str], ...], tuple[Upload, ...]]:
    """Env values holding a secret become secret files named by `<NAME>_FILE`."""
    env: list[tuple[str, str]] = []
    files: list[Upload] = []
    for name, value in container.env:
        if secret_names_in(value):
            path = f"{SECRETS_DIR}/env-{name.lower().replace('_', '-')}"
            files.append(Upload(path, value, mode="0400"))
            env.append((f"{name}_FILE", path))
        else:
            env.append((name, value))
    return tuple(env), tuple(files)


def _file(service: str, upload: Upload) -> SwarmFile:
    """A config is named by its content's digest here. A secret's content is only
    known once its values are (the renderer): its name here leaves room for that
    digest, which the renderer appends (components/swarm.py)."""
    digest = hashlib.sha256(f"{upload.path}\0{upload.mode}\0{upload.content}".encode()).hexdigest()[:DIGEST]
    # the swarm takes names of at most 64 of [a-zA-Z0-9-_.]: the service, the end
    # of the path (the file's name is what a person looks for), the digest
    prefix = service[:MAX_FILE_NAME - DIGEST - 8]
    budget = MAX_FILE_NAME - len(prefix) - DIGEST - 2
    path = re.sub(r"[^a-z0-9]+", "-", upload.path.lower()).strip("-")
    slug = path if len(path) <= budget else path[-budget:].split("-", 1)[-1]
    is_secret = bool(secret_names_in(upload.content))
    return SwarmFile(name="-".join(p for p in (prefix, slug, None if is_secret else digest) if p),
                     target=upload.path, content=upload.content, mode=upload.mode, secret=is_secret)


def _dns_records(plan: Plan, edge_addresses: list[str]) -> tuple[DnsRecord, ...]:
    if not edge_addresses:
        return plan.dns_records  # content unset: a deployment stops on it (core.deploy_checks)
    return tuple(replace(record, content=address)
                 for record in plan.dns_records for address in edge_addresses)

