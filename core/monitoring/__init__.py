"""Monitoring generated from the plan: Prometheus (scrape jobs and alert rules),
Alertmanager (email) and Grafana (data source and dashboards), as uploads."""

from .alertmanager import alertmanager_files
from .grafana import grafana_files
from .prometheus import prometheus_files

__all__ = ["alertmanager_files", "grafana_files", "prometheus_files"]
