"""`pulumi up -s local` by the real engine, then the everyday changes, one by one.

One deployment for the module; the tests run in order, each on what the one
before left. For every change: what `python -m plan diff` predicts for each
container, network and volume must be what `pulumi preview --diff --json` says
the engine will do (the first disagreement fails), the change must reach the
running containers, and a preview right after `up` must plan nothing (no drift).

What differs from a user's `bin/up-local` is listed in tests/engine/images.py:
the images (nothing can be pulled here) and the two images the program would
build (the edge's needs GitHub) named by the stack setting
`fourlb:services.<service>.image`.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from tests.e2e.client import https_get
from tests.e2e.engine import Engine
from tests.e2e.polling import poll
from tests.e2e.probe_ports import from_network_namespace

from components.service import REPLACED_ON_CHANGE
from core.backup import CONFIG_FILE as BACKUP_CONFIG
from core.bouncer_key import CROWDSEC_KEY_FILE, DIGEST_HEX, RETIRE_POLL_S
from core.catalog import CROWDSEC_NET, DOCKER_API_NET, TRAEFIK_OPS_PORT, scrape_net

from . import images, report
from .compare import CONTAINER, counts, disagreements, engine_changes, plan_diff_changes
from .platform import HTTPS_PORT, Load, answered, clear, get, is_instance_of, platform_names
from .stack import PROJECT_DIR, UP_TIMEOUT_S, EngineStack

ROUTES_WITHIN_S = 120
# the new Traefik's first stream call, then the retiring loop's next poll
KEY_RETIRED_WITHIN_S = 20 + 3 * RETIRE_POLL_S
WRITTEN_WITHIN_S = 30  # a writer installs its files within seconds of starting; Traefik watches
ADMIN_HOSTS = ("traefik.localhost", "prometheus.localhost")


@dataclass
class Deployed:
    stack: EngineStack
    docker: Engine
    prepared: Any
    up_seconds: float

    def routes(self) -> list[dict[str, Any]]:
        return self.stack.plan_document()["routes"]

    def admin_login(self) -> tuple[str, str]:
        user = self.stack.settings.get("adminUser", "admin")
        return user, self.stack.outputs()["adminPassword"]

    def inspect(self, name: str) -> dict[str, Any]:
        """The running container of the plan's container `name` (a start-first one
        carries a suffix)."""
        for container in self.docker.request("GET", "/containers/json"):
            names = [n.lstrip("/") for n in container["Names"]]
            if any(is_instance_of(n, name) for n in names):
                return self.docker.inspect(container["Id"])
        raise AssertionError(f"no running container {name}")


def every_route_answers(deployed: Deployed) -> None:
    login = deployed.admin_login()
    failing = []
    for route in deployed.routes():
        auth = login if route["hostname"] in ADMIN_HOSTS else None
        try:
            response = get(route, auth)
            if not answered(response):
                failing.append(f"{route['hostname']}{route.get('path_prefix') or ''}: HTTP {response.status}")
        except OSError as error:
            failing.append(f"{route['hostname']}: {error}")
    assert not failing, "routes not answering through the program's Traefik: " + "; ".join(failing)


@pytest.fixture(scope="module")
def deployed(pulumi_cli: Path, docker: Engine, run_lock: None,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    workdir = tmp_path_factory.mktemp("engine-local")
    stack = EngineStack.create(pulumi_cli, "local", workdir, services={
        service: {"image": image} for service, image in images.stack_image_settings().items()})
    document = stack.plan_document()
    clear(docker, document)
    prepared = images.prepare(docker, document)
    try:
        seconds = stack.up()
        result = Deployed(stack, docker, prepared, seconds)
        poll("every route answering", lambda: every_route_answers(result) or True, ROUTES_WITHIN_S,
             interval_s=2)
        yield result
    finally:
        stack.run("destroy", "--yes", "--skip-preview", "--exclude-protected", check=False,
                  timeout=900)
        clear(docker, document)


def no_change_planned(stack: EngineStack) -> None:
    changed = [f"{step['op']} {step['urn'].split('::')[-1]}: {step.get('diffReasons')}"
               for step in stack.preview() if step["op"] != "same"]
    assert not changed, "a preview right after `up` plans changes (drift):\n" + "\n".join(changed)


def test_pulumi_up_deploys_the_whole_local_stack(deployed: Deployed) -> None:
    resources = deployed.stack.resources()
    containers = deployed.stack.plan_document()["containers"]
    for name, container in containers.items():
        state = deployed.inspect(name)["State"]
        assert state["Running"], f"{name} is not running: {state}"
        if container.get("healthcheck"):
            assert state["Health"]["Status"] == "healthy", f"{name}: {state['Health']}"
    report.say(f"real engine: pulumi up -s local: {len(resources)} resources in "
               f"{deployed.up_seconds:.0f} s; every route answers")
    report.say(f"real programs: {', '.join(deployed.prepared.real_programs())}")


def test_a_preview_right_after_up_plans_no_change(deployed: Deployed) -> None:
    no_change_planned(deployed.stack)


def answered_from(deployed: Deployed, container: str, targets: list[str]) -> dict[str, bool]:
    """TCP connections to `address:port` targets from inside `container`'s
    network namespace (tests/e2e/probe_ports.py), whatever its image holds."""
    return from_network_namespace(deployed.inspect(container)["State"]["Pid"], targets)


def test_traefiks_ping_and_metrics_answer_prometheus_alone(deployed: Deployed) -> None:
    traefik = deployed.inspect("traefik")["NetworkSettings"]["Networks"]
    scrape = f"{traefik[scrape_net('traefik')]['IPAddress']}:{TRAEFIK_OPS_PORT}"
    elsewhere = {network: f"{settings['IPAddress']}:{TRAEFIK_OPS_PORT}"
                 for network, settings in traefik.items() if network != scrape_net("traefik")}
    site = "jsr-solutions-prod"
    site_networks = set(deployed.inspect(site)["NetworkSettings"]["Networks"])
    assert answered_from(deployed, "prometheus", [scrape]) == {scrape: True}
    from_site = answered_from(deployed, site, [a for n, a in elsewhere.items() if n in site_networks])
    assert from_site and not any(from_site.values()), from_site
    poll("Prometheus scraping Traefik's metrics", lambda: {
        t["labels"]["job"]: t["health"] for t in prometheus_api(deployed, "targets")["activeTargets"]
    }.get("traefik") == "up", 90, interval_s=2)
    report.say(f"engine: Traefik's ping and metrics: Prometheus scrapes them; a site reaches "
               f"neither ({len(from_site)} network(s) shared with Traefik)")


def test_the_socket_proxy_answers_its_clients_reads_and_refuses_the_rest(deployed: Deployed) -> None:
    """The real proxy program (contracts.SOCKET_PROXY) with the program's
    configuration, in front of the real Docker socket: Traefik routes through it
    (every route answered above), the reads of cAdvisor pass, and nothing reads
    inside a container."""
    proxy = deployed.inspect("docker-socket-proxy")
    address = proxy["NetworkSettings"]["Networks"][DOCKER_API_NET]["IPAddress"]
    postgres = deployed.inspect("postgres")["Id"]

    def status(method: str, path: str) -> int:
        connection = http.client.HTTPConnection(address, 2375, timeout=10)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()
    reads = [("HEAD", "/_ping"), ("GET", "/v1.41/version"), ("GET", "/v1.41/info"),
             ("GET", "/v1.41/containers/json"), ("GET", f"/v1.41/containers/{postgres}/json"),
             ("GET", "/v1.41/events?since=1&until=2")]
    refused = [("GET", f"/v1.41/containers/{postgres}/archive?path=/run/secrets/postgres-password"),
               ("GET", f"/v1.41/containers/{postgres}/export"),
               ("GET", f"/v1.41/containers/{postgres}/logs?stdout=1"),
               ("POST", f"/v1.41/containers/{postgres}/exec"), ("GET", "/v1.41/images/json")]
    assert {r: status(*r) for r in reads} == {r: 200 for r in reads}
    assert {r: status(*r) for r in refused} == {r: 403 for r in refused}
    report.say(f"engine: the socket proxy: {len(reads)} reads of Traefik and cAdvisor answered; "
               f"a secret file's archive, an export, logs, exec and images refused (403)")


@dataclass(frozen=True)
class Outcome:
    changes: dict[str, dict[str, str]]  # what the engine did (compare.engine_changes)
    requests: int
    failures: list[str]
    load: Load
    up_seconds: float  # `pulumi up`, from its start to the old containers gone

    @property
    def containers(self) -> dict[str, str]:
        return self.changes["containers"]


def change(deployed: Deployed, what: str, load_host: str = "jsr-solutions.localhost",
           secrets: dict[str, str] | None = None, settled: Optional[Callable[[], bool]] = None,
           **settings: Any) -> Outcome:
    """Applies a change of settings (and secrets): plan diff's verdict must equal
    the engine's preview; then `pulumi up` under load on `load_host` (kept on
    until `settled` holds, when given), and no drift."""
    stack = deployed.stack
    before = stack.plan_document()
    stack.change(**settings)
    for key, value in (secrets or {}).items():
        stack.set_secret(key, value)
    predicted = plan_diff_changes(before, stack.plan_document())
    done = engine_changes(stack.preview())
    wrong = disagreements(predicted, done)
    assert not wrong, f"{what}: plan diff and the engine disagree:\n" + "\n".join(wrong)
    route = next(r for r in deployed.routes() if r["hostname"] == load_host)
    with Load(route) as load:
        poll(f"{load_host} answering before the change", lambda: len(load.statuses) >= 10, 30)
        up_seconds = stack.up()
        if settled:
            poll(f"{what}: settled", settled, ROUTES_WITHIN_S)
    no_change_planned(stack)
    return Outcome(done, len(load.statuses), load.failures, load, up_seconds)


def traefik_api(deployed: Deployed, path: str) -> Any:
    """Traefik's own API, through the dashboard's route with the admin login."""
    response = https_get(HTTPS_PORT, "traefik.localhost", "/api/" + path, auth=deployed.admin_login())
    assert response.status == 200, f"/api/{path}: HTTP {response.status}"
    return json.loads(response.body)


def assert_rate_limit(deployed: Deployed, per_minute: int) -> None:
    poll(f"Traefik serving a rate limit of {per_minute}/min",
         lambda: traefik_api(deployed, "http/middlewares/ratelimit-default@file")
         ["rateLimit"]["average"] == per_minute, WRITTEN_WITHIN_S)


def say_change(what: str, outcome: Outcome, effect: str) -> None:
    replaced, updated = counts(outcome.changes)
    report.say(f"engine: {what}: plan diff = preview ({replaced} replaced, {updated} updated); "
               f"{effect}; {len(outcome.failures)} failed of {outcome.requests}")


def test_a_rate_limit(deployed: Deployed) -> None:
    traefik = deployed.inspect("traefik")["Id"]
    outcome = change(deployed, "a rate limit", rateLimits={"defaultPerMinute": 300})
    # only the writer of Traefik's files is replaced; Traefik re-reads its directory
    assert outcome.containers == {"traefik-config": "replaced"}, outcome
    assert deployed.inspect("traefik")["Id"] == traefik and not outcome.failures, outcome
    # the writer became healthy once Traefik's API listed its marker (core/live_config.py)
    writer_log = deployed.docker.logs(deployed.inspect("traefik-config")["Id"])
    assert "loaded by the service: fourlb-loaded-" in writer_log, writer_log
    assert_rate_limit(deployed, 300)
    say_change("a rate limit", outcome, "the new limit served by the same Traefik")


def test_a_memory_limit_raised_past_twice_its_first_value(deployed: Deployed) -> None:
    first = deployed.inspect("grafana")["HostConfig"]["Memory"]
    raised_mb = 3 * first // (1024 * 1024)
    outcome = change(deployed, "a memory limit raised 3x", services={"grafana": {"memoryMb": raised_mb}})
    host = deployed.inspect("grafana")["HostConfig"]
    assert host["Memory"] == raised_mb * 1024 * 1024, host["Memory"]
    assert outcome.containers == {"grafana": "updated"} and not outcome.failures, outcome
    say_change("a memory limit raised 3x", outcome, f"grafana's limit {host['Memory'] // 2**20} MiB, in place")


# Inputs of a container the Docker provider changes without a replacement, and what
# the program means by them (core.traefik.NOT_REPLACING_FIELDS): memory_mb is memory
# and memory_swap, stop_grace_s destroy_grace_seconds; wait and wait_timeout are the
# provider's own (how long `up` waits for health), never sent to Docker.
UPDATED_IN_PLACE = {"memory", "memory_swap", "restart", "destroy_grace_seconds", "wait", "wait_timeout"}


def tf_name(pulumi_name: str, schema: dict[str, Any]) -> str:
    """The provider's attribute for an input: snake case, and the bridge names a list
    attribute in the plural (env -> envs, upload -> uploads)."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", pulumi_name).lower()
    if name not in schema and name.endswith("s") and name[:-1] in schema:
        return name[:-1]
    assert name in schema, f"{pulumi_name}: no attribute {name} in the provider's schema"
    return name


def forces_replacement(attribute: dict[str, Any]) -> bool:
    """ForceNew, and for a block, every attribute inside too: the provider's SDK
    forces a replacement for a block's ForceNew only when the block is added or
    removed, not when a value inside it changes."""
    inner = (attribute.get("element") or {}).get("resource") or {}
    return bool(attribute.get("forceNew")) and all(forces_replacement(a) for a in inner.values())


def test_what_the_provider_does_not_replace_a_container_for_is_known(deployed: Deployed) -> None:
    """The docker plugin's own schema (-get-provider-info): every input the program
    gives a container forces a replacement, is one of REPLACED_ON_CHANGE (replaced by
    the program's own choice), or is updated in place as UPDATED_IN_PLACE says."""
    info = json.loads(subprocess.run(
        [str(deployed.stack.cli.parent / "pulumi-resource-docker"), "-get-provider-info"],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    schema = info["provider"]["resources"]["docker_container"]
    given: set[str] = set()
    for resource in deployed.stack.resources():
        if resource["type"] == CONTAINER:
            inputs = resource.get("inputs", {})
            # the bridge records which inputs are the provider's defaults, not the program's
            defaults = set(inputs.get("__defaults", []))
            given |= {tf_name(key, schema) for key in inputs
                      if not key.startswith("__") and key not in defaults}
    not_forcing = {key for key in given if not forces_replacement(schema[key])}
    assert not_forcing == UPDATED_IN_PLACE | set(REPLACED_ON_CHANGE), not_forcing


def test_a_service_health_check(deployed: Deployed) -> None:
    check = ["wget", "-q", "--spider", "http://127.0.0.1:3000/api/health?after-change"]
    outcome = change(deployed, "a service's health check", services={"grafana": {"healthcheck": check}})
    assert outcome.containers == {"grafana": "replaced"}, outcome
    assert deployed.inspect("grafana")["Config"]["Healthcheck"]["Test"] == ["CMD", *check]
    say_change("a service's health check", outcome, "the new check is grafana's")


def test_the_admin_allow_list(deployed: Deployed) -> None:
    traefik = deployed.inspect("traefik")["Id"]
    # the loopback and the bridges' gateways (the published port's proxy), where the tests come from
    allowed = ["127.0.0.0/8", "172.16.0.0/12", "10.0.0.0/8", "192.168.0.0/16"]
    outcome = change(deployed, "the admin allow-list", adminAllowIps=allowed)
    assert outcome.containers == {"traefik-config": "replaced"}, outcome
    assert deployed.inspect("traefik")["Id"] == traefik and not outcome.failures
    poll("Traefik serving the new allow-list", lambda: sorted(traefik_api(
        deployed, "http/middlewares/admin-allowlist@file")["ipAllowList"]["sourceRange"]) == sorted(allowed),
         WRITTEN_WITHIN_S)
    every_route_answers(deployed)
    say_change("the admin allow-list", outcome, "served by the same Traefik, the admin routes still answer")


def prometheus_api(deployed: Deployed, path: str) -> Any:
    response = https_get(HTTPS_PORT, "prometheus.localhost", "/api/v1/" + path, auth=deployed.admin_login())
    assert response.status == 200, f"prometheus /api/v1/{path}: HTTP {response.status}"
    return json.loads(response.body)["data"]


def test_an_alert_threshold(deployed: Deployed) -> None:
    prometheus = deployed.inspect("prometheus")["Id"]
    outcome = change(deployed, "an alert threshold", alerting={"cpuPercent": 77})
    # the rule's writer, and Grafana's (its dashboard draws the threshold)
    assert outcome.containers == {"prometheus-config": "replaced", "grafana-config": "replaced"}, outcome
    assert deployed.inspect("prometheus")["Id"] == prometheus and not outcome.failures

    def rules_say_77() -> bool:
        rules = [r for g in prometheus_api(deployed, "rules")["groups"] for r in g["rules"]]
        return any("77" in r.get("query", "") for r in rules if "cpu" in r.get("name", "").lower())
    poll("Prometheus evaluating the new CPU threshold", rules_say_77, WRITTEN_WITHIN_S)
    say_change("an alert threshold", outcome, "Prometheus reloaded the rule, not restarted")


def test_a_client_site_added_then_removed(deployed: Deployed) -> None:
    traefik = deployed.inspect("traefik")["Id"]
    images.add_standin(deployed.docker, "fourlb-e2e-shop:1", "shop", 80)
    site = {"image": "fourlb-e2e-shop:1", "hostnames": ["shop.localhost"]}
    added = change(deployed, "a client site added", sites={"shop": site})
    # Prometheus's writer too: the new site's probe
    assert added.containers == {"shop": "added", "traefik": "updated",
                                "prometheus-config": "replaced"}, added
    assert deployed.inspect("traefik")["Id"] == traefik and not added.failures
    shop = next(r for r in deployed.routes() if r["hostname"] == "shop.localhost")
    poll("shop.localhost answered by its container",
         lambda: get(shop).status == 200 and get(shop).text.strip() == "shop", ROUTES_WITHIN_S)
    say_change("a client site added", added, "served at once, Traefik connected while it ran")

    removed = change(deployed, "a client site removed", sites={"shop": None})
    assert removed.containers == {"shop": "removed", "traefik": "updated",
                                  "prometheus-config": "replaced"}, removed
    assert deployed.inspect("traefik")["Id"] == traefik and not removed.failures
    networks = deployed.inspect("traefik")["NetworkSettings"]["Networks"]
    assert "edge-shop" not in networks, sorted(networks)
    say_change("a client site removed", removed, "Traefik disconnected, its network gone")


def test_a_sites_image_bumped_under_load(deployed: Deployed) -> None:
    images.add_standin(deployed.docker, "fourlb-e2e-jsr:2", "jsr-solutions-prod", 80)
    old = deployed.inspect("jsr-solutions-prod")["Id"]
    outcome = change(deployed, "a site's image bumped (start-first)",
                     sites={"jsr-solutions-prod": {"image": "fourlb-e2e-jsr:2"}})
    assert outcome.containers == {"jsr-solutions-prod": "replaced"}, outcome
    new = deployed.inspect("jsr-solutions-prod")
    release = deployed.docker.request("GET", "/images/fourlb-e2e-jsr:2/json")["Id"]
    assert new["Id"] != old and new["Image"] == release
    assert not outcome.failures, f"{len(outcome.failures)} failed: {sorted(set(outcome.failures))}"
    say_change("a site's image bumped (start-first)", outcome,
               f"the new release serves; pulumi up to the old container gone: {outcome.up_seconds:.1f} s")


def waits_for(deployed: Deployed, dependent: tuple[str, str], dependency: tuple[str, str]) -> bool:
    """Whether the state says the resource `dependent` (type, name) is created
    after `dependency`."""
    resources = deployed.stack.resources()

    def urn(type_: str, name: str) -> dict[str, Any]:
        return next(r for r in resources if r["type"] == type_ and r["urn"].endswith("::" + name))
    return urn(*dependency)["urn"] in urn(*dependent).get("dependencies", [])


def test_cadvisor_starts_once_the_socket_proxy_answers(deployed: Deployed) -> None:
    # it registers its Docker connection once, at start (core/catalog.py)
    assert waits_for(deployed, (CONTAINER, "cadvisor"), (CONTAINER, "docker-socket-proxy"))


def test_a_sites_egress_flipped_under_load(deployed: Deployed) -> None:
    site = "jsr-solutions-prod"
    traefik = deployed.inspect("traefik")["Id"]
    old = deployed.inspect(site)["Id"]
    outcome = change(deployed, "a site's egress flipped", sites={site: {"egress": True}})
    # Docker cannot flip a network's `internal` flag: a network of another name
    # is made, the site moves to it (start-first), the old one goes once empty
    assert outcome.changes["networks"] == {f"edge-{site}": "removed", f"edge-{site}-out": "added"}, outcome
    assert outcome.containers == {site: "replaced", "traefik": "updated"}, outcome
    assert deployed.inspect("traefik")["Id"] == traefik
    assert not outcome.failures, f"{len(outcome.failures)} failed: {sorted(set(outcome.failures))}"
    moved = deployed.inspect(site)
    assert moved["Id"] != old and list(moved["NetworkSettings"]["Networks"]) == [f"edge-{site}-out"]
    network = deployed.docker.request("GET", f"/networks/edge-{site}-out")
    assert network["Internal"] is False
    assert f"edge-{site}" not in deployed.inspect("traefik")["NetworkSettings"]["Networks"]
    assert not [n for n in deployed.docker.request("GET", "/networks") if n["Name"] == f"edge-{site}"]
    # the site is routed only once Traefik is on its new network
    assert waits_for(deployed, (CONTAINER, site), ("command:local:Command", f"traefik-on-edge-{site}-out"))
    say_change("a site's egress flipped", outcome, "moved to a network with a way out, Traefik connected first")


def test_the_admin_password(deployed: Deployed) -> None:
    traefik = deployed.inspect("traefik")["Id"]
    old = deployed.admin_login()
    outcome = change(deployed, "the admin password", secrets={"adminPassword": "a-new-admin-password-42"})
    assert outcome.containers == {"traefik-config": "replaced"}, outcome
    assert deployed.inspect("traefik")["Id"] == traefik and not outcome.failures
    user, password = deployed.admin_login()
    assert password == "a-new-admin-password-42"
    dashboard = next(r for r in deployed.routes() if r["hostname"] == "traefik.localhost")
    poll("the dashboard taking the new password and refusing the old one",
         lambda: get(dashboard, (user, password)).status < 400 and get(dashboard, old).status == 401,
         WRITTEN_WITHIN_S)
    say_change("the admin password", outcome, "the new one opens the dashboard, the old one is refused")


def backup_logs_in(deployed: Deployed, password: Optional[str] = None) -> tuple[int, str]:
    """`psql` from the backup container to PostgreSQL, as its dumps connect (its
    PGHOST, PGUSER and pgpass), or with `password` instead of its pgpass."""
    login = f"PGPASSWORD={shlex.quote(password)} PGPASSFILE=/nonexistent " if password else ""
    # the variables its scripts load (docs/runbook.md)
    code, output = deployed.docker.exec(deployed.inspect("backup")["Id"], [
        "sh", "-c", f"set -a; . {BACKUP_CONFIG}; {login}exec psql -w -d postgres -tAc 'select 1'"])
    return code, output.decode(errors="replace")


def test_the_postgresql_password(deployed: Deployed) -> None:
    assert backup_logs_in(deployed)[0] == 0, backup_logs_in(deployed)
    old = deployed.docker.exec(deployed.inspect("postgres")["Id"],
                               ["cat", "/run/secrets/postgres-password"])[1].decode()
    outcome = change(deployed, "the PostgreSQL password",
                     secrets={"postgresPassword": "a-new-pg-password-'42"})
    # the server, and its two clients: the backend's URL, the backup's pgpass
    assert outcome.containers == {"postgres": "replaced", "ai-orchestrator-backend": "replaced",
                                  "backup": "replaced"}, outcome
    # the role took the new password at the server's start (core/passwords.py)
    code, output = backup_logs_in(deployed)
    assert code == 0 and output.strip() == "1", output
    code, output = backup_logs_in(deployed, old)
    assert code != 0 and "password authentication failed" in output, output
    say_change("the PostgreSQL password", outcome, "the role took it at start; the backup logs in "
               "with it, the old one is refused")


def lapi_status(deployed: Deployed, key: str) -> int:
    """CrowdSec's answer to a bouncer's question with `key` (200, or 403 for a key
    it does not know), from the host to its address on its network."""
    networks = deployed.inspect("crowdsec")["NetworkSettings"]["Networks"]
    address = next(n["IPAddress"] for name, n in networks.items() if name.endswith(CROWDSEC_NET))
    connection = http.client.HTTPConnection(address, 8080, timeout=5)
    try:
        connection.request("GET", "/v1/decisions?ip=192.0.2.10", headers={"X-Api-Key": key})
        return connection.getresponse().status
    finally:
        connection.close()


def traefik_bouncers(deployed: Deployed) -> list[dict[str, Any]]:
    code, output = deployed.docker.exec(deployed.inspect("crowdsec")["Id"],
                                        ["cscli", "bouncers", "list", "-o", "json"])
    assert code == 0, output
    return [b for b in json.loads(output) if "traefik" in b["name"].lower()]


def test_the_bouncer_key(deployed: Deployed) -> None:
    """A new key is a new bouncer, registered before the new Traefik starts; the
    old key keeps working until Traefik streamed with the new one, then is
    refused (core/bouncer_key.py). The test asks CrowdSec with the new key only
    once the old one is refused: any question with it counts as its first pull."""
    old = deployed.docker.exec(deployed.inspect("crowdsec")["Id"], ["cat", CROWDSEC_KEY_FILE])[1].decode()
    assert lapi_status(deployed, old) == 200
    new = "a-new-bouncer-key-0123456789"
    site = next(r for r in deployed.routes() if r["hostname"] == "jsr-solutions.localhost")
    outcome = change(deployed, "the bouncer key", secrets={"crowdsecBouncerKey": new},
                     settled=lambda: get(site).status == 200)
    assert outcome.containers == {"crowdsec": "replaced", "traefik": "replaced"}, outcome
    poll("the old bouncer key refused", lambda: lapi_status(deployed, old) == 403 or None,
         KEY_RETIRED_WITHIN_S, interval_s=2)
    (bouncer,) = traefik_bouncers(deployed)
    digest = hashlib.sha256(new.encode()).hexdigest()[:DIGEST_HEX]
    assert bouncer["name"].lower().removeprefix("key_") == f"traefik-{digest}", bouncer
    # it was Traefik that pulled with it, from its address on CrowdSec's network
    traefik = deployed.inspect("traefik")
    addresses = [n["IPAddress"] for name, n in traefik["NetworkSettings"]["Networks"].items()
                 if name.endswith(CROWDSEC_NET)]
    assert bouncer["ip_address"] in addresses, (bouncer, addresses)
    # registered before the new Traefik was created (CrowdSec 1.4's created_at
    # moves with every update of the bouncer: no witness), as the log says
    logs = deployed.docker.logs(deployed.inspect("crowdsec")["Id"], timestamps=True)
    (registered,) = [line.split(" ", 1)[0] for line in logs.splitlines()
                     if line.endswith(f"Registered bouncer for {bouncer['name']}")]
    assert parse_time(registered) <= parse_time(traefik["Created"]), (registered, traefik["Created"])
    assert lapi_status(deployed, new) == 200
    every_route_answers(deployed)
    say_change("the bouncer key", outcome,
               f"a new bouncer registered before Traefik started, which streamed with it; the old "
               f"key then refused (403); the site down {first_failure_to_last(outcome.load):.1f} s "
               f"(Traefik stop-first)")


def parse_time(text: str) -> datetime.datetime:
    """Docker's and CrowdSec's RFC 3339 times (nanoseconds cut to microseconds)."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text)


def first_failure_to_last(load: Load) -> float:
    """Seconds between the first and the last failed request (0: none failed)."""
    times = [when for when, status in load.timeline if not (status.isdigit() and int(status) < 400)]
    return times[-1] - times[0] if times else 0.0


def test_traefiks_image_bumped(deployed: Deployed) -> None:
    """Traefik is replaced stop-first (it holds the host's ports 80 and 443): the gap
    is measured on a client site, which is also reconnected to the new Traefik."""
    release = images.EDGE_TAG + "-2"
    images.another_release(deployed.docker, images.EDGE_TAG, release)
    site = next(r for r in deployed.routes() if r["hostname"] == "jsr-solutions.localhost")
    outcome = change(deployed, "Traefik's image bumped", services={"traefik": {"image": release}},
                     settled=lambda: get(site).status == 200)
    assert outcome.containers == {"traefik": "replaced"}, outcome
    say_change("Traefik's image bumped", outcome,
               f"the site down {first_failure_to_last(outcome.load):.1f} s (stop-first)")
    every_route_answers(deployed)


def test_a_container_removed_by_hand_comes_back_with_refresh(deployed: Deployed) -> None:
    stack = deployed.stack
    grafana = deployed.inspect("grafana")
    deployed.docker.request("DELETE", f"/containers/{grafana['Id']}", {"force": 1})
    # the state still has it: without --refresh the engine plans nothing
    assert all(step["op"] == "same" for step in stack.preview()), "a plain preview noticed"
    refreshed = engine_changes(stack.preview("--refresh"))
    assert refreshed["containers"] == {"grafana": "added"}, refreshed
    stack.up("--refresh")
    assert deployed.inspect("grafana")["State"]["Running"]
    no_change_planned(stack)
    report.say("engine: a container removed by hand: a plain preview plans nothing; "
               "`pulumi up --refresh` creates it again")


def test_a_host_recovered_with_one_command(deployed: Deployed) -> None:
    stack = deployed.stack
    document = stack.plan_document()
    # a new host: none of the stack's containers, networks, volumes or images; the
    # images are kept under other names, to stand for what a registry still has
    declared = sorted({c["image"] for c in document["containers"].values()})
    kept = {name: f"fourlb-e2e-registry:{index}" for index, name in enumerate(declared)}
    for name, copy in kept.items():
        images.tag(deployed.docker, name, copy)
    lost = clear(deployed.docker, document)
    for name in declared:
        deployed.docker.request("DELETE", f"/images/{name}", {"force": 1}, ok=(200, 404))
    assert not [n for n in declared
                if deployed.docker.request("GET", f"/images/{n}/json", ok=(200, 404)).get("Id")]
    # what a user's `docker pull` of the stack's images brings back
    for name, copy in kept.items():
        images.tag(deployed.docker, copy, name)
        deployed.docker.request("DELETE", f"/images/{copy}", ok=(200, 404))
    # the runbook's one command, as written (docs/runbook.md)
    started = time.monotonic()
    recovered = subprocess.run(
        [str(PROJECT_DIR / "bin" / "recover-host"), "local", "--config-file", str(stack.config_file),
         "--yes", "--skip-preview", "--non-interactive"],
        env={**stack.env(), "PULUMI": str(stack.cli)}, capture_output=True, text=True,
        timeout=UP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    assert recovered.returncode == 0, recovered.stdout[-3000:] + recovered.stderr[-3000:]
    poll("every route answering", lambda: every_route_answers(deployed) or True, ROUTES_WITHIN_S,
         interval_s=2)
    no_change_planned(stack)
    report.say(f"engine: a host recovered: {len(lost)} containers, networks and volumes and every "
               f"image gone; bin/recover-host brought the stack back in {seconds:.0f} s, every "
               "route answers")


def test_destroy_keeps_the_protected_volumes(deployed: Deployed) -> None:
    stack = deployed.stack
    _, _, volumes = platform_names(stack.plan_document())
    stack.destroy()
    left = {v["Name"] for v in deployed.docker.volumes()} & volumes
    running = [c["Names"][0] for c in deployed.docker.request("GET", "/containers/json", {"all": 1})
               if any(is_instance_of(n.lstrip("/"), name) for n in c["Names"]
                      for name in stack.plan_document()["containers"])]
    assert not running, running
    assert left == volumes, f"volumes gone: {sorted(volumes - left)}"
    report.say(f"engine: pulumi destroy --exclude-protected: every container gone, "
               f"the {len(left)} volumes kept")
