"""The stack configuration as the Pulumi engine hands it to the program, and the
checks on secrets that only the engine can answer (set? encrypted?)."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Optional

from pulumi.runtime.config import get_config, is_config_secret

from config import NAMESPACE, Problem, StackConfig, StackConfigError, config_keys, parse_stack_config
from core.deploy_checks import DOCKER_HOST_KEY, deploy_problems
from core.model import Plan, SecretSpec

CLOUDFLARE_TOKEN_KEY = "cloudflare:apiToken"


def read_stack_config(stack: str) -> StackConfig:
    values: dict[str, Any] = {}
    for key in config_keys():
        raw = get_config(f"{NAMESPACE}:{key}")
        if raw is not None:
            values[key] = _decode(raw)
    return parse_stack_config(stack, values)


def _decode(raw: str) -> Any:
    # objects and lists arrive as JSON text, plain strings as themselves
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def secret_problems(specs: Iterable[SecretSpec], needs_cloudflare: bool,
                    lookup: Callable[[str], Optional[str]] = get_config,
                    is_secret: Callable[[str], bool] = is_config_secret,
                    environ: Optional[dict[str, str]] = None) -> list[Problem]:
    """Secrets that are missing, or set without --secret (stored in plain text)."""
    environ = dict(os.environ) if environ is None else environ
    problems = []
    keys = [(f"{NAMESPACE}:{spec.config_key}", spec.generated, spec.purpose) for spec in specs]
    if needs_cloudflare:
        keys.append((CLOUDFLARE_TOKEN_KEY, "CLOUDFLARE_API_TOKEN" in environ,
                     "Cloudflare API token (DNS edit on the stack's zones)"))
    for key, optional, purpose in keys:
        if lookup(key) is None:
            if not optional:
                problems.append(Problem(key, None, f"required secret ({purpose}): "
                                        f"pulumi config set --secret {key}"))
        elif not is_secret(key):
            problems.append(Problem(key, "(plain text)", "allowed: an encrypted value only; "
                                    f"run pulumi config set --secret {key}"))
    return problems


def check_deployable(stack: str, config: StackConfig, plan: Plan) -> None:
    """Everything a deployment needs that planning does not, reported at once: the
    settings of core.deploy_checks and the secrets."""
    problems = deploy_problems(stack, config, get_config(DOCKER_HOST_KEY), os.environ)
    problems += secret_problems(plan.secrets, needs_cloudflare=bool(plan.dns_records))
    if problems:
        raise StackConfigError(stack, problems)
