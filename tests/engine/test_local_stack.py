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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.client import https_get
from tests.e2e.engine import Engine
from tests.e2e.polling import poll

from . import images, report
from .compare import counts, disagreements, engine_changes, plan_diff_changes
from .platform import HTTPS_PORT, Load, answered, clear, get, is_instance_of
from .stack import EngineStack

ROUTES_WITHIN_S = 120
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


@dataclass(frozen=True)
class Outcome:
    changes: dict[str, dict[str, str]]  # what the engine did (compare.engine_changes)
    requests: int
    failures: list[str]

    @property
    def containers(self) -> dict[str, str]:
        return self.changes["containers"]


def change(deployed: Deployed, what: str, load_host: str = "jsr-solutions.localhost",
           secrets: dict[str, str] | None = None, **settings: Any) -> Outcome:
    """Applies a change of settings (and secrets): plan diff's verdict must equal
    the engine's preview; then `pulumi up` under load on `load_host`, and no drift."""
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
        stack.up()
    no_change_planned(stack)
    return Outcome(done, len(load.statuses), load.failures)


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
