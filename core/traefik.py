"""Traefik: static configuration, file-provider middlewares, and Docker labels.

Shared middlewares live in the file provider (`name@file`) so that a site's
container labels only define its own routers and services; two containers
that briefly coexist during an update then never define a middleware twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any, Iterable, Optional

from config.models import StackConfig

from .bouncer_key import TRAEFIK_KEY_FILE
from .catalog import LOADED_API_PATH, TRAEFIK_LOADED, TRAEFIK_OPS_ALIAS, TRAEFIK_OPS_PORT
from .model import SELF_HEADERS, Container, HealthCheck, HeaderPolicy, Route, secret

SWARM_REFRESH_S = 2  # the swarm provider polls the API this often (default 15; core.swarm)

CERT_RESOLVER = "le"
ENTRYPOINT = "websecure"
DYNAMIC_DIR = "/etc/traefik/dynamic"
STATIC_FILE = "/etc/traefik/traefik.yml"
SECRETS_DIR = "/etc/traefik/secrets"
ACCESS_LOG = "/var/log/traefik/access.log"
CROWDSEC_PLUGIN = "github.com/maxlerebourg/crowdsec-bouncer-traefik-plugin"
CROWDSEC_PLUGIN_VERSION = "v1.4.2"
CROWDSEC_PLUGIN_COMMIT = "5418d35feb3fd1b4b9620e97737690eca638d8e7"  # that tag, in edge/Dockerfile

SECURITY_HEADERS = "security-headers"
CROWDSEC = "crowdsec"
ADMIN_AUTH = "admin-auth"
ADMIN_ALLOWLIST = "admin-allowlist"
RATELIMIT_DEFAULT = "ratelimit-default"
RATELIMIT_AI_API = "ratelimit-ai-api"
RETRY = "retry"
ALLOW_EVERYONE = ("0.0.0.0/0", "::/0")
# how often the bouncer fetches CrowdSec's decisions: a new ban reaches the edge within it
STREAM_INTERVAL_S = 15
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; font-src 'self' data:; connect-src 'self' wss:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Mozilla "intermediate" TLS 1.2 suites (TLS 1.3 suites are not configurable).
CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
]


def file_ref(name: str) -> str:
    return f"{name}@file"


def public_middlewares(rate_limit: str = "default", admin: bool = False,
                       headers: Optional[str] = None) -> tuple[str, ...]:
    """The chain every public router gets, in order: the security headers first,
    so that every answer carries them, refusals included (403, 429, 401); then
    CrowdSec drops banned addresses before anything else runs; then the allow-list,
    the rate limit, basic auth and the retry."""
    chain = [headers or file_ref(SECURITY_HEADERS), file_ref(CROWDSEC)]
    if admin:
        chain.append(file_ref(ADMIN_ALLOWLIST))
    chain.append(file_ref(RATELIMIT_AI_API if rate_limit == "ai-api" else RATELIMIT_DEFAULT))
    if admin:
        chain.append(file_ref(ADMIN_AUTH))
    # last, next to the service: a connection refused by a container that is
    # stopping (updates, restarts) is retried on another server of the service
    chain.append(file_ref(RETRY))
    return tuple(chain)


DEFAULT_POLICY = HeaderPolicy(DEFAULT_CSP)
APPLICATION_CSP_LABEL = "fourlb.csp"


def security_headers(policy: HeaderPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """Traefik's headers middleware options for `policy`. Traefik sets these
    headers, replacing what the application sent under the same names."""
    options: dict[str, Any] = {
        "stsSeconds": 63072000,  # two years: preload lists ask for at least one
        "stsIncludeSubdomains": True,
        "stsPreload": True,
        "forceSTSHeader": True,
        "contentTypeNosniff": True,
        "referrerPolicy": "strict-origin-when-cross-origin",
        "permissionsPolicy": policy.permissions,
    }
    if policy.frame_options == "DENY":
        options["frameDeny"] = True
    else:
        options["customFrameOptionsValue"] = policy.frame_options
    if policy.csp:
        options["contentSecurityPolicy"] = policy.csp
    return options


def response_headers(policy: HeaderPolicy = DEFAULT_POLICY) -> dict[str, str]:
    """The HTTP headers `security_headers(policy)` makes Traefik add to every answer
    (the values Traefik writes, https://doc.traefik.io/traefik/middlewares/http/headers/)."""
    options = security_headers(policy)
    sts = f"max-age={options['stsSeconds']}"
    sts += "; includeSubDomains" if options["stsIncludeSubdomains"] else ""
    sts += "; preload" if options["stsPreload"] else ""
    headers = {
        "Strict-Transport-Security": sts,
        "Referrer-Policy": options["referrerPolicy"],
        "Permissions-Policy": options["permissionsPolicy"],
        "X-Frame-Options": "DENY" if options.get("frameDeny") else options["customFrameOptionsValue"],
    }
    if "contentSecurityPolicy" in options:
        headers["Content-Security-Policy"] = options["contentSecurityPolicy"]
    if options["contentTypeNosniff"]:
        headers["X-Content-Type-Options"] = "nosniff"
    return headers


def effective_headers(container: Container) -> dict[str, str]:
    """What every answer through this container's routers carries: its own policy
    (a site's contentSecurityPolicy, a platform service's catalog entry) or the
    platform's default. A header left to the application is not among them."""
    return response_headers(container.headers or DEFAULT_POLICY)


def application_headers(container: Container) -> tuple[str, ...]:
    """The headers this container's application sets itself, untouched by Traefik."""
    policy = container.headers or DEFAULT_POLICY
    return () if policy.csp else ("Content-Security-Policy",)


def static_config(config: StackConfig) -> dict[str, Any]:
    """traefik.yml for the platform stack."""
    letsencrypt = config.tls == "letsencrypt"
    websecure: dict[str, Any] = {"address": ":443", "http": {"tls": {}}}
    if letsencrypt:
        websecure["http"]["tls"]["certResolver"] = CERT_RESOLVER
    static: dict[str, Any] = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {
                "address": ":80",
                "http": {"redirections": {"entryPoint": {
                    "to": ENTRYPOINT, "scheme": "https", "permanent": True}}},
            },
            ENTRYPOINT: websecure,
            # bound to Traefik's address on its scrape network alone (Go binds the one
            # address the name resolves to; `traefik healthcheck --ping` dials it
            # too). A swarm's alias resolves to a virtual IP no task can bind: there
            # every address
            "ops": {"address": f"{TRAEFIK_OPS_ALIAS}:{TRAEFIK_OPS_PORT}" if config.engine == "docker"
                    else f":{TRAEFIK_OPS_PORT}"},
        },
        # Containers sit on a local bridge: a connection takes well under a
        # millisecond. A server that vanished mid-update (its address gone) must
        # fail fast so the retry middleware moves the request to another one,
        # not hang for the default 30 s.
        "serversTransport": {"forwardingTimeouts": {"dialTimeout": "500ms"}},
        "api": {"dashboard": True},
        "ping": {"entryPoint": "ops"},
        "metrics": {"prometheus": {"entryPoint": "ops", "addRoutersLabels": True}},
        "providers": {
            # Every health check is a Docker event, and Traefik waits this long
            # after one reload before the next (default 2 s): with a dozen
            # containers that delays routing to a freshly healthy container by up
            # to 2 s, while `pulumi up` already removes the old one.
            "providersThrottleDuration": "200ms",
            **_container_provider(config),
            "file": {"directory": DYNAMIC_DIR, "watch": True},
        },
        "log": {"level": "INFO", "format": "json"},
        "accessLog": {"filePath": ACCESS_LOG, "format": "json", "bufferingSize": 100},
        # built into the image (edge/Dockerfile): no download when Traefik starts
        "experimental": {"localPlugins": {"bouncer": {"moduleName": CROWDSEC_PLUGIN}}},
    }
    if letsencrypt:
        assert config.acme is not None  # guaranteed by StackConfig
        acme: dict[str, Any] = {"email": config.acme.email, "storage": "/letsencrypt/acme.json"}
        if config.acme.challenge == "cloudflare-dns":
            acme["dnsChallenge"] = {"provider": "cloudflare"}
        else:
            acme["httpChallenge"] = {"entryPoint": "web"}
        if config.acme.staging:
            acme["caServer"] = "https://acme-staging-v02.api.letsencrypt.org/directory"
        static["certificatesResolvers"] = {CERT_RESOLVER: {"acme": acme}}
    return static


def bouncer_settings(config: StackConfig) -> dict[str, Any]:
    """The CrowdSec bouncer in stream mode: every STREAM_INTERVAL_S it fetches the
    decisions into its cache and answers each request from the cache. When the
    LAPI does not answer (CrowdSec restarting), known bans keep being refused and
    everyone else is served: updateMaxFailure -1 never blocks (plugin v1.4.2,
    bouncer.go handleStreamTicker; its default 0 blocks every request after the
    first failed update, and live mode answers 403 to any address the LAPI cannot
    be asked about). `crowdsecFailClosedAfterSeconds` blocks everyone after that
    long without an answer instead. The key is a file of Traefik's own, read once
    per process by the plugin: a new key replaces Traefik (core/bouncer_key.py)."""
    after_s = config.crowdsec_fail_closed_after_seconds
    return {
        "enabled": True,
        "crowdsecMode": "stream",
        "updateIntervalSeconds": STREAM_INTERVAL_S,
        "updateMaxFailure": -1 if after_s is None else max(1, -(-after_s // STREAM_INTERVAL_S)),
        "crowdsecLapiScheme": "http",
        "crowdsecLapiHost": "crowdsec:8080",
        "crowdsecLapiKeyFile": TRAEFIK_KEY_FILE,
    }


LOADED_ROUTER = "fourlb-loaded"


def health_check(config: StackConfig, base: HealthCheck) -> HealthCheck:
    """On one Docker host: ping, and the files of its directory loaded (the
    writer's marker listed by the API), so that a Traefik started on files it
    cannot load is unhealthy and `pulumi up` stops."""
    if config.engine != "docker":
        return base
    script = f"traefik healthcheck --ping && wget -q -O /dev/null {TRAEFIK_LOADED.loaded_url}"
    return HealthCheck(("CMD-SHELL", script), interval_s=base.interval_s, timeout_s=base.timeout_s,
                       retries=base.retries, start_period_s=base.start_period_s)


def dynamic_config(config: StackConfig) -> dict[str, Any]:
    """The file provider's middlewares and TLS options (one file)."""
    per_minute = config.rate_limits
    middlewares: dict[str, Any] = {
        SECURITY_HEADERS: {"headers": security_headers()},
        RATELIMIT_DEFAULT: {"rateLimit": {
            "average": per_minute.default_per_minute, "period": "1m",
            "burst": max(1, per_minute.default_per_minute // 2)}},
        RATELIMIT_AI_API: {"rateLimit": {
            "average": per_minute.ai_api_per_minute, "period": "1m",
            "burst": max(1, per_minute.ai_api_per_minute // 6)}},
        ADMIN_AUTH: {"basicAuth": {
            "users": [f"{config.admin_user}:{secret('admin-password-bcrypt')}"],
            "removeHeader": True}},
        # only network errors are retried (nothing was answered): safe for any method
        RETRY: {"retry": {"attempts": 4, "initialInterval": "50ms"}},
        CROWDSEC: {"plugin": {"bouncer": bouncer_settings(config)}},
        # Always defined and always on the admin routers (allowing everyone when no
        # list is set): setting a list changes this file only, never a label.
        ADMIN_ALLOWLIST: {"ipAllowList": {"sourceRange": [
            str(net) for net in config.admin_allow_ips] or list(ALLOW_EVERYONE)}},
    }
    http: dict[str, Any] = {"middlewares": middlewares}
    if config.engine == "docker":
        # the API, on the ops entry point (Prometheus's network and the writer's),
        # for the writer's marker alone (core/live_config.py LoadedCheck)
        http["routers"] = {LOADED_ROUTER: {
            "entryPoints": ["ops"], "rule": f"Path(`{LOADED_API_PATH}`)",
            "service": "api@internal"}}
    return {
        "http": http,
        "tls": {"options": {"default": {
            "minVersion": "VersionTLS12",
            # With Let's Encrypt every hostname has its own certificate; a client
            # that names none of them gets nothing. Self-signed stacks have only
            # Traefik's default certificate, which strict SNI would refuse.
            "sniStrict": config.tls == "letsencrypt",
            "cipherSuites": CIPHER_SUITES,
            "curvePreferences": ["X25519", "CurveP256", "CurveP384"],
        }}},
    }


# Container fields that replace no container: the Docker provider updates their
# inputs in place (memory and memory_swap, restart, destroy_grace_seconds are not
# ForceNew in kreuzwerker/terraform-provider-docker's container schema), or they
# are no input of the container at all but say how it is deployed. Every other
# field reaches a replace-forcing input (tests/engine checks this list against
# the provider's schema).
NOT_REPLACING_FIELDS = frozenset({
    "memory_mb", "restart", "stop_grace_s",
    "name", "update_order", "settle_s", "starts_after", "connected_networks", "follow_tag",
    "build_context", "build_platform",
})
# Fields added to Container after the names were first drawn: they count only
# once set, so that a new field left at its default renames (replaces) nothing.
DIGESTED_ONCE_SET = frozenset({"extra_hosts", "gpus", "node_role"})


def instance_suffix(container: Container, salt: Iterable[Any] = ()) -> str:
    """Six hex digits that change whenever a Docker-replacing input changes.

    Start-first containers carry it in their Docker name (a replacement must not
    clash with the container it replaces) and in their router and service names:
    while an old and a new container coexist, each defines its own routers
    instead of two different definitions of one name (which Traefik would drop
    both of). Every field counts but NOT_REPLACING_FIELDS, so that a new field
    of a container draws a new name unless it is known not to replace it.
    """
    spec = {f.name: getattr(container, f.name) for f in fields(container)
            if f.name not in NOT_REPLACING_FIELDS
            and (f.name not in DIGESTED_ONCE_SET or getattr(container, f.name) != f.default)}
    spec["networks"] = container.created_on  # those connected later replace nothing
    spec["salt"] = list(salt)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:6]


def _container_provider(config: StackConfig) -> dict[str, Any]:
    """Where Traefik learns the routers: Docker's containers on one host (events),
    or a swarm's services (polled: the refresh is short, core.swarm)."""
    common = {"endpoint": "tcp://docker-socket-proxy:2375", "exposedByDefault": False,
              "network": config.shared_network}
    if config.engine == "swarm":
        return {"swarm": {**common, "refreshSeconds": SWARM_REFRESH_S}}
    return {"docker": {**common, "watch": True}}


def labels(container: Container, config: StackConfig, stack: str) -> tuple[tuple[str, str], ...]:
    """All Docker labels of one container, sorted.

    Start-first containers get their instance suffix in every router, service
    and middleware name. It is a digest of the labels themselves (drafted with
    a placeholder suffix) and of the container's other replacing inputs, so any
    change to a label's value also renames what the label defines.
    """
    if config.engine == "swarm":
        # labels of a swarm service: one service whose tasks Traefik balances over
        # during an update, so no instance suffix; the swarm provider's names
        return tuple(sorted((key.replace("traefik.docker.", "traefik.swarm."),
                             value.replace("@docker", "@swarm"))
                            for key, value in _labels(container, config, stack, suffix="")))
    if container.update_order == "stop-first" or not container.routes:
        return _labels(container, config, stack, suffix="")
    draft = _labels(container, config, stack, suffix="-{instance}")
    return _labels(container, config, stack, suffix="-" + instance_suffix(container, draft))


def _labels(container: Container, config: StackConfig, stack: str,
            suffix: str) -> tuple[tuple[str, str], ...]:
    result: dict[str, str] = {
        "fourlb.service": container.name,
        "fourlb.stack": stack,
        "fourlb.role": container.role,
        "fourlb.update-order": container.update_order,
    }
    if container.routes:
        result["traefik.enable"] = "true"
        # the container's own network with Traefik (core.networks)
        result["traefik.docker.network"] = container.edge_network or config.shared_network
        # The service is shared by the old and the new container of a start-first
        # update (same name, same load-balancer settings: Traefik balances over
        # both), so requests move to the new one as soon as it is healthy and the
        # retry middleware can send a request the stopping one refuses to the other.
        service = container.name if not suffix else f"{container.name}-{container.port}"
        own_headers = f"{container.name}{suffix}-headers"
        for route in container.routes:
            middlewares = tuple(
                f"{own_headers}@docker" if m == SELF_HEADERS else m for m in route.middlewares)
            result.update(_router_labels(route, route.name + suffix, service, middlewares, config))
        # Always a port, even when every router goes to a Traefik internal
        # service: Traefik still builds a default service for the container and
        # skips all its labels when that service has no port.
        result[f"traefik.http.services.{service}.loadbalancer.server.port"] = str(container.port)
        if container.headers and not container.headers.csp:
            # read by the policy pack: the missing CSP is the application's own
            result[APPLICATION_CSP_LABEL] = "application"
        if container.headers:
            headers = security_headers(container.headers)
            for key, value in headers.items():
                result[f"traefik.http.middlewares.{own_headers}.headers.{key.lower()}"] = (
                    _label_value(value))
    return tuple(sorted(result.items()))


def _router_labels(route: Route, router: str, service: str, middlewares: tuple[str, ...],
                   config: StackConfig) -> dict[str, str]:
    prefix = f"traefik.http.routers.{router}"
    out = {
        f"{prefix}.rule": route.rule,
        f"{prefix}.entrypoints": ENTRYPOINT,
        f"{prefix}.service": route.internal_service or service,
        f"{prefix}.tls": "true",
        f"{prefix}.middlewares": ",".join(middlewares),
    }
    if config.tls == "letsencrypt":
        out[f"{prefix}.tls.certresolver"] = CERT_RESOLVER
    if route.path_prefix:
        out[f"{prefix}.priority"] = str(_priority(route))
    return out


def _priority(route: Route) -> int:
    # Traefik's default priority is the rule's length; an explicit, larger one
    # keeps /api ahead of the catch-all router on the same hostname.
    return 1000 + len(route.rule)


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
