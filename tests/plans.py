"""Plans of the committed stack files with some settings changed, for tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from config import parse_stack_config
from config.loading import StackFile
from core.build import build_plan
from core.model import Container, Plan

PROJECT = Path(__file__).resolve().parent.parent


def prod_plan(**settings) -> Plan:
    """prod's plan with `settings` (top-level keys) replaced; `services` is merged
    into the stack file's, which names the platform's own software."""
    values = StackFile("prod", PROJECT).values
    if "services" in settings:
        settings["services"] = {**values.get("services", {}), **settings["services"]}
    return build_plan(parse_stack_config("prod", {**values, **settings}), "prod")


def served(plan: Plan, name: str) -> Container:
    """Container `name` with every file the program delivers to it as its uploads,
    those its configuration writer installs included (core.live_config)."""
    return replace(plan.container(name), uploads=plan.files_of(name))
