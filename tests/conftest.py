from __future__ import annotations

from typing import Callable, Optional

import pytest

from tests.mocks import Run, run_program, stack_config


@pytest.fixture(scope="session")
def deploy() -> Callable[..., Run]:
    """The one owner of Pulumi's global mocks: runs `__main__.py` for a stack.

    Results of the unmodified stack files are cached; `overrides` (config key ->
    JSON text), `secrets`, `image_ids` (tag -> the ID the engine has for it) and
    `redraw` (RandomIds replaced) run a fresh program.
    """
    cache: dict[str, Run] = {}

    def run(stack: str, overrides: Optional[dict[str, str]] = None,
            secrets: Optional[dict[str, str]] = None, drop: tuple[str, ...] = (),
            image_ids: Optional[dict[str, str]] = None, redraw: frozenset[str] = frozenset()) -> Run:
        fresh = overrides or secrets or drop or image_ids or redraw
        if not fresh and stack in cache:
            return cache[stack]
        config, secret_keys = stack_config(stack)
        config.update(overrides or {})
        config.update(secrets or {})
        for key in drop:
            config.pop(key, None)
        keys = [k for k in secret_keys + list(secrets or {}) if k in config]
        result = run_program(stack, config, keys, image_ids, redraw)
        if not fresh:
            cache[stack] = result
        return result

    return run
