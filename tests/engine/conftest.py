"""The real Pulumi engine's suite: `pulumi up` of this program by the CLI and
plugins that bin/install-pulumi gives (built from the Go module proxy where no
release can be downloaded), on the local Docker engine.

Runs before the harness's end-to-end suite (tests/e2e/conftest.py orders it),
under the same one-run-per-engine lock, and removes what it deployed. Without a
Docker engine or an engine of Pulumi's the tests are skipped, except under
CI=true, where a missing piece fails them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests import required
from tests.e2e.engine import Engine
from tests.e2e.local_daemon import unreachable
from tests.e2e.run_lock import holding_run_lock

from . import report

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 3600


def unavailable(reason: str) -> None:
    required.unavailable(reason, "the real engine's tests")


@pytest.fixture(scope="session")
def pulumi_cli() -> Path:
    """The engine's CLI: FOURLB_PULUMI (bin/test installs it before pytest), else
    bin/install-pulumi now (minutes when it has to build)."""
    given = os.environ.get("FOURLB_PULUMI")
    if given:
        return Path(given)
    result = subprocess.run([str(REPO / "bin" / "install-pulumi")], capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        unavailable(f"bin/install-pulumi failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def docker() -> Engine:
    engine = Engine()
    problem = unreachable(engine)
    if problem:
        unavailable(problem)
    return engine


@pytest.fixture(scope="module")
def run_lock(docker: Engine) -> Iterator[None]:
    """Held for one module of this suite: the harness's suite takes it after."""
    try:
        with holding_run_lock(docker.path):
            yield
    except AssertionError as error:
        if "the lock" not in str(error):
            raise
        unavailable(str(error))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if report.LINES:
        terminalreporter.section("fourlb real engine")
        for line in report.LINES:
            terminalreporter.write_line(line)
