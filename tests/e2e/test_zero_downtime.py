"""A start-first update under load: not one request may fail.

The update is done the way `pulumi up` replaces a start-first container
(components/service.py: no fixed name, `delete_before_replace=False`,
`wait=True`, and a settle command that depends on the container): create and
start the new container, wait until Docker reports it healthy, let the settle
time pass (the replaced dependent), then delete the old one. The old one is
killed at once (stop timeout 0), the hardest case: a server that exits on
SIGTERM without draining. Requests run all along, through the real Traefik,
bounded in count and time.

This module runs last (see conftest): afterwards the site runs its new version.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from config.loading import StackFile

from .conftest import DURATIONS, FACTS, provided_secrets
from .declared import Declared, DeclaredContainer, declared
from .harness import Edge
from .platform import Platform

STACK, SITE, HOST = "dev", "jsr-dev", "jsr.4lb.ca"
MAX_REQUESTS = 5000
MAX_SECONDS = 90
HEALTHY_WITHIN_S = 60
AFTER_SWITCH_S = 3  # keep asking once the old container is gone


@dataclass
class Load:
    """Requests to one hostname in a loop, on a thread; every answer kept."""

    edge: Edge
    host: str
    answers: list[str] = field(default_factory=list)  # the container that answered, or the error
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    events: list = field(default_factory=list)  # (when, what): the timeline a failure is read against

    def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self.stop.is_set() and len(self.answers) < MAX_REQUESTS and time.monotonic() < deadline:
            try:
                response = self.edge.get(self.host, "/")
                answer = response.text.strip() if response.status == 200 else f"HTTP {response.status}"
                if response.status != 200:
                    self.failures.append(answer)
                    self.events.append((time.monotonic(), "failure " + answer))
            except OSError as error:
                answer = f"{type(error).__name__}: {error}"
                self.failures.append(answer)
                self.events.append((time.monotonic(), "failure " + answer))
            if answer not in self.answers:
                self.events.append((time.monotonic(), f"first answer: {answer}"))
            self.answers.append(answer)

    def answered_by(self, name: str) -> int:
        return sum(1 for answer in self.answers if answer == name)


def next_release(deploy) -> DeclaredContainer:
    """The site as the program declares it after a release: a new image tag."""
    sites = json.loads(json.dumps(StackFile(STACK).values["sites"]))
    sites[SITE]["image"] = sites[SITE]["image"] + "-next"
    run = deploy(STACK, overrides={"fourlb:sites": json.dumps(sites)},
                 secrets=provided_secrets(STACK) or None)
    return declared(run).container(SITE)


def test_a_start_first_update_fails_no_request(platform: Platform, stacks: dict[str, Declared],
                                               edge: Edge, deploy) -> None:
    old = stacks[STACK].container(SITE)
    new = next_release(deploy)
    assert stacks[STACK].plan.container(SITE).settle_s > 0
    assert new.name != old.name, "a start-first container needs a new name to coexist"
    assert set(new.routers()).isdisjoint(old.routers()), "routers must not be defined twice"

    load = Load(edge, HOST)
    worker = threading.Thread(target=load.run, daemon=True)
    started = time.monotonic()
    worker.start()
    try:
        edge.wait_for(f"{HOST} answered by {old.name}", lambda: load.answered_by(old.name) >= 20, 15)
        platform.run(new)  # pulumi: create the replacement first...
        platform.wait_healthy([new], HEALTHY_WITHIN_S)  # ...wait=True: until Docker says healthy...
        load.events.append((time.monotonic(), "new healthy"))
        time.sleep(stacks[STACK].plan.container(SITE).settle_s)  # ...the settle command...
        platform.engine.stop(old.name, timeout_s=0)  # ...then delete the old one
        load.events.append((time.monotonic(), "old stopped"))
        platform.engine.remove_container(old.name)
        load.events.append((time.monotonic(), "old removed"))
        edge.wait_for(f"{HOST} answered by {new.name}", lambda: load.answered_by(new.name) >= 20, 15)
        time.sleep(AFTER_SWITCH_S)
    finally:
        load.stop.set()
        worker.join(timeout=10)
    DURATIONS["zero-downtime update under load"] = time.monotonic() - started
    total = len(load.answers)
    FACTS["zero-downtime"] = (f"{len(load.failures)} failed of {total} requests "
                              f"({load.answered_by(old.name)} by the old container, "
                              f"{load.answered_by(new.name)} by the new one)")
    print(f"\nzero-downtime update: {FACTS['zero-downtime']}")
    assert total >= 100, f"only {total} requests: the load did not run"
    timeline = [f"{when - started:.3f}s {what}" for when, what in sorted(load.events)]
    print("timeline:", "; ".join(timeline))
    assert not load.failures, (f"{len(load.failures)} of {total} failed: "
                               f"{sorted(set(load.failures))[:5]}; timeline: {timeline}")
    assert load.answered_by(old.name) and load.answered_by(new.name)
    tail = load.answers[-10:]
    assert tail == [new.name] * len(tail), tail
