"""Everyday changes reach the edge and the monitoring by reload, never by a
restart: under mocks, the real __main__.py's inputs of traefik, prometheus,
alertmanager and grafana stay exactly the same, and only their writers (which
install the files the services re-read, core/live_config.py) change."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.mocks import PROJECT_DIR, plain, stack_config

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
    "bouncer key rotated": {"secrets": {"fourlb:crowdsecBouncerKey": "a-new-bouncer-key"}},
    "alert threshold": {"overrides": {"fourlb:alerting": json.dumps(
        {**_values("fourlb:alerting"), "cpuPercent": 75})}},
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


def test_a_client_site_added_replaces_the_edge_only_for_its_own_network(deploy, prod_run):
    """The cost of a network per site (core.networks): Traefik joins the new
    site's network, and Docker networks of a container are replace-on-change.
    Only that differs; the monitoring reloads its new scrape rules."""
    changed = deploy("prod", overrides={"fourlb:sites": _sites_plus_one()})
    assert changed.error is None, changed.error
    for name in LONG_LIVED:
        before, after = inputs(prod_run, name), inputs(changed, name)
        if name != "traefik":
            assert after == before, f"a client site added would replace {name}"
            continue
        assert {k: v for k, v in after.items() if k != "networksAdvanced"} == {
            k: v for k, v in before.items() if k != "networksAdvanced"}
        added = ([n["name"] for n in after["networksAdvanced"]],
                 [n["name"] for n in before["networksAdvanced"]])
        assert sorted(set(added[0]) - set(added[1])) == ["edge-toilettage"]
        assert set(added[1]) <= set(added[0])
    assert inputs(changed, "prometheus-config") != inputs(prod_run, "prometheus-config")


@pytest.fixture(scope="module")
def prod_run(deploy):
    run = deploy("prod")
    assert run.error is None, run.error
    return run


def test_plan_diff_shows_no_edge_restart_for_a_rate_limit(tmp_path):
    project = tmp_path / "project"
    subprocess.run(["git", "clone", "-q", str(PROJECT_DIR), str(project)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(project), "checkout", "-q", "--detach"], check=True)
    stack_file = project / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text().replace(
        "config:\n", "config:\n  fourlb:rateLimits:\n    defaultPerMinute: 120\n", 1))
    result = subprocess.run([sys.executable, "-m", "plan", "diff", "prod", "--base", "HEAD"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    replaced = [line for line in result.stdout.splitlines() if " replaced" in line]
    assert replaced and all(line.split()[1] == "traefik-config" for line in replaced), replaced
