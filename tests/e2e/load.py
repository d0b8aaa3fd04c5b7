"""Requests to one hostname in a loop, bounded in count and time: the load that
updates run under."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from core.model import Container

from .declared import DeclaredContainer
from .harness import Edge
from .platform import Platform

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


def start_first_update(platform: Platform, edge: Edge, host: str, old: DeclaredContainer,
                       new: DeclaredContainer, planned: Container) -> tuple[Load, float]:
    """Replaces `old` by `new` the way `pulumi up` replaces a start-first container
    (components/service.py: a new name, `delete_before_replace=False`, `wait=True`,
    a settle command that depends on the container), under load on `host`: create
    and start the new one, wait until Docker reports it healthy, let the settle time
    pass, then delete the old one as pulumi-docker deletes a container: SIGTERM, and
    SIGKILL after the declared grace (`destroy_grace_seconds`). The stand-in drains
    on SIGTERM as a web server's graceful stop does. No proxy can save a request
    already sent to a process that is killed: Traefik's retry middleware stops
    retrying once the request was written to the server. Returns the load and when
    it started."""
    load = Load(edge, host)
    worker = threading.Thread(target=load.run, daemon=True)
    started = time.monotonic()
    worker.start()
    try:
        edge.wait_for(f"{host} answered by {old.name}", lambda: load.answered_by(old.name) >= 20, 15)
        platform.run(new)  # pulumi: create the replacement first...
        platform.wait_healthy([new], HEALTHY_WITHIN_S)  # ...wait=True: until Docker says healthy...
        load.events.append((time.monotonic(), "new healthy"))
        time.sleep(planned.settle_s)  # ...the settle command...
        platform.engine.stop(old.name, timeout_s=planned.stop_grace_s)  # ...then delete the old one
        load.events.append((time.monotonic(), "old stopped"))
        platform.engine.remove_container(old.name)
        load.events.append((time.monotonic(), "old removed"))
        edge.wait_for(f"{host} answered by {new.name}", lambda: load.answered_by(new.name) >= 20, 15)
        time.sleep(AFTER_SWITCH_S)
    finally:
        load.stop.set()
        worker.join(timeout=10)
    return load, started
