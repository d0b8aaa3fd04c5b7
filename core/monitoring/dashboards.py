"""Grafana dashboards for the host, the containers and Traefik, as data.

Small on purpose: the panels an operator opens when an alert arrives, each
drawing the query the alert fires on, with the alert's threshold in red.
"""

from __future__ import annotations

from typing import Any, Optional

from config.models import AlertingSettings

from . import queries

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"  # Grafana's window: at least four scrape intervals
_WIDTH, _HEIGHT = 12, 8  # two panels per row on Grafana's 24-column grid


def _thresholds(red_above: Optional[float], red_below: Optional[float] = None) -> dict[str, Any]:
    if red_below is not None:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": red_below}]
    else:
        steps = [{"color": "green", "value": None}]
        if red_above is not None:
            steps.append({"color": "red", "value": red_above})
    return {"mode": "absolute", "steps": steps}


def _panel(title: str, targets: list[tuple[str, str]], unit: str, kind: str = "timeseries",
           red_above: Optional[float] = None, red_below: Optional[float] = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "thresholds": _thresholds(red_above, red_below)}
    if kind == "timeseries" and (red_above is not None or red_below is not None):
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": expr,
             "legendFormat": legend}
            for index, (expr, legend) in enumerate(targets)
        ],
    }


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    placed = []
    for index, panel in enumerate(panels):
        placed.append({
            "id": index + 1,
            "gridPos": {"x": (index % 2) * _WIDTH, "y": (index // 2) * _HEIGHT,
                        "w": _WIDTH, "h": _HEIGHT},
            **panel,
        })
    return {
        "uid": uid,
        "title": title,
        "tags": ["fourlb"],
        "editable": False,  # provisioned: an edit in the UI would be lost on restart
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": placed,
    }


def host(limits: AlertingSettings) -> dict[str, Any]:
    net = 'device!~"lo|veth.*|br-.*|docker.*"'
    return _dashboard("fourlb-host", "Host", [
        _panel("CPU busy", [(queries.cpu_busy_percent(RATE), "{{instance}}")], "percent",
               red_above=limits.cpu_percent),
        _panel("Memory used", [(queries.memory_used_percent(), "{{instance}}")], "percent"),
        _panel("Filesystem used", [(queries.filesystem_used_percent(), "{{mountpoint}}")],
               "percent", red_above=limits.disk_percent),
        _panel("Load average", [("node_load1", "1 min"), ("node_load5", "5 min"),
                                ("node_load15", "15 min")], "short"),
        _panel("Network", [
            (f"rate(node_network_receive_bytes_total{{{net}}}[{RATE}])", "in {{device}}"),
            (f"rate(node_network_transmit_bytes_total{{{net}}}[{RATE}])", "out {{device}}"),
        ], "Bps"),
        _panel("Hours since the last successful backup",
               [(f"({queries.backup_age_seconds()}) / 3600", "backup")], "h", kind="stat",
               red_above=limits.backup_max_age_hours),
    ])


def containers() -> dict[str, Any]:
    named = 'name!=""'
    return _dashboard("fourlb-containers", "Containers", [
        _panel("CPU (cores)",
               [(f"sum by (name) (rate(container_cpu_usage_seconds_total{{{named}}}[{RATE}]))",
                 "{{name}}")], "short"),
        _panel("Memory (working set)",
               [(f"sum by (name) (container_memory_working_set_bytes{{{named}}})", "{{name}}")],
               "bytes"),
        _panel("Network in",
               [(f"sum by (name) (rate(container_network_receive_bytes_total{{{named}}}[{RATE}]))",
                 "{{name}}")], "Bps"),
        _panel("Restarts in 15 minutes", [(queries.container_restarts("15m"), "{{name}}")],
               "short", red_above=3),
    ])


def traefik(limits: AlertingSettings) -> dict[str, Any]:
    return _dashboard("fourlb-traefik", "Traefik", [
        _panel("Requests per second",
               [(f"sum by (service) (rate(traefik_service_requests_total[{RATE}]))",
                 "{{service}}")], "reqps"),
        _panel("Share of 5xx answers", [(queries.server_error_ratio(RATE), "{{service}}")],
               "percentunit", red_above=limits.server_error_ratio),
        _panel("Latency (95th percentile)",
               [("histogram_quantile(0.95, sum by (le, service) "
                 f"(rate(traefik_service_request_duration_seconds_bucket[{RATE}])))",
                 "{{service}}")], "s"),
        _panel("Certificate days left",
               [(f"min by (cn) ({queries.certificate_days_left()})", "{{cn}}")], "d",
               kind="stat", red_below=limits.cert_days),
    ])


def all_dashboards(limits: AlertingSettings) -> dict[str, dict[str, Any]]:
    """file name -> dashboard"""
    return {"host.json": host(limits), "containers.json": containers(),
            "traefik.json": traefik(limits)}
