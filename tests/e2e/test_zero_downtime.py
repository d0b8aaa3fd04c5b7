"""A start-first update under load: not one request may fail.

The update is done the way `pulumi up` replaces a start-first container
(`load.start_first_update`): the old one is stopped with its declared grace. Requests run
all along, through the real Traefik, bounded in count and time.

This module runs last (see conftest): afterwards the site runs its new version.
"""

from __future__ import annotations

import json
import time

from config.loading import StackFile

from .conftest import DURATIONS, FACTS, provided_secrets
from .declared import Declared, DeclaredContainer, declared
from .harness import Edge
from .load import start_first_update
from .platform import Platform

STACK, SITE, HOST = "dev", "jsr-dev", "jsr.4lb.ca"


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

    load, started = start_first_update(platform, edge, HOST, old, new,
                                       stacks[STACK].plan.container(SITE))
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
