"""One malformed label takes one route away, says so in Traefik's log, and
leaves every other route alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .declared import Declared, DeclaredContainer
from .expectations import ADMIN_HOSTNAMES, ROUTES
from .harness import Edge
from .platform import Platform, identity

HEALTHY_WITHIN_S = 60
NOTICED_WITHIN_S = 20


def _router(container: DeclaredContainer) -> str:
    (name,) = container.routers()
    return name


def _bad_port(container: DeclaredContainer) -> dict[str, str]:
    service = container.routers()[_router(container)]["service"]
    return {**container.labels, f"traefik.http.services.{service}.loadbalancer.server.port": "notaport"}


def _v2_rule(container: DeclaredContainer) -> dict[str, str]:
    router = _router(container)
    hosts = [r.host for r in ROUTES if r.service == container.service]
    # Traefik v2's multi-argument matcher; v3 takes one host per Host()
    rule = "Host(" + ", ".join(f"`{h}`" for h in hosts + ["www." + hosts[0]]) + ")"
    return {**container.labels, f"traefik.http.routers.{router}.rule": rule}


# (what is broken, how, what Traefik's error says)
BREAKS: tuple[tuple[str, Callable[[DeclaredContainer], dict[str, str]], str], ...] = (
    ("load-balancer port 'notaport'", _bad_port, 'invalid port ":notaport"'),
    ("router rule in v2 syntax", _v2_rule, "unexpected number of parameters"),
)


def _victims(stacks: dict[str, Declared]) -> list[DeclaredContainer]:
    """Sites with one router each, dev's first: breaking them touches no platform service."""
    sites = [c for stack in ("dev", "prod") for c in stacks[stack].containers
             if c.labels.get("fourlb.role") == "site" and len(c.routers()) == 1]
    assert len(sites) >= len(BREAKS), [c.name for c in sites]
    return sites[:len(BREAKS)]


def _provoked(names: list[str], error: str) -> Callable[[dict], bool]:
    """The error Traefik logs for the label broken on purpose, and no other."""
    def matches(entry: dict) -> bool:
        text = " ".join(str(value) for value in entry.values())
        return entry.get("level") == "error" and error in text and any(name in text for name in names)
    return matches


def test_a_malformed_label_removes_only_its_route(platform: Platform, stacks: dict[str, Declared],
                                                  edge: Edge) -> None:
    victims = _victims(stacks)
    broken = [replace(c, labels=breaks(c)) for c, (_, breaks, _) in zip(victims, BREAKS)]
    expected_errors = [
        _provoked([c.name, _router(c), c.routers()[_router(c)]["service"]], error)
        for c, (_, _, error) in zip(victims, BREAKS)]
    edge.provoked.extend(expected_errors)
    victim_hosts = {r.host for r in ROUTES if r.service in {c.service for c in victims}}
    others = [r for r in ROUTES if r.host not in victim_hosts]
    log_mark = len(edge.traefik.log_entries())
    try:
        for container in victims:
            platform.remove(container)
        platform.run_all(broken)
        platform.wait_healthy(broken, HEALTHY_WITHIN_S)

        def noticed() -> bool:
            entries = edge.traefik.log_entries()[log_mark:]
            return all(any(expected(e) for e in entries) for expected in expected_errors)

        edge.wait_for("Traefik logging an error for each broken container", noticed, NOTICED_WITHIN_S)
        for (what, _, _), container in zip(BREAKS, victims):
            for route in [r for r in ROUTES if r.service == container.service]:
                status = edge.get(route.host, route.path).status
                assert status == 404, f"{what} on {container.name}: https://{route.host} answered {status}"
        for route in others:
            auth = edge.admin if route.host in ADMIN_HOSTNAMES else None
            path = route.path
            if route.internal_service is None:
                path, _ = identity(stacks[route.stack].container(route.service), route.path)
            response = edge.get(route.host, path, auth=auth)
            assert response.status == 200, f"{route.id} broke with its neighbour: {response.status}"
    finally:
        for container in victims:
            platform.remove(container)
        platform.run_all(victims)
        platform.wait_healthy(victims, HEALTHY_WITHIN_S)
        edge.wait_routers([_router(c) for c in victims], timeout_s=20)
    for container in victims:
        for route in [r for r in ROUTES if r.service == container.service]:
            response = edge.get(route.host, route.path)
            assert (response.status, response.text.strip()) == (200, container.name), route.id
