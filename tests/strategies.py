"""Hypothesis strategies: valid stack settings (as a stack file holds them,
camelCase keys without `fourlb:`), and the same with one mistake or attack
planted, together with the key the error must name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from hypothesis import strategies as st

from core.build import REQUIRED_SERVICES
from core.catalog import PLATFORM_SERVICES, SERVICES_BY_NAME

ROUTED_SERVICES = [s for s in PLATFORM_SERVICES if s.route]
OPTIONAL_SERVICES = [s.name for s in PLATFORM_SERVICES if s.name not in REQUIRED_SERVICES]
# services another hostname can be routed to (Traefik's dashboard cannot)
EXTRA_ROUTABLE = [s.name for s in ROUTED_SERVICES if not s.route.internal_service]
# public unicast addresses (DNS targets refuse documentation ranges); never contacted
PUBLIC_IPV4 = ["1.2.3.4", "149.56.10.20", "8.8.4.4", "81.2.69.142"]
ALLOW_LISTS = ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32", "192.0.2.128/25"]
IMAGES = ["nginx:1.27-alpine", "ghcr.io/acme/shop:2.3.1", "registry.4lb.ca:5000/jsr/site:1.0.0",
          "httpd:2.4@sha256:" + "a" * 64, "jsr-solutions-frontend:1.0.0"]
CREDENTIAL_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)", re.I)

# ---- building blocks -------------------------------------------------------

dns_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
tlds = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
# a site's name and its network's must not be the program's (core/names.py):
# `<name>-out` is the network name of a site with egress, `stack-<s>` a sites stack's
names = st.from_regex(r"[a-z][a-z0-9]{0,7}(-[a-z0-9]{1,5}){0,2}", fullmatch=True).filter(
    lambda n: n not in SERVICES_BY_NAME and not n.endswith("-out") and not n.startswith("stack-"))
ports = st.integers(min_value=1, max_value=65535)
images = st.one_of(
    st.sampled_from(IMAGES),
    st.from_regex(r"([a-z]{2,8}\.io/)?[a-z0-9]{1,10}(/[a-z0-9]{1,8})?:[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-alpine)?",
                  fullmatch=True),
)
# any text a header may carry: no control characters, no backticks, and not
# the platform's secret placeholder
csps = st.one_of(
    st.sampled_from([
        "default-src 'self'",
        "default-src 'self'; img-src * data:; frame-ancestors 'none'",
        "default-src 'self'; traefik.http.routers.evil.rule=PathPrefix(/)",  # only ever a value
        "script-src 'self' https://cdn.example, 'unsafe-inline'",
        "default-src $self {x}",
    ]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="`"),
            min_size=1, max_size=40).filter(lambda s: "${secret:" not in s),
)
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not CREDENTIAL_NAME.search(n))
env_values = st.one_of(
    st.sampled_from(["", "production", "https://api.4lb.ca/v1", "a=b;c=d", "$HOME", "${HOME}",
                     "{\"json\": true}", "multi\nline"]),
    st.text(max_size=20).filter(lambda s: "${secret:" not in s and "://" not in s and "$2" not in s),
)
bind_mounts = st.one_of(
    st.fixed_dictionaries(
        {"hostPath": st.sampled_from(["/srv/www", "/srv/shop/data", "/var/www/html", "/opt/site"]),
         "target": st.sampled_from(["/usr/share/nginx/html", "/data", "/etc/ssl/certs"])},
        optional={"readOnly": st.booleans()}),
    # the host's own files: read-only only (config.models.SYSTEM_PATHS)
    st.fixed_dictionaries(
        {"hostPath": st.sampled_from(["/etc/ssl/certs", "/var/lib/shop"]),
         "target": st.sampled_from(["/usr/share/nginx/html", "/data", "/etc/ssl/certs"])},
        optional={"readOnly": st.just(True)}))


def within(hostname: str, zone: str) -> bool:
    return hostname == zone or hostname.endswith("." + zone)


@dataclass
class Hostnames:
    """Hands out hostnames within the zones, never the same one twice."""

    zones: list[str]
    used: set[str]

    def draw(self, draw) -> str:
        zone = draw(st.sampled_from(self.zones))
        depth = draw(st.integers(min_value=0, max_value=2))
        labels = [draw(dns_labels) for _ in range(depth)]
        host = ".".join([*labels, zone]) if labels else zone
        counter = 0
        while host in self.used:
            counter += 1
            host = f"h{counter}.{zone}"
        self.used.add(host)
        return host


# ---- valid stacks ----------------------------------------------------------

@st.composite
def domains(draw) -> str:
    return f"{draw(dns_labels)}.{draw(tlds)}"


@st.composite
def _site(draw, hostnames: Hostnames) -> dict[str, Any]:
    site: dict[str, Any] = {
        "image": draw(images),
        "hostnames": [hostnames.draw(draw) for _ in range(draw(st.integers(1, 3)))],
    }
    optional = {
        "port": ports,
        "memoryMb": st.integers(16, 4096),
        "healthPath": st.from_regex(r"/[a-z0-9._~/%-]{0,12}", fullmatch=True),
        "contentSecurityPolicy": csps,
        "env": st.dictionaries(env_names, env_values, max_size=3),
        "bindMounts": st.lists(bind_mounts, max_size=2, unique_by=lambda m: m["target"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            site[key] = draw(strategy)
    return site


def _platform_hostnames(domain: str) -> set[str]:
    return {f"{s.route.subdomain}.{domain}" for s in ROUTED_SERVICES}


@st.composite
def _stack(draw, role: str, domain: str, used: set[str], local: bool) -> dict[str, Any]:
    if role == "platform":
        zones = [domain] + ([] if local else draw(st.lists(
            domains().filter(lambda z: not within(z, domain) and not within(domain, z)),
            max_size=2, unique=True)))
        zones = list(dict.fromkeys(zones))
    else:
        sub = draw(st.one_of(st.none(), dns_labels))
        zones = [f"{sub}.{domain}" if sub else domain]
    hostnames = Hostnames(zones, used)
    values: dict[str, Any] = {"role": role, "platformDomain": domain, "zones": zones}
    if role == "sites":
        values["edgeStack"] = "prod"
    tls = "self-signed" if local else draw(st.sampled_from(["letsencrypt", "letsencrypt", "self-signed"]))
    values["tls"] = tls
    challenge = draw(st.sampled_from(["http", "cloudflare-dns"]))
    if role == "platform" and tls == "letsencrypt":
        values["acme"] = {"email": f"ops@{domain}", "challenge": challenge,
                          "staging": draw(st.booleans())}
    cloudflare = not local and (challenge == "cloudflare-dns" or draw(st.booleans()))
    values["dns"] = ({"provider": "cloudflare", "targetIpv4": draw(st.sampled_from(PUBLIC_IPV4))}
                     if cloudflare else {"provider": "none"})
    if draw(st.booleans()):
        values["adminAllowIps"] = draw(st.lists(st.sampled_from(ALLOW_LISTS), min_size=1,
                                                max_size=3, unique=True))
    if draw(st.booleans()):
        values["rateLimits"] = {"aiApiPerMinute": draw(st.integers(1, 1000)),
                                "defaultPerMinute": draw(st.integers(1, 100_000))}
    enabled_routable: list[str] = []
    if role == "platform":
        services: dict[str, Any] = {}
        for name in draw(st.lists(st.sampled_from([s.name for s in PLATFORM_SERVICES]),
                                  max_size=3, unique=True)):
            settings: dict[str, Any] = {}
            if name == "ollama":  # its settings are those of the plan's own Ollama
                values["ollama"] = {"runsOn": "service"}
            elif name in OPTIONAL_SERVICES and draw(st.booleans()):
                settings["enabled"] = False
            if draw(st.booleans()):
                settings["image"] = draw(images)
            if SERVICES_BY_NAME[name].route and draw(st.booleans()):
                settings["hostname"] = hostnames.draw(draw)
            services[name] = settings
        if not local:  # the platform's own software must be named outside *.localhost
            for spec in PLATFORM_SERVICES:
                settings = services.get(spec.name, {})
                if spec.own_software_from and settings.get("enabled", True):
                    services[spec.name] = {**settings, "image": settings.get("image") or draw(images)}
        if services:
            values["services"] = services
        enabled_routable = [n for n in EXTRA_ROUTABLE if services.get(n, {}).get("enabled", True)]
    sites = {}
    for name in draw(st.lists(names, max_size=3, unique=True)):
        sites[name] = draw(_site(hostnames))
    if sites:
        values["sites"] = sites
    routable = enabled_routable + list(sites)
    if routable and draw(st.booleans()):
        values["routes"] = [
            {"hostname": hostnames.draw(draw), "container": draw(st.sampled_from(routable)),
             **({"pathPrefix": draw(st.from_regex(r"/[a-z0-9_-]{1,8}", fullmatch=True))}
                if draw(st.booleans()) else {})}
            for _ in range(draw(st.integers(1, 2)))
        ]
    return values


@st.composite
def stacks(draw, role: Optional[str] = None) -> dict[str, Any]:
    """One stack's valid settings."""
    role = role or draw(st.sampled_from(["platform", "sites"]))
    local = role == "platform" and draw(st.integers(0, 4)) == 0
    domain = "localhost" if local else draw(domains())
    used = _platform_hostnames(domain) if role == "platform" else set()
    return draw(_stack(role, domain, used, local))


@st.composite
def stack_pairs(draw) -> tuple[dict[str, Any], dict[str, Any]]:
    """A platform stack and a sites stack served by its Traefik (prod and dev):
    no hostname in common, as `core.edge.check_shared_edge` requires."""
    domain = draw(domains())
    used = _platform_hostnames(domain)
    platform = draw(_stack("platform", domain, used, False))
    sites = draw(_stack("sites", domain, used, False))
    return platform, sites


# ---- one mistake or attack -------------------------------------------------

INJECTIONS = [
    "`) || Host(`evil.com",
    "shop`) || Host(`evil.com`) || Host(`x",
    "traefik.http.routers.evil.rule=Host(`evil.com`)",
    "shop\ntraefik.enable=true",
    "shop\r\nX-Injected: 1",
    "shop.4lb.ca,evil.com",
    "shop 4lb.ca",
]
BAD_NAMES = INJECTIONS + ["shop\n", "shop.ca", "shop@docker", "shop[0]", "Shop", "a_b", "-shop", "shop-",
                          "9shop", "sh--op", "a" * 41, ""]
BAD_HOSTNAMES = INJECTIONS + ["Shop.4lb.ca", "shop.4lb.ca.", "shop..4lb.ca", "-shop.4lb.ca",
                              "shop-.4lb.ca", "*.4lb.ca", "shop", "a" * 64 + ".4lb.ca",
                              ".".join(["a" * 60] * 5), "shop_1.4lb.ca", "", "xn--é.4lb.ca",
                              "shop.4lb.ca\n", "localhost\n"]
BAD_PORTS: list[Any] = [0, -1, 65536, 70000, 80.5, "eighty", "80; rm -rf /", None, [80]]
BAD_IMAGES = ["nginx", "nginx:latest", "Nginx:1.27", "nginx:1.27 ; rm -rf /", "nginx:1.27\n",
              "nginx:`id`", ""]
BAD_CSPS = ["default-src 'self'`", "a\nb", "a\rb", "a\x00b", "a\x1bb",
            "x`) || Host(`evil.com", "${secret:admin-password}", ""]
BAD_ENV = [("DB_PASSWORD", "x"), ("API_TOKEN", "x"), ("A-B", "x"), ("1X", "x"), ("A B", "x"),
           ("X", "${secret:postgres-password}"), ("X", "${secret:nope}"),
           ("DATABASE_URL", "postgres://app:hunter2@db:5432/app"),
           ("AUTH_USERS", "admin:$2y$05$abcdefghijklmnopqrstuv")]
SOCKET_PATHS = ["/var/run/docker.sock", "/run/docker.sock", "//var/run/docker.sock",
                "/var/run/./docker.sock", "/var/run/../run/docker.sock", "/run//docker.sock",
                "/var/run/docker.sock/", "/run", "/var/run/", "/var", "/"]
BAD_PATH_PREFIXES = ["/api`)", "api", "/a b", "/a\n", "/`) || Host(`evil.com"]
BAD_HEALTH_PATHS = ["health", "/ok`", "/ok\n", "/ok; rm -rf /", "/a b"]
BAD_ALLOW = ["10.0.0.0/33", "not-an-ip", "1.2.3.4/24", "2001:db8::/129"]


@dataclass(frozen=True)
class Broken:
    values: dict[str, Any]
    key: str  # the key the error must name (itself, or a key below it)
    stage: str  # "load": refused by the config models; "plan": by build_plan
    what: str
    # a hostname routed twice: either occurrence may be the one reported
    duplicate: Optional[str] = None


def _first_site(values: dict[str, Any], draw) -> str:
    sites = values.setdefault("sites", {})
    if not sites:
        sites["shop"] = {"image": "nginx:1.27-alpine", "hostnames": [f"shop.{values['zones'][0]}"]}
    return draw(st.sampled_from(sorted(sites)))


MISTAKES = ["site-name", "hostname", "port", "image", "csp", "env", "bind-mount", "health-path",
            "route-hostname", "route-path", "allow-list", "service-hostname",
            "foreign-hostname", "duplicate-hostname", "service-name-as-site", "route-container"]


@st.composite
def broken_stacks(draw, kind: str) -> Broken:
    """Valid settings with one mistake of the given kind (see MISTAKES)."""
    values = draw(stacks())
    if kind == "site-name":
        name = draw(st.one_of(st.sampled_from(BAD_NAMES), st.text(min_size=1, max_size=12).filter(
            lambda n: not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", n))))
        values.setdefault("sites", {})[name] = {
            "image": "nginx:1.27-alpine", "hostnames": [f"bad-name.{values['zones'][0]}"]}
        return Broken(values, f"fourlb:sites.{name}", "load", kind)
    if kind in ("hostname", "port", "image", "csp", "env", "bind-mount", "health-path",
                "foreign-hostname", "duplicate-hostname"):
        name = _first_site(values, draw)
        site = values["sites"][name]
        key = f"fourlb:sites.{name}"
        if kind == "hostname":
            index = draw(st.integers(0, len(site["hostnames"])))
            site["hostnames"].insert(index, draw(st.sampled_from(BAD_HOSTNAMES)))
            return Broken(values, f"{key}.hostnames.{index}", "load", kind)
        if kind == "port":
            site["port"] = draw(st.one_of(st.sampled_from(BAD_PORTS),
                                          st.integers(max_value=0), st.integers(min_value=65536)))
            return Broken(values, f"{key}.port", "load", kind)
        if kind == "image":
            site["image"] = draw(st.sampled_from(BAD_IMAGES))
            return Broken(values, f"{key}.image", "load", kind)
        if kind == "csp":
            site["contentSecurityPolicy"] = draw(st.sampled_from(BAD_CSPS))
            return Broken(values, f"{key}.contentSecurityPolicy", "load", kind)
        if kind == "env":
            env_name, env_value = draw(st.sampled_from(BAD_ENV))
            site["env"] = {**site.get("env", {}), env_name: env_value}
            return Broken(values, f"{key}.env", "load", kind)
        if kind == "bind-mount":
            site["bindMounts"] = [{"hostPath": draw(st.sampled_from(SOCKET_PATHS)), "target": "/s",
                                   "readOnly": True}]
            return Broken(values, f"{key}.bindMounts.0.hostPath", "load", kind)
        if kind == "health-path":
            site["healthPath"] = draw(st.sampled_from(BAD_HEALTH_PATHS))
            return Broken(values, f"{key}.healthPath", "load", kind)
        if kind == "foreign-hostname":
            site["hostnames"].append("evil.attacker.example")
            return Broken(values, f"{key}.hostnames.{len(site['hostnames']) - 1}", "plan", kind)
        # duplicate-hostname: one another container already routes
        taken = sorted(h for n, s in values["sites"].items() if n != name for h in s["hostnames"])
        grafana = values.get("services", {}).get("grafana", {})
        if values["role"] == "platform" and grafana.get("enabled", True):
            taken.append(grafana.get("hostname", f"grafana.{values['platformDomain']}"))
        if not taken:
            taken = [site["hostnames"][0]]
        duplicate = draw(st.sampled_from(taken))
        site["hostnames"].append(duplicate)
        return Broken(values, f"{key}.hostnames.{len(site['hostnames']) - 1}", "plan", kind,
                      duplicate)
    if kind in ("route-hostname", "route-path", "route-container"):
        routes = values.setdefault("routes", [])
        target = _first_site(values, draw)
        route = {"hostname": f"extra.{values['zones'][0]}", "container": target}
        if kind == "route-hostname":
            route["hostname"] = draw(st.sampled_from(BAD_HOSTNAMES))
            field = "hostname"
        elif kind == "route-path":
            route["pathPrefix"] = draw(st.sampled_from(BAD_PATH_PREFIXES))
            field = "pathPrefix"
        else:
            route["container"] = draw(st.sampled_from(["traefik", "postgres", "nobody", "grafna"]))
            field = "container"
        routes.append(route)
        key = f"fourlb:routes.{len(routes) - 1}.{field}"
        return Broken(values, key, "plan" if kind == "route-container" else "load", kind)
    if kind == "allow-list":
        values["adminAllowIps"] = [draw(st.sampled_from(BAD_ALLOW))]
        return Broken(values, "fourlb:adminAllowIps.0", "load", kind)
    if kind == "service-name-as-site":
        service = draw(st.sampled_from(sorted(SERVICES_BY_NAME)))
        values.setdefault("sites", {})[service] = {
            "image": "nginx:1.27-alpine", "hostnames": [f"dup-service.{values['zones'][0]}"]}
        return Broken(values, f"fourlb:sites.{service}", "plan", kind)
    # service-hostname: only a platform stack has services
    hostname = draw(st.sampled_from(BAD_HOSTNAMES))
    values.setdefault("services", {})["grafana"] = {"hostname": hostname}
    role_error = values["role"] == "sites"
    return Broken(values, "fourlb:services" if role_error else "fourlb:services.grafana.hostname",
                  "load", kind)
