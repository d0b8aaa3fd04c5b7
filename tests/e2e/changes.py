"""Every way the end-to-end run differs from production, in one place.

Traefik's configuration is the program's own (the traefik container's uploads),
rewritten only by `TRAEFIK_CHANGES`; `config_differences` lets a test assert
that nothing else differs. The containers are the program's own inputs, run
on the stand-in image, with only `CONTAINER_CHANGES` applied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

# The pieces of Traefik's configuration, as paths start: the static file, then
# one entry per file of the file provider's directory.
STATIC = "traefik.yml"
DYNAMIC = "dynamic/"
MIDDLEWARES = DYNAMIC + "middlewares.yml"

# What stands in for the CrowdSec bouncer: a headers middleware that only adds
# a request header for the backend, i.e. lets everything through.
CROWDSEC_PASS_THROUGH = {"headers": {"customRequestHeaders": {"X-Crowdsec-Bouncer": "e2e-pass-through"}}}

REMOVED = object()


@dataclass(frozen=True)
class Here:
    """What this machine gives the test Traefik."""

    web_port: int
    websecure_port: int
    ops_port: int
    # a loopback port bound by the tests and never listened on: connections are refused
    acme_port: int
    docker_endpoint: str
    workdir: Path
    # the traefik_dynamic volume's directory on this host, which its writer fills
    dynamic_dir: Path

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    @property
    def acme_storage(self) -> Path:
        return self.workdir / "acme.json"

    @property
    def acme_ca(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/directory"


@dataclass(frozen=True)
class Change:
    path: tuple[str, ...]  # (file, key, key, ...)
    value: Callable[[Here], Any] | object  # REMOVED drops the key
    why: str


TRAEFIK_CHANGES: tuple[Change, ...] = (
    Change((STATIC, "entryPoints", "web", "address"), lambda h: f"127.0.0.1:{h.web_port}",
           "no privileged port on a shared machine: loopback only, a free high port"),
    Change((STATIC, "entryPoints", "websecure", "address"), lambda h: f"127.0.0.1:{h.websecure_port}",
           "same, for HTTPS"),
    Change((STATIC, "entryPoints", "ops", "address"), lambda h: f"127.0.0.1:{h.ops_port}",
           "same, for ping and metrics (never public in production either)"),
    Change((STATIC, "providers", "docker", "endpoint"), lambda h: h.docker_endpoint,
           "Traefik runs on the host, not beside the socket proxy: it reads the engine's "
           "socket directly (the proxy's read-only filter is not under test)"),
    Change((STATIC, "providers", "file", "directory"), lambda h: str(h.dynamic_dir),
           "Traefik runs on the host: it watches the traefik_dynamic volume's directory on the "
           "host, which the program's writer (traefik-config) fills, as the container would "
           "see it mounted at /etc/traefik/dynamic"),
    Change((STATIC, "accessLog", "filePath"), lambda h: str(h.access_log),
           "the access log goes to a temporary file"),
    # Let's Encrypt cannot issue for 4lb.ca here. The resolver `le` stays (the
    # websecure entrypoint and every router's tls.certresolver label name it, so
    # dropping it would log an unknown-resolver error per router and change what
    # is tested) with its CA on a refused loopback port: nothing leaves the
    # machine, Traefik serves its default certificate, and the only errors it
    # logs are the ACME client's, which the log check recognises by that URL.
    Change((STATIC, "certificatesResolvers", "le", "acme", "caServer"), lambda h: h.acme_ca,
           "no ACME CA reachable: a refused loopback URL, so Traefik keeps its default certificate"),
    Change((STATIC, "certificatesResolvers", "le", "acme", "storage"), lambda h: str(h.acme_storage),
           "the ACME store is a temporary file"),
    Change((STATIC, "experimental", "localPlugins", "bouncer"), REMOVED,
           "the bouncer plugin's source is fetched when the edge image is built (edge/Dockerfile), "
           "which needs GitHub; the real binary runs here without it"),
    Change((MIDDLEWARES, "http", "middlewares", "crowdsec"), lambda h: CROWDSEC_PASS_THROUGH,
           "crowdsec@file keeps its name (every router references it) as a pass-through"),
    Change((MIDDLEWARES, "tls", "options", "default", "sniStrict"), lambda h: False,
           "only Traefik's default certificate exists here, which strict SNI refuses"),
)

# Production settings the tests rely on and keep as they are: asserted, not changed.
TRAEFIK_KEPT: dict[tuple[str, ...], Any] = {
    (STATIC, "global", "checkNewVersion"): False,
    (STATIC, "global", "sendAnonymousUsage"): False,
    (STATIC, "log", "format"): "json",
    (STATIC, "providers", "docker", "exposedByDefault"): False,
    (STATIC, "api", "dashboard"): True,
}

# How each stand-in container differs from the container the program declares.
CONTAINER_CHANGES: dict[str, str] = {
    "image": "no registry is reachable: a service whose real program Debian packages runs it "
             "in an image built here from its contract (real/contracts.py, which lists how "
             "each differs from the official image); every other one runs the stand-in image "
             "(static busybox answering its name on its port, and `standin_up 1` on /metrics)",
    "ports": "nothing is published on the host: the test Traefik runs on the host itself",
    "volumes": "the real programs and the configuration writers (stand-in or not: filling "
               "their volume is their job) mount their declared volumes (new, empty ones made "
               "by the tests) and host directories as declared; the other stand-ins mount none: "
               "they keep no data, and the host's Docker socket, /, /sys and /proc stay out of them",
    "labels": "one more label, fourlb.e2e=1, by which the tests find and remove what they made",
    "networks": "as declared (driver, internal, aliases), with forwarding off on each of their "
                "bridges (net.ipv4.conf.<bridge>.forwarding=0): this daemon runs without iptables "
                "(--iptables=false), so nothing else would stop the host from routing between two "
                "networks; on the real host Docker's own rules (DOCKER-ISOLATION chains) drop that "
                "traffic. Containers reach the host itself, and the host them, as before",
    "connections": "a container's connections to more networks (components.connection) run "
                   "the declared scripts with the docker CLI right after the container starts, "
                   "against this engine: DOCKER_HOST is this engine's, and CONTAINER the ID this "
                   "engine gave the container (the mocks' ID is a placeholder)",
    "uploads": "stand-ins only: one more file, /standin/listen (port and name of the stand-in)",
    "exposed ports": "the traefik container exposes 80/tcp, as the traefik image does (EXPOSE 80): "
                     "Traefik's docker provider needs a port for the default service of a "
                     "container whose routers all target internal services",
    "stop grace": "applied where a test replaces a site as `pulumi up` does (load.start_first_update); "
                  "elsewhere the tests remove their containers at once",
}
E2E_LABEL = ("fourlb.e2e", "1")
# The env of Traefik's writer (traefik-config) that differs here: name -> (value, reason).
TRAEFIK_WRITER_ENV_CHANGES: dict[str, tuple[str, str]] = {
    "PING_URL": ("http://127.0.0.1:1/ping",
                 "the test Traefik runs on the host, whose ops port (on loopback) the writer "
                 "cannot reach, and the stand-in named traefik answers any request: a refused "
                 "address makes the writer leave the load check to Traefik, as on a first "
                 "deployment. tests/e2e/test_traefik_loads.py runs the check against the real "
                 "binary, the engine suite against the real Traefik in its container"),
}
# Targets whose port the reachability probes leave out, with the reason
# (tests/e2e/test_reachability.py); every other cell of the plan's matrix is probed.
NOT_PROBED_TARGETS: dict[str, str] = {
    "traefik": "here Traefik runs on the host (its ops port on loopback); the container named "
               "traefik runs the stand-in, whose busybox nc listens on every address and cannot "
               "bind the one the real Traefik binds (its address on scrape-traefik-net, "
               "core/traefik.py): the engine suite probes the real Traefik's ops port instead",
}

# the real images' exposed ports, where the docker provider reads them (see CONTAINER_CHANGES)
IMAGE_EXPOSED_PORTS = {"traefik": ("80/tcp",)}


def production_tree(static: dict[str, Any], dynamic: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Traefik's configuration as one tree: the static file, then the file provider's files."""
    return {STATIC: static, **{DYNAMIC + name: content for name, content in dynamic.items()}}


def rewrite_for_here(production: dict[str, Any], here: Here) -> dict[str, Any]:
    """The production configuration tree with `TRAEFIK_CHANGES` applied (a copy)."""
    tree = copy.deepcopy(production)
    for change in TRAEFIK_CHANGES:
        *parents, last = change.path
        nodes = [tree]
        for key in parents:
            nodes.append(nodes[-1].setdefault(key, {}))
        if change.value is REMOVED:
            nodes[-1].pop(last, None)
            # and the sections it leaves empty, as if never written
            for parent, key in reversed(list(zip(nodes, parents))):
                if parent[key] == {}:
                    del parent[key]
        else:
            nodes[-1][last] = change.value(here)  # type: ignore[operator]
    return tree


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from _leaves(value, path + (str(key),))
    else:
        yield path, tree


def config_differences(production: dict[str, Any], test: dict[str, Any]) -> set[tuple[str, ...]]:
    """Leaf paths whose value differs, or that exist on one side only."""
    before, after = dict(_leaves(production)), dict(_leaves(test))
    return {path for path in before.keys() | after.keys() if before.get(path, REMOVED) != after.get(path, REMOVED)}


def undocumented(differences: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {d for d in differences if not any(d[:len(c.path)] == c.path for c in TRAEFIK_CHANGES)}


def unused_changes(differences: set[tuple[str, ...]]) -> list[Change]:
    return [c for c in TRAEFIK_CHANGES if not any(d[:len(c.path)] == c.path for d in differences)]


def lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Optional[Any]:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


# How the alert test (test_alert_email.py) changes the generated monitoring files,
# all the rest being the program's own. Each change with its reason.
ALERT_CHAIN_CHANGES: dict[str, str] = {
    "prometheus.yml global.scrape_interval and evaluation_interval: 2s":
        "the rate() of the CPU rule needs two samples: seconds, not minutes, of waiting",
    "prometheus.yml: the node-exporter job also scrapes `synthetic-host:9100`":
        "a stand-in serving a host that is 100% busy with a 95% full filesystem; the real "
        "node-exporter stays a target beside it",
    "rules: every `for:` removed":
        "the alerts fire at the first evaluation; the waits themselves are proven by the "
        "promtool rule tests (tests/promtool)",
    "alertmanager.yml global.smtp_smarthost: 127.0.0.1:<port>, smtp_require_tls: false":
        "the relay is aiosmtpd on 127.0.0.1 in Alertmanager's own network namespace; over "
        "loopback Go's SMTP client sends the password without TLS",
    "alertmanager.yml route.group_wait and group_interval: 1s": "no half-minute wait before sending",
}
SYNTHETIC_HOST = "synthetic-host"
SYNTHETIC_METRICS = """\
# a host whose CPU is never idle and whose filesystem is 95% full
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="user"} 5000
node_filesystem_avail_bytes{device="/dev/e2e",fstype="ext4",mountpoint="/srv"} 5e+09
node_filesystem_size_bytes{device="/dev/e2e",fstype="ext4",mountpoint="/srv"} 1e+11
"""


def for_the_alert_test(prometheus: dict[str, Any], rules: dict[str, Any], alertmanager: dict[str, Any],
                       smtp_port: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The three files with `ALERT_CHAIN_CHANGES` applied (copies)."""
    prometheus, rules, alertmanager = (copy.deepcopy(x) for x in (prometheus, rules, alertmanager))
    prometheus["global"].update(scrape_interval="2s", evaluation_interval="2s")
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "node-exporter"]
    job["static_configs"][0]["targets"].append(f"{SYNTHETIC_HOST}:9100")
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    alertmanager["global"].update(smtp_smarthost=f"127.0.0.1:{smtp_port}", smtp_require_tls=False)
    alertmanager["route"].update(group_wait="1s", group_interval="1s")
    return prometheus, rules, alertmanager

# How the backup test (test_real_programs.py) runs the crontab's command.
BACKUP_RUN_CHANGES: dict[str, str] = {
    "BACKUP_CONFIG: the program's backup.env without its RESTIC_* and AWS_* lines":
        "no off-site bucket is reachable; the upload, retention and restore through restic "
        "are proven against a local S3 server (moto) in tests/test_backup.py",
    "started by the test, not at the schedule's minute":
        "crond (PID 1, with the program's crontab) would wait for 03:15 UTC; the test runs "
        "the crontab line's command as crond would, as root in that container",
}

# How the deploy-over-ssh test (test_deploy_over_ssh.py) differs from the deploy to
# production; the ssh client configuration is bin/deploy-ssh-setup's own, as the workflow's.
SSH_TARGET_CHANGES: dict[str, str] = {
    "the target: an sshd started by the test on 127.0.0.1:<free port>, with a host key and a "
    "client key generated by the test":
        "no production host is reachable; the pinned known_hosts line is that sshd's own key "
        "(ssh-keyscan, trusted because the test made it)",
    "the login user: the user running the tests (root in CI), not `deploy` in the `docker` group":
        "a test cannot add users or groups to a shared machine; both reach the same socket "
        "(root directly, deploy through the docker group) with the same `docker system dial-stdio`",
    "sshd_config: AuthorizedKeysFile in the test's temporary directory, StrictModes no, UsePAM no, "
    "PermitRootLogin prohibit-password":
        "the keys live under /tmp, which is world-writable and so refused by StrictModes; the "
        "production host's sshd is its own and not under test",
    "`ssh` on PATH is a shim: /usr/bin/ssh -F $HOME/.ssh/config":
        "ssh reads ~/.ssh/config from the passwd entry's home, not $HOME, and the test's HOME is "
        "a temporary directory (on a runner the two agree); -F also skips /etc/ssh/ssh_config, "
        "which could only set what the block, read first, leaves unset",
}
