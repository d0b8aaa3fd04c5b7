"""A setting never takes a name the program makes for itself (core/names.py):
the clash is refused, naming the setting and what has that name already."""

from __future__ import annotations

import pytest

from config.errors import StackConfigError
from config.loading import PROJECT_DIR, StackFile
from config import parse_stack_config
from core.build import build_plan

SITE = {"image": "nginx:1.27-alpine", "hostnames": ["shop.jsr-solutions.ca"]}


def refusal(stack: str = "prod", served: tuple[str, ...] = (), **settings) -> str:
    values = {**StackFile(stack, PROJECT_DIR).values, **settings}
    with pytest.raises(StackConfigError) as refused:
        build_plan(parse_stack_config(stack, values), stack, served)
    return str(refused.value)


def prod_sites(**sites) -> dict:
    return {**StackFile("prod", PROJECT_DIR).values["sites"], **sites}


def test_a_site_cannot_take_a_configuration_writers_name():
    # it would take the writer's place: Traefik left without its middlewares
    message = refusal(sites=prod_sites(**{"traefik-config": SITE}))
    assert "fourlb:sites.traefik-config" in message and "the writer of traefik's files" in message


def test_a_site_cannot_take_the_network_of_a_sites_stack():
    message = refusal(served=("dev",), sites=prod_sites(**{"stack-dev": SITE}))
    assert "fourlb:sites.stack-dev" in message and "edge-stack-dev" in message


def test_a_site_cannot_take_the_network_of_another_site_with_a_way_out():
    message = refusal(sites=prod_sites(shop={**SITE, "egress": True}, **{"shop-out": SITE}))
    assert "fourlb:sites.shop-out" in message and "edge-shop-out" in message
    assert "site shop" in message


def test_a_site_cannot_take_the_network_of_a_platform_service():
    message = refusal(sites=prod_sites(**{"code-server-out": SITE}))
    assert "fourlb:sites.code-server-out" in message and "Traefik and code-server" in message


def test_the_shared_network_cannot_take_a_network_of_the_platform():
    message = refusal(sharedNetwork="data-net")
    assert "fourlb:sharedNetwork = 'data-net'" in message


def test_names_of_their_own_are_accepted():
    values = {**StackFile("prod", PROJECT_DIR).values,
              "sites": prod_sites(shop={**SITE, "egress": True},
                                  config={**SITE, "hostnames": ["config.jsr-solutions.ca"]})}
    plan = build_plan(parse_stack_config("prod", values), "prod", ("dev",))
    assert {"shop", "config"} <= {c.name for c in plan.containers}


# ---- host binds ---------------------------------------------------------------

def site_with_binds(*binds: dict) -> dict:
    return prod_sites(shop={**SITE, "bindMounts": list(binds)})


@pytest.mark.parametrize("host_path", ["/proc", "/sys/fs/cgroup", "/dev/sda", "/var/lib/docker/volumes",
                                       "/etc/docker", "/run/containerd/containerd.sock", "/boot"])
def test_a_bind_that_hands_the_host_over_is_refused(host_path):
    message = refusal(sites=site_with_binds({"hostPath": host_path, "target": "/data"}))
    assert "fourlb:sites.shop.bindMounts.0" in message and "hands the host" in message


def test_the_hosts_own_files_are_bound_read_only_only():
    message = refusal(sites=site_with_binds({"hostPath": "/etc/ssl/certs", "target": "/certs",
                                             "readOnly": False}))
    assert "fourlb:sites.shop.bindMounts.0" in message and "readOnly true" in message
    values = {**StackFile("prod", PROJECT_DIR).values, "sites": site_with_binds(
        {"hostPath": "/etc/ssl/certs", "target": "/certs"},
        {"hostPath": "/srv/shop/uploads", "target": "/uploads", "readOnly": False})}
    plan = build_plan(parse_stack_config("prod", values), "prod")
    assert {(m.host_path, m.read_only) for m in plan.container("shop").mounts} == {
        ("/etc/ssl/certs", True), ("/srv/shop/uploads", False)}


def test_two_binds_on_one_target_are_refused():
    message = refusal(sites=site_with_binds({"hostPath": "/srv/a", "target": "/data"},
                                            {"hostPath": "/srv/b", "target": "/data/"}))
    assert "fourlb:sites.shop.bindMounts" in message and "/data is bound twice" in message


def test_a_bind_over_a_services_own_data_or_password_is_refused():
    services = {**StackFile("prod", PROJECT_DIR).values["services"], "postgres": {"bindMounts": [
        {"hostPath": "/srv/pg", "target": "/var/lib/postgresql/data"},
        {"hostPath": "/srv/pw", "target": "/run/secrets/postgres-password"}]}}
    message = refusal(services=services)
    assert "fourlb:services.postgres.bindMounts.0.target" in message
    assert "fourlb:services.postgres.bindMounts.1.target" in message


def test_a_swarm_refuses_an_unknown_placement_kind():
    values = StackFile("swarm", PROJECT_DIR).values
    swarm = {**values["swarm"], "placement": {**values["swarm"]["placement"], "databases": "data"}}
    message = refusal("swarm", swarm=swarm)
    assert "fourlb:swarm.placement" in message and "databases" in message
