"""A stack's plan as a plain, JSON-ready document: the form that is printed,
compared between stacks or git refs, and tested.

Only lists, dicts, strings, numbers, booleans and None appear, with every list
in a fixed order, so that two documents of one plan serialize to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Optional

from config import NAMESPACE
from config.loading import StackFile
from config.models import StackConfig
from core.backup import backup_scopes, restic_repository, snapshot_host
from core.edge import edge_owner
from core.catalog import GENERATED_VOLUMES
from core.model import SELF_HEADERS, Container, Plan, Route
from core import ollama
from core.deploy_checks import DNS_TARGET_KEY
from core.networks import reachability
from core.swarm import swarm_plan
from core.traefik import CERT_RESOLVER, application_headers, effective_headers

# the basic-auth hash of a secret, derived from it (components.secret_values)
BCRYPT_SUFFIX = "-bcrypt"

# How a record whose address is not set yet is shown (its content is null in JSON).
UNSET_TARGET = f"(not set: {DNS_TARGET_KEY})"

# Bump when the shape changes: a diff against a ref written with another
# version would otherwise report the reshaping as changes to the platform.
FORMAT_VERSION = 4  # 2: each route's effective response headers; 3: entrypoint, user, tmpfs, secret_versions;
# 4: a swarm service's mode (and no replica count when global) and hostname

EMPTY_DOCUMENT: dict[str, Any] = {
    "format": FORMAT_VERSION, "stack": None, "role": None, "edge": None,
    "routes": [], "dns": {}, "containers": {}, "networks": {}, "volumes": {}, "secrets": [],
}


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def fingerprint(text: str) -> str:
    """Env values and uploaded files stay out of anything printed (plans end up
    in CI logs and pull-request comments); their hash shows that one changed."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def secret_versions(stack_file: StackFile) -> dict[str, str]:
    """Per secret the stack provides (`pulumi config set --secret`), a fingerprint of
    its encrypted value: a new value is a new fingerprint, so plan diff sees which
    containers a rotation replaces without reading any secret. (Setting a secret
    again to the same value also gives a new one: Pulumi encrypts with a new nonce.)"""
    prefix = NAMESPACE + ":"
    return {key[len(prefix):]: fingerprint(text) for key, text in stack_file.ciphertexts.items()
            if key.startswith(prefix)}


def plan_document(config: StackConfig, plan: Plan,
                  versions: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """`versions`: secret_versions of the stack file (config key -> fingerprint)."""
    by_name = {spec.name: versions[spec.config_key] for spec in plan.secrets
               if versions and spec.config_key in versions}
    return {
        "format": FORMAT_VERSION,
        "stack": plan.stack,
        "role": plan.role,
        # a sites stack is served by the Traefik of its edge stack
        "edge": edge_owner(plan.stack, config),
        "routes": _routes(config, plan),
        "dns": _dns(plan),
        "containers": {c.name: _container(c, by_name) for c in plan.containers},
        "networks": {n.name: {"internal": n.internal, "external": n.external, "purpose": n.purpose}
                     for n in plan.networks},
        "volumes": _volumes(plan),
        "secrets": sorted(s.name for s in plan.secrets),
        "reached_by": _reached_by(plan),
        **({"swarm": _swarm(config, plan),
            "backups": _backups(config, plan)} if config.engine == "swarm" else {}),
        **({"ollama": _ollama(config, plan)} if config.role == "platform" else {}),
    }


def _ollama(config: StackConfig, plan: Plan) -> dict[str, Any]:
    """Where the AI services find Ollama (core.ollama)."""
    return {"runs_on": config.ollama.runs_on, "url": ollama.base_url(config),
            "clients": [c.name for c in plan.containers if c.name in ollama.CLIENTS]}


def _reached_by(plan: Plan) -> dict[str, list[str]]:
    """Each listening container -> the containers of this plan that reach its port."""
    reached: dict[str, set[str]] = {c.name: set() for c in plan.containers if c.port}
    for (source, target, _), answers in reachability(plan.containers).items():
        if answers:
            reached[target].add(source)
    return {name: sorted(sources) for name, sources in reached.items()}


def _swarm(config: StackConfig, plan: Plan) -> dict[str, Any]:
    """Where each service's tasks run and how an update rolls (core.swarm)."""
    swarm = swarm_plan(config, plan)
    return {s.container.name: {
        "mode": s.mode, "node": s.node_role, "replicas": s.replicas, "stateful": s.stateful,
        "endpoint_mode": swarm.endpoint_mode,
        "constraints": list(s.constraints), "update": s.update_order,
        "rollback": s.rollback, "update_delay_s": s.update_delay_s,
        "files": {f.target: {"name": f.name, "secret": f.secret} for f in s.files},
        **({"hostname": s.hostname} if s.hostname else {}),
    } for s in swarm.services}


def _backups(config: StackConfig, plan: Plan) -> dict[str, Any]:
    """Each node's backup (core.backup): what it looks after, and under which
    snapshot host of the repository it keeps its runs."""
    return {scope.name: {
        "node": scope.node_role, "archives": list(scope.archived),
        "on_each_node": scope.on_each_node,
        "dumps_databases": scope.dumps_databases, "rotates_access_log": scope.rotates_access_log,
        "repository": restic_repository(config), "snapshot_host": snapshot_host(scope, config),
    } for scope in backup_scopes(plan.containers, config)}


def _routes(config: StackConfig, plan: Plan) -> list[dict[str, Any]]:
    resolver = CERT_RESOLVER if config.tls == "letsencrypt" else None
    rows = [_route_row(container, route, host, resolver)
            for container in plan.containers
            for route in container.routes
            for host in route.hostnames]
    return sorted(rows, key=lambda row: (row["hostname"], row["path_prefix"] or ""))


def _route_row(container: Container, route: Route, hostname: str,
               resolver: Optional[str]) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "path_prefix": route.path_prefix,
        "container": container.name,
        # a Traefik internal service (the dashboard) has no container port
        "port": None if route.internal_service else route.port,
        "service": route.internal_service,
        "middlewares": [_middleware_name(m, container) for m in route.middlewares],
        "tls_resolver": resolver,
        "headers": effective_headers(container),
        # sent by the application itself (a per-request policy Traefik leaves alone)
        "application_headers": list(application_headers(container)),
    }


def _middleware_name(middleware: str, container: Container) -> str:
    # The real label name carries the instance suffix, which changes on every
    # replacement; the stable name keeps unchanged routes from looking changed.
    return f"{container.name}-headers@docker" if middleware == SELF_HEADERS else middleware


def _dns(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    zones: dict[str, list[dict[str, Any]]] = {zone: [] for zone in plan.dns_zones}
    for record in sorted(plan.dns_records, key=lambda r: (r.name, r.type)):
        zones.setdefault(record.zone, []).append({
            "name": record.name, "type": record.type, "content": record.content,
            "proxied": record.proxied, "ttl": record.ttl,
        })
    return zones


def _container(container: Container, secret_versions: Mapping[str, str]) -> dict[str, Any]:
    health = container.healthcheck
    # a basic-auth hash (<name>-bcrypt) changes with its password
    versions = {name: secret_versions[base] for name in sorted(container.secret_names())
                if (base := name.removesuffix(BCRYPT_SUFFIX)) in secret_versions}
    return {
        "image": container.image,
        "role": container.role,
        "port": container.port,
        # created on these (replace-on-change); connected to the others once it runs
        "networks": list(container.created_on),
        "volumes": sorted({m.volume for m in container.mounts if m.volume}),
        "update_order": container.update_order,
        "env": {name: fingerprint(value) for name, value in container.env},
        "uploads": {u.path: {"mode": u.mode, "content": fingerprint(u.content)}
                    for u in container.uploads},
        "labels": dict(container.labels),
        "mounts": [_mount(m) for m in sorted(container.mounts, key=lambda m: m.target)],
        "command": list(container.command),
        "published_ports": [f"{p.external}:{p.internal}/{p.protocol}"
                            for p in container.published_ports],
        "healthcheck": None if health is None else {
            "test": list(health.test), "interval_s": health.interval_s,
            "timeout_s": health.timeout_s, "retries": health.retries,
            "start_period_s": health.start_period_s,
        },
        "memory_mb": container.memory_mb,
        "restart": container.restart,
        "stop_grace_s": container.stop_grace_s,
        "logging": {"max_size": container.log_max_size, "max_files": container.log_max_files},
        "security_opts": list(container.security_opts),
        "secrets": sorted(container.secret_names()),
        # only where set: a document without the key has none
        **({"entrypoint": list(container.entrypoint)} if container.entrypoint else {}),
        **({"user": container.user} if container.user else {}),
        **({"tmpfs": list(container.tmpfs)} if container.tmpfs else {}),
        **({"secret_versions": versions} if versions else {}),
        **({"connected_networks": list(container.connected_networks)}
           if container.connected_networks else {}),
        **({"extra_hosts": [f"{name}:{address}" for name, address in container.extra_hosts]}
           if container.extra_hosts else {}),
        **({"gpus": container.gpus} if container.gpus else {}),
    }


def _mount(mount) -> dict[str, Any]:
    source = {"volume": mount.volume} if mount.volume else {"host_path": mount.host_path}
    return {"target": mount.target, "read_only": mount.read_only, **source}


def _volumes(plan: Plan) -> dict[str, dict[str, Any]]:
    users: dict[str, list[str]] = {}
    for container in plan.containers:
        for mount in container.mounts:
            if mount.volume:
                users.setdefault(mount.volume, []).append(container.name)
    return {v.name: {"purpose": v.purpose, "protected": v.protected,
                     "holds_data": v.name not in GENERATED_VOLUMES,
                     "docker_name": v.engine_name,
                     "used_by": sorted(set(users.get(v.name, [])))}
            for v in plan.volumes}
