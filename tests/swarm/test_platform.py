"""The swarm stack's own services on the three-node lab, through the real
Traefik as a swarm task: every hostname's routing, a node drain under load, and
a stateful service whose node is gone. What differs from production is in
tests/swarm/changes.py. Figures are printed. The changes `pulumi up` makes (a
site's image bumped, a secret rotated, a site added) are the real engine's, in
test_engine.py."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from config.loading import StackFile
from core.edge import load_plan
from tests.e2e.engine import Engine
from tests.e2e.edge_setup import ADMIN_PASSWORD
from tests.e2e.expectations import PROBE, expected_routes
from tests.mocks import EDGE_ADDRESSES

from . import changes
from .conftest import FIGURES
from .lab import Lab
from .platform import TRAEFIK_TAG, Declared, SwarmPlatform, build_traefik_image
from .traffic import Load, edge_address, once, wait_routed
from .traffic import wanted as wanted_answer

SITE, SITE_HOST = "jsr-solutions-prod", "jsr-solutions.ca"
BACKEND, BACKEND_HOST, BACKEND_PATH = "ai-orchestrator-backend", "ai.4lb.ca", "/api" + PROBE
API_INTERVAL_S = 1.2  # under the AI API's 60 a minute
# one request on port 80, redirects not followed: its status and Location
PLAIN_HTTP = ("import http.client, sys; c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5); "
              "c.request('GET', '/', headers={'Host': sys.argv[2]}); r = c.getresponse(); "
              "print(r.status, r.getheader('Location'))")


def _swarm_settings(**replicas: int) -> str:
    values = dict(StackFile("swarm").values["swarm"])
    # two backend tasks, so that a secret change rolls with one task always up
    values["replicas"] = {**values.get("replicas", {}), SITE: 2, BACKEND: 2, **replicas}
    values["edgeAddresses"] = list(EDGE_ADDRESSES)
    return json.dumps(values)


def _declare(deploy, secrets: Optional[dict[str, str]] = None, **overrides: str) -> Declared:
    return Declared.of(deploy("swarm", overrides={"fourlb:swarm": _swarm_settings(), **overrides},
                              secrets={"fourlb:adminPassword": ADMIN_PASSWORD, **(secrets or {})}))


@pytest.fixture(scope="module")
def platform(lab: Lab, standin_image: str, deploy, tmp_path_factory) -> Iterator[SwarmPlatform]:
    main = Engine()
    build_traefik_image(main, Path(sys.prefix) / "bin" / "traefik", tmp_path_factory.mktemp("traefik"))
    try:
        lab.load_image(TRAEFIK_TAG)
    finally:
        main.remove_image(TRAEFIK_TAG)
    _, plan = load_plan("swarm")
    ports = {c.name: c.port for c in plan.containers if c.name in changes.DEPLOYED
             and c.port and c.name != "traefik"}
    declared = _declare(deploy)
    started = time.monotonic()
    platform = SwarmPlatform(lab, standin_image, ports)
    platform.tag_images(declared)
    platform.create_networks(declared)
    platform.create(declared)
    platform.wait_converged(changes.DEPLOYED)
    # Traefik's own service joins its routes once its task is healthy, after the others
    for host, path, service, admin in _routes():
        wait_routed(lab, host, path, service, f"admin:{ADMIN_PASSWORD}" if admin else "")
    FIGURES["platform up"] = f"{time.monotonic() - started:.1f}s from the first service to every route answering"
    platform.declared = declared  # type: ignore[attr-defined]
    yield platform


def _routes() -> list[tuple[str, str, str, bool]]:
    """(hostname, path, service, admin) of every route of the swarm stack, as the
    one-host suite requests them."""
    return [(r.host, r.path, r.service, r.admin) for r in expected_routes(("swarm",))]


def test_every_hostname_of_the_swarm_stack_is_routed_with_its_headers_and_auth(platform: SwarmPlatform):
    lab = platform.lab
    routes = _routes()
    assert {service for _, _, service, _ in routes} <= set(changes.DEPLOYED)
    proven, wrong = [], []
    for host, path, service, admin in routes:
        auth = f"admin:{ADMIN_PASSWORD}" if admin else ""
        answer, headers = once(lab, host, path, auth)
        wanted = wanted_answer(service)
        lowered = {k.lower(): v for k, v in headers.items()}
        if not answer.startswith(wanted):
            wrong.append(f"{host}{path}: {answer}, wanted {wanted}")
        elif admin and once(lab, host, path)[0] != "HTTP 401":
            wrong.append(f"{host}{path}: answers without credentials")
        elif ("max-age=" not in lowered.get("strict-transport-security", "")
              or lowered.get("x-frame-options") not in ("DENY", "SAMEORIGIN")):
            wrong.append(f"{host}{path}: headers {headers}")
        else:
            proven.append(host + (path.removesuffix(PROBE) if path not in ("/", "/dashboard/") else ""))
    FIGURES["hostnames routed through Traefik on the swarm"] = f"{len(proven)} routes: {', '.join(proven)}"
    assert not wrong, wrong
    status, location = lab.client_run([sys.executable, "-c", PLAIN_HTTP, edge_address(lab), SITE_HOST],
                                      timeout=30).stdout.split()
    assert status in ("301", "308") and location == f"https://{SITE_HOST}/", (status, location)
    tasks = platform.running_tasks(SITE)
    assert len({t["NodeID"] for t in tasks}) == 2, "two site tasks on two nodes"


def test_draining_a_node_that_runs_a_site_task_fails_no_request(platform: SwarmPlatform):
    lab = platform.lab
    edge_id = lab.node("edge").swarm_id
    task = next(t for t in platform.running_tasks(SITE) if t["NodeID"] != edge_id)
    node = next(n for n in lab.nodes if n.swarm_id == task["NodeID"])
    started = time.monotonic()
    with Load(lab, SITE_HOST, "/") as load:
        lab.manager.docker("node", "update", "--availability", "drain", node.swarm_id)
        def moved() -> bool:
            # every task of the site, whatever its desired state: the drained one's turns
            # to shutdown at once, while its container still runs
            tasks = platform.manager.api("GET", "/tasks", query={"filters": {"service": [SITE]}})
            still_there = [t for t in tasks if t.get("NodeID") == node.swarm_id
                           and t["Status"]["State"] in ("running", "starting", "preparing")]
            elsewhere = [t for t in platform.running_tasks(SITE) if t["NodeID"] != node.swarm_id]
            return not still_there and len(elsewhere) == 2
        lab.wait_for("the site's tasks moved off the drained node", moved, 60, 0.5)
        took = time.monotonic() - started
    lab.manager.docker("node", "update", "--availability", "active", node.swarm_id)
    # what is pinned to that node waited for it (pending), and runs there again,
    # routed once Traefik has polled
    platform.wait_converged(changes.DEPLOYED)
    for host, path, service, admin in _routes():
        if service != "traefik" and not admin:
            wait_routed(lab, host, path, service)
    FIGURES[f"drain of {node.name} under load"] = f"{load.figure()}; tasks moved in {took:.1f}s"
    assert len(load.answers) >= 100 and not load.failures, (load.figure(), sorted(set(load.failures))[:5])


def test_a_stateful_service_whose_node_is_gone_is_not_started_elsewhere(platform: SwarmPlatform):
    """Runs last: the data node's daemon is stopped."""
    lab = platform.lab
    data = lab.node("data")
    [task] = platform.running_tasks("chromadb")
    assert task["NodeID"] == data.swarm_id
    data.terminate()
    data.wait_stopped()
    lab.wait_for("the manager sees the data node down", lambda: lab.manager.api(
        "GET", f"/nodes/{data.swarm_id}")["Status"]["State"] == "down", 60, 1)
    time.sleep(10)  # time enough to reschedule, if it would
    elsewhere = [t for t in platform.running_tasks("chromadb") if t["NodeID"] != data.swarm_id]
    pending = platform.manager.api("GET", "/tasks", query={"filters": {
        "service": ["chromadb"], "desired-state": ["running"]}})
    FIGURES["stateful service, its node gone"] = (
        f"chromadb running elsewhere: {len(elsewhere)}; its tasks: "
        + ", ".join(sorted(t["Status"]["State"] for t in pending)))
    assert not elsewhere
