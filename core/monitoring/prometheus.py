"""prometheus.yml and its rules file, from the containers of the plan.

Every container whose catalog entry has a `metrics_path` is scraped by its
stable network alias on one host. On a swarm, each task of its service is
found by DNS (`tasks.<service>`): the service's name answers its virtual IP,
which hands each scrape to any one task, and a global service has a task on
each node. The backup job's status needs no job of its own: it is a file that
node-exporter's textfile collector exposes (see core.backup).

Both files are uploads: a change replaces the (stop-first) container, and the
new Prometheus starts with them, so no reload call is needed.
"""

from __future__ import annotations

from typing import Any

from config.models import StackConfig

from ..catalog import SERVICES_BY_NAME
from ..files import to_yaml
from ..model import Container, Upload
from .alerts import alert_rules

CONFIG_FILE = "/etc/prometheus/prometheus.yml"
RULES_FILE = "/etc/prometheus/rules/fourlb.yml"
# relative to the configuration file, so that `promtool check config` finds the
# rules wherever the two files are written with the same layout
_RULES_GLOB = "rules/*.yml"
SCRAPE_INTERVAL = "30s"


def metrics_path(container: Container) -> str | None:
    spec = SERVICES_BY_NAME.get(container.name)
    return spec.metrics_path if spec else None


def scrape_jobs(containers: list[Container], each_task: bool = False) -> list[dict[str, Any]]:
    """`each_task`: every task of a swarm service, by its own address."""
    return [
        {
            "job_name": container.name,
            "metrics_path": metrics_path(container),
            **(_each_task(container) if each_task else _the_container(container)),
        }
        for container in sorted(containers, key=lambda c: c.name)
        if metrics_path(container) and container.port
    ]


def _the_container(container: Container) -> dict[str, Any]:
    return {"static_configs": [{"targets": [f"{container.address}:{container.port}"]}]}


def _each_task(container: Container) -> dict[str, Any]:
    """One A record per running task (its address on the network it shares with
    Prometheus), read again every 30 s: a task that stops is no longer a target,
    so its `up` series ends instead of turning 0 (alerts.MetricsTargetGone)."""
    return {"dns_sd_configs": [{"names": [f"tasks.{container.name}"], "type": "A",
                                "port": container.port}]}


def prometheus_config(containers: list[Container], stack: str,
                      each_task: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            # says which stack an alert comes from, in the email too
            "external_labels": {"stack": stack},
        },
        "rule_files": [_RULES_GLOB],
        "scrape_configs": scrape_jobs(containers, each_task),
    }
    alertmanager = next((c for c in containers if c.name == "alertmanager"), None)
    if alertmanager:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"alertmanager:{alertmanager.port}"]}]}]}
    return config


def prometheus_files(containers: list[Container], config: StackConfig, stack: str) -> tuple[Upload, ...]:
    on_a_swarm = config.engine == "swarm"
    return (
        Upload(CONFIG_FILE, to_yaml(prometheus_config(containers, stack, each_task=on_a_swarm))),
        Upload(RULES_FILE, to_yaml(alert_rules(containers, config, stack))),
    )
