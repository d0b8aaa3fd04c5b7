"""`python -m plan adopt`: what taking over a running host needs, decided on plain data.

The facts about the host (`HostFacts`, read by plan/docker_host.py) and the
optional compose file (`ComposeFile`) go in with the stack's plan; out comes an
`AdoptReport`: for each plan volume the existing volume holding its data (never
a guess: two candidates, or none where data must be, is a blocker), the stack
settings that make the plan use those names, the secrets to carry over (each as a
command that pipes the value from the old container's configuration into
`pulumi config set --secret`: no value is ever read here), the containers,
networks and ports in the way, and the images to pull before anything stops.

No secret reaches these facts: the host reader keeps env names only (and a few
plain settings), label keys only, and drops the word after a password flag.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Optional

import yaml

from core.catalog import NOT_SNAPSHOTTED, POSTGRES_DB, POSTGRES_USER, SECRETS
from core.import_file import docker_import_file
from core.model import Container, Plan

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_VOLUME = "com.docker.compose.volume"
# env values that are settings, not secrets: the host reader keeps them
PLAIN_ENV = frozenset({"POSTGRES_USER", "POSTGRES_DB", "PGDATA", "GF_SECURITY_ADMIN_USER"})
# the word after one of these in a command is a password: the host reader drops it
SECRET_FLAGS = frozenset({"--requirepass", "--masterauth"})
REDACTED = "(not read)"


# --- the host, as plain data -----------------------------------------------------

@dataclass(frozen=True)
class HostVolume:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    size: Optional[int] = None  # bytes; None: the engine did not say


@dataclass(frozen=True)
class HostMount:
    type: str  # volume | bind | tmpfs
    destination: str
    name: str = ""  # the volume's, for a volume
    source: str = ""  # the host path, for a bind


@dataclass(frozen=True)
class HostContainer:
    name: str
    image: str
    id: str = ""
    running: bool = True
    compose_project: Optional[str] = None
    compose_service: Optional[str] = None
    label_keys: frozenset[str] = frozenset()
    env_names: frozenset[str] = frozenset()
    env: Mapping[str, str] = field(default_factory=dict)  # PLAIN_ENV and *_FILE only
    command: tuple[str, ...] = ()  # secret words dropped
    mounts: tuple[HostMount, ...] = ()
    host_ports: tuple[int, ...] = ()
    networks: tuple[str, ...] = ()
    # whether a Redis append-only file is in what it mounts at /data (None: not asked)
    aof: Optional[bool] = None

    def with_aof(self, aof: bool) -> "HostContainer":
        return replace(self, aof=aof)

    def mount_at(self, destination: str) -> Optional[HostMount]:
        for mount in self.mounts:
            if posixpath.normpath(mount.destination) == posixpath.normpath(destination):
                return mount
        return None


@dataclass(frozen=True)
class HostNetwork:
    name: str
    id: str
    driver: str = "bridge"
    internal: bool = False
    compose_project: Optional[str] = None


@dataclass(frozen=True)
class HostFacts:
    docker_host: str
    version: str = "?"
    volumes: tuple[HostVolume, ...] = ()
    containers: tuple[HostContainer, ...] = ()
    networks: tuple[HostNetwork, ...] = ()
    images: frozenset[str] = frozenset()  # repo:tag

    def volume(self, name: str) -> Optional[HostVolume]:
        return next((v for v in self.volumes if v.name == name), None)


# --- the compose file --------------------------------------------------------------

@dataclass(frozen=True)
class ComposeService:
    container_name: str
    mounts: tuple[tuple[str, str], ...] = ()  # (Docker volume name, target)


@dataclass(frozen=True)
class ComposeFile:
    path: str
    project: str
    volumes: Mapping[str, str]  # the file's volume key -> the Docker volume Compose uses
    services: Mapping[str, ComposeService]


def _project_name(path: str, document: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    # as Compose: COMPOSE_PROJECT_NAME, the file's `name:`, else its directory's name
    raw = environ.get("COMPOSE_PROJECT_NAME") or document.get("name") or \
        posixpath.basename(posixpath.dirname(posixpath.abspath(path)))
    return re.sub(r"[^a-z0-9_-]", "", str(raw).lower())


def parse_compose(text: str, path: str, environ: Mapping[str, str] = {}) -> ComposeFile:
    """The volumes of a compose file and the Docker names Compose gives them:
    `name:` if set, the key itself if `external: true`, else `<project>_<key>`."""
    document = yaml.safe_load(text) or {}
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: not a compose file (no mapping at the top)")
    project = _project_name(path, document, environ)
    volumes: dict[str, str] = {}
    for key, spec in (document.get("volumes") or {}).items():
        spec = spec or {}
        external = spec.get("external")
        if spec.get("name"):
            volumes[key] = spec["name"]
        elif isinstance(external, Mapping) and external.get("name"):
            volumes[key] = external["name"]
        elif external:
            volumes[key] = key
        else:
            volumes[key] = f"{project}_{key}"
    services: dict[str, ComposeService] = {}
    for name, spec in (document.get("services") or {}).items():
        spec = spec or {}
        mounts = []
        for entry in spec.get("volumes") or ():
            if isinstance(entry, str):
                source, _, rest = entry.partition(":")
                target = rest.split(":")[0] if rest else ""
            else:
                source, target = entry.get("source", ""), entry.get("target", "")
                if entry.get("type", "volume") != "volume":
                    continue
            if source in volumes and target:
                mounts.append((volumes[source], target))
        services[name] = ComposeService(spec.get("container_name") or f"{project}-{name}-1",
                                        tuple(mounts))
    return ComposeFile(path, project, volumes, services)


# --- the report --------------------------------------------------------------------

@dataclass(frozen=True)
class Blocker:
    subject: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Candidate:
    name: str
    size: Optional[int]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class VolumeFinding:
    key: str  # the plan's volume
    status: str  # adopt | new | blocked
    name: Optional[str] = None  # the Docker volume adopted
    size: Optional[int] = None
    evidence: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class CarriedSecret:
    config_key: str  # fourlb:postgresPassword
    reason: str
    source: str  # where the value comes from (a name, never the value)
    command: Optional[str]  # None: already set, or nothing to read it from
    already_set: bool = False


@dataclass(frozen=True)
class OldContainer:
    name: str
    image: str
    reason: str


@dataclass(frozen=True)
class NetworkFinding:
    name: str
    id: str
    action: str  # import | recreated | blocked


@dataclass(frozen=True)
class AdoptReport:
    stack: str
    docker_host: str
    version: str
    volumes: tuple[VolumeFinding, ...]
    settings: Mapping[str, Any]
    setting_commands: tuple[str, ...]
    secrets: tuple[CarriedSecret, ...]
    stop: tuple[OldContainer, ...]
    others: tuple[OldContainer, ...]
    networks: tuple[NetworkFinding, ...]
    pulls: tuple[str, ...]
    builds: tuple[tuple[str, str], ...]  # (image, the project's directory it is built from)
    unclaimed: tuple[HostVolume, ...]
    blockers: tuple[Blocker, ...]
    import_file: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "docker_host": self.docker_host, "docker_version": self.version,
            "volumes": [{"key": v.key, "status": v.status, "name": v.name, "size_bytes": v.size,
                         "evidence": list(v.evidence),
                         "candidates": [{"name": c.name, "size_bytes": c.size,
                                         "evidence": list(c.evidence)} for c in v.candidates]}
                        for v in self.volumes],
            "settings": dict(self.settings),
            "setting_commands": list(self.setting_commands),
            "secrets": [{"config_key": s.config_key, "reason": s.reason, "source": s.source,
                         "command": s.command, "already_set": s.already_set} for s in self.secrets],
            "stop": [{"name": c.name, "image": c.image, "reason": c.reason} for c in self.stop],
            "others": [{"name": c.name, "image": c.image, "reason": c.reason} for c in self.others],
            "networks": [{"name": n.name, "id": n.id, "action": n.action} for n in self.networks],
            "pull": [f"docker pull {image}" for image in self.pulls],
            "build": [_build_command(image, context) for image, context in self.builds],
            "unclaimed_volumes": [{"name": v.name, "size_bytes": v.size} for v in self.unclaimed],
            "blockers": [{"subject": b.subject, "problem": b.problem, "fix": b.fix}
                         for b in self.blockers],
            "import_file": dict(self.import_file),
        }


# --- sizes and commands --------------------------------------------------------------

def human_size(size: Optional[int]) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


_PIPE = "tr -d '\\n' | pulumi config set --secret {key} -s {stack}"


def env_command(container: str, variable: str, key: str, stack: str) -> str:
    return ("docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "
            f"{container} | sed -n 's/^{variable}=//p' | " + _PIPE.format(key=key, stack=stack))


def file_command(container: str, path: str, key: str, stack: str) -> str:
    return f"docker exec {container} cat {path} | " + _PIPE.format(key=key, stack=stack)


def flag_value(container: str, flag: str) -> str:
    """A command printing the word after `flag` in the container's command."""
    return ("docker inspect --format '{{range .Config.Cmd}}{{println .}}{{end}}' "
            f"{container} | sed -n '/^{flag}$/{{n;p;}}'")


def flag_command(container: str, flag: str, key: str, stack: str) -> str:
    return f"{flag_value(container, flag)} | " + _PIPE.format(key=key, stack=stack)


def label_command(container: str, label: str, key: str, stack: str) -> str:
    return (f"docker inspect --format '{{{{index .Config.Labels \"{label}\"}}}}' {container} | "
            + _PIPE.format(key=key, stack=stack))


def conf_command(container: str, conf: str, key: str, stack: str) -> str:
    return (f"docker exec {container} sed -n 's/^requirepass //p' {conf} | "
            + _PIPE.format(key=key, stack=stack))


def _config_set(path: str, value: str, stack: str) -> str:
    return f"pulumi config set --path '{path}' {value} -s {stack}"


# --- the decisions -------------------------------------------------------------------

def regenerated(key: str) -> bool:
    """Whether a volume may start empty although today's container keeps that path
    elsewhere: what the backup leaves out (logs, generated files, the backups), but
    PostgreSQL (dumped, not archived) and the metrics history."""
    return key in NOT_SNAPSHOTTED and key not in ("postgres_data", "prometheus_data")


def _data_mounts(plan: Plan, key: str) -> list[tuple[Container, str]]:
    """Where the plan's services keep `key` (read-write; the backup reads every volume)."""
    return [(c, m.target) for c in plan.containers for m in c.mounts
            if m.volume == key and not m.read_only]


def _old_containers(facts: HostFacts, service: str) -> list[HostContainer]:
    """Today's containers of a plan service: its name, or Compose's service label."""
    return [c for c in facts.containers if c.name == service or c.compose_service == service]


def _find_volume(plan: Plan, key: str, facts: HostFacts, compose: Optional[ComposeFile],
                 mapped: Optional[str]) -> tuple[VolumeFinding, list[Blocker]]:
    stack = plan.stack
    evidence: dict[str, list[str]] = {}

    def add(name: str, why: str) -> None:
        evidence.setdefault(name, [])
        if why not in evidence[name]:
            evidence[name].append(why)

    if facts.volume(key):
        add(key, f"named exactly {key}")
    for volume in facts.volumes:
        if volume.labels.get(COMPOSE_VOLUME) == key:
            add(volume.name, f"Compose volume {key} of project "
                             f"{volume.labels.get(COMPOSE_PROJECT, '?')}")
    outside: list[Blocker] = []
    for container, target in _data_mounts(plan, key) if not regenerated(key) else ():
        for old in _old_containers(facts, container.name):
            mount = old.mount_at(target)
            if mount is None:
                outside.append(Blocker(key, (
                    f"{old.name} has no volume at {target}: its data is in the container's own "
                    "filesystem and goes with it"), (
                    f"copy it into a volume before the cutover: docker volume create {key} && "
                    f"docker cp {old.name}:{target}/. - | docker run --rm -i -v {key}:/to "
                    f"--entrypoint tar {old.image} -x -C /to, then run adopt again")))
            elif mount.type == "volume":
                add(mount.name, f"mounted at {target} by {old.name}")
            elif mount.type == "bind":
                outside.append(Blocker(key, (
                    f"{old.name} keeps {target} in the host directory {mount.source}, not in a "
                    "volume"), (
                    f"copy it into a volume with {old.name} stopped: docker volume create {key} && "
                    f"docker run --rm -v {mount.source}:/from:ro -v {key}:/to --entrypoint cp "
                    f"{old.image} -a /from/. /to/, then run adopt again")))
        if compose:
            for service in compose.services.values():
                for name, where in service.mounts:
                    if posixpath.normpath(where) == posixpath.normpath(target) and \
                            service.container_name == container.name and facts.volume(name):
                        add(name, f"mounted at {target} by {container.name} in {compose.path}")
    compose_missing = None
    if compose and key in compose.volumes:
        name = compose.volumes[key]
        if facts.volume(name):
            add(name, f"volume {key} of {compose.path}")
        else:
            compose_missing = name
    candidates = tuple(Candidate(name, facts.volume(name).size, tuple(why))  # type: ignore[union-attr]
                       for name, why in sorted(evidence.items()))

    if mapped is not None:
        found = facts.volume(mapped)
        if found is None:
            return VolumeFinding(key, "blocked", candidates=candidates), [Blocker(
                key, f"fourlb:volumeNames.{key} = {mapped}: {facts.docker_host} has no such volume",
                "set it to the volume holding the data (docker volume ls), or remove the setting")]
        why = ["set in the stack (fourlb:volumeNames)"] + evidence.get(mapped, [])
        others = [c.name for c in candidates if c.name != mapped]
        if others:
            why.append("also found, not used: " + ", ".join(others))
        return VolumeFinding(key, "adopt", mapped, found.size, tuple(why), candidates), []
    if len(candidates) == 1:
        (only,) = candidates
        return VolumeFinding(key, "adopt", only.name, only.size, only.evidence, candidates), []
    if len(candidates) > 1:
        described = "; ".join(f"{c.name} ({human_size(c.size)}: {', '.join(c.evidence)})"
                              for c in candidates)
        mounted = [c.name for c in candidates if any(e.startswith("mounted at") for e in c.evidence)]
        hint = f" (the running container mounts {mounted[0]})" if len(mounted) == 1 else ""
        return VolumeFinding(key, "blocked", candidates=candidates), [Blocker(
            key, f"{len(candidates)} volumes could hold its data: {described}",
            f"choose the one holding the data{hint}: "
            + _config_set(f"fourlb:volumeNames.{key}", "<volume>", stack))]
    if outside:
        return VolumeFinding(key, "blocked"), outside
    if compose_missing:
        return VolumeFinding(key, "blocked"), [Blocker(
            key, f"{compose.path} names its volume {compose_missing}, which "  # type: ignore[union-attr]
                 f"{facts.docker_host} does not have",
            "run adopt against the host this compose file runs on (DOCKER_HOST), or set "
            + _config_set(f"fourlb:volumeNames.{key}", "<volume>", stack))]
    return VolumeFinding(key, "new", evidence=("not on this host: pulumi up creates it empty",)), []


@dataclass(frozen=True)
class _Carry:
    secret: str  # catalog name
    volume: str  # carried when this volume is adopted
    service: str
    reason: str


CARRIED = (
    _Carry("postgres-password", "postgres_data", "postgres",
           "PostgreSQL set it when the data directory was created; the AI backend and the "
           "backup log in with it"),
    _Carry("grafana-admin-password", "grafana_data", "grafana",
           "Grafana stored the admin password in grafana.db on its first start"),
    _Carry("crowdsec-bouncer-key", "crowdsec_data", "crowdsec",
           "CrowdSec already knows it, and today's Traefik streams with it until the new "
           "one replaces it (a new key would also work: core/bouncer_key.py)"),
    _Carry("redis-password", "redis_data", "redis",
           "clients of the adopted data keep working with the password they have"),
)


def _secret_source(carry: _Carry, old: HostContainer, key: str, stack: str
                   ) -> Optional[tuple[str, str]]:
    """(where the value is, the command that pipes it into pulumi) for one container."""
    env = {"postgres-password": "POSTGRES_PASSWORD",
           "grafana-admin-password": "GF_SECURITY_ADMIN_PASSWORD",
           "redis-password": "REDIS_PASSWORD"}.get(carry.secret)
    if carry.secret == "crowdsec-bouncer-key":
        for name in sorted(old.env_names):
            if name.startswith("BOUNCER_KEY_") and name != "BOUNCER_KEY_FILE":
                return f"{old.name}'s env {name}", env_command(old.name, name, key, stack)
        for name in sorted(old.env):
            if name.startswith("BOUNCER_KEY_") and name.endswith("_FILE"):
                return (f"{old.name}'s file {old.env[name]}",
                        file_command(old.name, old.env[name], key, stack))
        return None
    if env and env in old.env_names:
        return f"{old.name}'s env {env}", env_command(old.name, env, key, stack)
    for file_var in (f"{env}_FILE", f"{env}__FILE"):
        if env and file_var in old.env:
            return (f"{old.name}'s file {old.env[file_var]} ({file_var})",
                    file_command(old.name, old.env[file_var], key, stack))
    if carry.secret == "redis-password":
        if "--requirepass" in old.command:
            return f"{old.name}'s command (--requirepass)", flag_command(
                old.name, "--requirepass", key, stack)
        conf = next((w for w in old.command if w.endswith(".conf")), None)
        if conf:
            return f"requirepass in {old.name}'s {conf}", conf_command(old.name, conf, key, stack)
    return None


def _bouncer_label(facts: HostFacts) -> Optional[tuple[str, str]]:
    """A bouncer key in a label of today's Traefik (the crowdsec-bouncer plugin)."""
    for old in _old_containers(facts, "traefik"):
        for label in sorted(old.label_keys):
            if label.lower().endswith(("crowdseclapikey", "crowdsec-lapi-key")):
                return old.name, label
    return None


def _secrets(plan: Plan, facts: HostFacts, adopted: Mapping[str, VolumeFinding],
             secrets_set: set[str]) -> tuple[list[CarriedSecret], list[Blocker]]:
    stack = plan.stack
    needed = {s.name for s in plan.secrets}
    carried: list[CarriedSecret] = []
    blockers: list[Blocker] = []
    for carry in CARRIED:
        finding = adopted.get(carry.volume)
        if carry.secret not in needed or finding is None:
            continue
        key = f"fourlb:{SECRETS[carry.secret].config_key}"
        olds = _old_containers(facts, carry.service)
        found = next(filter(None, (_secret_source(carry, old, key, stack) for old in olds)), None)
        if found is None and carry.secret == "crowdsec-bouncer-key":
            label = _bouncer_label(facts)
            if label:
                found = (f"{label[0]}'s label {label[1]}", label_command(*label, key, stack))
        if carry.secret == "redis-password" and found is None:
            continue  # today's redis has no password: a new one is generated
        if key in secrets_set:
            carried.append(CarriedSecret(key, carry.reason, found[0] if found else "", None, True))
        elif found:
            carried.append(CarriedSecret(key, carry.reason, found[0], found[1]))
        else:
            where = (f"{olds[0].name} holds no copy of this secret in its configuration" if olds
                     else f"no container of {carry.service} is there to read this secret from")
            carried.append(CarriedSecret(key, carry.reason, "", None))
            blockers.append(Blocker(key, f"{finding.name} is adopted, and {where}", (
                f"set the value in use, typed at the prompt: pulumi config set --secret {key} "
                f"-s {stack}")))
    return carried, blockers


def _postgres_blockers(facts: HostFacts, adopted: Mapping[str, VolumeFinding]) -> list[Blocker]:
    """The adopted data directory keeps the superuser and database it was created with."""
    if "postgres_data" not in adopted:
        return []
    blockers = []
    for old in _old_containers(facts, "postgres"):
        user = old.env.get("POSTGRES_USER", "postgres")
        database = old.env.get("POSTGRES_DB", user)
        if user != POSTGRES_USER:
            blockers.append(Blocker("postgres", (
                f"the data directory's superuser is {user} ({old.name}'s POSTGRES_USER); the "
                f"plan connects as {POSTGRES_USER}"), (
                f"before the cutover: docker exec -it {old.name} psql -U {user} -d postgres "
                f"-c 'CREATE ROLE {POSTGRES_USER} LOGIN SUPERUSER' -c '\\password {POSTGRES_USER}' "
                "(type the carried-over password)")))
        if database != POSTGRES_DB:
            blockers.append(Blocker("postgres", (
                f"the AI backend's database is {database} ({old.name}'s POSTGRES_DB); the plan's "
                f"DATABASE_URL names {POSTGRES_DB}"), (
                f"with no client connected: docker exec {old.name} psql -U {user} -d postgres "
                f"-c 'ALTER DATABASE \"{database}\" RENAME TO {POSTGRES_DB}'")))
    return blockers


def _redis_blockers(facts: HostFacts, adopted: Mapping[str, VolumeFinding]) -> list[Blocker]:
    """The plan's Redis runs with appendonly yes: a Redis that finds no append-only
    file starts empty, even with a dump.rdb beside it."""
    finding = adopted.get("redis_data")
    if finding is None:  # (a running redis holds its data in memory: its volume may be empty)
        return []
    blockers = []
    for old in _old_containers(facts, "redis"):
        if old.aof is False:
            auth = (f"-e REDISCLI_AUTH=\"$({flag_value(old.name, '--requirepass')})\" "
                    if "--requirepass" in old.command else "")
            blockers.append(Blocker("redis_data", (
                f"{old.name} keeps its data in dump.rdb only (no append-only file in "
                f"{finding.name}); the plan's redis runs with appendonly yes and, finding no "
                "append-only file, would start empty"), (
                f"have the running redis write one before the cutover: docker exec {auth}{old.name} "
                "redis-cli CONFIG SET appendonly yes (then run adopt again)")))
    return blockers


def _stop_list(plan: Plan, facts: HostFacts) -> tuple[list[OldContainer], list[OldContainer]]:
    ports = {p.external: c.name for c in plan.containers for p in c.published_ports}
    stop, claimed = [], set()
    for container in plan.containers:
        for old in _old_containers(facts, container.name):
            claimed.add(old.name)
            reasons = []
            if old.name == container.name and container.update_order == "stop-first":
                reasons.append("has the plan's fixed name")
            else:
                reasons.append(f"today's {container.name}")
            held = [p for p in old.host_ports if p in ports]
            if held:
                reasons.append("holds host port " + ", ".join(map(str, held)))
            stop.append(OldContainer(old.name, old.image, "; ".join(reasons)))
    for old in facts.containers:
        held = [p for p in old.host_ports if p in ports]
        if old.name not in claimed and held:
            claimed.add(old.name)
            stop.append(OldContainer(old.name, old.image, "holds host port "
                                     + ", ".join(f"{p} ({ports[p]} publishes it)" for p in held)))
    others = [OldContainer(c.name, c.image, f"not in stack {plan.stack}: left as it is")
              for c in facts.containers if c.name not in claimed]
    return sorted(stop, key=lambda c: c.name), sorted(others, key=lambda c: c.name)


def _networks(plan: Plan, facts: HostFacts, import_file: bool
              ) -> tuple[list[NetworkFinding], list[Blocker]]:
    findings, blockers = [], []
    for network in plan.networks:
        if network.external:
            continue
        for existing in (n for n in facts.networks if n.name == network.name):
            wanted = "a bridge" + (" (internal)" if network.internal else "")
            if existing.compose_project:
                findings.append(NetworkFinding(existing.name, existing.id, "recreated"))
            elif existing.driver != "bridge" or existing.internal != network.internal:
                findings.append(NetworkFinding(existing.name, existing.id, "blocked"))
                blockers.append(Blocker(network.name, (
                    f"exists as {existing.driver}{' (internal)' if existing.internal else ''}; "
                    f"the plan declares {wanted}"), (
                    f"remove it once the old containers are stopped: docker network rm "
                    f"{network.name} (pulumi up creates it)")))
            else:
                findings.append(NetworkFinding(existing.name, existing.id, "import"))
                if not import_file:
                    blockers.append(Blocker(network.name, (
                        "exists (made outside Compose): pulumi up would fail creating it"), (
                        f"python -m plan adopt {plan.stack} --import-file docker-import.json, then "
                        f"pulumi import --file docker-import.json -s {plan.stack}")))
    return findings, blockers


def adopt(plan: Plan, facts: HostFacts, compose: Optional[ComposeFile] = None,
          volume_names: Mapping[str, str] = {}, secrets_set: Iterable[str] = (),
          import_file: bool = False) -> AdoptReport:
    """`volume_names`: the stack's fourlb:volumeNames; `secrets_set`: the config keys the
    stack file already holds as secrets (`fourlb:postgresPassword`, ...)."""
    blockers: list[Blocker] = []
    if not facts.containers and not facts.volumes:
        blockers.append(Blocker("engine", (
            f"nothing to take over at {facts.docker_host}: no container and no volume"), (
            "point DOCKER_HOST at the running 4lb.ca host; a new host needs no takeover: "
            "deploy without fourlb:takeover")))
    findings = []
    for volume in plan.volumes:
        finding, found = _find_volume(plan, volume.name, facts, compose,
                                      volume_names.get(volume.name))
        findings.append(finding)
        blockers += found
    adopted = {f.key: f for f in findings if f.status == "adopt"}
    carried, secret_blockers = _secrets(plan, facts, adopted, set(secrets_set))
    blockers += secret_blockers + _postgres_blockers(facts, adopted) + _redis_blockers(facts, adopted)
    stop, others = _stop_list(plan, facts)
    networks, network_blockers = _networks(plan, facts, import_file)
    blockers += network_blockers
    pulls = sorted({c.image for c in plan.containers if not c.build_context} - facts.images)
    builds = sorted({(c.image, c.build_context) for c in plan.containers
                     if c.build_context and c.image not in facts.images})
    names = {key: f.name for key, f in sorted(adopted.items()) if f.name}
    settings: dict[str, Any] = {"fourlb:takeover": True, "fourlb:volumeNames": names} if names else {}
    commands = ([f"pulumi config set fourlb:takeover true -s {plan.stack}"]
                + [_config_set(f"fourlb:volumeNames.{key}", name, plan.stack)
                   for key, name in names.items()]) if names else []
    claimed = {c.name for f in findings for c in f.candidates} | set(names.values())
    return AdoptReport(
        stack=plan.stack, docker_host=facts.docker_host, version=facts.version,
        volumes=tuple(findings), settings=settings, setting_commands=tuple(commands),
        secrets=tuple(carried), stop=tuple(stop), others=tuple(others), networks=tuple(networks),
        pulls=tuple(pulls), builds=tuple(builds), unclaimed=tuple(v for v in facts.volumes if v.name not in claimed),
        blockers=tuple(blockers),
        import_file=docker_import_file(names, {n.name: n.id for n in networks if n.action == "import"}),
    )


# --- text ----------------------------------------------------------------------------

def report_text(report: AdoptReport, import_path: Optional[str] = None) -> str:
    stack = report.stack
    lines = [f"Taking over stack {stack} on {report.docker_host} (Docker {report.version})", ""]
    lines.append("Volumes (the plan's -> the engine's)")
    width = max((len(v.key) for v in report.volumes), default=0)
    for v in report.volumes:
        if v.status == "adopt":
            lines.append(f"  {v.key:<{width}}  {v.name}  {human_size(v.size)}  "
                         f"({'; '.join(v.evidence)})")
        elif v.status == "new":
            lines.append(f"  {v.key:<{width}}  (new: pulumi up creates it empty)")
        else:
            lines.append(f"  {v.key:<{width}}  BLOCKED (see below)")
    if report.unclaimed:
        lines.append("  not used by the plan, left as they are: " + ", ".join(
            f"{v.name} ({human_size(v.size)})" for v in report.unclaimed))
    lines += ["", f"Settings to add to Pulumi.{stack}.yaml"]
    if report.settings:
        lines += ["  " + line for line in yaml.safe_dump(dict(report.settings), sort_keys=False)
                  .splitlines()]
        lines += ["  or:"] + [f"    {c}" for c in report.setting_commands]
    else:
        lines.append("  none: no volume to adopt")
    lines += ["", "Secrets to carry over (run before the old containers stop; each command "
                  "pipes the value into pulumi, nothing is shown)"]
    for s in report.secrets:
        state = "already set in the stack" if s.already_set else (
            f"from {s.source}" if s.command else "BLOCKED (see below)")
        lines.append(f"  {s.config_key}: {state}; {s.reason}")
        if s.command:
            lines.append(f"    {s.command}")
    if not report.secrets:
        lines.append("  none: no adopted data depends on one")
    lines += ["", "Stop and remove at the cutover (docker compose down, without -v)"]
    lines += [f"  {c.name} ({c.image}): {c.reason}" for c in report.stop] or ["  none"]
    if report.others:
        lines += ["  other containers: " + ", ".join(f"{c.name} ({c.image})" for c in report.others)
                  + f": not in stack {stack}, left as they are"]
    lines += ["", "Networks"]
    actions = {"import": "exists: adopted by the import file; fourlb:takeover ignores its labels",
               "recreated": "made by Compose: docker compose down removes it, pulumi up creates it",
               "blocked": "BLOCKED (see below)"}
    lines += [f"  {n.name} ({n.id[:12]}): {actions[n.action]}" for n in report.networks] or [
        "  none of the plan's exists yet: pulumi up creates them"]
    lines += ["", "Images to pull before anything stops"]
    lines += [f"  docker pull {image}" for image in report.pulls] or ["  none: all present"]
    if report.builds:
        lines += ["", "Images the host builds (pulumi up builds them before it replaces anything; "
                      "to have them ahead, from this checkout)"]
        lines += [f"  {_build_command(image, context)}" for image, context in report.builds]
    if report.import_file.get("resources"):
        where = import_path or "(give --import-file PATH to write it)"
        lines += ["", f"Import file: {where}",
                  f"  pulumi import --file {import_path or 'PATH'} -s {stack}"]
    lines.append("")
    if report.blockers:
        lines.append(f"Blockers ({len(report.blockers)})")
        for index, b in enumerate(report.blockers, 1):
            lines += [f"  {index}. {b.subject}: {b.problem}", f"     fix: {b.fix}"]
    else:
        lines.append("Nothing blocks: follow docs/cutover.md")
    return "\n".join(lines) + "\n"


def _build_command(image: str, context: str) -> str:
    return f"docker build -t {image} {context}/"
