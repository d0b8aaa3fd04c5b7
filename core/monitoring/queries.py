"""The PromQL the alerts and the dashboards share, so that a panel shows the
very number an alert fires on."""

from __future__ import annotations

import json

# Pseudo and per-container filesystems: never the host's disks.
_REAL_FILESYSTEMS = 'fstype!~"tmpfs|ramfs|devtmpfs|squashfs|overlay|nsfs|fuse\\\\..*"'

# Written by backup/run in node-exporter's textfile format (see backup/lib.sh).
BACKUP_LAST_SUCCESS = "fourlb_backup_last_success_timestamp_seconds"
BACKUP_LAST_STATUS = "fourlb_backup_last_run_status"
# Written by backup/verify-latest, the restore check, in the same directory.
BACKUP_VERIFY_SUCCESS = "fourlb_backup_verify_success"
BACKUP_VERIFY_LAST_RUN = "fourlb_backup_verify_last_run_timestamp_seconds"


def label_value(value: str) -> str:
    """A PromQL string literal (same escapes as JSON)."""
    return json.dumps(value)


def cpu_busy_percent(window: str) -> str:
    return f'100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{window}])))'


def filesystem_used_percent() -> str:
    return (f"100 * (1 - node_filesystem_avail_bytes{{{_REAL_FILESYSTEMS}}}"
            f" / node_filesystem_size_bytes{{{_REAL_FILESYSTEMS}}})")


def memory_used_percent() -> str:
    return "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"


def with_node_name(expr: str) -> str:
    """Each series of `expr` (per node-exporter target) with the name of the node it
    comes from: on a swarm each node-exporter task carries its node's hostname
    (core.swarm.NODE_HOSTNAME), which node_uname_info reports as `nodename`."""
    return f"({expr}) * on (instance) group_left (nodename) node_uname_info"


def targets_fewer_than_in_the_last_hour() -> str:
    """Per job, fewer targets found than at any time of the hour before the last
    10 minutes. The lowest count of that hour, so that the extra task of a
    start-first update does not count as one lost; 10 minutes back, so that a
    loss stays visible (for an hour) instead of lowering the count it is compared with."""
    found = "count by (job) (up)"
    return f"{found} < min_over_time({found}[1h:] offset 10m)"


def container_restarts(window: str) -> str:
    # cAdvisor keeps a restarted container's series and changes its start time
    return f'changes(container_start_time_seconds{{name!=""}}[{window}])'


def server_error_ratio(window: str) -> str:
    errors = f'sum by (service) (rate(traefik_service_requests_total{{code=~"5.."}}[{window}]))'
    total = f"sum by (service) (rate(traefik_service_requests_total[{window}]))"
    return f"{errors} / {total}"


def certificate_days_left() -> str:
    return "(traefik_tls_certs_not_after - time()) / 86400"


def backup_age_seconds() -> str:
    return f"time() - {BACKUP_LAST_SUCCESS}"


def backup_verify_age_seconds() -> str:
    return f"time() - {BACKUP_VERIFY_LAST_RUN}"
