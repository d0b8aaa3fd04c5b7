"""Building the contracts' images on the local engine (`docker import` of a rootfs)."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Iterable

from ..changes import E2E_LABEL
from ..engine import Engine
from . import rootfs
from .contracts import Contract

DEFAULT_PATH = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_env(contract: Contract) -> tuple[str, ...]:
    """The image's ENV, as `docker inspect` shows it (KEY=VALUE)."""
    env = dict(contract.image_env)
    env.setdefault("PATH", DEFAULT_PATH)
    return tuple(f"{key}={value}" for key, value in env.items())


def dockerfile_changes(contract: Contract) -> list[str]:
    """The image's settings, as the instructions of its Dockerfile."""
    changes = [f"LABEL {E2E_LABEL[0]}={E2E_LABEL[1]}", f"WORKDIR {contract.workdir}"]
    if contract.entrypoint:
        changes.append(f"ENTRYPOINT {json.dumps(list(contract.entrypoint))}")
    if contract.cmd:
        changes.append(f"CMD {json.dumps(list(contract.cmd))}")
    if contract.user:
        changes.append(f"USER {contract.user}")
    changes += [f"ENV {setting}" for setting in image_env(contract)]
    changes += [f"EXPOSE {port}" for port in contract.exposed]
    return changes


def build(engine: Engine, contract: Contract) -> str:
    repository, tag = contract.tag.split(":")
    engine.import_image(rootfs.build(contract.rootfs), repository, tag, dockerfile_changes(contract))
    return contract.tag


def build_all(engine: Engine, contracts: Iterable[Contract]) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda c: build(engine, c), contracts))
