"""Pydantic models of one stack's configuration (the `fourlb:*` keys).

A stack file such as Pulumi.prod.yaml holds one Pulumi config key per field of
`StackConfig`, spelled in camelCase (`fourlb:platformDomain`, `fourlb:sites`).
Everything here is checked before any resource is declared.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .types import Hostname, Image, MemoryMb, Name, Port, is_within_zone

# Plain env values are visible in `docker inspect`, the state and the preview:
# anything that looks like a credential must come from a secret instead.
_SECRET_LOOKING_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)", re.I)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if not _ENV_NAME.match(key):
            raise ValueError(f"env name {key!r}: allowed: letters, digits and '_'")
        if _SECRET_LOOKING_ENV.search(key):
            raise ValueError(
                f"env {key!r} looks like a credential: allowed: non-secret values only; "
                "declare credentials as secrets (pulumi config set --secret)"
            )
    return env


EnvVars = Annotated[dict[str, str], AfterValidator(_check_env)]


class BindMount(_Model):
    """A host directory or file made visible in a container (read-only by default)."""

    host_path: str = Field(pattern=r"^/[^\x00]*$")
    target: str = Field(pattern=r"^/[^\x00]*$")
    read_only: bool = True

    @field_validator("host_path")
    @classmethod
    def _not_docker_socket(cls, value: str) -> str:
        if value.rstrip("/") in ("/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run"):
            raise ValueError(
                "allowed: any host path but the Docker socket; only the socket proxy reads it"
            )
        return value


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
    bind_mounts: list[BindMount] = Field(default_factory=list)



class SiteSettings(_Model):
    """A website: one container, served on its hostnames through Traefik."""

    image: Image
    hostnames: list[Hostname] = Field(min_length=1)
    port: Port = 80
    memory_mb: MemoryMb = 256
    health_path: str = Field(default="/", pattern=r"^/[A-Za-z0-9._~/%-]*$")
    content_security_policy: Optional[str] = Field(default=None, pattern=r"^[^`\n\r]+$")
    env: EnvVars = Field(default_factory=dict)
    bind_mounts: list[BindMount] = Field(default_factory=list)



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


# Ranges that can never be a public host's address. Documentation ranges
# (TEST-NET) are allowed so that example stack files validate.
_NEVER_PUBLIC = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                 "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")


class DnsSettings(_Model):
    provider: Literal["cloudflare", "none"] = "cloudflare"
    # The host's public address, the content of every A record.
    target_ipv4: Optional[str] = None
    proxied: bool = False

    @field_validator("target_ipv4")
    @classmethod
    def _ipv4(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError("allowed: an IPv4 address such as 203.0.113.10") from None
        if any(address in ipaddress.IPv4Network(net) for net in _NEVER_PUBLIC):
            raise ValueError("allowed: the host's public IPv4 address, not a private one")
        return value

    @model_validator(mode="after")
    def _target_needed(self) -> "DnsSettings":
        if self.provider == "cloudflare" and self.target_ipv4 is None:
            raise ValueError("targetIpv4 is required when provider is cloudflare")
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
    admin_allow_ips: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list
    )
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    services: dict[Name, ServiceSettings] = Field(default_factory=dict)
    sites: dict[Name, SiteSettings] = Field(default_factory=dict)
    routes: list[ExtraRoute] = Field(default_factory=list)

    @model_validator(mode="after")
    def _role_rules(self) -> "StackConfig":
        if self.role == "sites":
            if self.edge_stack is None:
                raise ValueError("edgeStack: a sites stack must name the stack whose Traefik serves it")
            if self.services:
                raise ValueError("services: a sites stack runs no platform services")
            for zone in self.zones:
                if not is_within_zone(zone, self.platform_domain):
                    raise ValueError(
                        f"zones: {zone!r} is a client domain; client domains belong to the "
                        f"platform stack, a sites stack may only use {self.platform_domain}"
                    )
        elif self.edge_stack is not None:
            raise ValueError("edgeStack: only a sites stack joins another stack's edge")
        if self.tls == "letsencrypt" and self.role == "platform" and self.acme is None:
            raise ValueError("acme: required when tls is letsencrypt (at least the email)")
        if self.acme and self.acme.challenge == "cloudflare-dns" and self.dns.provider != "cloudflare":
            raise ValueError("acme.challenge: cloudflare-dns needs dns.provider cloudflare")
        return self
