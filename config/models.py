"""Pydantic models of one stack's configuration (the `fourlb:*` keys).

A stack file such as Pulumi.prod.yaml holds one Pulumi config key per field of
`StackConfig`, spelled in camelCase (`fourlb:platformDomain`, `fourlb:sites`).
Everything here is checked before any resource is declared.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Annotated, Literal, Optional

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)
from pydantic.alias_generators import to_camel

from .types import Hostname, Image, MemoryMb, Name, Port, RegistryHost, is_within_zone

# Plain env values are visible in `docker inspect`, the state and the preview:
# anything that looks like a credential must come from a secret instead.
_SECRET_LOOKING_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)", re.I)
_SECRET_LOOKING_VALUE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@"  # a URL with a password
    r"|\$(2[abxy]\$\d\d|apr1)\$",  # a bcrypt or apr1 password hash
    re.I)
# `${secret:NAME}` is how the plan asks for one of the platform's own secrets:
# in a setting it would hand that secret to whatever container the setting is for.
_PLACEHOLDER = "${secret:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_docker_volume_name(value: str) -> str:
    # Docker's own rule for volume names
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", value) or len(value) > 255:
        raise ValueError("allowed: a Docker volume name: letters, digits, '_', '.' and '-', "
                         "starting with a letter or digit, e.g. ai-tools_postgres_data")
    return value


DockerVolumeName = Annotated[str, AfterValidator(_check_docker_volume_name)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            raise ValueError(f"env name {key!r}: allowed: letters, digits and '_'")
        if _SECRET_LOOKING_ENV.search(key) or _SECRET_LOOKING_VALUE.search(value):
            raise ValueError(
                f"env {key!r} looks like a credential: allowed: non-secret values only; "
                "declare credentials as secrets (pulumi config set --secret)"
            )
        if _PLACEHOLDER in value:
            raise ValueError(f"env {key!r}: allowed: plain text without {_PLACEHOLDER!r}, "
                             "which is reserved for the platform's secrets")
    return env


EnvVars = Annotated[dict[str, str], AfterValidator(_check_env)]


# Host paths that hand over the host or its containers (kernel interfaces,
# devices, the boot files, Docker's and containerd's state): never bound.
HOST_CONTROL_PATHS = ("/proc", "/sys", "/dev", "/boot", "/var/lib/docker", "/var/lib/containerd",
                      "/run/containerd", "/var/run/containerd", "/etc/docker")
# The host's system and users' files: bound read-only only (a container's data
# belongs in a volume or a directory of its own, e.g. under /srv)
SYSTEM_PATHS = ("/etc", "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/root", "/home",
                "/var/lib", "/var/log", "/var/spool", "/var/mail")


def _within(path: str, directories: tuple[str, ...]) -> Optional[str]:
    return next((d for d in directories if path == d or path.startswith(d + "/")), None)


class BindMount(_Model):
    """A host directory or file made visible in a container (read-only by default)."""

    host_path: str = Field(pattern=r"^/[^\x00]*$")
    target: str = Field(pattern=r"^/[^\x00]*$")
    read_only: bool = True

    @field_validator("host_path")
    @classmethod
    def _not_docker_socket(cls, value: str) -> str:
        # `//var/run/./docker.sock/` is the socket too, and / and /var contain it
        path = "/" + posixpath.normpath(value).lstrip("/")
        if path in ("/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var", "/"):
            raise ValueError(
                "allowed: any host path but the Docker socket and the directories that hold "
                "it (/, /var, /run, /var/run); only the socket proxy reads it"
            )
        return value

    @model_validator(mode="after")
    def _host_paths_a_container_may_take(self) -> "BindMount":
        path = "/" + posixpath.normpath(self.host_path).lstrip("/")
        if (directory := _within(path, HOST_CONTROL_PATHS)):
            raise ValueError(f"allowed: a hostPath outside {directory}, which hands the host or "
                             "its containers over")
        if not self.read_only and (directory := _within(path, SYSTEM_PATHS)):
            raise ValueError(f"allowed: readOnly true for a hostPath under {directory}, the host's "
                             "own files; keep a container's data in a volume or under /srv")
        return self


def _one_bind_per_target(mounts: list[BindMount]) -> list[BindMount]:
    targets = [posixpath.normpath(m.target) for m in mounts]
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    if doubled:
        raise ValueError(f"allowed: one bind per target; {', '.join(doubled)} is bound twice")
    return mounts


BindMounts = Annotated[list[BindMount], AfterValidator(_one_bind_per_target)]


# each slot is an overlay network the edge's tasks are attached to
DEFAULT_EDGE_SLOTS = 8
MAX_EDGE_SLOTS = 64


class ServiceSettings(_Model):
    """Per-stack adjustments of one platform service from the catalog."""

    enabled: bool = True
    image: Optional[Image] = None
    hostname: Optional[Hostname] = None
    memory_mb: Optional[MemoryMb] = None
    # for a stand-in image that listens elsewhere or checks itself differently
    port: Optional[Port] = None
    healthcheck: Optional[list[str]] = Field(default=None, min_length=1)
    env: EnvVars = Field(default_factory=dict)
    bind_mounts: BindMounts = Field(default_factory=list)



class SiteSettings(_Model):
    """A website: one container, served on its hostnames through Traefik."""

    image: Image
    hostnames: list[Hostname] = Field(min_length=1)
    port: Port = 80
    memory_mb: MemoryMb = 256
    health_path: str = Field(default="/", pattern=r"^/[A-Za-z0-9._~/%-]*$")
    # for an image without wget: the command Docker runs to check health
    healthcheck: Optional[list[str]] = Field(default=None, min_length=1)
    # a header value: no control characters (nor backticks, for good measure)
    content_security_policy: Optional[str] = Field(default=None, pattern=r"^[^`\x00-\x1f\x7f]+$")
    env: EnvVars = Field(default_factory=dict)
    bind_mounts: BindMounts = Field(default_factory=list)
    # a mutable tag in a registry (e.g. ghcr.io/jsr/site:dev): each deployment asks
    # the registry for its digest and ships a new build when the tag moved
    follow_tag: bool = False
    # a way out of the host (payment or mail APIs): the site's own network with
    # Traefik gets a gateway. Without it the site reaches nothing but Traefik.
    egress: bool = False
    # on a swarm: which of the edge's networks made in advance the site takes
    # (fourlb:swarm.edgeSlots), one site per slot
    edge_slot: Optional[Annotated[int, Field(ge=1, le=MAX_EDGE_SLOTS)]] = None

    @field_validator("follow_tag")
    @classmethod
    def _follow_a_tag(cls, value: bool, info: ValidationInfo) -> bool:
        image = info.data.get("image", "")
        if value and "@sha256:" in image:
            raise ValueError(f"allowed: only for an image named by a tag; {image!r} is pinned "
                             "by digest")
        return value

    @field_validator("content_security_policy")
    @classmethod
    def _no_placeholder(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and _PLACEHOLDER in value:
            raise ValueError(f"allowed: a policy without {_PLACEHOLDER!r}, which is reserved "
                             "for the platform's secrets")
        return value


class ExtraRoute(_Model):
    """Another hostname (and optional path) for a container this stack runs."""

    hostname: Hostname
    container: Name
    path_prefix: Optional[str] = Field(default=None, pattern=r"^/[A-Za-z0-9._~/-]*$")


class AcmeSettings(_Model):
    email: str = Field(pattern=r"^[^@\s`]+@[^@\s`]+\.[a-z]{2,}$")
    challenge: Literal["http", "cloudflare-dns"] = "http"
    staging: bool = False


class RateLimits(_Model):
    """Requests per minute per client IP."""

    ai_api_per_minute: int = Field(default=60, ge=1, le=100_000)
    default_per_minute: int = Field(default=600, ge=1, le=100_000)


class DnsSettings(_Model):
    provider: Literal["cloudflare", "none"] = "cloudflare"
    # The host's public address, the content of every A record. It may be unset
    # while planning (python -m plan); a deployment needs it (core.deploy_checks).
    target_ipv4: Optional[str] = None
    proxied: bool = False

    @field_validator("proxied")
    @classmethod
    def _not_proxied(cls, value: bool) -> bool:
        # Until the edge trusts Cloudflare's ranges (forwarded headers, the
        # client-IP strategy of rate limits, allow-list and bouncer), a proxied
        # record turns every visitor into a Cloudflare address.
        if value:
            raise ValueError(
                "allowed: false; behind Cloudflare's proxy every visitor arrives from a "
                "Cloudflare address, so CrowdSec would ban Cloudflare, one rate limit would be "
                "shared by everyone and the admin allow-list would stop matching")
        return value

    @field_validator("target_ipv4")
    @classmethod
    def _ipv4(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else public_ipv4(value)


def public_ipv4(value: str) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("allowed: an IPv4 address such as 149.56.10.20") from None
    # is_global is False for private, shared, loopback, link-local and the
    # documentation ranges (TEST-NET): a record there points at no host
    if not address.is_global or address.is_multicast or address.is_reserved:
        raise ValueError("allowed: the host's public unicast IPv4 address; private, "
                         "reserved and documentation (TEST-NET) ranges reach no host")
    return value


NodeRole = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
# where each kind of service runs by default (catalog roles -> node label
# fourlb.role): the edge on the edge nodes, the data and what keeps state beside
# it on the data node, the AI services and the code-server on the AI node. The
# backup is no kind here: each node role that holds data runs its own
# (core.backup), where the data is.
DEFAULT_PLACEMENT = {"edge": "edge", "data": "data", "monitoring": "data", "ai": "ai", "tools": "ai"}


class SwarmSettings(_Model):
    """The platform on Docker Swarm (`engine: swarm`). Nodes are told apart by
    their label fourlb.role (`docker node update --label-add fourlb.role=edge NODE`)."""

    # the public address of each edge node (fourlb.role=edge): one A record per
    # address and hostname. May be unset while planning; a deployment needs them.
    edge_addresses: list[str] = Field(default_factory=list)
    # kind of service (edge, data, monitoring, ai, tools) -> node role;
    # sites run on any node unless a container's own entry says otherwise
    placement: dict[str, NodeRole] = Field(default_factory=lambda: dict(DEFAULT_PLACEMENT))

    @field_validator("placement")
    @classmethod
    def _known_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        if "backup" in value:
            raise ValueError("allowed: a kind of service: " + ", ".join(sorted(DEFAULT_PLACEMENT))
                             + "; backup is none: each node role that holds data runs its own "
                             "backup (backup-<node role>), where the volumes it reads are")
        unknown = sorted(set(value) - set(DEFAULT_PLACEMENT))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: allowed: a kind of service: "
                             + ", ".join(sorted(DEFAULT_PLACEMENT)))
        return value
    # a container (service or site) -> node role, over its kind's
    nodes: dict[Name, NodeRole] = Field(default_factory=dict)
    # a stateless container -> how many tasks (default 1; sites 2)
    replicas: dict[Name, Annotated[int, Field(ge=1, le=20)]] = Field(default_factory=dict)
    # where the images the program builds (the edge's, the backup's) are pushed, so
    # that every node can pull them: a registry's host[:port] the deployer is logged
    # in to (`docker login`) and the nodes can read
    registry: Optional[RegistryHost] = None
    # how many networks the edge joins in advance for client sites, one site each
    # (fourlb:sites.<name>.edgeSlot): a site added takes one, and the edge's own
    # networks stay as they are (a new one would replace its service)
    edge_slots: Annotated[int, Field(ge=1, le=MAX_EDGE_SLOTS)] = DEFAULT_EDGE_SLOTS
    # how a service's name resolves: `vip`, one virtual address the swarm balances
    # (IPVS), or `dnsrr`, every task's own address (for kernels without IPVS; the
    # swarm's DNS then answers no network alias but the service's name)
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"

    @field_validator("edge_addresses")
    @classmethod
    def _public(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("allowed: each address once")
        return [public_ipv4(v) for v in values]


_EMAIL = re.compile(r"^[^@\s`'\"]+@[^@\s`'\"]+\.[a-z]{2,}$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("allowed: an email address such as ops@4lb.ca")
    return value


EmailAddress = Annotated[str, AfterValidator(_check_email)]


class SmtpSettings(_Model):
    """The mail server Alertmanager sends through. Its password is a secret:
    `pulumi config set --secret fourlb:smtpPassword` (needed when `username` is set)."""

    host: Hostname
    port: Port = 587
    from_address: EmailAddress
    to: list[EmailAddress] = Field(min_length=1)
    username: Optional[str] = Field(default=None, pattern=r"^[^\s'\"`]+$")
    # STARTTLS; only a relay on a trusted network may do without it
    require_tls: bool = True


class AlertingSettings(_Model):
    """When Prometheus raises an alert, and where Alertmanager sends it."""

    cpu_percent: float = Field(default=90, gt=0, le=100)
    disk_percent: float = Field(default=90, gt=0, le=100)
    cert_days: int = Field(default=14, ge=1, le=89)
    # share of a Traefik service's answers that are 5xx
    server_error_ratio: float = Field(default=0.05, gt=0, le=1)
    # a daily backup plus slack for a slow run
    backup_max_age_hours: int = Field(default=26, ge=1, le=24 * 14)
    # without it alerts are only visible in Alertmanager and Grafana
    smtp: Optional[SmtpSettings] = None


_CRON_FIELD = re.compile(r"^[0-9*][0-9*,/-]*$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class S3Remote(_Model):
    """An S3-compatible bucket holding the encrypted off-site copies (a restic
    repository). Secrets: fourlb:backupS3AccessKeyId, fourlb:backupS3SecretAccessKey
    and fourlb:backupResticPassword (keep a copy of the last one off this host)."""

    endpoint: str
    bucket: str
    region: Optional[str] = Field(default=None, pattern=r"^[a-z0-9-]+$")
    # a folder of the bucket; default: the platform domain, so stacks can share a bucket
    prefix: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        match = re.match(r"^(https?)://([A-Za-z0-9.-]+|\[::1\])(:[0-9]{1,5})?/?$", value)
        if not match:
            raise ValueError("allowed: an endpoint URL such as https://s3.ca-central-1.amazonaws.com")
        if match.group(1) == "http" and match.group(2) not in _LOOPBACK_HOSTS:
            raise ValueError("allowed: https:// (plain http only for a server on this host)")
        return value.rstrip("/")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _S3_BUCKET.match(value) or ".." in value:
            raise ValueError("allowed: an S3 bucket name: 3-63 lowercase letters, digits, "
                             "dots and dashes")
        return value


class BackupSettings(_Model):
    """The daily backup: database dumps and volume snapshots, kept on this host
    and, when `remote` is set, copied to an S3-compatible bucket."""

    schedule: str = "15 3 * * *"  # cron, in UTC
    # the restore check of the newest run (backup/verify-latest): weekly, after that night's run
    verify_schedule: str = "45 4 * * 0"
    local_retention_days: int = Field(default=7, ge=1, le=365)
    remote_retention_days: int = Field(default=30, ge=1, le=3650)
    remote: Optional[S3Remote] = None

    @field_validator("schedule", "verify_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError("allowed: a 5-field cron expression (minute hour day month "
                             "weekday, UTC) of digits, '*', ',', '-' and '/', e.g. '15 3 * * *'")
        return " ".join(fields)


class OllamaSettings(_Model):
    """Where Open WebUI and the AI backend find Ollama (the models they run).

    - host: Ollama runs on the Docker host itself, as installed there; the two
      reach it as host.docker.internal (Docker's host-gateway address) on
      `hostPort`. Ollama must listen where containers reach it (README).
    - service: the plan runs Ollama's image (`fourlb:services.ollama` adjusts it
      like any platform service), its models in the protected volume
      ollama_data, on the host's GPUs when `gpus` is set.
    """

    runs_on: Literal["host", "service"] = "host"
    host_port: Port = 11434
    # Docker's --gpus: "all" or "device=0,2" (the NVIDIA Container Toolkit)
    gpus: Optional[str] = Field(default=None, pattern=r"^(all|device=[A-Za-z0-9-]+(,[A-Za-z0-9-]+)*)$")

    @model_validator(mode="after")
    def _settings_of_its_place(self) -> "OllamaSettings":
        if self.runs_on == "service" and "host_port" in self.model_fields_set:
            raise ValueError("hostPort: only with runsOn host; the service listens on 11434 "
                             "inside its network")
        if self.runs_on == "host" and self.gpus is not None:
            raise ValueError("gpus: only with runsOn service; Ollama on the host uses the "
                             "host's GPUs itself")
        return self


class StackConfig(_Model):
    """Everything one stack needs. `role` decides what it deploys:

    - platform: the edge (Traefik), the data, AI and monitoring services, and sites;
    - sites: only websites, joining the network and the Traefik of `edgeStack`.
    """

    role: Literal["platform", "sites"]
    edge_stack: Optional[Name] = None
    platform_domain: Hostname
    zones: list[Hostname] = Field(min_length=1)
    tls: Literal["letsencrypt", "self-signed"] = "letsencrypt"
    acme: Optional[AcmeSettings] = None
    dns: DnsSettings = Field(default_factory=DnsSettings)
    shared_network: Name = "unified-net"
    admin_user: Name = "admin"
    # the owner's login where an application wants an email (Open WebUI's admin);
    # unset: admin@<platformDomain>
    admin_email: Optional[EmailAddress] = None
    admin_allow_ips: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list
    )
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # unset: while CrowdSec's API does not answer, known bans are still refused
    # and everyone else is served; set: everyone is refused after that long
    crowdsec_fail_closed_after_seconds: Optional[int] = Field(default=None, ge=15, le=86_400)
    services: dict[Name, ServiceSettings] = Field(default_factory=dict)
    sites: dict[Name, SiteSettings] = Field(default_factory=dict)
    routes: list[ExtraRoute] = Field(default_factory=list)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    # Taking over a host that already runs the platform (docs/cutover.md, `python -m
    # plan adopt`): the Docker name of a plan volume (key: the plan's volume, e.g.
    # postgres_data: ai-tools_postgres_data); with `takeover`, each mapped volume
    # is imported, so a missing one stops the deployment instead of starting empty
    volume_names: dict[str, DockerVolumeName] = Field(default_factory=dict)
    takeover: bool = False
    # what runs the plan: one Docker host, or a Docker Swarm (`swarm` settings)
    engine: Literal["docker", "swarm"] = "docker"
    # the Docker host's CPU: the images the project builds (the edge's, the
    # backup's) are built for it, whatever the machine that runs `pulumi up`
    host_platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    swarm: Optional[SwarmSettings] = None

    @model_validator(mode="after")
    def _role_rules(self) -> "StackConfig":
        if self.role == "sites":
            if self.edge_stack is None:
                raise ValueError("edgeStack: a sites stack must name the stack whose Traefik serves it")
            if self.services:
                raise ValueError("services: a sites stack runs no platform services")
            if "ollama" in self.model_fields_set:
                raise ValueError("ollama: a sites stack runs no AI services; set it in the "
                                 "platform stack")
            for key in ("alerting", "backup"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: a sites stack has no monitoring or backups of its "
                                     "own; the platform stack of its edge covers the host")
            for zone in self.zones:
                if not is_within_zone(zone, self.platform_domain):
                    raise ValueError(
                        f"zones: {zone!r} is a client domain; client domains belong to the "
                        f"platform stack, a sites stack may only use {self.platform_domain}"
                    )
        elif self.edge_stack is not None:
            raise ValueError("edgeStack: only a sites stack joins another stack's edge")
        if self.engine == "swarm" and self.role != "platform":
            raise ValueError("engine: a sites stack runs on its edge's engine; swarm is for a "
                             "platform stack (its sites are in its own fourlb:sites)")
        if (self.engine == "swarm") != (self.swarm is not None):
            raise ValueError("swarm: set exactly when engine is swarm (the nodes' addresses "
                             "and placement)")
        if self.tls == "letsencrypt" and self.role == "platform" and self.acme is None:
            raise ValueError("acme: required when tls is letsencrypt (at least the email)")
        if self.acme and self.acme.challenge == "cloudflare-dns" and self.dns.provider != "cloudflare":
            raise ValueError("acme.challenge: cloudflare-dns needs dns.provider cloudflare")
        return self
