"""Everyday changes reach the edge and the monitoring by reload, never by a
restart: under mocks, the real __main__.py's inputs of traefik, prometheus,
alertmanager and grafana stay exactly the same, and only their writers (which
install the files the services re-read, core/live_config.py) change."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components.connection import CONTAINER_VAR, NETWORK_VAR
from tests.mocks import DOCKER_HOST, PROJECT_DIR, plain, stack_config

COMMAND = "command:local:Command"
LONG_LIVED = ("traefik", "prometheus", "alertmanager", "grafana")
WRITERS = tuple(f"{name}-config" for name in LONG_LIVED)


def _values(key: str) -> dict:
    config, _ = stack_config("prod")
    return json.loads(config[key]) if key in config else {}


def _sites_plus_one() -> str:
    sites = _values("fourlb:sites")
    sites["toilettage"] = {"image": "toilettage-web:1.0.0", "hostnames": ["shop.jsr-solutions.ca"]}
    return json.dumps(sites)


CHANGES = {
    "rate limit": {"overrides": {"fourlb:rateLimits": json.dumps({"defaultPerMinute": 120})}},
    "admin allow-list": {"overrides": {"fourlb:adminAllowIps": json.dumps(["149.56.10.0/24"])}},
    "admin password": {"secrets": {"fourlb:adminPassword": "a-new-admin-password"}},
    "alert threshold": {"overrides": {"fourlb:alerting": json.dumps(
        {**_values("fourlb:alerting"), "cpuPercent": 75})}},
    "client site added": {"overrides": {"fourlb:sites": _sites_plus_one()}},
}


def inputs(run, name: str) -> dict:
    return plain(run.containers[name].inputs)


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_everyday_change_restarts_nothing_long_lived(deploy, prod_run, change):
    changed = deploy("prod", **CHANGES[change])
    assert changed.error is None, changed.error
    for name in LONG_LIVED:
        assert inputs(changed, name) == inputs(prod_run, name), f"{change} would replace {name}"
    moved = [w for w in WRITERS if inputs(changed, w) != inputs(prod_run, w)]
    assert moved, f"{change} reaches no writer: where did it go?"


def test_a_rotated_bouncer_key_replaces_the_edge_and_crowdsec_only(deploy, prod_run):
    """The exception: the bouncer plugin reads its key once per Traefik process
    (core/bouncer_key.py), so the key is a file of Traefik's, and a new one
    replaces Traefik and CrowdSec, and nothing else long-lived."""
    changed = deploy("prod", secrets={"fourlb:crowdsecBouncerKey": "a-new-bouncer-key"})
    assert changed.error is None, changed.error
    for name in ("traefik", "crowdsec"):
        before, after = inputs(prod_run, name), inputs(changed, name)
        assert {key for key in before if before[key] != after[key]} == {"uploads"}, name
    for name in LONG_LIVED[1:]:
        assert inputs(changed, name) == inputs(prod_run, name), name


def test_a_client_site_added_connects_the_edge_to_its_network(deploy, prod_run):
    """The edge joins the new site's own network (core.networks) by a connection
    of its own, made while it runs: its container's inputs stay the same."""
    changed = deploy("prod", overrides={"fourlb:sites": _sites_plus_one()})
    assert changed.error is None, changed.error
    def connections(run) -> dict[str, dict]:
        return {r.name: plain(r.inputs) for r in run.of_type(COMMAND)
                if CONTAINER_VAR in (r.inputs.get("environment") or {})}
    new = {name: c for name, c in connections(changed).items()
           if name not in connections(prod_run)}
    assert list(new) == ["traefik-on-edge-toilettage"], new
    connection = new["traefik-on-edge-toilettage"]
    assert connection["environment"] == {NETWORK_VAR: "edge-toilettage", CONTAINER_VAR: "traefik-id",
                                         "DOCKER_HOST": DOCKER_HOST}
    assert "docker network connect" in connection["create"]
    assert "docker network disconnect" in connection["delete"]
    assert "edge-toilettage" not in [n["name"] for n in inputs(changed, "traefik")["networksAdvanced"]]


@pytest.fixture(scope="module")
def prod_run(deploy):
    run = deploy("prod")
    assert run.error is None, run.error
    return run


SITE_ADDED = """    toilettage:
      image: toilettage-web:1.0.0
      hostnames:
        - shop.jsr-solutions.ca
"""
STACK_EDITS = {  # (text to find in Pulumi.prod.yaml, text to put after it, what a writer replaces)
    "rate limit": ("config:\n", "  fourlb:rateLimits:\n    defaultPerMinute: 120\n", "traefik-config"),
    "client site added": ("  fourlb:sites:\n", SITE_ADDED, "prometheus-config"),
}


@pytest.mark.parametrize("edit", list(STACK_EDITS))
def test_plan_diff_shows_no_edge_restart(tmp_path, edit):
    anchor, added, writer = STACK_EDITS[edit]
    project = tmp_path / "project"
    subprocess.run(["git", "clone", "-q", str(PROJECT_DIR), str(project)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(project), "checkout", "-q", "--detach"], check=True)
    stack_file = project / "Pulumi.prod.yaml"
    assert anchor in stack_file.read_text()
    stack_file.write_text(stack_file.read_text().replace(anchor, anchor + added, 1))
    result = subprocess.run([sys.executable, "-m", "plan", "diff", "prod", "--base", "HEAD"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    replaced = [line for line in result.stdout.splitlines() if " replaced" in line]
    assert replaced and all(line.split()[1] == writer for line in replaced), replaced
    if edit == "client site added":
        assert "~ traefik updated: connected_networks (edge-toilettage)" in result.stdout, result.stdout
