"""What routing must look like, from the plans of the stacks one Traefik serves.

Pure (no Docker, no Pulumi): computed at collection time so that each public
hostname is a test case of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from core.edge import load_plan
from core.traefik import ADMIN_AUTH, file_ref

# prod runs the edge; dev's sites join prod's network and Traefik
STACKS = ("prod", "dev")
# services that hold data: on internal networks only, never routed
DATA_SERVICES = ("postgres", "redis", "chromadb")
# What a hostname must pass to count as proven (besides reaching each of its routes).
CHECKS = ("redirect", "headers")
ADMIN_CHECK = "auth"
# what a route with a path prefix is asked for, under that prefix
PROBE = "/e2e-probe"


@dataclass(frozen=True)
class ExpectedRoute:
    stack: str
    host: str
    path: str  # what the test requests
    service: str  # the plan container that must answer
    internal_service: Optional[str]  # e.g. api@internal: Traefik answers itself
    admin: bool

    @property
    def id(self) -> str:
        return f"{self.host}{self.path}"


def platform_domain() -> str:
    config, _ = load_plan(STACKS[0])
    return config.platform_domain


def expected_routes(stacks: tuple[str, ...] = STACKS) -> list[ExpectedRoute]:
    routes = []
    for stack in stacks:
        _, plan = load_plan(stack)
        for container in plan.containers:
            for route in container.routes:
                if route.internal_service == "api@internal":
                    path = "/dashboard/"
                elif route.path_prefix:
                    path = route.path_prefix.rstrip("/") + PROBE
                else:
                    path = "/"
                for host in route.hostnames:
                    routes.append(ExpectedRoute(
                        stack=stack, host=host, path=path, service=container.name,
                        internal_service=route.internal_service,
                        admin=file_ref(ADMIN_AUTH) in route.middlewares))
    return routes


ROUTES = expected_routes()
HOSTNAMES = sorted({route.host for route in ROUTES})
ADMIN_HOSTNAMES = sorted({route.host for route in ROUTES if route.admin})


def reach_check(route: ExpectedRoute) -> str:
    return f"reach {route.path}"


def checks_for(host: str) -> tuple[str, ...]:
    reach = tuple(reach_check(r) for r in ROUTES if r.host == host)
    return reach + CHECKS + ((ADMIN_CHECK,) if host in ADMIN_HOSTNAMES else ())


class Proof:
    """Which checks each hostname passed in this run (for the terminal summary)."""

    def __init__(self) -> None:
        self.passed: dict[str, set[str]] = {}

    def record(self, host: str, check: str) -> None:
        self.passed.setdefault(host, set()).add(check)

    def proven(self) -> list[str]:
        return [h for h in HOSTNAMES if set(checks_for(h)) <= self.passed.get(h, set())]


PROOF = Proof()
