"""Who reaches whom inside the host, as the plans of prod and dev together say
(core.networks). The e2e suite checks the same matrix on the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.build import build_plan
from core.edge import load_plan
from core.networks import reachability

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def host():
    prod, dev = load_plan("prod", PROJECT)[1], load_plan("dev", PROJECT)[1]
    containers = prod.containers + dev.containers
    matrix = reachability(containers)
    reached: dict[str, set[str]] = {}
    for (source, target, _), answers in matrix.items():
        if answers:
            reached.setdefault(target, set()).add(source)
    return prod, dev, reached


def reaches(reached: dict[str, set[str]], source: str) -> set[str]:
    return {target for target, sources in reached.items() if source in sources}


def test_a_site_reaches_nothing_but_traefik(host):
    prod, dev, reached = host
    # Traefik reaches them; they reach no listening port of its (ping, metrics)
    for site in ("jsr-solutions-prod", "jsr-dev", "jsr-solutions"):
        assert reaches(reached, site) <= {"jsr-dev", "jsr-solutions"}, site
    assert reaches(reached, "jsr-solutions-prod") == set()
    # dev's sites reach each other (one network for the stack) and nothing of prod's
    prod_names = {c.name for c in prod.containers}
    for site in ("jsr-dev", "jsr-solutions"):
        assert not reaches(reached, site) & prod_names, site


def test_traefiks_ping_and_metrics_answer_prometheus_and_its_writer_alone(host):
    """The writer of its files asks the ops port whether Traefik loaded them
    (core/live_config.py LoadedCheck); no site or admin UI reaches it."""
    _, _, reached = host
    assert reached["traefik"] == {"prometheus", "traefik-config"}


def test_traefik_reaches_every_routed_container(host):
    prod, dev, reached = host
    for container in prod.containers + dev.containers:
        if container.routes and container.name != "traefik":
            assert "traefik" in reached[container.name], container.name


def test_the_admin_uis_are_out_of_the_sites_reach(host):
    _, _, reached = host
    for ui in ("grafana", "prometheus", "code-server", "open-webui"):
        assert not reached[ui] & {"jsr-solutions-prod", "jsr-dev", "jsr-solutions"}, ui


def test_prometheus_api_answers_only_its_writer_grafana_and_traefik(host):
    _, _, reached = host
    # --web.enable-lifecycle: whoever reaches the port can reload or stop it
    assert reached["prometheus"] == {"prometheus-config", "grafana", "traefik"}
    # its scrape targets and Alertmanager share a network with it, but it does not listen there
    assert not reached["prometheus"] & {"cadvisor", "node-exporter", "alertmanager"}


def test_data_services_answer_only_the_services_that_use_them(host):
    _, _, reached = host
    for data in ("postgres", "redis", "chromadb"):
        assert "traefik" not in reached[data]
        assert reached[data] <= {"postgres", "redis", "chromadb", "ai-orchestrator-backend", "backup"}


def test_a_dev_site_cannot_ask_for_its_own_way_out():
    values = dict(StackFile("dev", PROJECT).values)
    values["sites"] = {**values["sites"], "jsr-dev": {**values["sites"]["jsr-dev"], "egress": True}}
    with pytest.raises(StackConfigError) as refused:
        build_plan(parse_stack_config("dev", values), "dev")
    assert "fourlb:sites.jsr-dev.egress" in str(refused.value)


def test_a_site_with_egress_gets_a_way_out_on_its_own_network_only():
    values = dict(StackFile("prod", PROJECT).values)
    values["sites"] = {**values["sites"], "jsr-solutions-prod": {
        **values["sites"]["jsr-solutions-prod"], "egress": True}}
    plan = build_plan(parse_stack_config("prod", values), "prod")
    networks = {n.name: n for n in plan.networks}
    # a name of its own: Docker cannot flip the `internal` flag of the existing network
    assert plan.container("jsr-solutions-prod").networks == ("edge-jsr-solutions-prod-out",)
    assert networks["edge-jsr-solutions-prod-out"].internal is False
    assert "edge-jsr-solutions-prod" not in networks


def test_the_plan_shows_who_reaches_a_port_where_it_listens():
    from plan.document import plan_document
    config, plan = load_plan("prod", PROJECT)
    reached_by = plan_document(config, plan)["reached_by"]
    # its scrape targets share networks with Prometheus, but it does not listen there
    assert reached_by["prometheus"] == ["grafana", "prometheus-config", "traefik"]
    assert reached_by["jsr-solutions-prod"] == ["traefik"]


def test_the_edge_is_connected_to_each_client_site_network_once_it_runs():
    """Created on its fixed networks, so that the client sites can come and go
    without replacing it (core.networks, components.connection)."""
    values = dict(StackFile("prod", PROJECT).values)
    values["sites"] = {**values["sites"], "toilettage": {
        "image": "toilettage-web:1.0.0", "hostnames": ["shop.jsr-solutions.ca"]}}
    plan = build_plan(parse_stack_config("prod", values), "prod", ("dev",))
    traefik = plan.container("traefik")
    assert traefik.connected_networks == ("edge-jsr-solutions-prod", "edge-toilettage")
    assert set(traefik.connected_networks) <= set(traefik.networks)
    assert not set(traefik.connected_networks) & set(traefik.created_on)
    # the platform's own services and the sites stacks it serves are there from its creation
    assert {"edge-code-server-out", "edge-grafana", "edge-stack-dev", "unified-net"} <= set(traefik.created_on)
    assert all(not c.connected_networks for c in plan.containers if c.name != "traefik")


def test_the_plan_document_names_connected_networks_only_where_there_are_some():
    """A document written before connections existed has no such key: the others'
    documents must not differ from it (plan diff would list every container)."""
    from plan.document import plan_document
    config, plan = load_plan("prod", PROJECT)
    containers = plan_document(config, plan)["containers"]
    assert [name for name, c in containers.items() if "connected_networks" in c] == ["traefik"]
    assert containers["traefik"]["connected_networks"] == ["edge-jsr-solutions-prod"]
    assert "edge-jsr-solutions-prod" not in containers["traefik"]["networks"]


def test_on_a_swarm_the_edge_joins_every_network_as_a_service():
    """A service's networks are declared with it (core.swarm): none is connected later,
    so plan diff does not report a connection that the swarm engine never makes. The
    client sites' networks are the edge's slots, joined in advance."""
    _, plan = load_plan("swarm", PROJECT)
    traefik = plan.container("traefik")
    assert {f"edge-slot-{k}" for k in range(1, 9)} <= set(traefik.networks)
    assert plan.container("jsr-solutions-prod").networks[0] == "edge-slot-1"
    assert traefik.connected_networks == () and traefik.created_on == traefik.networks
