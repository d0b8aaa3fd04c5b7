"""The real programs (real/contracts.py) run with exactly what the program declares
for them, as their official images run them, and do their job."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.backup import CRONTAB as BACKUP_CRONTAB
from core.bouncer_key import CROWDSEC_KEY_FILE
from core.catalog import POSTGRES_DB, POSTGRES_USER, PROMETHEUS_NET, REDIS_CONF
from core.live_config import WRITER_SUFFIX
from core.monitoring.prometheus import RULES_FILE
from core.monitoring.queries import backup_age_seconds

from . import backup_run
from .declared import Declared, DeclaredContainer
from .ollama_standin import ANSWER, MODEL, OllamaStandIn
from .platform import Platform, real_contract
from .polling import poll
from .real.contracts import CONTRACTS, STANDINS

HEALTHY_WITHIN_S = 90  # crowdsec's start period is 60 s; checks run every 15 s
TARGETS_UP_WITHIN_S = 75  # two scrape intervals (30 s) and a margin


@pytest.fixture(scope="module")
def real(platform: Platform, stacks: dict[str, Declared]) -> dict[str, DeclaredContainer]:
    """prod's containers that run their real program, once all are healthy."""
    containers = {c.service: c for c in stacks["prod"].containers if real_contract(c)}
    platform.wait_healthy(containers.values(), HEALTHY_WITHIN_S)
    return containers


def _exec(platform: Platform, container: DeclaredContainer, *command: str) -> str:
    code, output = platform.engine.exec(container.name, list(command))
    if code != 0:  # what went to the container's own output (crond's jobs write there) too
        log = platform.engine.request("GET", f"/containers/{container.name}/logs",
                                      query={"stdout": 1, "stderr": 1, "tail": 40}) or b""
        raise AssertionError(f"{container.name}: {command} exited {code}: "
                             f"{output.decode(errors='replace')}\nits log: {log.decode(errors='replace')}")
    return output.decode()


def _get(url: str) -> str:
    """A GET to a container this run started."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (container address)
        return response.read().decode()


def _exporter_metrics(platform: Platform, exporter: DeclaredContainer) -> str:
    address = platform.address(exporter.name, exporter.networks[0][0])  # the one Prometheus shares
    return _get(f"http://{address}:{exporter.port}/metrics")


def test_every_service_has_a_contract_or_a_reason_for_its_stand_in(stacks: dict[str, Declared]) -> None:
    # a configuration writer runs its service's image (core.live_config)
    services = {c.name.removesuffix(WRITER_SUFFIX) for c in stacks["prod"].plan.containers
                if c.role != "site"}
    unexplained = services - set(CONTRACTS) - set(STANDINS)
    assert not unexplained, f"neither a contract nor a stand-in reason: {sorted(unexplained)}"
    assert not set(CONTRACTS) & set(STANDINS)


@pytest.mark.parametrize("service", sorted(CONTRACTS))
def test_the_real_program_runs_healthy_as_its_image_user(platform: Platform, real, service: str) -> None:
    container = real[service]
    contract = CONTRACTS[service]
    assert platform.health(container.name) == "healthy"
    status = _exec(platform, container, "cat", "/proc/1/status")
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)  # type: ignore[union-attr]
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M).group(1)  # type: ignore[union-attr]
    assert (int(uid), int(gid)) == (contract.uid, contract.gid), f"{service}: PID 1 runs as {uid}:{gid}"


@pytest.mark.parametrize("service", sorted(CONTRACTS))
def test_every_upload_is_readable_by_the_user_that_reads_it(platform: Platform, real, service: str) -> None:
    container = real[service]
    contract = CONTRACTS[service]
    for upload in container.uploads:
        reader = "0" if upload.file in contract.read_as_root else str(contract.uid)
        code, output = platform.engine.exec(container.name, ["cat", upload.file],
                                            user=f"{reader}:{contract.gid}")
        assert code == 0, f"{service}: {upload.file} ({upload.permissions}) unreadable by uid {reader}: {output!r}"
        assert output.decode() == upload.content, upload.file


# --- redis ---------------------------------------------------------------------

def _redis(platform: Platform, container: DeclaredContainer, *command: str, password: str = "") -> str:
    prefix = ["env", f"REDISCLI_AUTH={password}"] if password else []
    _, output = platform.engine.exec(container.name, prefix + ["redis-cli", *command])
    return output.decode().strip()


def _redis_password(container: DeclaredContainer) -> str:
    conf = container.upload(REDIS_CONF).content
    (password,) = re.findall(r"^requirepass (\S+)$", conf, re.M)
    return password


def test_redis_refuses_commands_without_the_generated_password(platform: Platform, real) -> None:
    redis = real["redis"]
    assert _redis(platform, redis, "SET", "k", "v").startswith("NOAUTH")
    assert "WRONGPASS" in _redis(platform, redis, "SET", "k", "v", password="not-the-password")
    assert _redis(platform, redis, "SET", "e2e-key", "kept", password=_redis_password(redis)) == "OK"


def test_redis_accepts_the_ai_backends_url(platform: Platform, real, stacks: dict[str, Declared]) -> None:
    url = urllib.parse.urlsplit(stacks["prod"].container("ai-orchestrator-backend").env("REDIS_URL"))
    assert (url.hostname, url.port) == ("redis", real["redis"].port)
    assert _redis(platform, real["redis"], "PING", password=urllib.parse.unquote(url.password or "")) == "PONG"


def test_redis_writes_its_append_only_file_in_the_volume(platform: Platform, real) -> None:
    redis = real["redis"]
    _redis(platform, redis, "SET", "e2e-aof", "1", password=_redis_password(redis))
    (data,) = [v for v in redis.volumes if v["containerPath"] == "/data"]
    mountpoint = platform.engine.request("GET", f"/volumes/{data['volumeName']}")["Mountpoint"]

    def written() -> bool:
        files = subprocess.run(["find", mountpoint, "-name", "*.aof"], capture_output=True, text=True,
                               timeout=10).stdout
        increments = [line for line in files.split() if line.endswith(".incr.aof")]
        return any("e2e-aof" in open(path, errors="replace").read() for path in increments)

    poll("the SET in redis's append-only file in its volume", written, timeout_s=5)


# --- postgres ------------------------------------------------------------------

def _psql(url_or_args: list[str], sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", *url_or_args, "-c", sql],
                          capture_output=True, text=True, timeout=20)


def _with_address(url: str, address: str) -> str:
    """The URL as declared, connecting to `address`: libpq's hostaddr skips the name lookup."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}hostaddr={address}"


def test_postgres_was_initialised_from_the_declared_env(platform: Platform, real) -> None:
    postgres = real["postgres"]
    roles = _exec(platform, postgres, "psql", "-U", POSTGRES_USER, "-d", POSTGRES_DB, "-At", "-c",
                  "select rolname from pg_roles where rolsuper")
    assert roles.split() == [POSTGRES_USER]
    databases = _exec(platform, postgres, "psql", "-U", POSTGRES_USER, "-d", "postgres", "-At", "-c",
                      "select datname from pg_database where not datistemplate")
    assert POSTGRES_DB in databases.split()
    hba = _exec(platform, postgres, "sh", "-c", 'cat "$PGDATA/pg_hba.conf"')
    assert re.search(r"^host\s+all\s+all\s+all\s+scram-sha-256$", hba, re.M), hba


def test_the_ai_backends_database_url_authenticates(platform: Platform, real, stacks: dict[str, Declared]) -> None:
    url = stacks["prod"].container("ai-orchestrator-backend").env("DATABASE_URL")
    address = platform.address(real["postgres"].name, "data-net")
    result = _psql([_with_address(url, address)], "select current_user, current_database()")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{POSTGRES_USER}|{POSTGRES_DB}"
    wrong = url.replace(":" + urllib.parse.urlsplit(url).password + "@", ":wrong@")  # type: ignore[operator]
    refused = _psql([_with_address(wrong, address)], "select 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr


def test_the_backups_pgpass_authenticates(platform: Platform, real) -> None:
    # as the backup scripts connect: libpq variables from the settings file, password from pgpass
    output = _exec(platform, real["backup"], "sh", "-c",
                   "set -a; . /etc/backup/backup.env; psql -X -At -d postgres -c 'select current_user'")
    assert output.strip() == POSTGRES_USER


# --- prometheus, alertmanager, node-exporter -----------------------------------

def _prometheus(platform: Platform, real, path: str) -> Any:
    address = platform.address(real["prometheus"].name, PROMETHEUS_NET)  # the only one it listens on
    return json.loads(_get(f"http://{address}:{real['prometheus'].port}{path}"))["data"]


def test_prometheus_loads_the_generated_rules(platform: Platform, real) -> None:
    generated = yaml.safe_load(real["prometheus-config"].upload(RULES_FILE).content)
    loaded = _prometheus(platform, real, "/api/v1/rules")["groups"]
    assert {g["name"]: sorted(r["name"] for r in g["rules"]) for g in loaded} == {
        g["name"]: sorted(r["alert"] for r in g["rules"]) for g in generated["groups"]}
    assert all(r["health"] != "err" for g in loaded for r in g["rules"]), loaded


def test_every_declared_scrape_target_is_up(platform: Platform, real) -> None:
    config = yaml.safe_load(real["prometheus-config"].upload("/etc/prometheus/prometheus.yml").content)
    jobs = {job["job_name"] for job in config["scrape_configs"]}

    def all_up() -> dict[str, str]:
        targets = _prometheus(platform, real, "/api/v1/targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        assert set(health) == jobs, health
        assert all(value == "up" for value in health.values()), {
            t["labels"]["job"]: t.get("lastError") for t in targets}
        return health

    poll("every scrape target up", all_up, TARGETS_UP_WITHIN_S, interval_s=3)


def test_node_exporter_runs_with_the_declared_flags(platform: Platform, real) -> None:
    exporter = real["node-exporter"]
    argv = _exec(platform, exporter, "cat", "/proc/1/cmdline").split("\0")
    assert argv[1:-1] == list(exporter.command), argv
    metrics = _exporter_metrics(platform, exporter)
    # read through the host's /proc and /sys binds
    assert "node_cpu_seconds_total{" in metrics and "node_filesystem_avail_bytes{" in metrics
    assert 'node_textfile_scrape_error 0' in metrics, "the textfile directory must be readable"


# --- crowdsec ------------------------------------------------------------------

def _bouncer_key(container: DeclaredContainer) -> str:
    return container.upload(CROWDSEC_KEY_FILE).content.strip()


def _decisions(platform: Platform, crowdsec: DeclaredContainer, key: str, ip: str) -> tuple[int, Any]:
    address = platform.address(crowdsec.name, "crowdsec-net")
    request = urllib.request.Request(f"http://{address}:{crowdsec.port}/v1/decisions?ip={ip}",
                                     headers={"X-Api-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def test_crowdsec_accepts_the_generated_bouncer_key_and_returns_its_decisions(platform: Platform, real) -> None:
    crowdsec = real["crowdsec"]
    key = _bouncer_key(crowdsec)
    assert _decisions(platform, crowdsec, "not-the-key", "192.0.2.10")[0] == 403
    assert _decisions(platform, crowdsec, key, "192.0.2.10") == (200, None)  # nothing known yet
    _exec(platform, crowdsec, "cscli", "decisions", "add", "--ip", "192.0.2.10", "--duration", "10m",
          "--reason", "e2e")
    status, decisions = _decisions(platform, crowdsec, key, "192.0.2.10")
    assert status == 200 and decisions, decisions
    assert [(d["value"], d["type"]) for d in decisions] == [("192.0.2.10", "ban")]
    assert _decisions(platform, crowdsec, key, "192.0.2.11") == (200, None)


# --- backup --------------------------------------------------------------------

ROWS = 250


def test_a_scheduled_backup_run_restores(platform: Platform, real) -> None:
    """The crontab's command in the backup container, against the real PostgreSQL and
    the volumes (with changes.BACKUP_RUN_CHANGES): its dump restores with every row,
    its archives hold the volumes' files, node-exporter exports its status and the
    backup alert's query sees it."""
    postgres, backup, exporter = real["postgres"], real["backup"], real["node-exporter"]
    _exec(platform, postgres, "psql", "-U", POSTGRES_USER, "-d", POSTGRES_DB, "-v", "ON_ERROR_STOP=1", "-c",
          f"create table e2e_rows as select g as id, md5(g::text) as body from generate_series(1, {ROWS}) g")
    assert "/opt/backup/scheduler" in _exec(platform, backup, "cat", "/proc/1/cmdline")
    _exec(platform, backup, *backup_run.local_run(backup.upload(BACKUP_CRONTAB).content))
    runs = _exec(platform, backup, "sh", "-c", "ls -1 /backups | grep -v -e failed -e '^\\.'").split()
    assert len(runs) == 1, runs
    run = f"/backups/{runs[0]}"
    files = _exec(platform, backup, "ls", "-1", run).split()
    assert f"db-{POSTGRES_DB}.dump" in files and f"db-{POSTGRES_DB}.dump.sha256" in files, files
    _exec(platform, backup, "/opt/backup/restore-db", f"{run}/db-{POSTGRES_DB}.dump", "e2e_restored")
    count = _exec(platform, postgres, "psql", "-U", POSTGRES_USER, "-d", "e2e_restored", "-At", "-c",
                  "select count(*), sum(length(body)) from e2e_rows")
    assert count.strip() == f"{ROWS}|{ROWS * 32}"
    (archive,) = [f for f in files if f.startswith("volume-redis_data") and f.endswith(".tar.gz")]
    listed = _exec(platform, backup, "tar", "-tzf", f"{run}/{archive}")
    assert "appendonlydir/" in listed, listed

    metrics = _exporter_metrics(platform, exporter)
    assert re.search(r"^fourlb_backup_last_run_status 1$", metrics, re.M), metrics[-2000:]
    assert re.search(r"^fourlb_backup_last_success_timestamp_seconds \d", metrics, re.M)

    def seen() -> list:
        query = urllib.parse.quote(backup_age_seconds())
        return _prometheus(platform, real, f"/api/v1/query?query={query}")["result"]

    (sample,) = poll("the backup alert's query answered by Prometheus", seen, TARGETS_UP_WITHIN_S, interval_s=3)
    assert 0 <= float(sample["value"][1]) < 600, sample


# --- open-webui ----------------------------------------------------------------

def _open_webui(platform: Platform, container: DeclaredContainer, method: str, path: str,
                body: Any = None, token: str = "") -> tuple[int, Any]:
    """A request to Open WebUI's API on its address on its network with Traefik."""
    address = platform.address(container.name, container.networks[0][0])
    request = urllib.request.Request(
        f"http://{address}:{container.port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (container address)
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def _open_webui_admin(container: DeclaredContainer) -> tuple[str, str]:
    return (container.env("WEBUI_ADMIN_EMAIL"),
            container.upload("/run/secrets/open-webui-admin-password").content)


def test_open_webui_lets_in_its_admin_and_nobody_sign_up(platform: Platform, real) -> None:
    webui = real["open-webui"]
    email, password = _open_webui_admin(webui)
    status, signed_in = _open_webui(platform, webui, "POST", "/api/v1/auths/signin",
                                    {"email": email, "password": password})
    assert status == 200 and signed_in["role"] == "admin", (status, signed_in)
    status, _ = _open_webui(platform, webui, "POST", "/api/v1/auths/signin",
                            {"email": email, "password": password + "-not"})
    assert status == 400
    status, refused = _open_webui(platform, webui, "POST", "/api/v1/auths/signup",
                                  {"email": "someone@4lb.ca", "password": "a-password", "name": "Someone"})
    assert status == 403, (status, refused)
    # the start script ran once per start: the admin was created, not changed
    log = platform.engine.logs(webui.name)
    assert f"fourlb: created the admin {email}" in log, log[-2000:]


def test_open_webui_lists_the_models_of_the_hosts_ollama_and_chats(platform: Platform, real,
                                                                    host_ollama: OllamaStandIn) -> None:
    webui = real["open-webui"]
    email, password = _open_webui_admin(webui)
    _, signed_in = _open_webui(platform, webui, "POST", "/api/v1/auths/signin",
                               {"email": email, "password": password})
    token = signed_in["token"]
    status, models = _open_webui(platform, webui, "GET", "/api/models", token=token)
    assert status == 200 and MODEL in [m["id"] for m in models["data"]], models
    status, answer = _open_webui(platform, webui, "POST", "/api/chat/completions", {
        "model": MODEL, "stream": False, "messages": [{"role": "user", "content": "Hello"}]}, token=token)
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"] == ANSWER
    assert ("POST", "/api/chat") in host_ollama.requests


# --- chromadb ------------------------------------------------------------------

def test_chromadb_keeps_and_finds_vectors_where_the_ai_backend_looks(platform: Platform, real,
                                                                      stacks: dict[str, Declared]) -> None:
    chroma = real["chromadb"]
    backend = stacks["prod"].container("ai-orchestrator-backend")
    assert (backend.env("CHROMA_HOST"), int(backend.env("CHROMA_PORT"))) == ("chromadb", chroma.port)
    address = platform.address(chroma.name, "data-net")
    base = f"http://{address}:{chroma.port}/api/v2/tenants/default_tenant/databases/default_database"

    def call(method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(base + path, method=method, headers={"Content-Type": "application/json"},
                                         data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (container address)
            return json.loads(answer.read() or b"null")

    # explicit embeddings: no embedding model is loaded
    collection = call("POST", "/collections", {"name": "e2e-vectors", "get_or_create": True})
    call("POST", f"/collections/{collection['id']}/add", {
        "ids": ["a", "b"], "embeddings": [[1.0, 0.0], [0.0, 1.0]], "documents": ["apple", "banana"]})
    found = call("POST", f"/collections/{collection['id']}/query",
                 {"query_embeddings": [[0.9, 0.1]], "n_results": 1, "include": ["documents"]})
    assert found["documents"] == [["apple"]]
    (data,) = [v for v in chroma.volumes if v["containerPath"] == "/chroma/chroma"]
    mountpoint = platform.engine.request("GET", f"/volumes/{data['volumeName']}")["Mountpoint"]
    assert (Path(mountpoint) / "chroma.sqlite3").exists(), "the vectors are not in the volume"


# --- code-server ---------------------------------------------------------------

def test_code_server_asks_for_the_generated_password(platform: Platform, real) -> None:
    editor = real["code-server"]
    address = platform.address(editor.name, editor.networks[0][0])
    password = editor.upload("/run/secrets/code-server-password").content
    opener = urllib.request.build_opener(_NoRedirect)

    def login(attempt: str) -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://{address}:{editor.port}/login", method="POST",
            data=urllib.parse.urlencode({"password": attempt}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, answer.headers.get("Set-Cookie") or ""
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers.get("Set-Cookie") or ""

    wrong_status, wrong_cookie = login(password + "-not")
    assert "code-server-session" not in wrong_cookie, wrong_status
    status, cookie = login(password)
    assert status == 302 and "code-server-session=" in cookie, (status, cookie)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the login's 302 is the answer under test
        return None
