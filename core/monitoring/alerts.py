"""Prometheus alert rules, generated from the plan and the stack's thresholds.

Only what the stack runs is watched: host rules need node-exporter, container
rules cAdvisor, backup rules the backup job. Each alert links to its section
of docs/runbook.md, which says what it means and what to do.

Every rule keeps its series apart per target (`instance`): on a swarm that is a
node for node-exporter, cAdvisor and Traefik, so one node's full disk or blind
cAdvisor fires for that node and is never averaged with the others; there the
host alerts also carry the node's name (`nodename`).
"""

from __future__ import annotations

from typing import Any, Iterable

from config.models import AlertingSettings, StackConfig

from ..backup import verify_max_age_seconds
from ..model import Container
from . import queries

RUNBOOK = "docs/runbook.md"


def _number(value: float) -> str:
    return f"{value:g}"


def _alert(name: str, expr: str, severity: str, summary: str, description: str,
           for_: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook": f"{RUNBOOK}#{name.lower()}",
    }
    return rule


def _targets(discovered: bool) -> dict[str, Any]:
    """`discovered`: the targets are found by DNS (a swarm's tasks.<service>)."""
    rules = [_alert(
        "MetricsTargetDown", "up == 0", "warning",
        "Prometheus cannot scrape {{ $labels.job }}",
        "{{ $labels.instance }} has not answered Prometheus for 5 minutes; the alerts "
        "that depend on its metrics cannot fire meanwhile.",
        for_="5m")]
    if discovered:
        # a task that is gone (its node with it) is no longer found: its target
        # ends instead of answering `up == 0`, and nothing else would say so
        rules.append(_alert(
            "MetricsTargetGone", queries.targets_fewer_than_in_the_last_hour(), "critical",
            "Prometheus finds fewer tasks of {{ $labels.job }} than in the last hour",
            "Prometheus finds {{ $value }} task(s) of {{ $labels.job }}, fewer than all of the "
            "last hour: a node, or the task on it, is gone, and the alerts that need its "
            "metrics cannot fire for that node.",
            for_="5m"))
    return {"name": "targets", "rules": rules}


def _host(limits: AlertingSettings, named_nodes: bool) -> dict[str, Any]:
    """`named_nodes`: each alert names its node (queries.with_node_name)."""
    cpu, disk = _number(limits.cpu_percent), _number(limits.disk_percent)
    per_node = queries.with_node_name if named_nodes else (lambda expr: expr)
    where = "{{ $labels.nodename }}" if named_nodes else "{{ $labels.instance }}"
    return {"name": "host", "rules": [
        _alert("HostCpuHigh", per_node(f"{queries.cpu_busy_percent('2m')} > {cpu}"), "warning",
               f"Host CPU above {cpu}% for 5 minutes",
               f"CPU busy at {{{{ $value | printf \"%.0f\" }}}}% on {where}.",
               for_="5m"),
        _alert("FilesystemAlmostFull", per_node(f"{queries.filesystem_used_percent()} > {disk}"),
               "critical",
               f"Filesystem {{{{ $labels.mountpoint }}}} more than {disk}% full",
               "{{ $labels.mountpoint }} ({{ $labels.device }}) is "
               "{{ $value | printf \"%.1f\" }}% used" + (f" on {where}." if named_nodes else "."),
               for_="5m"),
    ]}


def _containers(containers: Iterable[Container], stack: str) -> dict[str, Any]:
    # cAdvisor exports Docker labels as container_label_*: `fourlb.service` is the
    # stable name whatever the Docker name's suffix, `fourlb.stack` keeps another
    # stack's containers on the same host out of this one's expectations.
    stack_value = queries.label_value(stack)
    missing = " or ".join(
        f"absent(container_last_seen{{container_label_fourlb_stack={stack_value},"
        f"container_label_fourlb_service={queries.label_value(c.name)}}})"
        for c in sorted(containers, key=lambda c: c.name))
    return {"name": "containers", "rules": [
        _alert("ContainerDown", missing, "critical",
               "Container {{ $labels.container_label_fourlb_service }} is not running",
               "cAdvisor has not seen {{ $labels.container_label_fourlb_service }} of stack "
               "{{ $labels.container_label_fourlb_stack }} running for 5 minutes.",
               for_="5m"),
        # a cAdvisor answers and sees none of the stack's containers: its Docker
        # factory did not register at start (proxy not answering), and it never
        # retries; every ContainerDown would fire too, for the wrong reason. Per
        # cAdvisor (one per node on a swarm): another one's containers do not count
        _alert("ContainerMetricsBlind",
               f'up{{job="cadvisor"}} == 1 unless on (instance) count by (instance) '
               f"(container_last_seen{{container_label_fourlb_stack={stack_value}}}) > 0",
               "critical", "cAdvisor sees no container of this stack",
               "cAdvisor answers Prometheus but reports none of the stack's containers: it could "
               "not reach Docker through the socket proxy when it started. Restart it.",
               for_="5m"),
        _alert("ContainerRestartLoop", f"{queries.container_restarts('15m')} >= 3", "warning",
               "Container {{ $labels.name }} keeps restarting",
               "{{ $labels.name }} started {{ $value }} times in 15 minutes.",
               for_="1m"),
    ]}


def _edge(limits: AlertingSettings) -> dict[str, Any]:
    days, ratio = limits.cert_days, _number(limits.server_error_ratio)
    return {"name": "edge", "rules": [
        _alert("CertificateExpiringSoon", f"{queries.certificate_days_left()} < {days}", "critical",
               f"TLS certificate {{{{ $labels.cn }}}} expires in less than {days} days",
               "Traefik's certificate for {{ $labels.sans }} expires in "
               "{{ $value | printf \"%.1f\" }} days: renewal is failing.",
               for_="1h"),
        _alert("ServerErrorRatioHigh", f"{queries.server_error_ratio('5m')} > {ratio}", "warning",
               f"More than {_number(limits.server_error_ratio * 100)}% of "
               "{{ $labels.service }}'s answers are 5xx",
               "{{ $value | humanizePercentage }} of the requests Traefik sent to "
               "{{ $labels.service }} ended in a server error over 5 minutes.",
               for_="10m"),
    ]}


def _duration(seconds: int) -> str:
    """A Prometheus duration: whole hours when it is some, minutes otherwise."""
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def _backup(limits: AlertingSettings, verify_max_age: int) -> dict[str, Any]:
    hours = limits.backup_max_age_hours
    max_age = hours * 3600
    verify_hours = _number(verify_max_age / 3600)
    return {"name": "backup", "rules": [
        _alert("BackupFailed", f"{queries.BACKUP_LAST_STATUS} == 0", "critical",
               "The last backup run failed",
               "backup/run exited with an error; `docker logs backup` says which step."),
        _alert("BackupTooOld", f"{queries.backup_age_seconds()} > {max_age}", "critical",
               f"No successful backup for more than {hours} hours",
               "The last successful backup ended {{ $value | humanizeDuration }} ago."),
        # never succeeded, or its status file is gone: once a whole period has
        # passed that way (a fresh install gets a day to make its first backup)
        _alert("BackupStatusMissing", f"absent({queries.BACKUP_LAST_SUCCESS})", "critical",
               f"No successful backup on record for {hours} hours",
               "node-exporter publishes no fourlb_backup_last_success_timestamp_seconds: "
               "the backup never succeeded, or its status file cannot be read.",
               for_=f"{hours}h"),
        # the restore check (backup/verify-latest) of the newest run
        _alert("BackupVerifyFailed", f"{queries.BACKUP_VERIFY_SUCCESS} == 0", "critical",
               "The newest backup failed its restore check",
               "backup/verify-latest could not restore or verify every artifact of the newest "
               "run: `docker logs backup` names each failure, and "
               "fourlb_backup_verify_artifact_success is 0 for each artifact that failed."),
        # derived from fourlb:backup.verifySchedule: its longest gap plus slack
        _alert("BackupVerifyTooOld", f"{queries.backup_verify_age_seconds()} > {verify_max_age}",
               "warning", f"No restore check of the backups for more than {verify_hours} hours",
               "The last restore check ended {{ $value | humanizeDuration }} ago: its scheduled "
               "runs do not happen."),
        _alert("BackupVerifyStatusMissing", f"absent({queries.BACKUP_VERIFY_LAST_RUN})", "warning",
               f"No restore check of the backups on record for {verify_hours} hours",
               "node-exporter publishes no fourlb_backup_verify_last_run_timestamp_seconds: the "
               "restore check never ran, or its status file cannot be read.",
               for_=_duration(verify_max_age)),
    ]}


def _reloads(running: set[str]) -> dict[str, Any]:
    """A configuration the service refused to reload: it keeps running the old
    one, and nothing else would say so (its writer's check passed)."""
    rules = []
    if "prometheus" in running:
        rules.append(_alert(
            "PrometheusConfigReloadFailed", "prometheus_config_last_reload_successful == 0",
            "critical", "Prometheus refused its new configuration",
            "Prometheus's last reload failed: it still runs the previous configuration and "
            "alert rules, so a new scrape target, threshold or rule is not in effect.",
            for_="2m"))
    if "alertmanager" in running:
        rules.append(_alert(
            "AlertmanagerConfigReloadFailed", "alertmanager_config_last_reload_successful == 0",
            "critical", "Alertmanager refused its new configuration",
            "Alertmanager's last reload failed: it still routes alerts by the previous "
            "configuration (receivers, SMTP settings).",
            for_="2m"))
    return {"name": "reloads", "rules": rules}


def alert_rules(containers: list[Container], config: StackConfig, stack: str) -> dict[str, Any]:
    """The rules file: one group per thing watched."""
    limits = config.alerting
    running = {c.name for c in containers}
    on_a_swarm = config.engine == "swarm"  # targets found by DNS (core.monitoring.prometheus)
    groups = [_targets(discovered=on_a_swarm)]
    if "node-exporter" in running:
        groups.append(_host(limits, named_nodes=on_a_swarm))
    if "cadvisor" in running:
        groups.append(_containers(containers, stack))
    if "traefik" in running:
        groups.append(_edge(limits))
    if "backup" in running:
        groups.append(_backup(limits, verify_max_age_seconds(config)))
    if {"prometheus", "alertmanager"} & running:
        groups.append(_reloads(running))
    return {"groups": groups}
