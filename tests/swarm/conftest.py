"""Swarm end-to-end fixtures: a three-node swarm on this machine (lab.py), and the
stand-in image in each of its nodes.

Needs root (namespaces, mounts, cgroups), dockerd, the docker CLI, iproute2's `ip`,
util-linux's nsenter and unshare; the image also needs the main Docker daemon and a
static busybox. Without them the tests are skipped and say why, except under
CI=true, where a missing piece fails them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests import required
from tests.e2e import standin
from tests.e2e.engine import Engine
from tests.e2e.local_daemon import unreachable

from .lab import Lab, cleanup_leftovers

# the suite's figures (requests, failures, seconds to converge), printed at the end
FIGURES: dict[str, str] = {}
LAB_TOOLS = ("dockerd", "docker", "ip", "nsenter", "unshare", "mount", "umount")
STANDIN_TAG = "fourlb-swarm-standin:latest"  # not the e2e tag: an e2e run may be using that one
STANDIN_LABEL = {"fourlb.swarm-lab": "1"}


def unavailable(reason: str) -> None:
    required.unavailable(reason, "the swarm tests")


def lab_unavailable() -> Optional[str]:
    if os.geteuid() != 0:
        return "the swarm lab needs root (network, mount and UTS namespaces, cgroups)"
    missing = [tool for tool in LAB_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the swarm lab needs {', '.join(missing)} on PATH (docker.io, iproute2, util-linux)"
    return None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason:
        unavailable(reason)
    cleanup_leftovers()
    with Lab() as running:
        yield running
    print(f"\nswarm lab timings (s): {running.timings}")


@pytest.fixture(scope="session")
def standin_image(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The e2e stand-in (tests/e2e/standin.py), built on the main daemon under a tag of
    the lab's own and loaded into every node; removed from the main daemon afterwards."""
    try:
        standin.busybox_path()
    except FileNotFoundError as error:
        unavailable(str(error))
    main = Engine()
    problem = unreachable(main)
    if problem:
        unavailable(f"the stand-in is built on the main Docker daemon: {problem}")
    context = standin.write_context(Path(tmp_path_factory.mktemp("swarm-standin")))
    main.build(standin.context_tar(context), STANDIN_TAG, STANDIN_LABEL)
    try:
        lab.load_image(STANDIN_TAG)
        yield STANDIN_TAG
    finally:
        main.remove_image(STANDIN_TAG)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if FIGURES:
        terminalreporter.write_sep("=", "fourlb on a three-node swarm")
        for key, value in FIGURES.items():
            terminalreporter.write_line(f"  {key}: {value}")


# the real engine's CLI, as the engine suite finds it (FOURLB_PULUMI, else bin/install-pulumi)
from tests.engine.conftest import pulumi_cli  # noqa: E402,F401  (a fixture: registered by its import)
