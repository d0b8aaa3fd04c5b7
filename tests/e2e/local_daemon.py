"""The local Docker daemon the suites deploy on: reached, or started when none answers.

bin/test runs .ci/start-dockerd before pytest, which does nothing when a daemon already
answers. That daemon may belong to a shell that ends meanwhile (a daemon started by hand
and left running, ended with its session): pytest then finds the socket but no daemon.
A session fixture that finds none starts one the same way bin/test does, once, before
it calls the engine unavailable.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from .engine import DEFAULT_SOCKET, Engine

REPO = Path(__file__).resolve().parents[2]
START_DOCKERD = REPO / ".ci" / "start-dockerd"
START_TIMEOUT_S = 120  # start-dockerd waits up to 60 s for the daemon (DOCKERD_WAIT_S)


def unreachable(engine: Engine) -> Optional[str]:
    """None when `engine` answers, possibly after starting the local daemon; otherwise why not."""
    try:
        engine.ping()
        return None
    except OSError as error:
        first = f"no Docker engine at {engine.path} ({error})"
    if not _may_start(engine):
        return f"{first}; start one with .ci/start-dockerd"
    result = subprocess.run([str(START_DOCKERD)], capture_output=True, text=True,
                            timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        return f"{first}; .ci/start-dockerd failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    try:
        engine.ping()
        return None
    except OSError as error:
        return f"{first}; .ci/start-dockerd said it started one, yet: {error}"


def _may_start(engine: Engine) -> bool:
    """Only the machine's own default daemon, started as bin/test does (as root): never
    a remote engine (ssh://) or a socket someone else named."""
    return (engine.url == f"unix://{DEFAULT_SOCKET}" and os.geteuid() == 0
            and os.access(START_DOCKERD, os.X_OK))
