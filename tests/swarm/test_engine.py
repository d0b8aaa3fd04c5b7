"""The swarm stack by the real Pulumi engine (bin/install-pulumi) on the three-node
lab, against its manager: `pulumi up`, then a site added, a secret rotated and a
site's image bumped; every route with its headers and auth, a node drained under
load, and a stateful service whose node is gone. For each change, what
`python -m plan diff` predicts for every service, network and volume must be what
`pulumi preview --diff --json` says the engine will do, the change must reach the tasks, and a preview right after `up`
must plan nothing. Every node pulls its images from the lab's registry. Prometheus
must measure every node, and each node's backup restore that node's volumes.

What differs from production: tests/swarm/changes.py ENGINE_SETTINGS (stack
settings) and the images (tests/engine/images.py). Figures are printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from core.backup import BACKUP, BACKUP_DIR, CRONTAB as BACKUP_CRONTAB, DATABASE, SCRIPTS_DIR, VOLUMES_DIR
from core.catalog import POSTGRES_DB
from config.loading import StackFile
from core.traefik import ADMIN_AUTH
from tests.e2e import standin
from tests.e2e.backup_run import local_run
from tests.e2e.engine import Engine
from tests.engine import images
from tests.engine.compare import counts, disagreements, engine_changes, plan_diff_changes
from tests.engine.stack import EngineStack

from . import changes
from .conftest import FIGURES
from .lab import Lab
from .tasks import exec_in, node_of, running_tasks
from .traffic import Load, edge_address, once

SITE, SITE_HOST = "jsr-solutions-prod", "jsr-solutions.ca"
NEW_SITE, NEW_SITE_HOST, NEW_SITE_IMAGE = "shop", "shop.4lb.ca", "fourlb-lab/shop:1.0.0"
BACKEND, BACKEND_HOST = "ai-orchestrator-backend", "ai.4lb.ca"
FRONTEND = "ai-orchestrator-frontend"
ROTATED_SECRET = ("aiJwtSecret", "a-rotated-jwt-signing-secret-0123456789abcdef")
API_INTERVAL_S = 1.2  # under the AI API's rate limit, 60 a minute
ROUTES_WITHIN_S = 120
MIN_ANSWERS = 50  # the load's 2 s before and 3 s after a change hold about 100
MEASURED_WITHIN_S = 150  # Prometheus scrapes every 30 s; a new task's first scrape comes after one
RESTORE_PROOF = "fourlb-restore-proof"  # the file the backup test writes into each archived volume
STATEFUL = "postgres"  # pinned to the data node, with a volume there
RESCHEDULE_S = 10  # how long a task of a node that is gone is watched not to start elsewhere
# one request on port 80, redirects not followed: its status and Location
PLAIN_HTTP = ("import http.client, sys; c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5); "
              "c.request('GET', '/', headers={'Host': sys.argv[2]}); r = c.getresponse(); "
              "print(r.status, r.getheader('Location'))")


def answers_as(service: str) -> str:
    """How a stand-in of the engine's images answers: its baked service name
    (tests/engine/images.py), the same for every task of the service."""
    return f"task {service}"


class Deployed:
    def __init__(self, lab: Lab, stack: EngineStack):
        self.lab, self.stack = lab, stack

    def release(self, make: Callable[[Engine], None], image: str) -> None:
        """An image made on the manager (`make`), pushed to the lab registry, then
        removed from the manager: the nodes pull it."""
        make(self.lab.manager.engine)
        self.lab.push_from_manager(image)
        self.lab.manager.engine.remove_image(image)

    def routed(self, host: str, service: str, path: str = "/") -> bool:
        return once(self.lab, host, path)[0] == answers_as(service)

    def wait_routed(self, host: str, service: str, path: str = "/") -> None:
        self.lab.wait_for(f"{host}{path} routed to {service}", lambda: self.routed(host, service, path),
                          ROUTES_WITHIN_S, 1)

    def compared(self, what: str, before: dict[str, Any]) -> tuple[int, int]:
        """plan diff from `before` to now = what the engine's preview plans; (replaced, updated)."""
        predicted = plan_diff_changes(before, self.stack.plan_document())
        engine = engine_changes(self.stack.preview())
        wrong = disagreements(predicted, engine)
        assert not wrong, f"{what}: plan diff and the engine disagree:\n" + "\n".join(wrong)
        assert predicted != {"containers": {}, "networks": {}, "volumes": {}}, f"{what}: nothing planned"
        return counts(engine)

    def no_drift(self, what: str) -> None:
        steps = [s for s in self.stack.preview() if s["op"] != "same"]
        assert not steps, f"after {what}, a preview still plans: " + ", ".join(
            f"{s['op']} {s['urn'].split('::')[-1]} {s.get('detailedDiff')}" for s in steps)

    def up_under(self, load: Load) -> float:
        with load:
            took = self.stack.up()
        return took

    def say(self, change: str, planned: tuple[int, int], effect: str, load: Load) -> None:
        FIGURES[f"engine (swarm): {change}"] = (
            f"plan diff = preview ({planned[0]} replaced, {planned[1]} updated); {effect}; "
            f"{len(load.failures)} failed of {len(load.answers)}")


@pytest.fixture(scope="module")
def deployed(lab: Lab, pulumi_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The images are built on the manager itself (the lab's own daemon), pushed to the
    lab registry and removed from it again: nothing of the machine's main Docker
    daemon is used, so this runs beside the one-host suites."""
    manager = lab.manager.engine
    settings = {key: value for key, (value, _why) in changes.ENGINE_SETTINGS.items()}
    settings["services"] = {**images.stack_changes()["services"], **settings["services"]}
    stack = EngineStack.create(pulumi_cli, "swarm", tmp_path_factory.mktemp("swarm-engine"),
                               docker_host=f"unix://{lab.manager.socket}", **settings)
    prepared = images.prepare(manager, stack.plan_document())
    pushed = sorted({image.declared for image in prepared.images})
    for image in pushed:
        lab.push_from_manager(image)
    # the base of the stand-ins a change builds later (a new site), pulled then
    lab.push_from_manager(standin.TAG)
    images.remove_images(manager)  # every node, the manager too, pulls what it runs
    took = stack.up()
    deployed = Deployed(lab, stack)
    for host, service in ((SITE_HOST, SITE), (BACKEND_HOST, FRONTEND)):
        deployed.wait_routed(host, service)
    deployed.wait_routed(BACKEND_HOST, BACKEND, "/api/")
    FIGURES["real engine: pulumi up -s swarm"] = (
        f"{len(stack.resources())} resources in {took:.0f} s, {len(pushed)} images pulled by the "
        "nodes from the lab registry; three routes answer")
    yield deployed
    # the lab is shared with the lab's own tests (test_lab.py): everything goes
    stack.destroy()
    left = [s["Spec"]["Name"] for s in lab.manager.api("GET", "/services")]
    assert not left, f"pulumi destroy left services: {left}"


def differing_paths(committed: Any, used: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The setting paths where `used` is not `committed` (a whole value below a path)."""
    if isinstance(committed, dict) or isinstance(used, dict):
        committed, used = committed or {}, used or {}
        if isinstance(committed, dict) and isinstance(used, dict):
            return {p for key in set(committed) | set(used)
                    for p in differing_paths(committed.get(key), used.get(key), path + (key,))}
    return set() if committed == used else {path}


def test_the_stack_differs_from_the_committed_one_only_as_listed(deployed: Deployed) -> None:
    listed = {(key,) for key in changes.ENGINE_SETTINGS if key != "services"}
    listed |= {("services", name, "enabled") for name in changes.ENGINE_OFF}
    listed |= {("services", name, "image") for name in images.stack_image_settings()}
    differing = differing_paths(StackFile("swarm").values, deployed.stack.settings)
    assert differing and all(any(p[:len(l)] == l for l in listed) for p in differing), sorted(differing)


def test_up_runs_every_task_on_an_image_its_node_pulled_by_digest(deployed: Deployed) -> None:
    manager = deployed.lab.manager
    for service in manager.api("GET", "/services"):
        image = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert "@sha256:" in image and not image.startswith("sha256:"), (service["Spec"]["Name"], image)
    for node in deployed.lab.workers:
        running = {c["Image"] for c in node.api("GET", "/containers/json")}
        # a worker has only what its tasks pulled from the registry, by digest
        pulled = {d for i in node.api("GET", "/images/json") for d in i.get("RepoDigests") or []}
        assert running and running <= pulled | {i["Id"] for i in node.api("GET", "/images/json")}, node.name
    deployed.no_drift("pulumi up")


def test_a_rotated_secret_rolls_the_backend_onto_a_new_docker_secret(deployed: Deployed) -> None:
    stack = deployed.stack
    before = stack.plan_document()
    stack.set_secret(*ROTATED_SECRET)
    planned = deployed.compared("a secret rotated", before)
    assert planned == (0, 1), planned
    secrets_before = {s["Spec"]["Name"] for s in deployed.lab.manager.api("GET", "/secrets")}
    load = Load(deployed.lab, BACKEND_HOST, "/api/", interval_s=API_INTERVAL_S, answer=answers_as(BACKEND))
    deployed.up_under(load)
    secrets_after = {s["Spec"]["Name"] for s in deployed.lab.manager.api("GET", "/secrets")}
    new, gone = secrets_after - secrets_before, secrets_before - secrets_after
    assert len(new) == 1 == len(gone) and next(iter(new)).startswith(f"{BACKEND}-"), (new, gone)
    deployed.say("a secret rotated", planned, f"{BACKEND} rolled onto {next(iter(new))}, the old one deleted last",
                 load)
    assert load.answers and not load.failures, (load.figure(), sorted(set(load.failures))[:5])
    deployed.no_drift("a secret rotated")


def test_a_site_image_bumped_rolls_its_tasks_under_load(deployed: Deployed) -> None:
    stack = deployed.stack
    source = stack.settings["sites"][SITE]["image"]
    deployed.release(lambda engine: images.another_release(engine, source, "jsr-solutions-frontend:1.0.1"),
                     "jsr-solutions-frontend:1.0.1")
    before = stack.plan_document()
    stack.change(sites={SITE: {"image": "jsr-solutions-frontend:1.0.1"}})
    planned = deployed.compared("a site's image bumped", before)
    assert planned == (0, 1), planned
    load = Load(deployed.lab, SITE_HOST, "/", answer=answers_as(SITE))
    deployed.up_under(load)
    running = deployed.lab.manager.api("GET", f"/services/{SITE}")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert running.startswith("jsr-solutions-frontend@sha256:"), running
    deployed.say("a site's image bumped", planned, "its tasks rolled start-first onto the new digest", load)
    assert len(load.answers) >= 100 and not load.failures, (load.figure(), sorted(set(load.failures))[:5])
    deployed.no_drift("a site's image bumped")


def test_a_site_added_then_removed_leaves_the_edge_alone(deployed: Deployed) -> None:
    """The new site takes one of the networks the edge joined in advance (a free
    edge slot): no service is replaced, and the other sites lose no request."""
    stack = deployed.stack
    deployed.release(lambda engine: images.add_standin(engine, NEW_SITE_IMAGE, NEW_SITE, 80), NEW_SITE_IMAGE)
    edge_before = deployed.lab.manager.api("GET", "/services/traefik")["ID"]
    added = {NEW_SITE: {"image": NEW_SITE_IMAGE, "hostnames": [NEW_SITE_HOST], "port": 80, "edgeSlot": 2}}
    for change, sites in (("a client site added", added), ("the client site removed", {NEW_SITE: None})):
        before = stack.plan_document()
        stack.change(sites=sites)
        planned = deployed.compared(change, before)
        assert planned[0] == 0, planned
        load = Load(deployed.lab, SITE_HOST, "/", answer=answers_as(SITE))
        deployed.up_under(load)
        if sites[NEW_SITE]:
            deployed.wait_routed(NEW_SITE_HOST, NEW_SITE)
        else:
            deployed.lab.wait_for(f"{NEW_SITE_HOST} no longer routed",
                                  lambda: once(deployed.lab, NEW_SITE_HOST, "/")[0] == "HTTP 404", ROUTES_WITHIN_S, 1)
        assert deployed.lab.manager.api("GET", "/services/traefik")["ID"] == edge_before, "the edge was replaced"
        deployed.say(change, planned, "the edge kept its service, its tasks and their networks", load)
        # requests before, during and after the change: `up` takes seconds when the
        # edge is left alone, so the count is what those seconds hold
        assert len(load.answers) >= MIN_ANSWERS and not load.failures, (
            load.figure(), sorted(set(load.failures))[:5])
        deployed.no_drift(change)


def test_prometheus_measures_every_node(deployed: Deployed) -> None:
    """node-exporter and cAdvisor run on every node, and Prometheus finds each of their
    tasks by DNS (tasks.<service>): one target per node, every target up, and each
    node's own name in its metrics. Asked with Prometheus's promtool, in its task."""
    lab = deployed.lab
    (task,) = running_tasks(lab, "prometheus")
    port = deployed.stack.plan_document()["containers"]["prometheus"]["port"]
    nodes = sorted(node.name for node in lab.nodes)

    def query(expression: str) -> list[dict[str, Any]]:
        return json.loads(exec_in(lab, task, ["promtool", "query", "instant", "-o", "json",
                                              f"http://127.0.0.1:{port}", expression]))

    def measured() -> Any:
        targets = query("up")
        down = [t["metric"] for t in targets if t["value"][1] != "1"]
        per_job = Counter(t["metric"]["job"] for t in targets)
        named = sorted(sample["metric"]["nodename"] for sample in query("node_uname_info"))
        if down or per_job["node-exporter"] != len(nodes) or per_job["cadvisor"] != len(nodes) or named != nodes:
            return None
        return per_job, named

    per_job, named = lab.wait_for("every node's node-exporter and cAdvisor up in Prometheus", measured,
                                  MEASURED_WITHIN_S, 3)
    FIGURES["engine (swarm): every node measured"] = (
        f"{sum(per_job.values())} targets up ({', '.join(f'{job} {n}' for job, n in sorted(per_job.items()))}); "
        f"node-exporter reports the nodes {', '.join(named)}")


def test_each_nodes_backup_restores_that_nodes_volumes(deployed: Deployed) -> None:
    """One backup per node role, on that node: every service whose volume it archives
    runs its tasks there, so the volume it reads is the one they write. A file put into
    each archived volume on the backup's node comes back from that node's run with
    restore-volume (the run as tests/e2e/changes.BACKUP_RUN_CHANGES starts it)."""
    lab = deployed.lab
    services = {s["Spec"]["Name"]: s["Spec"] for s in lab.manager.api("GET", "/services")}
    backups = sorted(name for name in deployed.stack.plan_document()["containers"]
                     if name.startswith(f"{BACKUP}-"))
    # every node of the lab holds data here: each has its backup
    assert backups == sorted(f"{BACKUP}-{node.role}" for node in lab.nodes), backups
    figures = []
    for backup in backups:
        (task,) = running_tasks(lab, backup)
        node = node_of(lab, task)
        spec = services[backup]["TaskTemplate"]["ContainerSpec"]
        archived = sorted(m["Source"] for m in spec.get("Mounts", []) if m["Target"].startswith(f"{VOLUMES_DIR}/"))
        assert archived, f"{backup} archives no volume"
        for volume in archived:
            owners = _services_mounting(services, volume, but=backup)
            assert owners, f"{backup} archives {volume}, which no service uses"
            for owner in owners:
                where = {node_of(lab, t).name for t in running_tasks(lab, owner)}
                assert where == {node.name}, f"{owner} writes {volume} on {sorted(where)}, {backup} reads it on {node.name}"
            node.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", "--volume", f"{volume}:/v",
                        spec["Image"], "-c", f"printf '%s' '{node.name} {volume}' > /v/{RESTORE_PROOF}")
        exec_in(lab, task, local_run(exec_in(lab, task, ["cat", BACKUP_CRONTAB])))
        runs = exec_in(lab, task, ["sh", "-c", f"ls -1 {BACKUP_DIR} | grep -v -e failed -e '^\\.'"]).split()
        assert len(runs) == 1, (backup, runs)
        dumps = node.name in {node_of(lab, t).name for t in running_tasks(lab, DATABASE)}
        if dumps:  # the backup beside PostgreSQL dumps its databases, over the data network
            files = exec_in(lab, task, ["ls", "-1", f"{BACKUP_DIR}/{runs[0]}"]).split()
            assert f"db-{POSTGRES_DB}.dump" in files, (backup, files)
        for volume in archived:
            archive, target = f"{BACKUP_DIR}/{runs[0]}/volume-{volume}.tar.gz", f"/tmp/restored-{runs[0]}-{volume}"
            exec_in(lab, task, [f"{SCRIPTS_DIR}/restore-volume", archive, target])
            restored = exec_in(lab, task, ["cat", f"{target}/{RESTORE_PROOF}"])
            assert restored == f"{node.name} {volume}", (backup, volume, restored)
        figures.append(f"{backup} on {node.name}: {', '.join(archived)}" + (" and the databases" if dumps else ""))
    FIGURES["engine (swarm): every node's volumes restored from its own backup"] = "; ".join(figures)


def _services_mounting(services: dict[str, Any], volume: str, but: str) -> list[str]:
    return sorted(name for name, spec in services.items() if name != but and any(
        m.get("Type") == "volume" and m["Source"] == volume
        for m in spec["TaskTemplate"]["ContainerSpec"].get("Mounts", [])))


def test_every_route_answers_with_its_headers_and_auth(deployed: Deployed) -> None:
    """Every route of the plan, through the edge node from the client namespace: answered
    by its service (a status under 400), with the headers the plan gives it; an admin
    route refuses a request without credentials. Port 80 redirects to HTTPS."""
    lab, stack = deployed.lab, deployed.stack
    login = f"{stack.settings.get('adminUser', 'admin')}:{stack.outputs()['adminPassword']}"
    running = {s["Spec"]["Name"] for s in lab.manager.api("GET", "/services")}
    routes = [r for r in stack.plan_document()["routes"] if r["container"] in running]
    proven, wrong = [], []
    for route in routes:
        host, path = route["hostname"], (route.get("path_prefix") or "") + "/"
        admin = f"{ADMIN_AUTH}@file" in route["middlewares"]
        answer, headers = once(lab, host, path, login if admin else "")
        missing = {k: v for k, v in route["headers"].items() if headers.get(k) != v}
        if answer.startswith("HTTP 4") or answer.startswith("HTTP 5") or not answer.startswith(("task ", "HTTP ")):
            wrong.append(f"{host}{path}: {answer}")
        elif missing:
            wrong.append(f"{host}{path}: headers {missing} missing or different: {headers}")
        elif admin and once(lab, host, path)[0] != "HTTP 401":
            wrong.append(f"{host}{path}: answers without credentials")
        else:
            proven.append(f"{host}{path if path != '/' else ''}")
    FIGURES["engine (swarm): every route through the edge"] = f"{len(proven)} of {len(routes)}: {', '.join(proven)}"
    assert not wrong, wrong
    site = next(r["hostname"] for r in routes if r["container"] == SITE)
    status, location = lab.client_run([sys.executable, "-c", PLAIN_HTTP, edge_address(lab), site],
                                      timeout=30).stdout.split()
    assert status in ("301", "308") and location == f"https://{site}/", (status, location)


def test_draining_a_node_that_runs_a_site_task_fails_no_request(deployed: Deployed) -> None:
    lab = deployed.lab
    edge_id = lab.node("edge").swarm_id
    tasks = running_tasks(lab, SITE)
    assert len({t["NodeID"] for t in tasks}) == 2, "two site tasks on two nodes"
    node = node_of(lab, next(t for t in tasks if t["NodeID"] != edge_id))
    started = time.monotonic()
    with Load(lab, SITE_HOST, "/", answer=answers_as(SITE)) as load:
        lab.manager.docker("node", "update", "--availability", "drain", node.swarm_id)

        def moved() -> bool:
            # every task of the site, whatever its desired state: the drained one's turns
            # to shutdown at once, while its container still runs
            every = lab.manager.api("GET", "/tasks", query={"filters": {"service": [SITE]}})
            still_there = [t for t in every if t.get("NodeID") == node.swarm_id
                           and t["Status"]["State"] in ("running", "starting", "preparing")]
            elsewhere = [t for t in running_tasks(lab, SITE) if t["NodeID"] != node.swarm_id]
            return not still_there and len(elsewhere) == 2
        lab.wait_for("the site's tasks moved off the drained node", moved, 60, 0.5)
        took = time.monotonic() - started
    lab.manager.docker("node", "update", "--availability", "active", node.swarm_id)
    # what is pinned to that node waited for it (pending) and runs there again
    pinned = [s["Spec"]["Name"] for s in lab.manager.api("GET", "/services")
              if "Replicated" in s["Spec"]["Mode"]]
    lab.wait_for("every replicated service running again", lambda: all(running_tasks(lab, n) for n in pinned),
                 ROUTES_WITHIN_S, 1)
    FIGURES[f"engine (swarm): drain of {node.name} under load"] = f"{load.figure()}; tasks moved in {took:.1f}s"
    assert len(load.answers) >= 100 and not load.failures, (load.figure(), sorted(set(load.failures))[:5])


def test_a_stateful_service_whose_node_is_gone_is_not_started_elsewhere(deployed: Deployed) -> None:
    """Runs last: the data node's daemon is stopped, then started again."""
    lab = deployed.lab
    data = lab.node("data")
    (task,) = running_tasks(lab, STATEFUL)
    assert task["NodeID"] == data.swarm_id
    data.terminate()
    data.wait_stopped()
    try:
        lab.wait_for("the manager sees the data node down", lambda: lab.manager.api(
            "GET", f"/nodes/{data.swarm_id}")["Status"]["State"] == "down", 60, 1)
        deadline = time.monotonic() + RESCHEDULE_S
        elsewhere: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not elsewhere:  # time enough to reschedule, if it would
            elsewhere = [t for t in running_tasks(lab, STATEFUL) if t["NodeID"] != data.swarm_id]
            time.sleep(1)
        wanted = lab.manager.api("GET", "/tasks", query={"filters": {"service": [STATEFUL],
                                                                     "desired-state": ["running"]}})
    finally:  # the node back, for `pulumi destroy` and the lab's next tests
        data.start()
        data.wait_ready()
        lab.wait_for("the data node back in the swarm", lambda: lab.manager.api(
            "GET", f"/nodes/{data.swarm_id}")["Status"]["State"] == "ready", 60, 1)
    FIGURES["engine (swarm): a stateful service, its node gone"] = (
        f"{STATEFUL} running elsewhere: {len(elsewhere)}; its tasks: "
        + ", ".join(sorted(t["Status"]["State"] for t in wanted)))
    assert not elsewhere
