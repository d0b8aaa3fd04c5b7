"""The platform's security rules as pure checks over one resource.

A check takes anything with `resource_type`, `name`, `props` (the inputs, in
the engine's camelCase: `labels`, `volumes`, `ports`, `envs`, …) and `opts`
(`protect`, and `retain_on_delete` when the caller knows it) and returns the
violations as messages; an empty list means compliant. Checks never start a
server and import nothing from the program, so tests call them directly and
`__main__.py` only wraps them in a `PolicyPack`.

What a check can see of a resource (pulumi-policy 1.21, measured in
tests/test_policy.py):
- inputs as the program declared them; during a preview, values computed from
  resources not yet created are unknown and reading one raises
  `UnknownValueError` (reported by the SDK as an advisory "can't run" note);
- secret inputs as `pulumi_policy.Secret` only with `secret_view` installed,
  otherwise as their plain value;
- of the options, `protect` but not `retain_on_delete` (the analyzer protocol
  does not carry it); the mock-based tests pass it in.
"""

from __future__ import annotations

import base64
import posixpath
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Secret
from pulumi_policy.proxy import UnknownValueError

CONTAINER = "docker:index/container:Container"
# a swarm stack's (core.swarm): the same labels, on the service
SWARM_SERVICE = "docker:index/service:Service"
SWARM_CONFIG = "docker:index/serviceConfig:ServiceConfig"
VOLUME = "docker:index/volume:Volume"

SERVICE_LABEL = "fourlb.service"
SOCKET_PROXY = "docker-socket-proxy"
EDGE = "traefik"
EDGE_PORTS = (80, 443)

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
# Directories that contain the socket: mounting one hands it over as well.
SOCKET_DIRECTORIES = ("/var/run", "/run", "/var")
HOST_ROOT = "/"
# Monitoring reads the host's filesystems through a read-only bind of `/`.
# That bind is recursive, so /run/docker.sock is inside it, and a read-only
# mount does not stop connect() on a socket: the bind must lay an empty tmpfs
# over the socket's directories (TARGET/run and TARGET/var/run).
HOST_ROOT_READERS = ("cadvisor", "node-exporter")
SOCKET_DIRECTORIES_UNDER_ROOT = ("/run", "/var/run")

ENTRYPOINT = "websecure"
CROWDSEC = "crowdsec@file"
SECURITY_HEADERS = "security-headers@file"
ADMIN_AUTH = "admin-auth@file"
MIN_STS_SECONDS = 31536000  # one year: the HSTS preload list's minimum

# Names of environment variables that carry credentials.
CREDENTIAL_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|(^|_)(API_?)?KEY($|_))", re.I)
# `..._FILE` (and Grafana's `GF_..__FILE`, linuxserver's `FILE__...`) variables name
# a file that holds the credential, not the credential.
CREDENTIAL_FILE_NAME = re.compile(r"(_FILE$|^FILE__)", re.I)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I)
PASSWORD_HASH = re.compile(r"\$(2[abxy]\$\d\d|apr1)\$")
PLACEHOLDER = "${secret:"
# a secret shorter than this could match innocent label text by chance
MIN_SECRET_LENGTH = 8

_ROUTER_KEY = re.compile(r"^traefik\.http\.routers\.([^.]+)\.(.+)$")
_MIDDLEWARE_KEY = re.compile(r"^traefik\.http\.middlewares\.([^.]+)\.(.+)$")
_HOST = re.compile(r"Host\(`([^`]*)`\)")

Check = Callable[[Any], list[str]]


# ---- reading inputs --------------------------------------------------------
# Labels, mounts and ports are read strictly: if one is unknown during a
# preview, `UnknownValueError` reaches the SDK, which reports that the policy
# could not run yet (it runs again, with known values, during `pulumi up`).
# Env values and files are read leniently: an unknown one is computed from
# another resource (a generated password), never a literal, and is skipped.

def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Secret) else value


def _list(value: Any) -> list[Any]:
    value = _plain(value)
    return [] if value is None else [_plain(item) for item in value]


def _known_items(props: Mapping[str, Any], key: str) -> tuple[list[Any], bool]:
    """(known items, whether the whole list is secret); items keep their
    `Secret` wrapper."""
    try:
        value = props.get(key)
    except UnknownValueError:
        return [], False
    secret = isinstance(value, Secret)
    value = _plain(value)
    items = []
    for index in range(0 if value is None else len(value)):
        try:
            items.append(value[index])
        except UnknownValueError:
            continue
    return items, secret


def labels_of(props: Mapping[str, Any]) -> dict[str, str]:
    """Docker labels by lower-cased key (Traefik reads its keys case-insensitively)."""
    result: dict[str, str] = {}
    for item in _list(props.get("labels")):
        if isinstance(item, Mapping):
            key, value = _plain(item.get("label")), _plain(item.get("value"))
            if isinstance(key, str) and isinstance(value, str):
                result[key.lower()] = value
    return result


def service_of(props: Mapping[str, Any]) -> Optional[str]:
    return labels_of(props).get(SERVICE_LABEL)


def _host_path(path: str) -> str:
    # `//var/run/./docker.sock/` is the socket too
    return "/" + posixpath.normpath(path).lstrip("/")


def _mounts(resource: Any) -> list[Any]:
    """A container's `mounts`, or a swarm service's (taskSpec.containerSpec.mounts)."""
    if resource.resource_type == CONTAINER:
        return _list(resource.props.get("mounts"))
    spec = _plain(resource.props.get("taskSpec"))
    container = _plain(spec.get("containerSpec")) if isinstance(spec, Mapping) else None
    return _list(container.get("mounts")) if isinstance(container, Mapping) else []


def _binds(resource: Any) -> Iterator[tuple[str, str, bool]]:
    """(normalised host path, target, read-only) of every bind mount, of a
    container or of a swarm service's tasks."""
    if resource.resource_type == CONTAINER:
        for item in _list(resource.props.get("volumes")):
            if isinstance(item, Mapping):
                host_path = _plain(item.get("hostPath"))
                if isinstance(host_path, str) and host_path:
                    yield (_host_path(host_path), str(_plain(item.get("containerPath"))),
                           _plain(item.get("readOnly")) is True)
    for item in _mounts(resource):
        if isinstance(item, Mapping) and _plain(item.get("type")) == "bind":
            source = _plain(item.get("source"))
            if isinstance(source, str) and source:
                yield _host_path(source), str(_plain(item.get("target"))), _plain(item.get("readOnly")) is True


def _tmpfs_paths(resource: Any) -> set[str]:
    """Where an empty in-memory filesystem is laid (a container's tmpfs, a task's
    tmpfs mounts)."""
    if resource.resource_type == CONTAINER:
        return {str(p).rstrip("/") for p in _plain(resource.props.get("tmpfs")) or {}}
    return {str(_plain(m.get("target"))).rstrip("/") for m in _mounts(resource)
            if isinstance(m, Mapping) and _plain(m.get("type")) == "tmpfs"}


def _published_ports(resource: Any) -> list[Optional[int]]:
    """The host ports a container or a swarm service's endpoint publishes."""
    if resource.resource_type == CONTAINER:
        return [_number(_plain(p.get("external"))) if isinstance(p, Mapping) else None
                for p in _list(resource.props.get("ports"))]
    endpoint = _plain(resource.props.get("endpointSpec")) or {}
    ports = _list(endpoint.get("ports")) if isinstance(endpoint, Mapping) else []
    return [_number(_plain(p.get("publishedPort"))) if isinstance(p, Mapping) else None for p in ports]


def _number(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---- the checks ------------------------------------------------------------

def check_docker_socket(resource: Any) -> list[str]:
    """Only the socket proxy mounts the Docker socket (or a directory holding
    it), and read-only; the host root only for monitoring, read-only. The same
    for a swarm service's tasks."""
    if resource.resource_type not in (CONTAINER, SWARM_SERVICE):
        return []
    service = service_of(resource.props)
    problems = []
    for path, _, read_only in _binds(resource):
        if path in DOCKER_SOCKETS or path in SOCKET_DIRECTORIES:
            if service != SOCKET_PROXY:
                problems.append(
                    f"{resource.name}: mounts {path}, which exposes the Docker socket; only "
                    f"the container labelled {SERVICE_LABEL}={SOCKET_PROXY} may")
            elif not read_only:
                problems.append(f"{resource.name}: mounts {path} read-write; mount it read-only")
        elif path == HOST_ROOT:
            if service not in HOST_ROOT_READERS:
                problems.append(
                    f"{resource.name}: mounts the host root /, which contains the Docker socket; "
                    f"only {', '.join(HOST_ROOT_READERS)} may, read-only")
            elif not read_only:
                problems.append(f"{resource.name}: mounts the host root / read-write")
    problems += _unshadowed_sockets(resource)
    return problems


def _unshadowed_sockets(resource: Any) -> list[str]:
    """Where the host root is bound, its socket directories must be hidden."""
    hidden = _tmpfs_paths(resource)
    problems = []
    for path, target, _ in _binds(resource):
        if path != HOST_ROOT:
            continue
        target = target.rstrip("/")
        for directory in SOCKET_DIRECTORIES_UNDER_ROOT:
            if target + directory not in hidden:
                problems.append(
                    f"{resource.name}: binds the host root at {target} without an empty tmpfs "
                    f"over {target}{directory}, so the Docker socket stays reachable")
    return problems


def check_host_ports(resource: Any) -> list[str]:
    """Only Traefik publishes host ports, and only 80 and 443 (a container's,
    or a swarm service's endpoint)."""
    if resource.resource_type not in (CONTAINER, SWARM_SERVICE):
        return []
    props = resource.props
    service = service_of(props)
    problems = []
    if resource.resource_type == CONTAINER and _plain(props.get("networkMode")) == "host":
        problems.append(f"{resource.name}: network mode host publishes every port it listens on")
    ports = _published_ports(resource)
    if ports and service != EDGE:
        problems.append(
            f"{resource.name} ({SERVICE_LABEL}={service}): publishes host ports; only "
            f"{EDGE} may (everything else is reached through it)")
    elif ports:
        for external in ports:
            if external not in EDGE_PORTS:
                problems.append(
                    f"{resource.name}: publishes host port {external if external else '(any)'}; "
                    f"allowed: {', '.join(map(str, EDGE_PORTS))}")
    return problems


def check_volume_kept(resource: Any) -> list[str]:
    """Volumes hold data: protected, and retained on delete when that is known."""
    if resource.resource_type != VOLUME:
        return []
    opts = resource.opts
    problems = []
    if not getattr(opts, "protect", False):
        problems.append(f"volume {resource.name}: not protected; set protect=True")
    if getattr(opts, "retain_on_delete", None) is False:
        problems.append(f"volume {resource.name}: deleted with the stack; set retain_on_delete=True")
    return problems


def _routers(labels: Mapping[str, str]) -> dict[str, dict[str, str]]:
    routers: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        match = _ROUTER_KEY.match(key)
        if match:
            routers.setdefault(match.group(1), {})[match.group(2)] = value
    return routers


def _headers_middlewares(labels: Mapping[str, str]) -> dict[str, dict[str, str]]:
    defined: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        match = _MIDDLEWARE_KEY.match(key)
        if match and match.group(2).startswith("headers."):
            defined.setdefault(match.group(1), {})[match.group(2).removeprefix("headers.")] = value
    return defined


def _headers_problem(name: str, headers: Mapping[str, str], csp_by_application: bool = False
                     ) -> Optional[str]:
    """`csp_by_application`: the container's label fourlb.csp=application says its
    application sends its own policy (computed per request), which Traefik must
    not overwrite; every other header is still required."""
    sts = _number(headers.get("stsseconds"))
    missing = []
    if sts is None or sts < MIN_STS_SECONDS:
        missing.append(f"stsSeconds >= {MIN_STS_SECONDS}")
    for flag in ("stsincludesubdomains", "contenttypenosniff"):
        if headers.get(flag, "").lower() != "true":
            missing.append(f"{flag}=true")
    # frames denied, or allowed to the application's own pages only
    if (headers.get("framedeny", "").lower() != "true"
            and headers.get("customframeoptionsvalue", "").upper() != "SAMEORIGIN"):
        missing.append("frameDeny=true or customFrameOptionsValue=SAMEORIGIN")
    if not csp_by_application and not headers.get("contentsecuritypolicy", "").strip():
        missing.append("a contentSecurityPolicy")
    return f"headers middleware {name} lacks " + ", ".join(missing) if missing else None


def _self_signed_only(rule: str) -> bool:
    """Hostnames no public CA certifies (RFC 6761 `localhost`): a router that
    serves only those has nothing to ask a certificate resolver for."""
    hosts = _HOST.findall(rule)
    return bool(hosts) and all(h == "localhost" or h.endswith(".localhost") for h in hosts)


def check_routers(resource: Any) -> list[str]:
    """Every router is HTTPS-only, gets a certificate, and runs CrowdSec first
    and the security headers; Traefik's own API only behind admin auth. On a
    swarm, the service's labels."""
    if resource.resource_type not in (CONTAINER, SWARM_SERVICE):
        return []
    labels = labels_of(resource.props)
    headers = _headers_middlewares(labels)
    problems = []
    for router, settings in sorted(_routers(labels).items()):
        if "rule" not in settings:
            continue
        where = f"{resource.name}: router {router}"
        if settings.get("tls", "").lower() != "true":
            problems.append(f"{where}: tls is not true")
        entrypoints = {e.strip() for e in settings.get("entrypoints", "").split(",") if e.strip()}
        if entrypoints != {ENTRYPOINT}:
            problems.append(f"{where}: entrypoints {sorted(entrypoints)}; allowed: only {ENTRYPOINT}")
        if not settings.get("tls.certresolver") and not _self_signed_only(settings["rule"]):
            problems.append(f"{where}: no tls.certresolver for {settings['rule']}")
        # headers first, so that a refusal further on (CrowdSec's 403, the rate
        # limit's 429, basic auth's 401) carries them too; CrowdSec next, so a
        # banned address reaches nothing else
        chain = [m.strip() for m in settings.get("middlewares", "").split(",") if m.strip()]
        first = chain[0] if chain else ""
        if first != SECURITY_HEADERS:
            own = first.rsplit("@", 1)[0] if first.endswith(("@docker", "@swarm")) else None
            reason = (_headers_problem(own, headers[own], labels.get("fourlb.csp") == "application")
                      if own in headers else "not defined")
            if own is None or reason is not None:
                problems.append(
                    f"{where}: middlewares {chain} do not start with {SECURITY_HEADERS} nor a "
                    "complete headers middleware of its labels" + (f" ({reason})" if own else ""))
        if len(chain) < 2 or chain[1] != CROWDSEC:
            problems.append(f"{where}: middlewares {chain}: {CROWDSEC} must come second, "
                            "right after the headers")
        if settings.get("service", "").endswith("@internal") and ADMIN_AUTH not in chain:
            problems.append(f"{where}: serves {settings['service']} without {ADMIN_AUTH}")
    return problems


def _credential_values(envs: Iterable[Any]) -> list[str]:
    values = []
    for item in envs:
        item = _plain(item)
        if isinstance(item, str) and "=" in item:
            name, value = item.split("=", 1)
            if CREDENTIAL_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
                values.append(value)
    return values


def _env_problem(name: str, value: str) -> Optional[str]:
    if PLACEHOLDER in value:
        return f"env {name} holds an unrendered {PLACEHOLDER}…}} placeholder"
    if value and CREDENTIAL_NAME.search(name) and not CREDENTIAL_FILE_NAME.search(name):
        return f"env {name} looks like a credential and is not a secret"
    if URL_WITH_PASSWORD.search(value):
        return f"env {name} is a URL with a password and is not a secret"
    if PASSWORD_HASH.search(value):
        return f"env {name} holds a password hash and is not a secret"
    return None


def check_plaintext_secrets(resource: Any) -> list[str]:
    """Credentials reach a container only as secrets: never in a label, never
    as a plain env value or a plain uploaded file."""
    if resource.resource_type != CONTAINER:
        return []
    props = resource.props
    problems = []
    envs, all_secret = _known_items(props, "envs")
    for item in envs:
        if all_secret or isinstance(item, Secret) or not isinstance(item, str):
            continue
        name, _, value = item.partition("=")
        problem = _env_problem(name, value)
        if problem:
            problems.append(f"{resource.name}: {problem}")
    secrets = _credential_values(envs)
    for key, value in sorted(labels_of(props).items()):
        if PLACEHOLDER in value:
            problems.append(f"{resource.name}: label {key} holds a {PLACEHOLDER}…}} placeholder")
        if PASSWORD_HASH.search(value):
            problems.append(f"{resource.name}: label {key} holds a password hash")
        if any(secret in value for secret in secrets):
            problems.append(f"{resource.name}: label {key} holds the value of a credential env")
    uploads, all_secret = _known_items(props, "uploads")
    for item in [] if all_secret else uploads:
        if isinstance(item, Secret) or not isinstance(item, Mapping):
            continue
        try:
            content = item.get("content")
        except UnknownValueError:
            continue
        if isinstance(content, str) and (PLACEHOLDER in content or PASSWORD_HASH.search(content)):
            problems.append(
                f"{resource.name}: file {_plain(item.get('file'))} holds a credential "
                "and is not a secret")
    return problems


def check_swarm_plaintext_secrets(resource: Any) -> list[str]:
    """On a swarm, credentials reach a service only as docker secrets (files):
    never in its env or labels, never in a config (configs are readable by
    anyone who can list them)."""
    if resource.resource_type == SWARM_CONFIG:
        data = _plain(resource.props.get("data"))
        try:
            text = base64.b64decode(data).decode(errors="replace") if isinstance(data, str) else ""
        except ValueError:
            return [f"{resource.name}: config data is not base64"]
        if PLACEHOLDER in text or PASSWORD_HASH.search(text):
            return [f"{resource.name}: a config holds a credential; make it a docker secret"]
        return []
    if resource.resource_type != SWARM_SERVICE:
        return []
    spec = _plain(resource.props.get("taskSpec")) or {}
    env = (spec.get("containerSpec") or {}).get("env") or {}
    problems = []
    for name, value in sorted(env.items()) if isinstance(env, Mapping) else ():
        problem = _env_problem(name, value) if isinstance(value, str) else (
            f"env {name} is a secret value; deliver it as a docker secret file")
        if problem:
            problems.append(f"{resource.name}: {problem}")
    for key, value in sorted(labels_of(resource.props).items()):
        if PLACEHOLDER in value or PASSWORD_HASH.search(value):
            problems.append(f"{resource.name}: label {key} holds a credential")
    return problems


# ---- the socket proxy ---------------------------------------------------------

# tecnativa/docker-socket-proxy's HAProxy configuration, rendered from this
# template by its entrypoint at every start
PROXY_TEMPLATE = "/usr/local/etc/haproxy/haproxy.cfg.template"
# requests that read or run what is inside a container (a secret file's archive,
# an export, logs, a shell) or reach beyond containers: never through the proxy
FORBIDDEN_REQUESTS = (
    ("GET", "/v1.41/containers/postgres/archive"),
    ("HEAD", "/v1.41/containers/postgres/archive"),
    ("GET", "/v1.41/containers/postgres/export"),
    ("GET", "/v1.41/containers/postgres/logs"),
    ("POST", "/v1.41/containers/postgres/attach"),
    ("POST", "/v1.41/containers/postgres/exec"),
    ("POST", "/v1.41/exec/0123abcd/start"),
    ("POST", "/v1.41/containers/create"),
    ("GET", "/v1.41/secrets"),
    ("GET", "/v1.41/images/postgres/get"),
)
_HAPROXY_CONDITION = re.compile(r"METH_GET|\{[^}]*\}|\|\|")
_HAPROXY_PATH = re.compile(r"\{\s*path,url_dec\s+-m\s+reg\s+(-i\s+)?(\S+)\s*\}")


def _haproxy_condition(condition: str, method: str, path: str) -> bool:
    """HAProxy's ACL terms the proxy's configurations use: METH_GET (GET and
    HEAD), `{ path,url_dec -m reg [-i] REGEX }`, `||` between alternatives and
    juxtaposition for "and". An env switch (`{ env(X) -m bool }`) counts as on:
    the worst case."""
    alternatives: list[list[bool]] = [[]]
    for term in _HAPROXY_CONDITION.findall(condition):
        if term == "||":
            alternatives.append([])
        elif term == "METH_GET":
            alternatives[-1].append(method in ("GET", "HEAD"))
        elif (match := _HAPROXY_PATH.fullmatch(term)):
            flags = re.I if match.group(1) else 0
            alternatives[-1].append(re.search(match.group(2), path, flags) is not None)
        else:
            alternatives[-1].append(True)
    return any(all(terms) for terms in alternatives if terms)


def haproxy_allows(configuration: str, method: str, path: str) -> bool:
    """Whether the frontend's `http-request` rules, in order, let the request
    through (no rule decides: HAProxy passes it on)."""
    for line in configuration.splitlines():
        words = line.split(None, 2)
        if len(words) < 2 or words[0] != "http-request" or words[1] not in ("allow", "deny"):
            continue
        rest = words[2] if len(words) > 2 else ""
        if rest.startswith("unless "):
            applies = not _haproxy_condition(rest[len("unless "):], method, path)
        elif rest.startswith("if "):
            applies = _haproxy_condition(rest[len("if "):], method, path)
        else:
            applies = True
        if applies:
            return words[1] == "allow"
    return True


def check_socket_proxy(resource: Any) -> list[str]:
    """The Docker socket proxy runs a configuration of the program's that refuses
    what reads inside a container or runs anything (archive, export, logs,
    attach, exec, create): the image's own lets every GET under /containers
    through once CONTAINERS=1."""
    if resource.resource_type != CONTAINER or service_of(resource.props) != SOCKET_PROXY:
        return []
    uploads, _ = _known_items(resource.props, "uploads")
    templates = [item.get("content") for item in uploads
                 if isinstance(item, Mapping) and _plain(item.get("file")) == PROXY_TEMPLATE]
    if not templates or not isinstance(templates[0], str):
        return [f"{resource.name}: runs the image's own configuration, which lets every GET "
                f"under /containers through (a secret file's archive included); upload one to "
                f"{PROXY_TEMPLATE} that allows only what its clients read"]
    return [f"{resource.name}: its configuration lets {method} {path} through"
            for method, path in FORBIDDEN_REQUESTS if haproxy_allows(templates[0], method, path)]


# ---- the pack --------------------------------------------------------------

CHECKS: dict[str, Check] = {
    "docker-socket-only-in-proxy": check_docker_socket,
    "socket-proxy-reads-only": check_socket_proxy,
    "host-ports-only-traefik": check_host_ports,
    "volumes-protected": check_volume_kept,
    "routers-https-crowdsec-headers": check_routers,
    "no-plaintext-secrets": check_plaintext_secrets,
    "swarm-secrets-as-files": check_swarm_plaintext_secrets,
}


def violations(resource: Any) -> dict[str, list[str]]:
    """Every check's messages for one resource (only those with any)."""
    found = {name: check(resource) for name, check in CHECKS.items()}
    return {name: messages for name, messages in found.items() if messages}


def _validate(check: Check) -> Callable[[Any, Callable[..., None]], None]:
    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        for message in check(args):
            report_violation(message)
    return validate


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=name,
            description=" ".join((check.__doc__ or name).split()),
            validate=_validate(check),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, check in CHECKS.items()
    ]
