"""A deployment goes to the right machine and points DNS at a real address:
what `pulumi up` refuses that the offline plan accepts (core.deploy_checks)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from config import StackConfigError, parse_stack_config
from config.loading import StackFile, stack_names
from core.build import build_plan
from tests.plans import PROJECT, prod_plan

RECORD = "cloudflare:index/dnsRecord:DnsRecord"


def prod_values(**dns) -> dict:
    values = StackFile("prod", PROJECT).values
    return {**values, "dns": {**values["dns"], **dns}}


@pytest.mark.parametrize("address", [
    "198.51.100.24", "203.0.113.10", "192.0.2.1",  # documentation (TEST-NET-1..3)
    "10.0.0.5", "192.168.1.10", "172.16.0.1", "100.64.0.1", "127.0.0.1", "169.254.1.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
])
def test_a_dns_target_that_reaches_no_host_is_refused(address):
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", prod_values(targetIpv4=address))
    assert f"fourlb:dns.targetIpv4 = '{address}'" in str(caught.value)
    assert "public unicast" in str(caught.value)


def test_a_public_dns_target_is_every_records_content():
    plan = build_plan(parse_stack_config("prod", prod_values(targetIpv4="149.56.10.20")), "prod")
    assert plan.dns_records and {r.content for r in plan.dns_records} == {"149.56.10.20"}


@pytest.mark.parametrize("stack", stack_names(PROJECT))
def test_no_committed_stack_file_carries_a_dns_target_placeholder(stack):
    raw = yaml.safe_load((PROJECT / f"Pulumi.{stack}.yaml").read_text())["config"]
    target = (raw.get("fourlb:dns") or {}).get("targetIpv4")
    # unset (the owner sets it) or an address validation accepts, i.e. public
    assert target is None or StackFile(stack, PROJECT).config().dns.target_ipv4 == target


def test_the_offline_plan_shows_an_unset_target_instead_of_an_address():
    result = subprocess.run([sys.executable, "-m", "plan", "prod"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "(not set: fourlb:dns.targetIpv4)" in result.stdout
    as_json = subprocess.run([sys.executable, "-m", "plan", "prod", "--format", "json"], cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
    records = [r for zone in json.loads(as_json.stdout)["dns"].values() for r in zone]
    assert records and {r["content"] for r in records} == {None}


def test_cloudflare_proxying_is_refused_with_the_reason():
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", prod_values(proxied=True))
    message = str(caught.value)
    assert "fourlb:dns.proxied = True" in message
    assert "CrowdSec would ban Cloudflare" in message and "allow-list" in message


def test_the_web_ui_must_be_named_outside_the_local_stack():
    with pytest.raises(StackConfigError) as caught:
        prod_plan(services={"ai-orchestrator-frontend": {}})
    message = str(caught.value)
    assert "fourlb:services.ai-orchestrator-frontend.image = (missing)" in message
    assert "nginx:1.27-alpine is only a stand-in" in message and ".bindMounts" in message
    # either setting is enough
    assert prod_plan(services={"ai-orchestrator-frontend": {"image": "ai-ui:5.1"}})
    # the local stack runs the stand-in, by design
    local = build_plan(StackFile("local", PROJECT).config(), "local")
    assert local.container("ai-orchestrator-frontend").image == "nginx:1.27-alpine"


def test_prod_serves_the_web_ui_files_not_the_welcome_page():
    frontend = prod_plan().container("ai-orchestrator-frontend")
    assert any(m.target == "/usr/share/nginx/html" and m.host_path and m.read_only
               for m in frontend.mounts)


# --- under Pulumi mocks: the real __main__.py --------------------------------

def test_an_unset_dns_target_stops_the_deployment_naming_the_key_and_command(deploy):
    run = deploy("prod", overrides={"fourlb:dns": json.dumps({"provider": "cloudflare"})})
    message = str(run.error)
    assert "fourlb:dns.targetIpv4 = (missing): required to deploy" in message
    assert "pulumi config set --path fourlb:dns.targetIpv4 <address> --stack prod" in message
    assert run.resources == []


@pytest.mark.parametrize("ci", [True, False])
def test_a_platform_stack_without_a_docker_host_is_refused(deploy, monkeypatch, ci):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for name in ("CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    if ci:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for stack in ("prod", "dev"):
        run = deploy(stack, drop=("docker:host",))
        message = str(run.error)
        assert "docker:host = (missing): required to deploy stack " + stack in message
        assert ("onto the CI runner's own daemon" in message) is ci
        assert run.resources == []


def test_docker_host_from_the_environment_is_enough(deploy, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@platform-host.test")
    run = deploy("prod", drop=("docker:host",))
    assert run.error is None, run.error


def test_the_local_stack_deploys_to_this_machine(deploy, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("CI", "true")
    run = deploy("local", drop=("docker:host",))
    assert run.error is None, run.error


def test_all_deployment_problems_are_reported_at_once(deploy, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    run = deploy("prod", overrides={"fourlb:dns": json.dumps({"provider": "cloudflare"})},
                 drop=("docker:host", "cloudflare:apiToken"))
    message = str(run.error)
    assert all(key in message for key in ("fourlb:dns.targetIpv4", "docker:host", "cloudflare:apiToken"))
