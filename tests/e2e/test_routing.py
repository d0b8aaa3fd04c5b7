"""Every public hostname of prod and dev, through the real Traefik, to the stand-ins."""

from __future__ import annotations

import http.client
import re
import urllib.parse

import bcrypt
import pytest
import yaml

from core.traefik import application_headers, effective_headers

from .declared import Declared
from .expectations import (ADMIN_CHECK, ADMIN_HOSTNAMES, DATA_SERVICES, HOSTNAMES, PROOF, ROUTES, platform_domain,
                           reach_check)
from .harness import Edge
from .platform import Platform, identity

ONE_YEAR_S = 31536000
SECURITY_HEADERS = ("Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options",
                    "Content-Security-Policy")


def _credentials(edge: Edge, host: str):
    return edge.admin if host in ADMIN_HOSTNAMES else None


def test_the_host_reaches_containers_on_their_edge_network(platform: Platform, edge: Edge) -> None:
    """Traefik runs on the host: it must reach each routed container at its address on
    the network its label traefik.docker.network names (its own with Traefik), which
    is the address the docker provider gives Traefik."""
    checked = 0
    for container in platform.containers:
        network = container.labels.get("traefik.docker.network")
        if not network or container.port is None:
            continue
        address = platform.address(container.name, network)
        path, answered = identity(container)
        connection = http.client.HTTPConnection(address, container.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200, (container.name, response.status)
            assert answered(response.read().decode()), container.name
        finally:
            connection.close()
        checked += 1
    assert checked >= len({r.service for r in ROUTES}), checked


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_reaches_its_container(edge: Edge, stacks: dict[str, Declared], route) -> None:
    if route.internal_service == "api@internal":
        response = edge.get(route.host, route.path, auth=_credentials(edge, route.host))
        assert response.status == 200, f"https://{route.host}{route.path}: {response.status}"
        assert (response.header("Content-Type") or "").startswith("text/html")
        assert "<title>" in response.text.lower() or "traefik" in response.text.lower()
    else:
        container = stacks[route.stack].container(route.service)
        path, answered = identity(container, route.path)
        response = edge.get(route.host, path, auth=_credentials(edge, route.host))
        assert response.status == 200, f"https://{route.host}{path}: {response.status} {response.text[:200]}"
        assert answered(response.text), (
            f"https://{route.host}{path} reached {response.text.strip()[:100]!r}, not {container.name}")
    PROOF.record(route.host, reach_check(route))


@pytest.mark.parametrize("host", HOSTNAMES)
def test_plain_http_redirects_permanently_to_https(edge: Edge, host: str) -> None:
    response = edge.get_plain(host, "/some/path?q=1")
    assert response.status in (301, 308), f"http://{host}/: {response.status}"
    location = urllib.parse.urlsplit(response.header("Location") or "")
    assert location.scheme == "https" and location.hostname == host, response.header("Location")
    # production listens on 443 (no port in the URL); here the test entrypoint's port
    assert location.port in (None, edge.here.websecure_port)
    assert (location.path, location.query) == ("/some/path", "q=1")
    PROOF.record(host, "redirect")


@pytest.mark.parametrize("host", HOSTNAMES)
def test_security_headers(edge: Edge, stacks: dict[str, Declared], host: str) -> None:
    response = edge.get(host, "/", auth=_credentials(edge, host))
    assert response.status < 400, f"https://{host}/: {response.status}"
    # a policy the application sends itself (code-server, Grafana) is not Traefik's to add
    own = {name for r in ROUTES if r.host == host
           for name in application_headers(stacks[r.stack].plan.container(r.service))}
    missing = [name for name in SECURITY_HEADERS if not response.header(name) and name not in own]
    assert not missing, f"https://{host}/ lacks {missing}"
    hsts = response.header("Strict-Transport-Security") or ""
    max_age = re.search(r"max-age=(\d+)", hsts)
    assert max_age and int(max_age.group(1)) >= ONE_YEAR_S, hsts
    assert "includesubdomains" in hsts.lower(), hsts
    assert response.header("X-Content-Type-Options").lower() == "nosniff"
    assert response.header("X-Frame-Options").upper() in ("DENY", "SAMEORIGIN")
    PROOF.record(host, "headers")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_each_route_answers_with_the_headers_the_plan_shows(edge: Edge, stacks: dict[str, Declared],
                                                            route) -> None:
    """`python -m plan` shows each hostname's effective response headers
    (core.traefik.effective_headers): the real Traefik sends exactly those."""
    container = stacks[route.stack].plan.container(route.service)
    expected = effective_headers(container)
    response = edge.get(route.host, route.path, auth=_credentials(edge, route.host))
    served = {name: response.header(name) for name in expected}
    assert served == expected, route.id
    # left to the application (the stand-in sends none): Traefik adds nothing
    for name in application_headers(container):
        assert response.header(name) is None, (route.id, name)


@pytest.mark.parametrize("host", ADMIN_HOSTNAMES)
def test_admin_hosts_need_the_generated_credentials(edge: Edge, host: str) -> None:
    user, password = edge.admin
    refused = edge.get(host, "/")
    assert refused.status == 401
    # the headers middleware runs first, so a refusal carries the headers too
    missing = [name for name in SECURITY_HEADERS if not refused.header(name)]
    assert not missing, f"401 from https://{host}/ lacks {missing}"
    assert edge.get(host, "/", auth=(user, password + "x")).status == 401
    assert edge.get(host, "/", auth=("not-" + user, password)).status == 401
    response = edge.get(host, "/", auth=(user, password))
    assert response.status in (200, 302), response.status  # the dashboard redirects / to /dashboard/
    PROOF.record(host, ADMIN_CHECK)


def test_the_basic_auth_hash_is_a_real_bcrypt_of_the_admin_password(stacks: dict[str, Declared], edge: Edge) -> None:
    content = stacks["prod"].container("traefik-config").upload("/etc/traefik/dynamic/middlewares.yml").content
    users = yaml.safe_load(content)["http"]["middlewares"]["admin-auth"]["basicAuth"]["users"]
    user, _, hashed = users[0].partition(":")
    assert user == edge.admin[0]
    assert bcrypt.checkpw(edge.admin[1].encode(), hashed.encode())


UNKNOWN_HOSTNAMES = ("no-such-site.4lb.ca", "no-such-site.jsr-solutions.ca", "example.com", "localhost")


@pytest.mark.parametrize("host", UNKNOWN_HOSTNAMES)
def test_unknown_hostnames_answer_404(edge: Edge, host: str) -> None:
    assert host not in HOSTNAMES
    assert edge.get(host, "/").status == 404


def test_traefik_serves_its_default_certificate(edge: Edge) -> None:
    der = edge.get(HOSTNAMES[0], "/", auth=_credentials(edge, HOSTNAMES[0])).peer_certificate
    assert der, "no certificate"
    assert b"TRAEFIK DEFAULT CERT" in der, "expected Traefik's default certificate (no ACME here)"


@pytest.mark.parametrize("service", DATA_SERVICES)
def test_data_services_are_reachable_through_no_hostname(edge: Edge, platform: Platform,
                                                         stacks: dict[str, Declared], service: str) -> None:
    container = stacks["prod"].container(service)
    assert not any(k.startswith("traefik.") for k in container.labels), container.labels
    assert "unified-net" not in [name for name, _ in container.networks]
    # no service Traefik knows points at any of the container's addresses
    addresses = {n["IPAddress"] for n in platform.engine.inspect(container.name)["NetworkSettings"]["Networks"].values()}
    servers = [server.get("url", "") for item in edge.api("http/services?per_page=1000")
               for server in (item.get("loadBalancer") or {}).get("servers", [])]
    assert not [s for s in servers if urllib.parse.urlsplit(s).hostname in addresses], servers
    for host in (f"{service}.{platform_domain()}", service, container.name):
        response = edge.get(host, "/")
        assert response.status == 404, f"{host}: {response.status} {response.text[:100]}"


def test_traefik_reports_no_broken_router_service_or_middleware(edge: Edge) -> None:
    for kind in ("routers", "services", "middlewares"):
        items = edge.api(f"http/{kind}?per_page=1000")
        broken = [(i["name"], i.get("status"), i.get("error")) for i in items if i.get("status") != "enabled"]
        assert not broken, f"{kind}: {broken}"


def test_traefik_log_has_no_configuration_error(edge: Edge) -> None:
    problems = edge.problems()
    assert not problems, "\n".join(str(p) for p in problems)
    # and the tolerated ACME errors really are the refused local CA, nothing else
    acme = [e for e in edge.traefik.log_entries() if edge.acme_unreachable(e)]
    assert all("connection refused" in e.get("error", "") for e in acme), acme
