"""Who reaches whom, on the real engine: from inside every container of prod
and dev (its network namespace, entered from the host, so that real programs
without a shell are probed too), a TCP connection to every other container's
port on each of its networks. The matrix of what answers must equal the one the
plans give (core.networks.reachability)."""

from __future__ import annotations

import time

from core.networks import reachability

from .changes import NOT_PROBED_TARGETS
from .conftest import FACTS
from .declared import Declared
from .harness import Edge
from .probe_ports import from_network_namespace
from .platform import Platform

PROBE_WITHIN_S = 60  # every probe of one container runs in parallel, 1 s each at most
STARTING_ROUNDS, STARTING_PAUSE_S = 4, 5  # what should answer and does not yet is asked again


def _probe(platform: Platform, container: str, targets: list[str]) -> dict[str, bool]:
    pid = platform.engine.inspect(container)["State"]["Pid"]
    assert pid, f"{container} is not running"
    return from_network_namespace(pid, targets, PROBE_WITHIN_S)


def test_what_answers_is_what_the_plans_say(platform: Platform, stacks: dict[str, Declared],
                                             edge: Edge) -> None:
    """Once the edge is up (every routed container healthy)."""
    plan_containers = [c for stack in stacks.values() for c in stack.plan.containers]
    docker_name = {c.service: c.name for stack in stacks.values() for c in stack.containers}
    expected = {cell: ok for cell, ok in reachability(plan_containers).items()
                if cell[1] not in NOT_PROBED_TARGETS}
    address = {(target, network): platform.address(docker_name[target], network)
               for (_, target, network) in expected}
    port = {c.name: c.port for c in plan_containers}

    actual: dict[tuple[str, str, str], bool] = {}
    todo = set(expected)
    for attempt in range(STARTING_ROUNDS):
        if attempt:  # a real program may still be starting (PostgreSQL's first run)
            time.sleep(STARTING_PAUSE_S)
        for source in sorted({s for (s, _, _) in todo}):
            cells = [(t, n) for (s, t, n) in todo if s == source]
            targets = [f"{address[cell]}:{port[cell[0]]}" for cell in cells]
            answered = _probe(platform, docker_name[source], targets)
            actual.update({(source, *cell): answered[target] for cell, target in zip(cells, targets)})
        todo = {cell for cell, ok in expected.items() if ok and not actual[cell]}
        if not todo:
            break

    wrong = sorted(f"{s} -> {t} on {n}: {'answers' if actual[(s, t, n)] else 'silent'}, "
                   f"planned {'answers' if ok else 'silent'}"
                   for (s, t, n), ok in expected.items() if actual[(s, t, n)] != ok)
    sources = len({s for (s, _, _) in expected})
    FACTS["reachability"] = (f"{len(expected)} probes from {sources} containers, "
                             f"{sum(expected.values())} planned to answer; {len(wrong)} differ")
    print(f"\nreachability: {FACTS['reachability']}")
    assert not wrong, "\n".join(wrong)
    assert sum(actual.values()) > 0 and not all(actual.values())
