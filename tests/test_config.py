"""Bad stack settings stop with one message naming the key, the value and the rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.build import build_plan
from core.edge import load_plan

PROJECT = Path(__file__).resolve().parent.parent


def prod_values() -> dict:
    return dict(StackFile("prod", PROJECT).values)


def plan_error(values: dict, stack: str = "prod") -> StackConfigError:
    with pytest.raises(StackConfigError) as caught:
        build_plan(parse_stack_config(stack, values), stack)
    return caught.value


def with_site(values: dict, name: str, **site) -> dict:
    site.setdefault("image", "nginx:1.27-alpine")
    return {**values, "sites": {**values.get("sites", {}), name: site}}


def test_every_stack_file_of_the_project_is_valid():
    for stack in ("prod", "dev", "local"):
        config, plan = load_plan(stack, PROJECT)
        assert plan.containers, stack


def test_hostname_outside_the_stack_zones_names_key_value_and_zones():
    error = plan_error(with_site(prod_values(), "toilettage", hostnames=["toilettage.example.org"]))
    message = str(error)
    assert "fourlb:sites.toilettage.hostnames.0" in message
    assert "'toilettage.example.org'" in message
    assert "4lb.ca, jsr-solutions.ca" in message


def test_same_hostname_twice_in_one_stack():
    error = plan_error(with_site(prod_values(), "copy", hostnames=["grafana.4lb.ca"]))
    assert "fourlb:sites.copy.hostnames.0 = 'grafana.4lb.ca'" in str(error)
    assert "already routed (to grafana)" in str(error)


def test_same_hostname_in_prod_and_dev_is_refused(tmp_path):
    for stack in ("prod", "dev"):
        shutil.copy(PROJECT / f"Pulumi.{stack}.yaml", tmp_path)
    dev = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    dev["config"]["fourlb:sites"]["jsr-dev"]["hostnames"].append("grafana.4lb.ca")
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    with pytest.raises(StackConfigError) as caught:
        load_plan("dev", tmp_path)
    assert "fourlb:sites.jsr-dev = 'grafana.4lb.ca'" in str(caught.value)
    assert "stack 'prod'" in str(caught.value)
    # prod, deployed from the same files, refuses it too
    with pytest.raises(StackConfigError, match="stack 'dev'"):
        load_plan("prod", tmp_path)


def test_route_to_an_unknown_container():
    values = {**prod_values(), "routes": [{"hostname": "status.4lb.ca", "container": "grafna"}]}
    message = str(plan_error(values))
    assert "fourlb:routes.0.container = 'grafna'" in message
    assert "grafana" in message  # the allowed names are listed


def test_extra_route_to_a_known_container_is_planned():
    values = {**prod_values(), "routes": [{"hostname": "status.4lb.ca", "container": "grafana"}]}
    plan = build_plan(parse_stack_config("prod", values), "prod")
    assert "status.4lb.ca" in plan.container("grafana").public_hostnames
    assert "status.4lb.ca" in [r.name for r in plan.dns_records]


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_port_out_of_range(port):
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", with_site(prod_values(), "shop", hostnames=["shop.4lb.ca"], port=port))
    assert f"fourlb:sites.shop.port = {port}" in str(caught.value)
    assert "65535" in str(caught.value) or "greater than or equal to 1" in str(caught.value)


@pytest.mark.parametrize("image,rule", [
    ("nginx", "pinned to a tag or digest"),
    ("nginx:latest", "pinned tag"),
    ("Nginx:1.27", "Docker image reference"),
    ("nginx:1.27 ; rm -rf /", "Docker image reference"),
])
def test_invalid_image_reference(image, rule):
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", with_site(prod_values(), "shop", hostnames=["shop.4lb.ca"], image=image))
    assert f"fourlb:sites.shop.image = {image!r}" in str(caught.value)
    assert rule in str(caught.value)


@pytest.mark.parametrize("name", ["shop.ca", "shop@docker", "shop`", "Shop", "a_b", "-shop"])
def test_site_names_that_would_break_traefik_labels(name):
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", with_site(prod_values(), name, hostnames=["shop.4lb.ca"]))
    assert f"fourlb:sites.{name} = {name!r}" in str(caught.value)
    assert "lowercase letters" in str(caught.value)


def test_dev_may_not_carry_a_client_domain():
    values = dict(StackFile("dev", PROJECT).values)
    values["zones"] = ["4lb.ca", "jsr-solutions.ca"]
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("dev", values)
    assert "fourlb:zones" in str(caught.value)
    assert "client domain" in str(caught.value)


def test_unknown_setting_lists_the_known_ones():
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", {**prod_values(), "site": {}})
    assert "fourlb:site = {}" in str(caught.value)
    assert "sites" in str(caught.value) and "platformDomain" in str(caught.value)


@pytest.mark.parametrize("extra, key, allowed", [
    ({"rateLimits": {"default": {}}}, "fourlb:rateLimits.default = {}",
     "aiApiPerMinute, defaultPerMinute"),
    ({"sites": {"shop": {"image": "shop:1", "hostnames": ["shop.4lb.ca"], "colour": 1}}},
     "fourlb:sites.shop.colour = 1", "bindMounts, contentSecurityPolicy, edgeSlot, egress, env, followTag"),
    ({"routes": [{"hostname": "x.4lb.ca", "container": "grafana", "bad": 1}]},
     "fourlb:routes.0.bad = 1", "container, hostname, pathPrefix"),
    ({"sites": {"shop": {"image": "shop:1", "hostnames": ["shop.4lb.ca"],
                         "bindMounts": [{"hostPath": "/srv", "target": "/srv", "mode": "ro"}]}}},
     "fourlb:sites.shop.bindMounts.0.mode", "hostPath, readOnly, target"),
])
def test_an_unknown_nested_setting_lists_the_keys_of_its_object(extra, key, allowed):
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", {**prod_values(), **extra})
    message = str(caught.value)
    assert key in message and f"allowed keys here: {allowed}" in message
    assert "config/models.py" not in message


def test_credentials_are_refused_as_plain_env():
    values = with_site(prod_values(), "shop", hostnames=["shop.4lb.ca"], env={"DB_PASSWORD": "x"})
    with pytest.raises(StackConfigError, match="fourlb:sites.shop.env.*credential"):
        parse_stack_config("prod", values)


def test_the_docker_socket_cannot_be_bind_mounted():
    values = with_site(prod_values(), "shop", hostnames=["shop.4lb.ca"],
                       bindMounts=[{"hostPath": "/var/run/docker.sock", "target": "/s"}])
    with pytest.raises(StackConfigError, match="bindMounts.0.hostPath"):
        parse_stack_config("prod", values)


def test_unknown_or_required_platform_service():
    values = {**prod_values(), "services": {"grafanna": {}, "traefik": {"enabled": False}}}
    message = str(plan_error(values))
    assert "fourlb:services.grafanna = 'grafanna'" in message
    assert "fourlb:services.traefik.enabled = False" in message


def test_several_problems_are_reported_together():
    values = with_site(prod_values(), "shop", hostnames=["shop.example.org"], port=99999)
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", {**values, "tls": "plain"})
    keys = [problem.key for problem in caught.value.problems]
    assert "fourlb:sites.shop.port" in keys and "fourlb:tls" in keys


def test_a_container_name_used_by_prod_and_dev_is_refused(tmp_path):
    """Both stacks run on one Docker engine: a name can exist only once."""
    for stack in ("prod", "dev"):
        shutil.copy(PROJECT / f"Pulumi.{stack}.yaml", tmp_path)
    dev = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    dev["config"]["fourlb:sites"]["jsr-solutions-prod"] = {
        "image": "jsr-solutions-frontend:dev", "hostnames": ["jsr-next.4lb.ca"]}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    with pytest.raises(StackConfigError) as caught:
        load_plan("dev", tmp_path)
    assert "fourlb:sites.jsr-solutions-prod = 'jsr-solutions-prod'" in str(caught.value)
    assert "stack 'prod' (same Docker host)" in str(caught.value)
