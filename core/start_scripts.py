"""Scripts of the program's that a service starts through, before the image's own
entrypoint: each sets up, at every start, what the image does only once or not
at all (core/passwords.py, core/bouncer_key.py). The script is an upload, and an
upload is replace-forcing: a new script replaces the container."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from .model import Container, Upload


@dataclass(frozen=True)
class StartScript:
    path: str
    script: str
    command: tuple[str, ...]  # an entrypoint of our own drops the image's CMD: given again


def with_start_scripts(containers: list[Container], scripts: Mapping[str, StartScript]
                       ) -> list[Container]:
    """Each container named in `scripts` starts through its script (an image the
    stack names for it is still its: the script runs that image's entrypoint)."""
    result = []
    for container in containers:
        start = scripts.get(container.name)
        if start and not container.entrypoint:
            container = replace(container, entrypoint=(start.path,),
                                command=container.command or start.command,
                                uploads=container.uploads + (Upload(start.path, start.script, mode="0755"),))
        result.append(container)
    return result
