"""The swarm stack by the real Pulumi engine (bin/install-pulumi) on the three-node
lab, against its manager: `pulumi up`, then a site added, a secret rotated and a
site's image bumped. For each change, what `python -m plan diff` predicts for every
service, network and volume must be what `pulumi preview --diff --json` says the
engine will do, the change must reach the tasks, and a preview right after `up`
must plan nothing. Every node pulls its images from the lab's registry.

What differs from production: tests/swarm/changes.py ENGINE_SETTINGS (stack
settings) and the images (tests/engine/images.py). Figures are printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.engine import Engine
from tests.e2e.run_lock import holding_run_lock
from tests.engine import images
from tests.engine.compare import counts, disagreements, engine_changes, plan_diff_changes
from tests.engine.stack import EngineStack

from . import changes
from .conftest import FIGURES
from .lab import Lab
from .traffic import Load, once, wanted

SITE, SITE_HOST = "jsr-solutions-prod", "jsr-solutions.ca"
NEW_SITE, NEW_SITE_HOST, NEW_SITE_IMAGE = "shop", "shop.4lb.ca", "fourlb-lab/shop:1.0.0"
BACKEND = "ai-orchestrator-backend"
ROUTES_WITHIN_S = 120


class Deployed:
    def __init__(self, lab: Lab, stack: EngineStack, main: Engine):
        self.lab, self.stack, self.main = lab, stack, main

    def service(self, name: str) -> dict[str, Any]:
        return self.lab.manager.api("GET", f"/services/{name}")

    def routed(self, host: str, service: str) -> bool:
        return once(self.lab, host, "/")[0].startswith(wanted(service))

    def wait_routed(self, host: str, service: str) -> None:
        self.lab.wait_for(f"{host} routed to {service}", lambda: self.routed(host, service), ROUTES_WITHIN_S, 1)

    def change(self, what: str, **settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Changes the stack's settings; (plan diff's view, the engine's view)."""
        before = self.stack.plan_document()
        self.stack.change(**settings)
        return self.compare(what, before)

    def compare(self, what: str, before: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        predicted = plan_diff_changes(before, self.stack.plan_document())
        engine = engine_changes(self.stack.preview())
        wrong = disagreements(predicted, engine)
        assert not wrong, f"{what}: plan diff and the engine disagree:\n" + "\n".join(wrong)
        return predicted, engine

    def no_drift(self, what: str) -> None:
        steps = [s for s in self.stack.preview() if s["op"] != "same"]
        assert not steps, f"after {what}, a preview still plans: " + ", ".join(
            f"{s['op']} {s['urn'].split('::')[-1]}" for s in steps)


@pytest.fixture(scope="module")
def deployed(lab: Lab, pulumi_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    main = Engine()
    try:
        main.ping()
    except OSError as error:
        pytest.skip(f"no main Docker daemon at {main.path} to build the images on ({error})")
    with holding_run_lock(main.path):
        settings = {key: value for key, (value, _why) in changes.ENGINE_SETTINGS.items()}
        settings = {**settings, "services": {**images.stack_changes()["services"], **settings["services"]}}
        stack = EngineStack.create(pulumi_cli, "swarm", tmp_path_factory.mktemp("swarm-engine"),
                                   docker_host=f"unix://{lab.manager.socket}", **settings)
        try:
            prepared = images.prepare(main, stack.plan_document())
            images.add_standin(main, NEW_SITE_IMAGE, NEW_SITE, 80)
            pushed = sorted({image.declared for image in prepared.images} | {NEW_SITE_IMAGE})
            for image in pushed:
                lab.push_image(image)
            took = stack.up()
            deployed = Deployed(lab, stack, main)
            deployed.wait_routed(SITE_HOST, SITE)
            FIGURES["real engine: pulumi up -s swarm"] = (
                f"{len(stack.resources())} resources in {took:.0f} s, {len(pushed)} images pulled "
                "from the lab registry; the site answers")
            yield deployed
        finally:
            images.remove_images(main)


def test_every_task_runs_an_image_a_node_pulled_by_its_digest(deployed: Deployed) -> None:
    for service in deployed.lab.manager.api("GET", "/services"):
        image = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert "@sha256:" in image and not image.startswith("sha256:"), (service["Spec"]["Name"], image)
    deployed.no_drift("pulumi up")
