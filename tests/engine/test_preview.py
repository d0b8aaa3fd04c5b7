"""`pulumi preview -s local` of the committed stack file, as a user's first preview:
the engine plans the whole stack, the two images the program builds included
(edge/ and backup/, which a preview does not build)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core.edge import load_plan
from tests.e2e.engine import Engine

from . import report
from .compare import CONTAINER, NETWORK, VOLUME
from .stack import EngineStack

BUILT_IMAGE = "docker:index/image:Image"


def test_a_first_preview_of_the_local_stack_plans_every_resource(
        pulumi_cli: Path, docker: Engine, tmp_path: pytest.TempPathFactory) -> None:
    stack = EngineStack.create(pulumi_cli, "local", tmp_path)
    document = stack.plan_document()
    steps = stack.preview()
    assert {step["op"] for step in steps} == {"create"}, {step["op"] for step in steps}
    created = Counter(step["urn"].split("::")[-2].split("$")[-1] for step in steps)
    assert created[CONTAINER] == len(document["containers"])
    assert created[VOLUME] == len(document["volumes"])
    assert created[NETWORK] == sum(1 for n in document["networks"].values() if not n["external"])
    built = sorted(step["urn"].split("::")[-1] for step in steps
                   if step["urn"].split("::")[-2].endswith(BUILT_IMAGE))
    _, plan = load_plan(stack.stack, stack.project_dir)
    assert built == sorted(c.name for c in plan.containers if c.build_context), built
    report.say(f"real engine: pulumi preview -s local (the committed stack file): {len(steps)} "
               f"resources to create, {len(built)} images to build")
