"""The takeover drill: today's 4lb.ca host (the seed: a Compose project `ai-tools`,
volumes named `ai-tools_<key>`, containers under today's names, `unified-net` made
outside Compose) on a Docker daemon of its own; then `python -m plan adopt`, its
proposals applied as a person would (its commands run, with `pulumi` recording
what they set), and the program's whole prod platform run on the adopted volumes
(the harness of the e2e suite, its real programs and stand-ins), with the real
Traefik in front. Every row, key and byte is still there, the carried-over
credentials log in, every hostname is served, and the only volumes made are the
new ones adopt announced. The cutover's downtime is printed: from today's
containers stopping to the last hostname's first good answer through Traefik.

A daemon of its own (own data root, exec root, socket, address pool; no iptables,
no bridge): the rest of the suite uses fixed container and network names on the
main engine, which this drill must neither see nor disturb. What differs: the
old containers run the real-program images (tests/e2e/real) tagged as today's
images, not the official Alpine ones, and today's Traefik is not running (its
ports are this machine's), so the downtime counts from the moment today's
containers stop; the harness starts the containers at once, where `pulumi up`
waits for each one's health before what depends on it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Iterator

import pytest

from core.catalog import POSTGRES_DB, POSTGRES_USER, REDIS_CONF

from .changes import E2E_LABEL
from .conftest import FACTS, provided_secrets
from .declared import Declared, declared
from .edge_setup import running_edge
from .engine import Engine, EngineError
from .expectations import ROUTES
from .harness import Edge
from .platform import Platform, identity
from .polling import poll
from .real import images as real_images
from .real.contracts import POSTGRES, REDIS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "ai-tools"
ADDRESS_POOL = "base=10.213.0.0/16,size=24"
ROWS = 5000
SERVED_WITHIN_S = 90  # health checks every 15 s: a routed container is healthy after one
KEYS = 300
# today's secrets, as the compose file's env and command hold them
OLD_POSTGRES_PASSWORD = "old-pg-Secret-4lb-7d1e"
OLD_REDIS_PASSWORD = "old-redis-Secret-4lb-93af"
OLD_GRAFANA_PASSWORD = "old-grafana-Secret-4lb-c0de"
SEED_VOLUMES = ("postgres_data", "redis_data", "grafana_data", "traefik_certs")
STANDIN_IMAGE = "seed-standin:1"  # what today's grafana and traefik run here: a shell that sleeps
COMPOSE_FILE = f"""\
# today's /home/lalpha/projets/{PROJECT}/docker-compose.yml, as far as the takeover cares
services:
  postgres:
    image: postgres:16-alpine
    container_name: postgres
    environment: {{POSTGRES_USER: {POSTGRES_USER}, POSTGRES_DB: {POSTGRES_DB}, POSTGRES_PASSWORD: "${{PG_PASSWORD}}"}}
    volumes: [postgres_data:/var/lib/postgresql/data]
  redis:
    image: redis:7-alpine
    container_name: redis
    command: redis-server --requirepass "${{REDIS_PASSWORD}}"
    volumes: [redis_data:/data]
  grafana:
    image: grafana/grafana
    container_name: grafana
    volumes: [grafana_data:/var/lib/grafana]
  traefik:
    image: traefik:v3.6
    container_name: traefik
    ports: ["80:80", "443:443"]
    volumes: [traefik_certs:/letsencrypt]
volumes:
  postgres_data:
  redis_data:
  grafana_data:
  traefik_certs:
networks:
  default:
    name: unified-net
    external: true
"""
FAKE_PULUMI = """#!/bin/sh
# stands in for `pulumi config set --secret KEY -s STACK`, reading the value from stdin
[ "$1 $2 $3" = "config set --secret" ] || { echo "unexpected: pulumi $*" >&2; exit 2; }
cat > "$RECORDED/$4"
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)", pytrace=False)
    pytest.skip(reason)


PREDEFINED_NETWORKS = frozenset({"bridge", "host", "none"})


def remove_orphan_bridges() -> None:
    """The bridges of a drill's daemon that was killed before it removed its
    networks: links holding an address of ADDRESS_POOL, which only these daemons
    use. Left there, they take the pool's subnets until no network can be made."""
    pool = ipaddress.ip_network(ADDRESS_POOL.split(",")[0].removeprefix("base="))
    listed = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                            timeout=10, check=True).stdout
    for line in listed.splitlines():
        fields = line.split()
        link, address = fields[1], fields[3]
        if link.startswith("br-") and ipaddress.ip_interface(address).ip in pool:
            subprocess.run(["ip", "link", "delete", link], capture_output=True, timeout=10)


class OwnDaemon:
    """A dockerd started here, and everything it leaves behind removed."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.socket = directory / "d.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> Engine:
        remove_orphan_bridges()
        (self.directory / "daemon.json").write_text("{}")
        log = (self.directory / "dockerd.log").open("w")
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.directory / "data"),
             "--exec-root", str(self.directory / "exec"), "--pidfile", str(self.directory / "pid"),
             "-H", f"unix://{self.socket}", "--config-file", str(self.directory / "daemon.json"),
             "--iptables=false", "--bridge=none", "--default-address-pool", ADDRESS_POOL],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        engine = Engine(str(self.socket))

        def ready() -> bool:
            assert self.process.poll() is None, f"dockerd exited: {self.log_tail()}"
            try:
                engine.ping()
                return True
            except OSError:
                return False

        poll("the drill's dockerd answering", ready, 30, interval_s=0.1)
        return engine

    def log_tail(self) -> str:
        return (self.directory / "dockerd.log").read_text()[-2000:]

    def stop(self) -> None:
        if self.process is None:
            return
        engine = Engine(str(self.socket))
        try:
            for container in engine.request("GET", "/containers/json", query={"all": 1}):
                engine.remove_container(container["Id"])
            # its bridges outlive it in the kernel (its data root goes with it), each
            # holding a subnet of ADDRESS_POOL: removed with the networks
            for network in engine.networks():
                if network["Name"] not in PREDEFINED_NETWORKS:
                    engine.remove_network(network["Id"])
        except (OSError, EngineError):
            pass
        containerd_pid = self.directory / "exec" / "containerd" / "containerd.pid"
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if containerd_pid.exists():  # its containerd, if dockerd left it behind
            pid = int(containerd_pid.read_text().strip() or 0)
            if pid and Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(self.directory))]
        for mount in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def drill_engine() -> Iterator[Engine]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        _unavailable("the takeover drill starts a Docker daemon of its own: needs root and dockerd")
    missing = [tool for tool in ("docker", "psql", "dpkg-query") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"the takeover drill needs {', '.join(missing)}")
    packages = subprocess.run(["dpkg-query", "-W", "postgresql-15", "redis-server", "gosu"],
                              capture_output=True, text=True)
    if packages.returncode != 0:
        _unavailable(f"the real postgres and redis images need Debian's packages: {packages.stderr}")
    # a short path: a unix socket's path has at most 107 bytes
    daemon = OwnDaemon(Path(tempfile.mkdtemp(prefix="fourlb-drill-", dir="/tmp")))
    try:
        yield daemon.start()
    finally:
        daemon.stop()


# --- today's host --------------------------------------------------------------------

def _compose_labels(service: str) -> dict[str, str]:
    return {"com.docker.compose.project": PROJECT, "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
            "com.docker.compose.project.working_dir": f"/home/lalpha/projets/{PROJECT}"}


def _old_container(engine: Engine, name: str, image: str, volume: str, target: str,
                   env: tuple[str, ...] = (), cmd: tuple[str, ...] = (), entrypoint=None,
                   ports: tuple[int, ...] = (), start: bool = True) -> None:
    spec = {"Image": image, "Env": list(env), "Cmd": list(cmd) or None, "Labels": _compose_labels(name),
            "Entrypoint": entrypoint,
            "ExposedPorts": {f"{p}/tcp": {} for p in ports},
            "HostConfig": {"NetworkMode": "unified-net", "RestartPolicy": {"Name": "unless-stopped"},
                           "Mounts": [{"Type": "volume", "Source": f"{PROJECT}_{volume}",
                                       "Target": target}],
                           "PortBindings": {f"{p}/tcp": [{"HostPort": str(p)}] for p in ports}},
            "NetworkingConfig": {"EndpointsConfig": {"unified-net": {"Aliases": [name]}}}}
    ident = engine.create_container(name, spec)
    if start:
        engine.start(ident)


def _run(engine: Engine, container: str, *command: str) -> str:
    code, output = engine.exec(container, list(command))
    assert code == 0, f"{container}: {command}: exit {code}: {output.decode(errors='replace')}"
    return output.decode()


def _mountpoint(engine: Engine, volume: str) -> Path:
    return Path(engine.request("GET", f"/volumes/{volume}")["Mountpoint"])


def _tree_digest(path: Path) -> dict[str, str]:
    """Every file of a volume: its relative path -> mode and sha256 of its bytes."""
    found = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        found[str(file.relative_to(path))] = f"{oct(file.stat().st_mode)} {digest}"
    return found


ROWS_DIGEST = "select count(*), md5(string_agg(id::text || body, ',' order by id)) from drill_rows"


def _psql_local(engine: Engine, container: str, sql: str) -> str:
    return _run(engine, container, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", POSTGRES_USER,
                "-d", POSTGRES_DB, "-c", sql).strip()


def _redis(engine: Engine, container: str, password: str, *command: str) -> str:
    return _run(engine, container, "env", f"REDISCLI_AUTH={password}", "redis-cli", *command).strip()


def seed_host(engine: Engine, workdir: Path) -> dict[str, object]:
    """Today's host; returns what must survive the takeover."""
    built = real_images.build_all(engine, [POSTGRES, REDIS])
    for tag, (repository, version) in zip(built, (("postgres", "16-alpine"), ("redis", "7-alpine"))):
        engine.request("POST", f"/images/{tag}/tag", query={"repo": repository, "tag": version},
                       ok=(200, 201))
    engine.request("POST", f"/images/{POSTGRES.tag}/tag",
                   query={"repo": STANDIN_IMAGE.split(":")[0], "tag": "1"}, ok=(200, 201))
    # made by hand before the compose file existed: Compose joins it as external
    engine.create_network({"Name": "unified-net", "Driver": "bridge", "CheckDuplicate": True})
    for key in SEED_VOLUMES:
        engine.create_volume(f"{PROJECT}_{key}", {"com.docker.compose.project": PROJECT,
                                                  "com.docker.compose.volume": key,
                                                  "com.docker.compose.version": "2.29.7"})
    _old_container(engine, "postgres", "postgres:16-alpine", "postgres_data", "/var/lib/postgresql/data",
                   env=(f"POSTGRES_USER={POSTGRES_USER}", f"POSTGRES_DB={POSTGRES_DB}",
                        f"POSTGRES_PASSWORD={OLD_POSTGRES_PASSWORD}"))
    _old_container(engine, "redis", "redis:7-alpine", "redis_data", "/data",
                   cmd=("redis-server", "--requirepass", OLD_REDIS_PASSWORD))
    _old_container(engine, "grafana", STANDIN_IMAGE, "grafana_data", "/var/lib/grafana",
                   env=(f"GF_SECURITY_ADMIN_PASSWORD={OLD_GRAFANA_PASSWORD}",),
                   entrypoint=["sleep", "600"])
    # created, not started: its host ports 80 and 443 are the machine's
    _old_container(engine, "traefik", STANDIN_IMAGE, "traefik_certs", "/letsencrypt",
                   entrypoint=["sleep", "600"], ports=(80, 443), start=False)

    # over TCP: the entrypoint's first-run server listens on the socket only, and
    # stops before the real one starts
    poll("today's postgres accepting queries",
         lambda: engine.exec("postgres", ["sh", "-c", 'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 '
                                          f'-U {POSTGRES_USER} -d {POSTGRES_DB} -c "select 1"'])[0] == 0,
         30, interval_s=0.3)
    _psql_local(engine, "postgres", "create table drill_rows as select g as id, md5(g::text) as body "
                f"from generate_series(1, {ROWS}) g")
    _run(engine, "redis", "sh", "-c", f"i=0; while [ $i -lt {KEYS} ]; do echo \"SET key:$i value:$i\"; "
         f"i=$((i+1)); done | REDISCLI_AUTH='{OLD_REDIS_PASSWORD}' redis-cli > /dev/null")
    grafana = _mountpoint(engine, f"{PROJECT}_grafana_data")
    (grafana / "grafana.db").write_bytes(os.urandom(256 * 1024))
    (grafana / "plugins").mkdir()
    (grafana / "plugins" / "README").write_text("today's plugins\n")
    certs = _mountpoint(engine, f"{PROJECT}_traefik_certs")
    (certs / "acme.json").write_text(json.dumps({"le": {"Certificates": [{"domain": {"main": "4lb.ca"}}]}}))
    (certs / "acme.json").chmod(0o600)
    (workdir / "docker-compose.yml").write_text(COMPOSE_FILE)
    return {
        "rows": _psql_local(engine, "postgres", ROWS_DIGEST),
        "keys": _redis(engine, "redis", OLD_REDIS_PASSWORD, "DBSIZE"),
        "files": {key: _tree_digest(_mountpoint(engine, f"{PROJECT}_{key}"))
                  for key in ("grafana_data", "traefik_certs")},
    }


# --- adopt, as a person runs it ------------------------------------------------------

def adopt(engine: Engine, workdir: Path, fmt: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["DOCKER_HOST"] = f"unix://{engine.path}"
    return subprocess.run(
        [sys.executable, "-m", "plan", "adopt", "prod", "--compose", str(workdir / "docker-compose.yml"),
         "--import-file", str(workdir / "docker-import.json"), "--format", fmt],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def shell(engine: Engine, command: str, fake_bin: Path, recorded: Path) -> subprocess.CompletedProcess:
    """A command adopt proposed, run as a person would (docker CLI on the drill's daemon;
    `pulumi` records what it is asked to set)."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{engine.path}", "RECORDED": str(recorded),
           "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60)


def _secrets_from(proposed: list[dict], engine: Engine, workdir: Path) -> dict[str, str]:
    fake_bin, recorded = workdir / "bin", workdir / "recorded"
    fake_bin.mkdir(exist_ok=True)
    recorded.mkdir(exist_ok=True)
    (fake_bin / "pulumi").write_text(FAKE_PULUMI)
    (fake_bin / "pulumi").chmod(0o755)
    for secret in proposed:
        result = shell(engine, secret["command"], fake_bin, recorded)
        assert result.returncode == 0, f"{secret['command']}: {result.stderr}"
        value = (recorded / secret["config_key"]).read_text()
        assert value and value not in result.stdout + result.stderr, "the command showed the secret"
    return {path.name: path.read_text() for path in recorded.iterdir()}


# --- the drill -----------------------------------------------------------------------

def _create_networks(engine: Engine, platform: Declared, containers) -> None:
    wanted = {n for c in containers for n, _ in c.networks}
    existing = {n["Name"] for n in engine.networks()}
    for network in platform.networks:
        if network.name in wanted and network.name not in existing:
            engine.create_network({"Name": network.name, "Driver": network.driver,
                                   "Internal": network.internal, "CheckDuplicate": True,
                                   "Labels": {**network.labels, E2E_LABEL[0]: E2E_LABEL[1]}})


def _with_address(url: str, address: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}hostaddr={address}"


def _psql_url(url: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          capture_output=True, text=True, timeout=20)


def _serve_every_hostname(edge: Edge, prod: Declared, since: float) -> dict[str, float]:
    """Each of the stack's routes answers through Traefik as it must (its container,
    or Traefik's dashboard); returns the seconds from `since` to each hostname's
    first good answer."""
    served: dict[str, float] = {}
    for route in [r for r in ROUTES if r.stack == "prod"]:
        auth = edge.admin if route.admin else None
        if route.internal_service:
            path, answered = route.path, (lambda body: "traefik" in body.lower())
        else:
            path, answered = identity(prod.container(route.service), route.path)

        def good() -> bool:
            response = edge.get(route.host, path, auth=auth)
            return response.status == 200 and answered(response.text)

        edge.wait_for(f"https://{route.host}{path} served", good, SERVED_WITHIN_S, interval_s=0.2)
        served[route.host] = max(served.get(route.host, 0.0), time.monotonic() - since)
    assert set(served) == {r.host for r in ROUTES if r.stack == "prod"}
    return served


def test_the_running_host_is_taken_over_without_losing_a_byte(drill_engine: Engine, deploy,
                                                               traefik_binary: Path,
                                                               tmp_path: Path) -> None:
    engine = drill_engine
    timings: dict[str, float] = {}
    started = time.monotonic()
    kept = seed_host(engine, tmp_path)
    timings["today's host built (images, volumes, containers, data)"] = time.monotonic() - started

    # 1. adopt: today's redis writes no append-only file; the plan's would start empty
    first = adopt(engine, tmp_path, "json")
    assert first.returncode == 1, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert [b["subject"] for b in report["blockers"]] == ["redis_data"], report["blockers"]
    fix = report["blockers"][0]["fix"]
    command = fix.split("before the cutover: ", 1)[1].removesuffix(" (then run adopt again)")
    result = shell(engine, command, tmp_path, tmp_path)
    assert result.returncode == 0 and OLD_REDIS_PASSWORD not in result.stdout + result.stderr, result
    manifest = _mountpoint(engine, f"{PROJECT}_redis_data") / "appendonlydir" / "appendonly.aof.manifest"
    poll("today's redis writing its append-only file", manifest.exists, 20, interval_s=0.2)

    # 2. adopt again: nothing blocks
    checked = time.monotonic()
    text = adopt(engine, tmp_path, "text")
    timings["adopt (text)"] = time.monotonic() - checked
    print("\n--- python -m plan adopt prod, on the drill's host ---\n" + text.stdout)
    assert text.returncode == 0, text.stdout + text.stderr
    report = json.loads(adopt(engine, tmp_path, "json").stdout)
    names = {key: f"{PROJECT}_{key}" for key in SEED_VOLUMES}
    assert report["settings"] == {"fourlb:takeover": True, "fourlb:volumeNames": names}
    secret_values = (OLD_POSTGRES_PASSWORD, OLD_REDIS_PASSWORD, OLD_GRAFANA_PASSWORD)
    shown = text.stdout + json.dumps(report) + (tmp_path / "docker-import.json").read_text()
    assert not [s for s in secret_values if s in shown], "adopt printed a secret"
    imported = json.loads((tmp_path / "docker-import.json").read_text())["resources"]
    assert {(r["type"], r.get("id")) for r in imported if not r.get("component")} == (
        {("docker:index/volume:Volume", name) for name in names.values()}
        | {("docker:index/network:Network", engine.networks(name="unified-net")[0]["Id"])})

    # 3. what it proposes, applied: the settings and the carried-over secrets
    carried = _secrets_from(report["secrets"], engine, tmp_path)
    assert carried == {"fourlb:postgresPassword": OLD_POSTGRES_PASSWORD,
                       "fourlb:redisPassword": OLD_REDIS_PASSWORD,
                       "fourlb:grafanaAdminPassword": OLD_GRAFANA_PASSWORD}
    overrides = {key: json.dumps(value) if not isinstance(value, bool) else str(value).lower()
                 for key, value in report["settings"].items()}
    run = deploy("prod", overrides=overrides, secrets={**provided_secrets("prod"), **carried})
    platform_declared = declared(run)
    assert run.options[("docker:index/volume:Volume", "postgres_data")].import_ == names["postgres_data"]
    new = [platform_declared.container(name) for name in ("postgres", "redis")]
    harness = Platform(engine, [platform_declared])
    # pulled (here: built) before anything stops, as the runbook says
    harness.build_image(tmp_path / "standin")

    # 4. the cutover: today's containers stop (docker compose down, without -v), the
    # whole platform starts (writers first, as pulumi up orders them), then its edge
    volumes_before = sorted(v["Name"] for v in engine.volumes())
    cut = time.monotonic()
    for name, grace in (("postgres", 30), ("redis", 30), ("grafana", 1), ("traefik", 1)):
        engine.stop(name, grace)
        engine.remove_container(name)
    _create_networks(engine, platform_declared, platform_declared.containers)
    created = harness.create_volumes(adopted=names.values())
    harness.run_all()
    backend_url = platform_declared.container("ai-orchestrator-backend").env("DATABASE_URL")

    def logs_in() -> bool:
        address = harness.address(new[0].name, "data-net")
        return _psql_url(_with_address(backend_url, address), "select 1").returncode == 0

    poll("the plan's postgres accepting the backend's DATABASE_URL", logs_in, 60, interval_s=0.2)
    timings["postgres cutover: old one stopped -> first authenticated query on the new one"] = \
        time.monotonic() - cut
    harness.wait_healthy(new, 60)

    (tmp_path / "edge").mkdir()
    with running_edge(harness, platform_declared, traefik_binary, tmp_path / "edge",
                      tmp_path / "traefik.pid") as edge:
        served = _serve_every_hostname(edge, platform_declared, cut)
    timings["every hostname served through Traefik: old containers stopped -> the last one's "
            "first good answer"] = max(served.values())

    # 5. every row, key and byte; the credentials; only the plan's new volumes made
    new_volumes = {v["key"] for v in report["volumes"] if v["status"] == "new"}
    assert sorted(set(v["Name"] for v in engine.volumes()) - set(volumes_before)) == created
    assert set(created) <= new_volumes, created
    assert not set(created) & set(SEED_VOLUMES), "an adopted volume was made again, empty"
    for container in new:
        sources = {m["Destination"]: m["Name"] for m in engine.inspect(container.name)["Mounts"]}
        (target,) = [v["containerPath"] for v in container.volumes]
        assert sources[target] in names.values(), sources
    assert _psql_local(engine, "postgres", ROWS_DIGEST) == kept["rows"]
    address = harness.address("postgres", "data-net")
    url = _with_address(backend_url, address)
    assert urllib.parse.urlsplit(backend_url).password == OLD_POSTGRES_PASSWORD
    assert _psql_url(url, "select current_user").stdout.strip() == POSTGRES_USER
    wrong = _psql_url(url.replace(OLD_POSTGRES_PASSWORD, "not-the-password"), "select 1")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr, wrong.stderr
    redis_conf = platform_declared.container("redis").upload(REDIS_CONF).content
    assert f"requirepass {OLD_REDIS_PASSWORD}" in redis_conf
    assert _redis(engine, "redis", OLD_REDIS_PASSWORD, "DBSIZE") == kept["keys"] == str(KEYS)
    assert _redis(engine, "redis", OLD_REDIS_PASSWORD, "GET", f"key:{KEYS - 1}") == f"value:{KEYS - 1}"
    for key, digest in kept["files"].items():
        assert _tree_digest(_mountpoint(engine, names[key])) == digest, key
    timings["whole drill"] = time.monotonic() - started
    FACTS["takeover cutover"] = (
        f"{len(served)} hostnames served through Traefik {max(served.values()):.1f}s after today's "
        f"containers stopped (PostgreSQL answering the backend's login after "
        f"{timings['postgres cutover: old one stopped -> first authenticated query on the new one']:.1f}s); "
        f"{kept['rows'].split('|')[0]} rows, {KEYS} keys and every file kept")
    print("\n".join(f"  {label}: {seconds:.1f}s" for label, seconds in timings.items()))
