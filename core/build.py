"""Stack configuration -> plan. Pure functions; every decision is made here."""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Callable, Iterable, Optional

from config.errors import MISSING, Problem, StackConfigError
from config.models import ServiceSettings, SiteSettings, StackConfig
from config.types import is_within_zone

from . import (backup, bouncer_key, catalog, files, live_config, monitoring, names, networks, ollama,
               passwords, socket_proxy, start_scripts, traefik)
from .catalog import PLATFORM_SERVICES, SECRETS, SERVICES_BY_NAME, ServiceSpec
from .deploy_checks import is_local_stack
from .model import (
    SELF_HEADERS,
    Container,
    DnsRecord,
    HeaderPolicy,
    HealthCheck,
    Mount,
    Plan,
    PublishedPort,
    Route,
    SecretSpec,
    Upload,
    Volume,
    secret,
)

# Traefik takes a newly healthy container in within about two seconds (Docker
# events, its reload throttle); the old one of a start-first update keeps
# serving this long after the new one is healthy.
SETTLE_S = 5

# The edge cannot be switched off: without it nothing is served or protected.
REQUIRED_SERVICES = ("traefik", "docker-socket-proxy", "crowdsec")


class _Problems:
    def __init__(self, stack: str):
        self.stack = stack
        self.items: list[Problem] = []

    def add(self, key: str, value, allowed: str) -> None:
        self.items.append(Problem(f"fourlb:{key}", value, allowed))

    def raise_if_any(self) -> None:
        if self.items:
            raise StackConfigError(self.stack, self.items)


def build_plan(config: StackConfig, stack: str, served_stacks: Iterable[str] = ()) -> Plan:
    """`served_stacks`: the sites stacks whose sites this stack's Traefik serves
    (core.edge.served_stacks): it joins a network of each."""
    served_stacks = tuple(served_stacks)
    problems = _Problems(stack)
    containers: list[Container] = []
    # (container, hostname) -> the config key that put the hostname there
    hostname_origins: dict[tuple[str, str], str] = {}

    if config.role == "platform":
        _check_service_keys(config, problems)
        for spec in PLATFORM_SERVICES:
            settings = config.services.get(spec.name, ServiceSettings())
            if settings.enabled and (spec.name != ollama.SERVICE or ollama.in_plan(config)):
                containers.append(_service_container(spec, settings, config, hostname_origins))
        containers = ollama.with_ollama(containers, config)
        containers = passwords.with_admin_email(containers, config)
    for name, site in config.sites.items():
        if name in SERVICES_BY_NAME:
            problems.add(f"sites.{name}", name, "allowed: a name no platform service uses")
            continue
        if site.egress and config.role == "sites":
            problems.add(f"sites.{name}.egress", True,
                         "allowed: false; a sites stack's sites share one network with the edge, "
                         "which already leads out of the host")
        containers.append(_site_container(name, site, config, hostname_origins))
    containers = _add_extra_routes(containers, config, problems, hostname_origins)
    _check_hostnames(containers, config, hostname_origins, problems)
    for key, value, allowed in names.clashes(config, stack, served_stacks):
        problems.add(key, value, allowed)
    for key, value, allowed in networks.check_edge_slots(config):
        problems.add(key, value, allowed)
    problems.raise_if_any()

    containers = backup.with_backups(containers, config)
    containers = _with_generated_files(containers, config, stack)
    containers = start_scripts.with_start_scripts(
        containers, {**passwords.START_SCRIPTS, **bouncer_key.START_SCRIPTS})
    containers = _in_start_order(_with_live_config(containers, config))
    containers = networks.with_edge_networks(containers, config, stack, served_stacks)
    containers = networks.without_lonely_networks(containers)
    containers = [replace(c, labels=traefik.labels(c, config, stack),
                          settle_s=SETTLE_S if c.update_order == "start-first" and c.routes else 0)
                  for c in containers]
    return Plan(
        stack=stack,
        role=config.role,
        networks=tuple(replace(n, adopted=config.takeover)
                       for n in networks.declared_networks(containers, config, stack, served_stacks)),
        volumes=_volumes(containers, config, stack),
        containers=tuple(containers),
        dns_records=_dns_records(containers, config),
        secrets=_secret_specs(containers),
        dns_zones=tuple(config.zones) if config.dns.provider == "cloudflare" else (),
    )


def _check_service_keys(config: StackConfig, problems: _Problems) -> None:
    known = ", ".join(SERVICES_BY_NAME)
    if not is_local_stack(config):
        _check_own_software(config, problems)
    for name, settings in config.services.items():
        if name not in SERVICES_BY_NAME:
            problems.add(f"services.{name}", name, f"allowed: one of {known}")
        elif name in REQUIRED_SERVICES and not settings.enabled:
            problems.add(f"services.{name}.enabled", False,
                         "allowed: true; the edge (traefik, socket proxy, crowdsec) is required")
        elif name == ollama.SERVICE and not ollama.in_plan(config):
            problems.add(f"services.{name}", settings.model_dump(by_alias=True, exclude_defaults=True),
                         "allowed: only with fourlb:ollama.runsOn service; Ollama runs on the host")
        elif name == ollama.SERVICE and not settings.enabled:
            problems.add(f"services.{name}.enabled", False,
                         "allowed: true with fourlb:ollama.runsOn service (or runsOn host)")
        else:
            _check_binds_over_own_mounts(SERVICES_BY_NAME[name], settings, problems)


def _check_binds_over_own_mounts(spec: ServiceSpec, settings: ServiceSettings,
                                 problems: _Problems) -> None:
    """A bind of a setting never lays itself over a path the service's own mounts,
    tmpfs or secret files take (its data volume, its password file)."""
    own = ({m.target for m in spec.mounts()} | set(spec.tmpfs)
           | {f.path for f in spec.secret_files})
    for index, bind in enumerate(settings.bind_mounts):
        target = posixpath.normpath(bind.target)
        if target in own:
            problems.add(f"services.{spec.name}.bindMounts.{index}.target", bind.target,
                         f"allowed: a path {spec.name} does not take already ({target} is its own)")


def _check_own_software(config: StackConfig, problems: _Problems) -> None:
    for spec in PLATFORM_SERVICES:
        settings = config.services.get(spec.name, ServiceSettings())
        if not spec.own_software_from or not settings.enabled:
            continue
        given = settings.model_dump(by_alias=True, exclude_defaults=True)
        if not any(key in given for key in spec.own_software_from):
            choices = " or ".join(f"fourlb:services.{spec.name}.{key}" for key in spec.own_software_from)
            problems.add(f"services.{spec.name}.{spec.own_software_from[0]}", MISSING, (
                f"required outside the local stack: {spec.name} is the platform's own software "
                f"and its default {spec.image} is only a stand-in; set {choices}"))


def _middlewares(config: StackConfig, rate_limit: str = "default", admin: bool = False,
                 own_headers: bool = False) -> tuple[str, ...]:
    return traefik.public_middlewares(
        rate_limit=rate_limit,
        admin=admin,
        headers=SELF_HEADERS if own_headers else None,
    )


def _service_container(spec: ServiceSpec, settings: ServiceSettings, config: StackConfig,
                       origins: dict[tuple[str, str], str]) -> Container:
    routes: tuple[Route, ...] = ()
    port = settings.port or spec.port
    if spec.route:
        hostname = settings.hostname or f"{spec.route.subdomain}.{config.platform_domain}"
        key = f"services.{spec.name}.hostname" if settings.hostname else "platformDomain"
        origins[(spec.name, hostname)] = key
        routes = (Route(
            name=spec.name,
            hostnames=(hostname,),
            port=port or 0,
            middlewares=_middlewares(config, spec.route.rate_limit, spec.route.admin,
                                     own_headers=spec.headers is not None),
            path_prefix=spec.route.path_prefix,
            internal_service=spec.route.internal_service,
        ),)
    own_networks = tuple(config.shared_network if n == catalog.PUBLIC_NET else n for n in spec.networks)
    file_env, file_uploads = _secret_file_inputs(spec.secret_files)
    container = Container(
        name=spec.name,
        image=settings.image or spec.image,
        networks=own_networks,
        role=spec.role,
        port=port,
        env=spec.env + file_env + tuple(sorted(settings.env.items())),
        uploads=file_uploads,
        mounts=spec.mounts() + _bind_mounts(settings.bind_mounts),
        routes=routes,
        published_ports=(PublishedPort(80, 80), PublishedPort(443, 443)) if spec.name == "traefik" else (),
        command=spec.command,
        healthcheck=(HealthCheck(("CMD", *settings.healthcheck)) if settings.healthcheck
                     else traefik.health_check(config, spec.healthcheck) if spec.name == "traefik"
                     and spec.healthcheck else spec.healthcheck),
        memory_mb=settings.memory_mb or spec.memory_mb,
        update_order=spec.update_order,
        stop_grace_s=spec.stop_grace_s,
        tmpfs=spec.tmpfs,
        # an image the stack names is the one to run: nothing of the project's is built
        build_context=None if settings.image else spec.build_context,
        build_platform=None if settings.image or not spec.build_context else config.host_platform,
        egress=spec.egress,
        listen_on=spec.listen_on,
        starts_after=tuple(s for s in spec.starts_after
                           if config.services.get(s, ServiceSettings()).enabled),
        headers=spec.headers,
    )
    return _listening_on_every_address(container) if config.engine == "swarm" else container


def _listening_on_every_address(container: Container) -> Container:
    """On a swarm, a service's name and aliases resolve to its virtual IP (the
    default endpoint mode, vip), which no task can bind: a container that listens
    on its address on one network alone on one host (Container.listen_on) would not
    start. There it listens on every address of its task, and checks its own
    health on the loopback.

    It stays closed to everything outside its networks: it publishes no port and
    each of its networks is internal, shared only with the peers the plan puts
    there. What a single host closes tighter is that those peers now reach its
    port too (Prometheus's API, reload and quit included, from its scrape targets
    and Alertmanager): the plan says so, as it no longer has `listen_on`
    (core.networks.reachability), and its peers find it by its service name."""
    if container.listen_on is None:
        return container
    alias, port = container.listen_on[1], container.port
    check = container.healthcheck
    return replace(
        container, listen_on=None,
        command=tuple(arg.replace(f"={alias}:{port}", f"=:{port}") for arg in container.command),
        healthcheck=check and replace(check, test=tuple(
            part.replace(f"//{alias}:{port}/", f"//127.0.0.1:{port}/") for part in check.test)))


def _secret_file_inputs(files: Iterable[catalog.SecretFile]
                        ) -> tuple[tuple[tuple[str, str], ...], tuple[Upload, ...]]:
    """The env entries (variable -> path) and uploads that deliver secrets as files."""
    files = tuple(files)
    env = tuple((f.env, f.path) for f in files if f.env)
    return env, tuple(Upload(f.path, secret(f.secret), mode=f.mode) for f in files)


def _site_container(name: str, site: SiteSettings, config: StackConfig,
                    origins: dict[tuple[str, str], str]) -> Container:
    for index, hostname in enumerate(site.hostnames):
        origins.setdefault((name, hostname), f"sites.{name}.hostnames.{index}")
    own_headers = site.content_security_policy is not None
    return Container(
        name=name,
        image=site.image,
        networks=(),  # its own with Traefik (core.networks)
        role="site",
        port=site.port,
        env=tuple(sorted(site.env.items())),
        mounts=_bind_mounts(site.bind_mounts),
        routes=(Route(name=name, hostnames=tuple(site.hostnames), port=site.port,
                      middlewares=_middlewares(config, own_headers=own_headers)),),
        healthcheck=HealthCheck(("CMD", *site.healthcheck)) if site.healthcheck else HealthCheck(
            ("CMD", "wget", "-q", "--spider", f"http://127.0.0.1:{site.port}{site.health_path}")),
        memory_mb=site.memory_mb,
        update_order="start-first",
        headers=HeaderPolicy(site.content_security_policy) if own_headers else None,
        follow_tag=site.follow_tag,
        egress=site.egress,
    )


def _bind_mounts(mounts) -> tuple[Mount, ...]:
    return tuple(Mount(target=m.target, host_path=m.host_path, read_only=m.read_only) for m in mounts)


def _add_extra_routes(containers: list[Container], config: StackConfig, problems: _Problems,
                      origins: dict[tuple[str, str], str]) -> list[Container]:
    by_name = {c.name: c for c in containers}
    routable = sorted(name for name, c in by_name.items() if c.routes and not c.routes[0].internal_service)
    for index, extra in enumerate(config.routes):
        key = f"routes.{index}"
        target = by_name.get(extra.container)
        if target is None or extra.container not in routable:
            problems.add(f"{key}.container", extra.container,
                         "allowed: a routed container of this stack: " + ", ".join(routable))
            continue
        origins.setdefault((target.name, extra.hostname), f"{key}.hostname")
        base = target.routes[0]
        route = Route(name=f"{target.name}-extra{index}", hostnames=(extra.hostname,),
                      port=base.port, middlewares=base.middlewares, path_prefix=extra.path_prefix)
        by_name[target.name] = replace(target, routes=target.routes + (route,))
    return [by_name[c.name] for c in containers]


def _check_hostnames(containers: Iterable[Container], config: StackConfig,
                     origins: dict[tuple[str, str], str], problems: _Problems) -> None:
    seen: dict[tuple[str, Optional[str]], str] = {}
    for container in containers:
        for route in container.routes:
            for hostname in route.hostnames:
                key = origins.get((container.name, hostname), container.name)
                if not any(is_within_zone(hostname, zone) for zone in config.zones):
                    problems.add(key, hostname, "allowed: a hostname within this stack's zones: "
                                 + ", ".join(config.zones))
                where = (hostname, route.path_prefix)
                if where in seen:
                    problems.add(key, hostname,
                                 f"allowed: a hostname not already routed (to {seen[where]})")
                seen.setdefault(where, container.name)


def _in_start_order(containers: list[Container]) -> list[Container]:
    """The plan's order, but every container after those it starts after (the
    renderers declare them in this order: what one waits for exists already)."""
    by_name = {c.name: c for c in containers}
    ordered: dict[str, Container] = {}

    def place(container: Container, waiting: tuple[str, ...]) -> None:
        if container.name in ordered:
            return
        if container.name in waiting:
            raise ValueError(f"containers start after each other: {' -> '.join(waiting + (container.name,))}")
        for name in container.starts_after:
            if name in by_name:
                place(by_name[name], waiting + (container.name,))
        ordered[container.name] = container

    for container in containers:
        place(container, ())
    return list(ordered.values())


def _with_live_config(containers: list[Container], config: StackConfig) -> list[Container]:
    """Each service whose files change while it runs gets a writer for them,
    declared just before it (core.live_config)."""
    result = []
    for container in containers:
        # sites cannot take a platform service's name (build_plan refuses it)
        spec = SERVICES_BY_NAME.get(container.name)
        live = spec.live_config if spec else None
        if live is not None and config.engine != "docker":
            live = _live_config_on_a_swarm(live, spec)
        if live is None:
            result.append(container)
            continue
        service, writer = live_config.split(container, live)
        result += [writer, service]
    return result


def _live_config_on_a_swarm(live: live_config.LiveConfig, spec: ServiceSpec) -> live_config.LiveConfig:
    """The writer confirms no load: Traefik's ops address there is every address
    of its task, and its alias a virtual IP. It asks for a reload by the service's
    name, as the service has no alias there (_listening_on_every_address)."""
    if live.loaded is not None:
        live = replace(live, loaded=None, network=None)
    if live.reload_url and spec.listen_on:
        live = replace(live, reload_url=live.reload_url.replace(f"//{spec.listen_on[1]}:", f"//{spec.name}:"))
    return live


def _with_generated_files(containers: list[Container], config: StackConfig,
                          stack: str) -> list[Container]:
    by_name = {c.name: c for c in containers}
    generators: dict[str, Callable[[], tuple[Upload, ...]]] = {
        "traefik": lambda: files.traefik_files(
            traefik.static_config(config), traefik.dynamic_config(config)),
        "redis": files.redis_files,
        "crowdsec": files.crowdsec_files,
        # a swarm's manager answers Traefik's swarm provider too
        "docker-socket-proxy": lambda: socket_proxy.socket_proxy_files(swarm=config.engine == "swarm"),
        "prometheus": lambda: monitoring.prometheus_files(containers, config, stack),
        "alertmanager": lambda: monitoring.alertmanager_files(config),
        "grafana": lambda: monitoring.grafana_files(containers, config),
        # the backups' files: core.backup.with_backups, which makes each backup
    }
    for name, generate in generators.items():
        if name in by_name:
            by_name[name] = replace(by_name[name], uploads=by_name[name].uploads + generate())
    if "traefik" in by_name and config.acme and config.acme.challenge == "cloudflare-dns":
        edge = by_name["traefik"]
        # lego reads any of its variables from <NAME>_FILE; Traefik runs as root
        env, uploads = _secret_file_inputs((catalog.SecretFile(
            "cloudflare-dns-token", f"{traefik.SECRETS_DIR}/cloudflare-dns-token", "0400",
            env="CF_DNS_API_TOKEN_FILE"),))
        by_name["traefik"] = replace(edge, env=edge.env + env, uploads=edge.uploads + uploads)
    return [by_name[c.name] for c in containers]


def _volumes(containers: Iterable[Container], config: StackConfig, stack: str) -> tuple[Volume, ...]:
    """The plan's volumes under their Docker names (fourlb:volumeNames; the key by
    default). The key stays the Pulumi name, so a mapped volume keeps its URN."""
    used = {m.volume for c in containers for m in c.mounts if m.volume}
    problems = _Problems(stack)
    owners: dict[str, str] = {}
    for key, name in sorted(config.volume_names.items()):
        if key not in used:
            problems.add(f"volumeNames.{key}", key,
                         "allowed: a volume of this stack's plan: " + ", ".join(sorted(used)))
        elif owners.setdefault(name, key) != key:
            problems.add(f"volumeNames.{key}", name,
                         f"allowed: a Docker volume no other key uses (volumeNames.{owners[name]})")
    taken = {name: key for key, name in config.volume_names.items()}
    for key in sorted(used - set(config.volume_names)):
        if key in taken:  # unmapped: Docker name = key, which another key maps to
            problems.add(f"volumeNames.{taken[key]}", key,
                         f"allowed: a Docker volume no other key uses (the plan's volume {key})")
    problems.raise_if_any()
    return tuple(Volume(name, purpose=catalog.VOLUMES.get(name, ""),
                        docker_name=config.volume_names.get(name),
                        adopted=config.takeover and name in config.volume_names)
                 for name in sorted(used))


def _dns_records(containers: Iterable[Container], config: StackConfig) -> tuple[DnsRecord, ...]:
    if config.dns.provider != "cloudflare":
        return ()
    hostnames = sorted({h for c in containers for r in c.routes for h in r.hostnames})
    records = []
    for hostname in hostnames:
        zone = max((z for z in config.zones if is_within_zone(hostname, z)), key=len)
        records.append(DnsRecord(zone=zone, name=hostname, type="A",
                                 content=config.dns.target_ipv4, proxied=config.dns.proxied))
    return tuple(records)


def _secret_specs(containers: Iterable[Container]) -> tuple[SecretSpec, ...]:
    names = set()
    for container in containers:
        names |= container.secret_names()
    # `<name>-bcrypt` is derived from `<name>`, which must then exist
    base_names = {n.removesuffix("-bcrypt") for n in names}
    return tuple(SECRETS[name] for name in sorted(base_names))
