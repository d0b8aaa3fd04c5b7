"""Turn raw stack settings into a validated `StackConfig`.

Two sources feed it: the Pulumi engine (inside `pulumi up`, see
`components.settings`) and the stack files themselves (the offline plan and the
cross-stack checks). Both end here, so both reject the same mistakes.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml
from pydantic import BaseModel, ValidationError

from .errors import MISSING, Problem, StackConfigError
from .models import StackConfig

NAMESPACE = "fourlb"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def config_keys() -> list[str]:
    """The camelCase names of the `fourlb:*` keys a stack file may set."""
    return [field.alias or name for name, field in StackConfig.model_fields.items()]


def parse_stack_config(stack: str, values: Mapping[str, Any]) -> StackConfig:
    """Validate `values` (keys without the `fourlb:` prefix)."""
    try:
        return StackConfig.model_validate(dict(values))
    except ValidationError as error:
        raise StackConfigError(stack, [_problem(values, e) for e in error.errors()]) from None


def _problem(values: Mapping[str, Any], error: Mapping[str, Any]) -> Problem:
    location = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not location and ": " in message:
        # model-level rules start their message with the key they are about
        head, message = message.split(": ", 1)
        location = head.split(".")
    if error["type"] == "extra_forbidden":
        message = "not a known setting; allowed keys here: " + _known_keys(location)
    elif error["type"] == "missing":
        message = "required"
    elif not message.startswith("allowed"):
        message = "allowed: " + message
    if location and location[-1] == "[key]":
        # a bad mapping key (a site or service name): the name is the value
        location = location[:-1]
        value: Any = location[-1]
    else:
        location = _user_location(values, location)
        value = _lookup(values, location)
    key = f"{NAMESPACE}:" + ".".join(location) if location else f"{NAMESPACE}:(stack)"
    return Problem(key=key, value=value, allowed=message)


def _known_keys(location: list[str]) -> str:
    """The keys the object holding the unknown one allows, as the user spells them."""
    model: Optional[type[BaseModel]] = StackConfig
    parts = iter(location[:-1])
    for part in parts:
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        if part not in fields:
            return "see config/models.py"
        model, members = _model_in(fields[part].annotation)
        if model is None:
            return "see config/models.py"
        if members:
            next(parts, None)  # the member's name or index
    return ", ".join(sorted(field.alias or name for name, field in model.model_fields.items()))


def _model_in(annotation: Any) -> tuple[Optional[type[BaseModel]], bool]:
    """The model a field holds, and whether it holds a mapping or list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (dict, list) and args:
        return _model_in(args[-1])[0], True
    for arg in args:  # Optional[X], Annotated[X, ...]
        model, members = _model_in(arg)
        if model is not None:
            return model, members
    return None, False


def _user_location(values: Any, location: list[str]) -> list[str]:
    """The part of pydantic's location that the stack file has: below a plain
    value pydantic adds steps of its own (the members of a union, such as
    `lax-or-strict[...]`), which name nothing a user can write."""
    current = values
    for depth, part in enumerate(location):
        if isinstance(current, Mapping):
            current = current.get(part, MISSING)
        elif isinstance(current, list) and part.isdigit():
            current = current[int(part)] if int(part) < len(current) else MISSING
        elif current is not MISSING:
            return location[:depth]
    return location


def _lookup(values: Any, location: list[str]) -> Any:
    current = values
    for part in location:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


class StackFile:
    """The settings of one Pulumi.<stack>.yaml, split into plain and secret keys."""

    def __init__(self, stack: str, project_dir: Path = PROJECT_DIR):
        self.stack = stack
        self.path = project_dir / f"Pulumi.{stack}.yaml"
        if not self.path.is_file():
            raise StackConfigError(
                stack, [Problem(str(self.path.name), MISSING, "allowed: an existing stack file")]
            )
        raw = yaml.safe_load(self.path.read_text()) or {}
        entries: Mapping[str, Any] = raw.get("config") or {}
        self.values: dict[str, Any] = {}
        self.secret_keys: set[str] = set()
        # full key -> the encrypted value: it changes whenever the secret is set again
        self.ciphertexts: dict[str, str] = {}
        for full_key, value in entries.items():
            if isinstance(value, Mapping) and set(value) == {"secure"}:
                self.secret_keys.add(full_key)
                self.ciphertexts[full_key] = str(value["secure"])
            elif full_key.startswith(NAMESPACE + ":"):
                self.values[full_key.split(":", 1)[1]] = value

    def config(self) -> StackConfig:
        return parse_stack_config(self.stack, self.values)


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
