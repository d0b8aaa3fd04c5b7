"""Grafana provisioning: the Prometheus data source and the dashboards, as files.

Grafana reads /etc/grafana/provisioning at start; the uploads replace the
container when they change, so a new dashboard appears with the next `pulumi up`.
"""

from __future__ import annotations

import json
from typing import Any

from config.models import StackConfig

from ..files import to_yaml
from ..model import Container, Upload
from .dashboards import DATASOURCE, all_dashboards

PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/etc/grafana/dashboards/fourlb"


def datasources(prometheus: Container) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{
        "name": "Prometheus",
        "uid": DATASOURCE["uid"],
        "type": DATASOURCE["type"],
        "access": "proxy",
        "url": f"http://{prometheus.address}:{prometheus.port}",
        "isDefault": True,
        "editable": False,
        "jsonData": {"timeInterval": "30s"},  # the scrape interval: rate windows never too short
    }]}


def dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "fourlb",
        "folder": "4lb.ca",
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "options": {"path": DASHBOARDS_DIR},
    }]}


def grafana_files(containers: list[Container], config: StackConfig) -> tuple[Upload, ...]:
    prometheus = next((c for c in containers if c.name == "prometheus"), None)
    if prometheus is None:
        return ()
    uploads = [
        Upload(f"{PROVISIONING}/datasources/prometheus.yml", to_yaml(datasources(prometheus))),
        Upload(f"{PROVISIONING}/dashboards/fourlb.yml", to_yaml(dashboard_provider())),
    ]
    for name, dashboard in all_dashboards(config.alerting).items():
        uploads.append(Upload(f"{DASHBOARDS_DIR}/{name}",
                              json.dumps(dashboard, indent=2, sort_keys=True) + "\n"))
    return tuple(uploads)
