"""The swarm lab itself: three ready nodes with their roles, an overlay network that
carries requests between tasks on different nodes (found by swarm DNS, endpoint mode
dnsrr), and a port published in host mode on the edge node, reached from the client."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

import pytest

from tests.e2e.standin import LISTEN_FILE

from .lab import ROLE_LABEL, Lab, Node, run
from .tasks import running_tasks

PORT = 8080
NETWORK = "lab-smoke-net"
LISTEN_CONFIG = "lab-smoke-listen"
BACKEND = "lab-smoke-backend"  # on the data and ai nodes, one task each
FRONT = "lab-smoke-front"      # on the edge node, its port published there
CONVERGED_WITHIN_S = 30
REMOVED_WITHIN_S = 30
REACHED_WITHIN_S = 10


def test_three_ready_nodes_carry_their_roles(lab: Lab) -> None:
    seen = {node["Description"]["Hostname"]: (node["Status"]["State"], node["Spec"]["Role"],
                                              node["Spec"]["Labels"].get(ROLE_LABEL))
            for node in lab.manager.api("GET", "/nodes")}
    assert seen == {
        "fourlb-edge": ("ready", "manager", "edge"),
        "fourlb-data": ("ready", "worker", "data"),
        "fourlb-ai": ("ready", "worker", "ai"),
    }
    print(f"\nlab timings (s): {lab.timings}")


def service_containers(node: Node, service: str) -> list[dict[str, Any]]:
    return node.api("GET", "/containers/json", query={
        "all": 1, "filters": {"label": [f"com.docker.swarm.service.name={service}"]}})


def task_name(service: str, task: dict[str, Any]) -> str:
    """What the stand-in answers: `{{.Task.Name}}` in its listen file, the task's container name."""
    return f"{service}.{task['Slot']}.{task['ID']}"


def overlay_address(task: dict[str, Any], network: str) -> str:
    for attachment in task["NetworksAttachments"]:
        if attachment["Network"]["Spec"]["Name"] == network:
            return attachment["Addresses"][0].split("/")[0]
    raise AssertionError(f"task {task['ID']} is not on {network}: {task['NetworksAttachments']}")


@pytest.fixture(scope="module")
def smoke_services(lab: Lab, standin_image: str) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Both services, converged: their running tasks by service. Removed afterwards."""
    manager = lab.manager
    started = time.monotonic()
    # a template config: each task reads its own name from the one config
    manager.docker("config", "create", "--template-driver=golang", LISTEN_CONFIG, "-",
                   input=f"{PORT} {{{{.Task.Name}}}}\n")
    manager.docker("network", "create", "--driver=overlay", NETWORK)
    common = ["service", "create", "--detach", "--no-resolve-image", "--init", "--endpoint-mode=dnsrr",
              f"--network={NETWORK}", f"--config=source={LISTEN_CONFIG},target={LISTEN_FILE},mode=0444"]
    manager.docker(*common, f"--name={BACKEND}", "--replicas=2", "--replicas-max-per-node=1",
                   f"--constraint=node.labels.{ROLE_LABEL}!=edge", standin_image)
    manager.docker(*common, f"--name={FRONT}", "--replicas=1", f"--constraint=node.labels.{ROLE_LABEL}==edge",
                   f"--publish=published={PORT},target={PORT},mode=host", standin_image)
    expected = {BACKEND: 2, FRONT: 1}
    tasks = lab.wait_for(f"{BACKEND} and {FRONT} to converge", lambda: _converged(lab, expected),
                         CONVERGED_WITHIN_S)
    print(f"\nservices converged in {time.monotonic() - started:.2f}s (config, network and both services)")
    try:
        yield tasks
    finally:
        manager.docker("service", "rm", BACKEND, FRONT)
        lab.wait_for("the smoke services' containers to be removed",
                     lambda: not any(service_containers(node, service) for node in lab.nodes
                                     for service in (BACKEND, FRONT)), REMOVED_WITHIN_S)
        manager.docker("config", "rm", LISTEN_CONFIG)
        lab.wait_for(f"{NETWORK} to be removable",
                     lambda: manager.docker("network", "rm", NETWORK, check=False).returncode == 0,
                     REMOVED_WITHIN_S)


def _converged(lab: Lab, expected: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    tasks = {service: running_tasks(lab, service) for service in expected}
    done = all(len(tasks[service]) == count for service, count in expected.items())
    return tasks if done else {}


def test_overlay_carries_requests_between_nodes(lab: Lab, smoke_services: dict[str, list[dict[str, Any]]]) -> None:
    backends = smoke_services[BACKEND]
    assert {task["NodeID"] for task in backends} == {lab.node("data").swarm_id, lab.node("ai").swarm_id}
    edge = lab.node("edge")
    front = [container["Id"] for container in service_containers(edge, FRONT)]
    assert len(front) == 1, f"{FRONT} containers on {edge.name}: {front}"

    addresses = {overlay_address(task, NETWORK): task_name(BACKEND, task) for task in backends}
    def resolved() -> set[str]:
        looked_up = edge.docker("exec", front[0], "nslookup", BACKEND).stdout
        return set(re.findall(r"Address:\s*([\d.]+)$", looked_up, re.MULTILINE)) - {"127.0.0.11"}
    # dnsrr: the service name resolves to every task's own address (no VIP), once
    # the node's resolver has learnt of each task (gossip: within a second or two)
    lab.wait_for(f"{BACKEND} resolving to {sorted(addresses)}", lambda: resolved() == set(addresses), 15, 0.5)
    for address, name in addresses.items():
        answer = edge.docker("exec", front[0], "wget", "-q", "-O", "-", f"http://{address}:{PORT}/")
        assert answer.stdout.strip() == name, f"{address} on {NETWORK}"


def test_host_mode_port_answers_the_client(lab: Lab, smoke_services: dict[str, list[dict[str, Any]]]) -> None:
    front = smoke_services[FRONT][0]
    edge = lab.node("edge")
    assert front["NodeID"] == edge.swarm_id
    url = f"http://{edge.address}:{PORT}/"
    reply = lab.wait_for(f"{url} to answer the client", lambda: lab.client_get(url), REACHED_WITHIN_S)
    assert (reply.status, reply.body.strip()) == (200, task_name(FRONT, front))


PULLED = "lab-pull"
PULLED_IMAGES = {"fourlb-lab/pulled:1": "data", "ghcr.io/fourlb-lab/pulled:1": "ai"}


def test_nodes_pull_images_from_the_lab_registry(lab: Lab, standin_image: str,
                                                smoke_services: dict[str, list[dict[str, Any]]]) -> None:
    """An image the nodes do not have, pushed under a Docker Hub name and a ghcr.io
    name, runs on a worker: each node pulled it from the lab registry by that name."""
    pushed = {}
    try:
        for image in PULLED_IMAGES:
            run(["docker", "tag", standin_image, image])
            pushed[image] = lab.push_image(image)
    finally:
        run(["docker", "rmi", *PULLED_IMAGES], check=False)
    for node in lab.nodes:
        assert not any(set(i.get("RepoTags") or []) & set(PULLED_IMAGES) for i in node.api("GET", "/images/json")), node
    services = []
    try:
        for index, (image, role) in enumerate(PULLED_IMAGES.items()):
            name = f"{PULLED}-{index}"
            services.append(name)
            # the stand-in serving, as the smoke services do (its listen file their config)
            lab.manager.docker("service", "create", "--detach", "--init", "--name", name,
                               f"--config=source={LISTEN_CONFIG},target={LISTEN_FILE},mode=0444",
                               f"--constraint=node.labels.{ROLE_LABEL}=={role}", image)
        for name, (image, role) in zip(services, PULLED_IMAGES.items()):
            task = lab.wait_for(f"{name} running", lambda: running_tasks(lab, name), CONVERGED_WITHIN_S, 0.5)[0]
            assert task["NodeID"] == lab.node(role).swarm_id
            # the manager resolved the tag to the digest the registry holds, and the node pulled that
            assert task["Spec"]["ContainerSpec"]["Image"].endswith("@" + pushed[image]), task["Spec"]
    finally:
        for name in services:
            lab.manager.docker("service", "rm", name, check=False)
