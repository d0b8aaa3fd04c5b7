"""What the Docker socket proxy lets through: exactly the reads of Traefik's
Docker provider and of cAdvisor.

tecnativa/docker-socket-proxy turns API sections on by env switch, and
`CONTAINERS=1` lets every GET under /containers through: the archive of a file
(`/containers/<id>/archive?path=/run/secrets/...`), a container's export, its
logs. Traefik and cAdvisor would then read PostgreSQL's password file, and so
would anyone who takes over either. The program writes the proxy's HAProxy
configuration instead (the template the image's entrypoint renders at every
start, tecnativa/docker-socket-proxy docker-entrypoint.sh): the image's
structure, and one anchored rule per request below; anything else is refused
(403).

The requests, from the clients' sources:
- the Docker Go client (both): HEAD, then GET, /_ping without a version, for
  API version negotiation (client/ping.go);
- Traefik v3.6 (pkg/provider/docker/pdocker.go, shared.go): GET /version,
  /containers/json, /containers/<id>/json, /events;
- cAdvisor (container/docker/docker.go, factory.go, handler.go): GET /info,
  /version, /containers/<id>/json.
Only GET and HEAD pass (HAProxy's METH_GET is both).
"""

from __future__ import annotations

from .model import Upload

TEMPLATE_PATH = "/usr/local/etc/haproxy/haproxy.cfg.template"

VERSIONED = r"^(/v[\d\.]+)?"
# a container's ID or name: Docker's own pattern ([a-zA-Z0-9][a-zA-Z0-9_.-]*); no `..`
CONTAINER = r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"

# path regex (HAProxy, on the decoded path without its query) -> who reads it
ALLOWED: dict[str, str] = {
    VERSIONED + r"/_ping$": "the Docker client of Traefik and cAdvisor (version negotiation)",
    VERSIONED + r"/version$": "Traefik, cAdvisor",
    VERSIONED + r"/info$": "cAdvisor",
    VERSIONED + r"/containers/json$": "Traefik (the containers it routes)",
    VERSIONED + rf"/containers/{CONTAINER}/json$": "Traefik, cAdvisor (a container's labels, networks, root)",
    VERSIONED + r"/events$": "Traefik (containers that start and stop)",
}
# Traefik's swarm provider (pkg/provider/docker/pswarm.go), on a swarm's manager
SWARM_ALLOWED: dict[str, str] = {
    VERSIONED + r"/services$": "Traefik (the services it routes)",
    VERSIONED + r"/networks$": "Traefik (the services' networks)",
    VERSIONED + r"/tasks$": "Traefik (the tasks of a service)",
    VERSIONED + rf"/nodes/{CONTAINER}$": "Traefik (the node of a task)",
}
EVENTS = VERSIONED + r"/events$"


def haproxy_template(swarm: bool = False) -> str:
    """The image's configuration (v0.3.0) with its allow rules replaced by ALLOWED
    (and SWARM_ALLOWED on a swarm).
    `${BIND_CONFIG}` is the entrypoint's; `$SOCKET_PATH` and `${LOG_LEVEL}` are
    read by HAProxy from the image's env when it starts."""
    rules = "".join(f"    # {who}\n    http-request allow if {{ path,url_dec -m reg -i {regex} }}\n"
                    for regex, who in {**ALLOWED, **(SWARM_ALLOWED if swarm else {})}.items())
    return f"""\
# Written by fourlb (core/socket_proxy.py): only what Traefik and cAdvisor read.
global
    log stdout format raw daemon "${{LOG_LEVEL}}"
    pidfile /run/haproxy.pid
    maxconn 4000

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option http-server-close
    option redispatch
    retries 3
    timeout http-request 10s
    timeout queue 1m
    timeout connect 10s
    timeout client 10m
    timeout server 10m
    timeout http-keep-alive 10s
    timeout check 10s
    maxconn 3000

backend dockerbackend
    server dockersocket $SOCKET_PATH

backend docker-events
    server dockersocket $SOCKET_PATH
    timeout server 0

frontend dockerfrontend
    bind ${{BIND_CONFIG}}
    http-request deny unless METH_GET
{rules}    http-request deny
    default_backend dockerbackend
    use_backend docker-events if {{ path,url_dec -m reg -i {EVENTS} }}
"""


def socket_proxy_files(swarm: bool = False) -> tuple[Upload, ...]:
    return (Upload(TEMPLATE_PATH, haproxy_template(swarm), mode="0444"),)
