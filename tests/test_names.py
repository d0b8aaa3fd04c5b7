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
