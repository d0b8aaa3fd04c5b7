"""Replacements that change nothing in the spec: a new build under the same tag
(`pulumi up --refresh` reads the tag's new image ID) and `pulumi up --replace` of a
site's instance name. Each gets a fresh Docker name, so the replacement starts
while the old container still runs, under load, with no name conflict.

The program runs under mocks that stand for the engine: `image_ids` is the ID the
rebuilt tag resolves to, `redraw` the RandomId that `--replace` draws again.
Before this design the suffix was a digest of the spec, equal in both runs: the
test shows that creating a second container under the old name is refused.
"""

from __future__ import annotations

import pytest

from .conftest import FACTS, provided_secrets
from .declared import Declared, declared
from .engine import EngineError
from .harness import Edge
from .load import start_first_update
from .platform import Platform, create_spec

STACK, SITE, HOST = "dev", "jsr-solutions", "jsr-solutions-dev.4lb.ca"
REBUILT_ID = "sha256:" + "b" * 64

# Each step starts from the container the previous one left running; the program
# runs with everything the steps so far have changed.
STEPS = (
    ("a new build under the same tag", {"image_ids": {"jsr-solutions-frontend:dev": REBUILT_ID}}),
    ("pulumi up --replace of the instance name", {"redraw": frozenset({f"{SITE}-instance"})}),
)


def test_replacements_with_the_same_spec_start_beside_the_old_container(
        platform: Platform, stacks: dict[str, Declared], edge: Edge, deploy) -> None:
    secrets = provided_secrets(STACK) or None
    old = declared(deploy(STACK, secrets=secrets)).container(SITE)
    running = {c["Names"][0].lstrip("/") for c in platform.engine.containers(f"fourlb.service={SITE}")}
    assert running == {old.name}, "the site runs under the name the program declares"
    changed: dict = {}
    for step, change in STEPS:
        changed.update(change)
        new = declared(deploy(STACK, secrets=secrets, **changed)).container(SITE)
        # same spec: only the name differs
        assert (new.labels, new.envs, new.networks) == (old.labels, old.envs, old.networks), step
        assert new.name != old.name, step

        with pytest.raises(EngineError) as refused:  # what an unchanged name would meet
            platform.engine.create_container(old.name, create_spec(new))
        assert refused.value.status == 409, step

        load, _ = start_first_update(platform, edge, HOST, old, new,
                                     stacks[STACK].plan.container(SITE))
        total = len(load.answers)
        FACTS[f"redeploy, {step}"] = (f"{len(load.failures)} failed of {total} requests "
                                      f"({old.name} -> {new.name})")
        print(f"\n{step}: {FACTS[f'redeploy, {step}']}")
        assert total >= 100, f"{step}: only {total} requests: the load did not run"
        assert not load.failures, (step, sorted(set(load.failures))[:5])
        assert load.answered_by(old.name) and load.answered_by(new.name), step
        old = new
