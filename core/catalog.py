"""The platform's services: the 4lb.ca inventory as data.

Each entry says what a service is (image, port, networks, volumes, route,
health check); `core.build` turns the entries a stack enables into containers.
Only what cannot be said as data (generated config files) lives in
`core.files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from .bouncer_key import CROWDSEC_KEY_FILE, TRAEFIK_KEY_FILE
from .live_config import LiveConfig, LoadedCheck
from .model import HeaderPolicy, HealthCheck, Mount, SecretSpec, UpdateOrder, secret

# Network names. `unified-net` is the edge's own: Traefik's published ports and
# its way out (ACME). Everything Traefik routes to sits on a network of its own
# with Traefik (core.networks: `edge-<container>`); the others below join only
# the services that talk to each other.
PUBLIC_NET = "unified-net"  # default of StackConfig.shared_network
DATA_NET = "data-net"
DOCKER_API_NET = "docker-api-net"
PROMETHEUS_NET = "prometheus-net"
ALERTMANAGER_NET = "alertmanager-net"
CROWDSEC_NET = "crowdsec-net"
ALERTING_NET = "alerting-net"
BACKUP_NET = "backup-net"
OLLAMA_NET = "ollama-net"  # with fourlb:ollama.runsOn service (core.ollama)
OLLAMA_PULL_NET = "ollama-pull-net"


def scrape_net(target: str) -> str:
    """Prometheus and one scrape target: a target reaches nothing else of the
    monitoring, Prometheus's API (reload, quit) least of all."""
    return f"scrape-{target}-net"


# Each application's own header needs (core.traefik.security_headers: Traefik
# replaces a header the application sent under the same name, so a per-request
# policy must stay the application's).
CODE_SERVER_HEADERS = HeaderPolicy(
    csp=None, frame_options="SAMEORIGIN",
    why="code-server sends VS Code's Content-Security-Policy with per-page script hashes "
        "(coder/code-server v4.98.2 patches/base-path.diff); its webviews are same-origin "
        "iframes (patches/webview.diff), which X-Frame-Options DENY blanks (coder/code-server#962)")
# Grafana's own template (conf/defaults.ini content_security_policy_template) with
# worker-src for its blob: workers (grafana/grafana#98807) and frame-ancestors
# matching its X-Frame-Options; $NONCE is replaced per request (pkg/middleware/csp.go).
GRAFANA_CSP_TEMPLATE = (
    "script-src 'self' 'unsafe-eval' 'unsafe-inline' 'strict-dynamic' $NONCE;object-src 'none';"
    "font-src 'self';style-src 'self' 'unsafe-inline' blob:;img-src * data:;base-uri 'self';"
    "connect-src 'self' grafana.com wss://$ROOT_PATH;manifest-src 'self';media-src 'none';"
    "form-action 'self';worker-src 'self' blob:;frame-ancestors 'none';")
GRAFANA_HEADERS = HeaderPolicy(
    csp=None, frame_options="DENY",
    why="Grafana sends its own Content-Security-Policy with a nonce per request "
        "([security] content_security_policy, set by GF_SECURITY_CONTENT_SECURITY_POLICY*; "
        "'unsafe-eval' is required, grafana/grafana#42964) and X-Frame-Options deny "
        "(allow_embedding = false)")
OPEN_WEBUI_HEADERS = HeaderPolicy(
    csp=("default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval' 'unsafe-eval'; "
         "worker-src 'self'; style-src 'self' 'unsafe-inline'; "
         "img-src 'self' data: blob: https://www.gravatar.com; font-src 'self' data:; "
         "media-src 'self' blob:; connect-src 'self' wss:; frame-src 'self'; object-src 'none'; "
         "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"),
    frame_options="SAMEORIGIN",
    permissions="camera=(), microphone=(self), geolocation=(), payment=()",
    why="Open WebUI 0.6.5 sets no policy unless asked (utils/security_headers.py); its "
        "index.html has inline scripts, tools run code by new Function, Pyodide needs "
        "'wasm-unsafe-eval' in a same-origin worker, HTML files are same-origin iframes, "
        "Socket.IO uses a WebSocket, voice input needs the microphone and plays blob: audio")
PROMETHEUS_API = "prometheus-api"  # Prometheus's name on PROMETHEUS_NET, where it listens
SCRAPED = ("traefik", "cadvisor", "node-exporter")  # alertmanager: on alertmanager-net

INTERNAL_NETWORKS = {
    DATA_NET: "PostgreSQL, Redis and ChromaDB with the services that use them",
    DOCKER_API_NET: "the read-only Docker socket proxy with Traefik and cAdvisor",
    PROMETHEUS_NET: "Prometheus's API: Grafana's queries and its writer's reload",
    ALERTMANAGER_NET: "Alertmanager: alerts and scrapes from Prometheus, its writer's reload",
    **{scrape_net(t): f"Prometheus scraping {t}" for t in SCRAPED},
    OLLAMA_NET: "Ollama's API with Open WebUI and the AI backend",
}
# CrowdSec needs the internet (hub, community blocklist) but nothing routed.
EGRESS_NETWORKS = {
    CROWDSEC_NET: "CrowdSec's API with Traefik's bouncer",
    # a network of its own each, so that reaching the internet lets them reach nothing else
    ALERTING_NET: "Alertmanager's way out to the SMTP server",
    BACKUP_NET: "the backup job's way out to the off-site bucket",
    OLLAMA_PULL_NET: "Ollama's way out to the registry it pulls models from",
}

VOLUMES = {
    "postgres_data": "PostgreSQL data",
    "redis_data": "Redis append-only file",
    "chromadb_data": "ChromaDB vectors",
    "traefik_certs": "Let's Encrypt account and certificates",
    "grafana_data": "Grafana dashboards and users",
    "prometheus_data": "Prometheus time series",
    "traefik_logs": "Traefik access log, read by CrowdSec",
    "crowdsec_data": "CrowdSec decisions database",
    "crowdsec_config": "CrowdSec hub and credentials",
    "open_webui_data": "Open WebUI users and chats",
    "ollama_data": "Ollama's models",
    "code_server_data": "code-server settings and workspaces",
    "alertmanager_data": "Alertmanager silences and notification log",
    "backup_data": "backup artifacts kept on this host",
    "backup_metrics": "the backup job's status, read by node-exporter",
    # written by the writer containers of core.live_config
    "traefik_dynamic": "Traefik's file-provider configuration (middlewares, TLS options)",
    "prometheus_config": "Prometheus's configuration and alert rules",
    "alertmanager_config": "Alertmanager's configuration",
    "grafana_dashboards": "Grafana's provisioned dashboards",
}

# Volumes the backup does not snapshot as files, and why. Every other volume of
# the stack is archived daily (mounted read-only into the backup container).
NOT_SNAPSHOTTED = {
    "postgres_data": "dumped with pg_dump: a copy of live database files is not consistent",
    "prometheus_data": "metrics history: large, and rebuilt by scraping",
    "traefik_logs": "access log: rotated, only read by CrowdSec",
    "backup_data": "the backups themselves",
    "ollama_data": "models: large, and pulled again from their registry (`ollama pull`)",
    "backup_metrics": "rewritten by every backup run",
    "traefik_dynamic": "generated by every deployment",
    "prometheus_config": "generated by every deployment",
    "alertmanager_config": "generated by every deployment",
    "grafana_dashboards": "generated by every deployment",
}

# Volumes that, on a swarm, every node running a backup has its own of (core.swarm:
# any other volume is held by one node role), and why.
PER_NODE_VOLUMES = {
    "backup_data": "each node's backup keeps its runs beside the data they copy",
    "backup_metrics": "each node's backup status, read by a node-exporter on that node",
}

POSTGRES_USER = "fourlb"
REDIS_CONF = "/usr/local/etc/redis/redis.conf"
POSTGRES_DB = "orchestrator"


def _http_check(port: int, path: str = "/", tool: str = "wget", host: str = "127.0.0.1") -> HealthCheck:
    url = f"http://{host}:{port}{path}"
    if tool == "curl":
        return HealthCheck(("CMD", "curl", "-fsS", "-o", "/dev/null", url))
    return HealthCheck(("CMD", "wget", "-q", "--spider", url))


@dataclass(frozen=True)
class RouteSpec:
    subdomain: str  # default hostname: <subdomain>.<platformDomain>
    path_prefix: Optional[str] = None
    admin: bool = False  # basic auth (+ optional IP allow-list)
    rate_limit: str = "default"  # "default" or "ai-api"
    internal_service: Optional[str] = None


@dataclass(frozen=True)
class SecretFile:
    """A secret delivered as a file (an upload) instead of an env value: the socket
    proxy lets Traefik read every container's env (`GET /containers/{id}/json`).
    `env` names the variable by which the image learns the file's path, if any."""

    secret: str
    path: str
    # uploads belong to root:root; the mode says who else may read: 0400 when the
    # image reads it as root, 0440 when its user is in group root, 0444 otherwise
    mode: str
    env: Optional[str] = None


# On a swarm, one task on each node (global mode) instead of a number of replicas:
# on every node for what measures its node, or on each node of its role (the
# edge: one Traefik behind each edge address). Each task keeps its own node's
# volumes and host paths, and never moves to another node.
EVERY_NODE = "every-node"
ITS_NODES = "its-nodes"
OnEachNode = Literal["every-node", "its-nodes"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    role: str
    networks: tuple[str, ...]
    port: Optional[int] = None
    route: Optional[RouteSpec] = None
    volumes: tuple[tuple[str, str], ...] = ()  # (volume, target)
    host_mounts: tuple[tuple[str, str], ...] = ()  # read-only (host path, target)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    healthcheck: Optional[HealthCheck] = None
    memory_mb: int = 256
    update_order: UpdateOrder = "start-first"
    stop_grace_s: int = 10
    mounts_docker_socket: bool = False
    tmpfs: tuple[str, ...] = ()  # see Container.tmpfs
    build_context: Optional[str] = None  # see Container.build_context
    metrics_path: Optional[str] = None  # scraped by Prometheus when set
    secret_files: tuple[SecretFile, ...] = ()
    # The platform's own software, which no public image holds: the default image
    # is only a stand-in for the local stack. Elsewhere one of these settings of
    # fourlb:services.<name> must say where the real thing comes from.
    own_software_from: tuple[str, ...] = ()
    # files the running service re-reads: delivered by a writer (core.live_config)
    live_config: Optional[LiveConfig] = None
    # a routed service whose own network with Traefik also leads out of the host
    # (core.networks); the others reach only the services on their networks
    egress: bool = False
    # (network, alias): the service listens only on its address on that network,
    # named by the alias there (Go's listener binds one address for a host name).
    # A routed one is reached there by Traefik too, instead of on a network of its own.
    # One Docker host only: a swarm task listens on all its addresses (core.build).
    listen_on: Optional[tuple[str, str]] = None
    # response headers where the strict default would break the application
    headers: Optional[HeaderPolicy] = None
    # services of the plan that must be running (healthy) before this one starts
    starts_after: tuple[str, ...] = ()
    # on a swarm: one task on each node (EVERY_NODE, ITS_NODES), its writer's too
    on_each_node: Optional[OnEachNode] = None

    def mounts(self) -> tuple[Mount, ...]:
        volumes = tuple(Mount(target=t, volume=v) for v, t in self.volumes)
        hosts = tuple(Mount(target=t, host_path=h, read_only=True) for h, t in self.host_mounts)
        socket = (
            (Mount(target="/var/run/docker.sock", host_path="/var/run/docker.sock", read_only=True),)
            if self.mounts_docker_socket
            else ()
        )
        return volumes + hosts + socket


SECRETS = {
    spec.name: spec
    for spec in (
        SecretSpec("postgres-password", "postgresPassword", purpose="PostgreSQL user fourlb"),
        SecretSpec("redis-password", "redisPassword", purpose="Redis requirepass"),
        SecretSpec("grafana-admin-password", "grafanaAdminPassword", purpose="Grafana admin login",
                   login="Grafana, user admin"),
        SecretSpec("ai-jwt-secret", "aiJwtSecret", length=48, purpose="AI Orchestrator JWT signing"),
        SecretSpec("admin-password", "adminPassword", bcrypt=True,
                   purpose="basic auth of the Traefik dashboard and Prometheus",
                   login="the Traefik dashboard and Prometheus (basic auth), user fourlb:adminUser"),
        SecretSpec("crowdsec-bouncer-key", "crowdsecBouncerKey", purpose="Traefik bouncer's LAPI key"),
        SecretSpec("code-server-password", "codeServerPassword", purpose="code-server login",
                   login="code-server (password only)"),
        SecretSpec("open-webui-secret-key", "openWebuiSecretKey", length=48,
                   purpose="Open WebUI session signing"),
        SecretSpec("open-webui-admin-password", "openWebuiAdminPassword",
                   purpose="Open WebUI's admin login",
                   login="Open WebUI, user fourlb:adminEmail (admin@<platformDomain>)"),
        SecretSpec("cloudflare-dns-token", "cloudflareDnsToken", generated=False,
                   purpose="Let's Encrypt DNS challenge through Cloudflare"),
        SecretSpec("smtp-password", "smtpPassword", generated=False,
                   purpose="Alertmanager's login on the SMTP server (alerting.smtp)"),
        SecretSpec("backup-s3-access-key-id", "backupS3AccessKeyId", generated=False,
                   purpose="access key of the off-site backup bucket (backup.remote)"),
        SecretSpec("backup-s3-secret-access-key", "backupS3SecretAccessKey", generated=False,
                   purpose="secret key of the off-site backup bucket (backup.remote)"),
        # provided, never generated: a password that only lived in the state would
        # be lost with the host, and the off-site copies with it
        SecretSpec("backup-restic-password", "backupResticPassword", generated=False,
                   purpose="encryption key of the off-site backups; keep a copy off this host"),
    )
}

# The secrets still delivered as env values, and why each cannot be a file.
SECRETS_IN_ENV = {
    ("ai-orchestrator-backend", "DATABASE_URL"):
        "the platform's own private image reads its settings from env only",
    ("ai-orchestrator-backend", "REDIS_URL"):
        "the platform's own private image reads its settings from env only",
    ("ai-orchestrator-backend", "JWT_SECRET_KEY"):
        "the platform's own private image reads its settings from env only",
    ("open-webui", "WEBUI_SECRET_KEY"):
        "Open WebUI reads WEBUI_SECRET_KEY_FILE only from v0.6.14; the pinned v0.6.5 does not",
}


def hidden_host_sockets(root: str) -> tuple[str, ...]:
    """Where the host's `/` is bound read-only at `root`: the directories that
    hold the Docker socket, to be covered by empty tmpfs mounts."""
    return (f"{root}/run", f"{root}/var/run")


TRAEFIK_OPS_PORT = 8082  # ping and metrics; never published, never routed
# Traefik's name on its scrape network, where alone its ops port listens: the
# client sites and admin UIs on its other networks do not reach ping and metrics
TRAEFIK_OPS_ALIAS = "traefik-ops"
# Traefik's API answers on its ops entry point for the writer's marker alone (a
# router of the program's files, core/traefik.py): a no-op middleware whose
# prefix names the digest of the files, listed once Traefik loaded them all
LOADED_MARKER = "fourlb-loaded"
LOADED_API_PATH = f"/api/http/middlewares/{LOADED_MARKER}@file"
TRAEFIK_LOADED = LoadedCheck(
    marker=f"{LOADED_MARKER}.yml",
    template=f"http:\\n  middlewares:\\n    {LOADED_MARKER}:\\n      stripPrefix:\\n"
             f"        prefixes: [/%s]\\n",
    prefix=f"{LOADED_MARKER}-",
    ping_url=f"http://{TRAEFIK_OPS_ALIAS}:{TRAEFIK_OPS_PORT}/ping",
    loaded_url=f"http://{TRAEFIK_OPS_ALIAS}:{TRAEFIK_OPS_PORT}{LOADED_API_PATH}",
)

# Traefik, and the edge image built from it on the host with the CrowdSec bouncer
# plugin inside (edge/Dockerfile, whose FROM names TRAEFIK_IMAGE)
TRAEFIK_IMAGE = "traefik:v3.6"
EDGE_IMAGE = "fourlb-traefik:3.6-bouncer-1.4.2"

# PostgreSQL 16 client tools (as the server), restic and crond: built from
# backup/Dockerfile; the scripts themselves are uploaded from backup/.
BACKUP_IMAGE = "fourlb-backup:16-1"

PLATFORM_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="traefik",
        image=EDGE_IMAGE,
        build_context="edge",
        role="edge",
        networks=(PUBLIC_NET, DOCKER_API_NET, CROWDSEC_NET, scrape_net("traefik")),
        port=TRAEFIK_OPS_PORT,
        listen_on=(scrape_net("traefik"), TRAEFIK_OPS_ALIAS),
        route=RouteSpec("traefik", admin=True, internal_service="api@internal"),
        volumes=(("traefik_certs", "/letsencrypt"), ("traefik_logs", "/var/log/traefik")),
        # the bouncer plugin reads its key once per process: a new key must replace
        # Traefik, and a file of its own does (core/bouncer_key.py); Traefik runs as root
        secret_files=(SecretFile("crowdsec-bouncer-key", TRAEFIK_KEY_FILE, "0400"),),
        # the bouncer's key is registered once CrowdSec answers (its health check)
        starts_after=("crowdsec",),
        # on a swarm, one Traefik on each edge node, behind each edge address (an A
        # record), each with its own certificates (core.swarm: ACME on more than one)
        on_each_node=ITS_NODES,
        # Docker's first check comes one interval after the start, and `pulumi up`
        # connects the client sites' networks (core.networks) once it is healthy:
        # a short interval keeps a replaced edge's sites away for seconds only
        healthcheck=HealthCheck(("CMD", "traefik", "healthcheck", "--ping"), interval_s=3),
        memory_mb=256,
        # holds the host's ports 80/443: the old one must release them first
        update_order="stop-first",
        stop_grace_s=30,
        metrics_path="/metrics",
        # the file provider watches the directory: no reload request needed; the
        # writer runs the stock image the edge image is built from, and confirms on
        # the ops entry point that Traefik loaded its files
        live_config=LiveConfig("/etc/traefik/dynamic", "traefik_dynamic", image=TRAEFIK_IMAGE,
                               network=scrape_net("traefik"), loaded=TRAEFIK_LOADED),
    ),
    ServiceSpec(
        name="docker-socket-proxy",
        image="tecnativa/docker-socket-proxy:0.3.0",
        role="edge",
        networks=(DOCKER_API_NET,),
        port=2375,
        # no env switches: the program's configuration (core/socket_proxy.py)
        # allows exactly the reads of Traefik and cAdvisor, and reads none
        mounts_docker_socket=True,
        healthcheck=_http_check(2375, "/_ping"),
        memory_mb=64,
    ),
    ServiceSpec(
        name="crowdsec",
        image="crowdsecurity/crowdsec:v1.6.8",
        role="edge",
        networks=(CROWDSEC_NET,),
        port=8080,
        volumes=(("crowdsec_data", "/var/lib/crowdsec/data"),
                 ("crowdsec_config", "/etc/crowdsec"),
                 ("traefik_logs", "/var/log/traefik")),
        env=(("COLLECTIONS", "crowdsecurity/traefik crowdsecurity/http-cve"),),
        # registered under a name of its digest by the start script (core/bouncer_key.py), as root
        secret_files=(SecretFile("crowdsec-bouncer-key", CROWDSEC_KEY_FILE, "0400"),),
        healthcheck=HealthCheck(("CMD", "cscli", "lapi", "status"), start_period_s=60),
        memory_mb=512,
        update_order="stop-first",
        stop_grace_s=30,
    ),
    ServiceSpec(
        name="postgres",
        image="postgres:16-alpine",
        role="data",
        networks=(DATA_NET,),
        port=5432,
        volumes=(("postgres_data", "/var/lib/postgresql/data"),),
        env=(("POSTGRES_USER", POSTGRES_USER), ("POSTGRES_DB", POSTGRES_DB)),
        # read by the entrypoint as root, before it drops to postgres; only used
        # when the data directory is created
        secret_files=(SecretFile("postgres-password", "/run/secrets/postgres-password", "0400",
                                 env="POSTGRES_PASSWORD_FILE"),),
        healthcheck=HealthCheck(("CMD-SHELL", f"pg_isready -U {POSTGRES_USER} -d {POSTGRES_DB}")),
        memory_mb=1024,
        update_order="stop-first",
        stop_grace_s=120,  # a clean checkpoint, not crash recovery on next start
    ),
    ServiceSpec(
        name="redis",
        image="redis:7-alpine",
        role="data",
        networks=(DATA_NET,),
        port=6379,
        volumes=(("redis_data", "/data"),),
        # the password lives in an uploaded file, not on the command line nor in
        # env (which the socket proxy's container API shows): the health check
        # reads it from that file
        command=("redis-server", REDIS_CONF),
        healthcheck=HealthCheck(("CMD-SHELL",
                                 f"REDISCLI_AUTH=\"$(sed -n 's/^requirepass //p' {REDIS_CONF})\" "
                                 "redis-cli ping | grep -q PONG")),
        memory_mb=512,
        update_order="stop-first",
        stop_grace_s=60,
    ),
    ServiceSpec(
        name="chromadb",
        image="chromadb/chroma:0.6.3",
        role="data",
        networks=(DATA_NET,),
        port=8000,
        volumes=(("chromadb_data", "/chroma/chroma"),),
        env=(("IS_PERSISTENT", "TRUE"), ("ANONYMIZED_TELEMETRY", "FALSE")),
        healthcheck=HealthCheck(
            ("CMD", "/bin/bash", "-c", "cat < /dev/null > /dev/tcp/127.0.0.1/8000")
        ),
        memory_mb=1024,
        update_order="stop-first",
        stop_grace_s=60,
    ),
    ServiceSpec(
        name="ai-orchestrator-backend",
        image="ai-orchestrator-backend:5.1",
        role="ai",
        networks=(DATA_NET,),
        port=8001,
        route=RouteSpec("ai", path_prefix="/api", rate_limit="ai-api"),
        env=(
            ("DATABASE_URL", f"postgresql://{POSTGRES_USER}:{secret('postgres-password')}"
                             f"@postgres:5432/{POSTGRES_DB}"),
            ("REDIS_URL", f"redis://:{secret('redis-password')}@redis:6379/0"),
            ("CHROMA_HOST", "chromadb"),
            ("CHROMA_PORT", "8000"),
            ("JWT_SECRET_KEY", secret("ai-jwt-secret")),
            ("JWT_EXPIRATION_SECONDS", "3600"),
        ),
        healthcheck=_http_check(8001, "/api/health", tool="curl"),
        memory_mb=2048,
        egress=True,  # the language-model APIs it orchestrates are outside the host
    ),
    ServiceSpec(
        name="ai-orchestrator-frontend",
        image="nginx:1.27-alpine",
        role="ai",
        networks=(),
        port=80,
        route=RouteSpec("ai"),
        healthcheck=_http_check(80),
        memory_mb=128,
        # the stock nginx serves only its welcome page: the UI's own image, or its
        # built files mounted onto /usr/share/nginx/html
        own_software_from=("image", "bindMounts"),
    ),
    ServiceSpec(
        name="open-webui",
        image="ghcr.io/open-webui/open-webui:v0.6.5",
        role="ai",
        networks=(),
        port=8080,
        route=RouteSpec("llm"),
        volumes=(("open_webui_data", "/app/backend/data"),),
        env=(("WEBUI_SECRET_KEY", secret("open-webui-secret-key")),
             ("ENABLE_SIGNUP", "false")),
        # its admin, created (first start) and given this password (every start)
        # by the program's start script (core.passwords); the image runs as root
        secret_files=(SecretFile("open-webui-admin-password", "/run/secrets/open-webui-admin-password",
                                 "0400", env="WEBUI_ADMIN_PASSWORD_FILE"),),
        healthcheck=_http_check(8080, "/health", tool="curl"),
        memory_mb=2048,
        headers=OPEN_WEBUI_HEADERS,
        egress=True,  # the model providers it talks to, and its model downloads
        update_order="stop-first",  # SQLite in its volume: one writer at a time
        stop_grace_s=30,
    ),
    # Only with fourlb:ollama.runsOn service (core.ollama); otherwise Open WebUI
    # and the AI backend reach the host's own Ollama.
    ServiceSpec(
        name="ollama",
        image="ollama/ollama:0.17.4",
        role="ai",
        networks=(OLLAMA_NET, OLLAMA_PULL_NET),
        port=11434,
        volumes=(("ollama_data", "/root/.ollama"),),
        # the image's OLLAMA_HOST (0.0.0.0) is where the CLI asks too
        healthcheck=HealthCheck(("CMD", "ollama", "list")),
        memory_mb=8192,
        update_order="stop-first",  # one server per model directory
        stop_grace_s=30,
    ),
    ServiceSpec(
        name="prometheus",
        image="prom/prometheus:v3.2.1",
        role="monitoring",
        networks=(PROMETHEUS_NET, ALERTMANAGER_NET, *(scrape_net(t) for t in SCRAPED)),
        port=9090,
        route=RouteSpec("prometheus", admin=True),
        volumes=(("prometheus_data", "/prometheus"),),
        # its API (--web.enable-lifecycle: reload, quit) answers on prometheus-net
        # only: not to the scrape targets and Alertmanager on its other networks
        listen_on=(PROMETHEUS_NET, PROMETHEUS_API),
        command=("--config.file=/etc/prometheus/prometheus.yml",
                 f"--web.listen-address={PROMETHEUS_API}:9090",
                 "--storage.tsdb.path=/prometheus",
                 "--storage.tsdb.retention.time=30d",
                 "--web.enable-lifecycle"),
        healthcheck=_http_check(9090, "/-/healthy", host=PROMETHEUS_API),
        memory_mb=1024,
        update_order="stop-first",
        stop_grace_s=60,
        metrics_path="/metrics",
        live_config=LiveConfig(
            "/etc/prometheus", "prometheus_config",
            check=("promtool", "check", "config", "/etc/prometheus/prometheus.yml"),
            reload_url=f"http://{PROMETHEUS_API}:9090/-/reload", network=PROMETHEUS_NET),
    ),
    ServiceSpec(
        name="grafana",
        image="grafana/grafana:11.5.2",
        role="monitoring",
        networks=(PROMETHEUS_NET,),
        port=3000,
        route=RouteSpec("grafana"),
        volumes=(("grafana_data", "/var/lib/grafana"),),
        env=(("GF_SECURITY_ADMIN_USER", "admin"),
             ("GF_USERS_ALLOW_SIGN_UP", "false"),
             ("GF_ANALYTICS_REPORTING_ENABLED", "false"),
             ("GF_SECURITY_CONTENT_SECURITY_POLICY", "true"),
             ("GF_SECURITY_CONTENT_SECURITY_POLICY_TEMPLATE", GRAFANA_CSP_TEMPLATE)),
        headers=GRAFANA_HEADERS,
        # run.sh reads every GF_*__FILE as uid 472, group root
        secret_files=(SecretFile("grafana-admin-password", "/run/secrets/grafana-admin-password",
                                 "0440", env="GF_SECURITY_ADMIN_PASSWORD__FILE"),),
        healthcheck=_http_check(3000, "/api/health"),
        memory_mb=512,
        update_order="stop-first",
        stop_grace_s=30,
        # the dashboard provider rescans its folder (every 10 s by default)
        live_config=LiveConfig("/etc/grafana/dashboards/fourlb", "grafana_dashboards"),
    ),
    ServiceSpec(
        name="alertmanager",
        image="prom/alertmanager:v0.28.1",
        role="monitoring",
        networks=(ALERTMANAGER_NET, ALERTING_NET),
        port=9093,
        volumes=(("alertmanager_data", "/alertmanager"),),
        command=("--config.file=/etc/alertmanager/alertmanager.yml",
                 "--storage.path=/alertmanager",
                 # one host, one instance: no gossip port, no peers to wait for
                 "--cluster.listen-address="),
        healthcheck=_http_check(9093, "/-/healthy"),
        memory_mb=128,
        update_order="stop-first",  # one writer of the notification log and silences
        stop_grace_s=30,
        metrics_path="/metrics",
        live_config=LiveConfig(
            "/etc/alertmanager", "alertmanager_config",
            check=("amtool", "check-config", "/etc/alertmanager/alertmanager.yml"),
            reload_url="http://alertmanager:9093/-/reload", network=ALERTMANAGER_NET),
    ),
    ServiceSpec(
        name="backup",
        image=BACKUP_IMAGE,
        build_context="backup",
        role="backup",
        networks=(DATA_NET, BACKUP_NET),
        # the volumes it archives are added read-only by core.backup (which, on a
        # swarm, makes one of it per node role); Traefik's access log is rotated
        # from here (backup/rotate-access-log)
        volumes=(("backup_data", "/backups"), ("backup_metrics", "/metrics"),
                 ("traefik_logs", "/traefik-logs")),
        # busybox crond under a PID 1 that stops it on SIGTERM (crond as PID 1
        # ignores it); scripts uploaded to /opt/backup (core.backup.SCRIPTS_DIR)
        command=("/opt/backup/scheduler",),
        # crond's death stops the container: healthy means the
        # uploads that make a run possible are in place
        healthcheck=HealthCheck(
            ("CMD-SHELL", "test -x /opt/backup/run && test -s /etc/crontabs/root")),
        memory_mb=512,
        # a fixed name for `docker exec backup ...`; one scheduler at a time
        update_order="stop-first",
        stop_grace_s=30,
    ),
    ServiceSpec(
        name="cadvisor",
        # ghcr.io: cAdvisor publishes there since v0.54.0 (gcr.io stops before). v0.57.0
        # is the first with Docker 29's containerd image store (v0.54.0, through
        # containerd's socket: docs/runbook.md ContainerMetricsBlind), the fix of
        # google/cadvisor#3772 (v0.56.0) and Docker engines below API 1.44 (v0.57.0)
        image="ghcr.io/google/cadvisor:v0.57.0",
        role="monitoring",
        networks=(scrape_net("cadvisor"), DOCKER_API_NET),
        port=8080,
        # container names come through the socket proxy, not a mounted socket
        # it registers its Docker factory once, at start, and never retries: the
        # proxy must answer by then (a blind cAdvisor: alert ContainerMetricsBlind)
        starts_after=("docker-socket-proxy",),
        command=("--docker=tcp://docker-socket-proxy:2375", "--docker_only=true",
                 "--housekeeping_interval=30s"),
        host_mounts=(("/", "/rootfs"), ("/sys", "/sys"), ("/var/lib/docker", "/var/lib/docker"),
                     ("/dev/disk", "/dev/disk")),
        tmpfs=hidden_host_sockets("/rootfs"),
        healthcheck=_http_check(8080, "/healthz"),
        memory_mb=256,
        metrics_path="/metrics",
        on_each_node=EVERY_NODE,
    ),
    ServiceSpec(
        name="node-exporter",
        image="prom/node-exporter:v1.9.0",
        role="monitoring",
        networks=(scrape_net("node-exporter"),),
        port=9100,
        command=("--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/rootfs"),
        host_mounts=(("/proc", "/host/proc"), ("/sys", "/host/sys"), ("/", "/rootfs")),
        tmpfs=hidden_host_sockets("/rootfs"),
        healthcheck=_http_check(9100, "/metrics"),
        memory_mb=128,
        metrics_path="/metrics",
        on_each_node=EVERY_NODE,
    ),
    ServiceSpec(
        name="code-server",
        image="lscr.io/linuxserver/code-server:4.98.2",
        role="tools",
        networks=(),
        port=8443,
        route=RouteSpec("code"),
        volumes=(("code_server_data", "/config"),),
        env=(("TZ", "America/Toronto"),),
        # linuxserver's init reads FILE__<NAME> as root and sets <NAME> for the app
        secret_files=(SecretFile("code-server-password", "/run/secrets/code-server-password",
                                 "0400", env="FILE__PASSWORD"),),
        healthcheck=_http_check(8443, "/healthz", tool="curl"),
        memory_mb=2048,
        headers=CODE_SERVER_HEADERS,
        egress=True,  # git remotes, package registries, the extension gallery
        update_order="stop-first",
        stop_grace_s=30,
    ),
)

SERVICES_BY_NAME = {spec.name: spec for spec in PLATFORM_SERVICES}

# Volumes every deployment rewrites (core.live_config): they hold no data.
GENERATED_VOLUMES = frozenset(s.live_config.volume for s in PLATFORM_SERVICES if s.live_config)
