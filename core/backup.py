"""The backup job of a platform stack, as data: what it archives, where it keeps
the copies, and how it tells Prometheus how it went.

On one Docker host one container, `backup`, looks after all of it. On a swarm
a named volume is local to its node (core.swarm, `volume_holders`), so each node
role that holds something to back up runs a backup of its own there,
`backup-<node role>`: it archives the volumes of its node only, dumps the
database if PostgreSQL runs there and rotates Traefik's access log if Traefik
runs there. Where a service keeps volumes on each node of its role (the
edge's Traefik), the role's backup runs on each of those nodes too. All of them
run at the stack's schedule into the stack's one repository, each under a
restic snapshot host of its own (`<domain>/<node role>`, and
`<domain>/<node role>/<node's hostname>` on each node of such a role): that
host is what its list, retention and fetch-remote read, so a node's restore
finds that node's snapshots.

The work itself is done by the scripts in backup/ (POSIX sh, uploaded as they
are): this module only decides their settings and the container's mounts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable, Optional

from config.models import StackConfig

from .catalog import DATA_NET, NOT_SNAPSHOTTED, POSTGRES_USER
from .model import Container, Mount, Upload, secret
from .swarm import NODE_HOSTNAME, node_role_of, roles_kept_on_each_node, volume_holders

SCRIPTS_SOURCE = Path(__file__).resolve().parent.parent / "backup"
SCRIPTS = ("lib.sh", "scheduler", "run", "dump-databases", "snapshot-volumes", "upload", "prune",
           "restore-db", "restore-volume", "fetch-remote", "list", "rotate-access-log",
           "verify-latest")
BACKUP = "backup"  # the catalog's service (its kind too), and its container on one host
DATABASE = "postgres"  # the server dump-databases dumps
# Traefik's access log (the traefik_logs volume), kept within a bound by rotate-access-log
ACCESS_LOG_VOLUME = "traefik_logs"
ACCESS_LOG_DIR = "/traefik-logs"
ACCESS_LOG_MAX_BYTES = 50 * 1024 * 1024
SCRIPTS_DIR = "/opt/backup"
# On a swarm the nodes' backups share one repository at one hour, and restic's
# forget --prune locks it for itself: the nodes' crontabs put this directory
# first in PATH, where a restic that waits for another node's lock is
# (backup/restic-when-unlocked)
WAITING_RESTIC_SOURCE = "restic-when-unlocked"
WAITING_RESTIC_DIR = f"{SCRIPTS_DIR}/when-unlocked"
CONFIG_FILE = "/etc/backup/backup.env"  # the scripts' default BACKUP_CONFIG
PGPASS_FILE = "/etc/backup/pgpass"
RESTIC_PASSWORD_FILE = "/etc/backup/restic-password"
CRONTAB = "/etc/crontabs/root"  # busybox crond, as root
BACKUP_DIR = "/backups"
VOLUMES_DIR = "/volumes"
METRICS_DIR = "/metrics"
METRICS_VOLUME = "backup_metrics"
TEXTFILE_DIR = "/textfile"  # where node-exporter reads the backup's status
# a restore check counts as overdue once its schedule's longest gap and this have passed:
# it waits up to 3 hours for a running backup, then restores everything
VERIFY_SLACK_SECONDS = 6 * 3600


@dataclass(frozen=True)
class BackupScope:
    """What one backup container looks after."""

    name: str  # its container's
    node_role: Optional[str]  # None: everything of one Docker host
    archived: tuple[str, ...]  # volumes archived as files (mounted read-only)
    dumps_databases: bool  # PostgreSQL runs here (pg_dump reaches it on data-net)
    rotates_access_log: bool  # Traefik writes its access log here
    on_each_node: bool = False  # one task on each node of its role, each with its own data


def is_backup(container: Container) -> bool:
    """One of the plan's backup containers (on a swarm there is one per node role)."""
    return container.role == BACKUP


def node_backup_name(node_role: str) -> str:
    return f"{BACKUP}-{node_role}"


def snapshotted_volumes(containers: Iterable[Container]) -> list[str]:
    used = {m.volume for c in containers for m in c.mounts if m.volume}
    return sorted(used - set(NOT_SNAPSHOTTED))


def backup_scopes(containers: Iterable[Container], config: StackConfig) -> tuple[BackupScope, ...]:
    """The backups of the plan whose containers are `containers` (with the backup
    as the catalog declares it, or as this module made it): none when the stack
    runs none, one on one Docker host, one per node role on a swarm."""
    containers = list(containers)
    if not any(is_backup(c) for c in containers):
        return ()
    data = [c for c in containers if not is_backup(c)]
    if config.swarm is None:
        return (BackupScope(BACKUP, None, tuple(snapshotted_volumes(data)),
                            dumps_databases=any(c.name == DATABASE for c in data),
                            rotates_access_log=True),)
    return _node_scopes(data, config)


def _node_scopes(data: list[Container], config: StackConfig) -> tuple[BackupScope, ...]:
    """One backup per node role that holds a volume to archive, the database or
    Traefik's access log."""
    holders = volume_holders(data, config)
    # a volume no node role holds yet is refused by core.swarm.swarm_plan
    archived = [v for v in snapshotted_volumes(data) if v in holders]
    database = next((c for c in data if c.name == DATABASE), None)
    database_role = node_role_of(database, config) if database else None
    access_log_role = holders.get(ACCESS_LOG_VOLUME)
    on_each_node = roles_kept_on_each_node(data, config)
    roles = {holders[v] for v in archived} | {database_role, access_log_role}
    return tuple(
        BackupScope(node_backup_name(role), role,
                    archived=tuple(v for v in archived if holders[v] == role),
                    dumps_databases=role == database_role,
                    rotates_access_log=role == access_log_role,
                    on_each_node=role in on_each_node)
        for role in sorted(r for r in roles if r))


def with_backups(containers: list[Container], config: StackConfig) -> list[Container]:
    """The catalog's backup container made into the plan's backups (one, or one
    per node role on a swarm), each with the volumes it reads and the files it
    runs; and node-exporter reading the status the backup writes."""
    if not any(c.name == BACKUP for c in containers):
        return containers
    scopes = backup_scopes(containers, config)
    result = []
    for container in containers:
        if container.name == BACKUP:
            result += [_backup_container(container, scope, containers, config) for scope in scopes]
        elif container.name == "node-exporter":
            result.append(_reading_backup_status(container))
        else:
            result.append(container)
    return result


def _backup_container(base: Container, scope: BackupScope, containers: list[Container],
                      config: StackConfig) -> Container:
    own = tuple(m for m in base.mounts if m.volume != ACCESS_LOG_VOLUME or scope.rotates_access_log)
    archived = tuple(Mount(target=f"{VOLUMES_DIR}/{v}", volume=v, read_only=True)
                     for v in scope.archived)
    # a file is the same on every node: a task on each node has its host in its env
    env = (("BACKUP_HOST", snapshot_host(scope, config)),) if scope.on_each_node else ()
    return replace(base, name=scope.name, node_role=scope.node_role, mounts=own + archived,
                   networks=_networks(base, scope), env=base.env + env,
                   uploads=base.uploads + backup_files(scope, containers, config))


def _networks(base: Container, scope: BackupScope) -> tuple[str, ...]:
    if scope.node_role is None:
        return base.networks  # one Docker host: the catalog's, as they always were
    # a node's backup that dumps no database reaches none of the data services
    return tuple(n for n in base.networks if n != DATA_NET or scope.dumps_databases)


def _reading_backup_status(exporter: Container) -> Container:
    return replace(
        exporter,
        mounts=exporter.mounts + (Mount(target=TEXTFILE_DIR, volume=METRICS_VOLUME, read_only=True),),
        command=exporter.command + (f"--collector.textfile.directory={TEXTFILE_DIR}",))


def _shell_value(value: str) -> str:
    if "'" in value or "\n" in value:
        raise ValueError(f"not a single-quotable shell value: {value!r}")
    return f"'{value}'"


def restic_repository(config: StackConfig) -> Optional[str]:
    remote = config.backup.remote
    if remote is None:
        return None
    prefix = remote.prefix or config.platform_domain
    return f"s3:{remote.endpoint}/{remote.bucket}/{prefix}"


def snapshot_host(scope: BackupScope, config: StackConfig) -> str:
    """restic's host of a backup's snapshots: stable, unlike a container's hostname,
    and one per node on a swarm (each node's list, retention and fetch-remote read
    its own). On each node of a role, the swarm puts the node's hostname in."""
    if scope.node_role is None:
        return config.platform_domain
    if scope.on_each_node:
        return f"{config.platform_domain}/{scope.node_role}/{NODE_HOSTNAME}"
    return f"{config.platform_domain}/{scope.node_role}"


def settings(scope: BackupScope, containers: list[Container], config: StackConfig) -> dict[str, str]:
    """The environment every backup script reads (backup/lib.sh, load_config)."""
    values = {
        "BACKUP_DIR": BACKUP_DIR,
        "VOLUMES_DIR": VOLUMES_DIR,
        "METRICS_DIR": METRICS_DIR,
        # on each node of a role: the task's env (_backup_container)
        **({} if scope.on_each_node else {"BACKUP_HOST": snapshot_host(scope, config)}),
        "LOCAL_RETENTION_DAYS": str(config.backup.local_retention_days),
        "REMOTE_RETENTION_DAYS": str(config.backup.remote_retention_days),
    }
    postgres = next((c for c in containers if c.name == DATABASE), None) if scope.dumps_databases else None
    if postgres:
        values.update({"PGHOST": "postgres", "PGPORT": str(postgres.port or 5432),
                       "PGUSER": POSTGRES_USER, "PGPASSFILE": PGPASS_FILE})
    repository = restic_repository(config)
    if repository:
        remote = config.backup.remote
        assert remote is not None
        values.update({
            "RESTIC_REPOSITORY": repository,
            "RESTIC_PASSWORD_FILE": RESTIC_PASSWORD_FILE,
            # kept with the backups: survives a replaced container, never archived
            "RESTIC_CACHE_DIR": f"{BACKUP_DIR}/.restic-cache",
            "AWS_ACCESS_KEY_ID": secret("backup-s3-access-key-id"),
            "AWS_SECRET_ACCESS_KEY": secret("backup-s3-secret-access-key"),
        })
        if remote.region:
            values["S3_REGION"] = remote.region
    return values


def settings_file(values: dict[str, str]) -> str:
    lines = ["# Settings of the backup scripts, written by the fourlb program."]
    lines += [f"{key}={_shell_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def waits_for_other_nodes(scope: BackupScope, config: StackConfig) -> bool:
    """A node's backup of a swarm that uploads: it shares the repository with the
    other nodes' backups, which run at the same hour."""
    return scope.node_role is not None and restic_repository(config) is not None


def crontab(scope: BackupScope, config: StackConfig) -> str:
    # crond's parent is PID 1 (backup/scheduler): its output is `docker logs backup`
    output = ">/proc/1/fd/1 2>/proc/1/fd/2"
    # busybox crond runs each line with sh and its own PATH
    path = f"PATH={WAITING_RESTIC_DIR}:$PATH " if waits_for_other_nodes(scope, config) else ""
    lines = [f"{config.backup.schedule} {path}{SCRIPTS_DIR}/run {output}"]
    if scope.rotates_access_log:
        lines.append(f"*/5 * * * * ACCESS_LOG={ACCESS_LOG_DIR}/access.log "
                     f"ACCESS_LOG_MAX_BYTES={ACCESS_LOG_MAX_BYTES} {SCRIPTS_DIR}/rotate-access-log {output}")
    lines.append(f"{config.backup.verify_schedule} {SCRIPTS_DIR}/verify-latest {output}")
    return "".join(line + "\n" for line in lines)


# minute, hour, day of month, month, day of week (busybox crond: 7 is Sunday too)
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _cron_values(field: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in field.split(","):
        spec, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else (0 if slash else 1)
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = int(first or -1), int(last or -1)
        else:
            start = int(spec) if spec.isdigit() else -1
            end = high if slash else start
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"'{part}' is not within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def cron_period_seconds(expression: str) -> int:
    """The longest time between two consecutive runs of a 5-field cron schedule
    (UTC, busybox crond's rules: when both day fields are restricted, either
    one matching is enough), found over eight years of calendar."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("not a 5-field cron expression")
    minutes, hours, days, months, weekdays = (
        _cron_values(f, low, high) for f, (low, high) in zip(fields, _CRON_RANGES))
    weekdays = frozenset(d % 7 for d in weekdays)
    either_day = days != frozenset(range(1, 32)) and weekdays != frozenset(range(7))

    def runs_on(day: date) -> bool:
        by_date, by_weekday = day.day in days, day.isoweekday() % 7 in weekdays
        return day.month in months and ((by_date or by_weekday) if either_day
                                        else (by_date and by_weekday))

    times = sorted(h * 60 + m for h in hours for m in minutes)  # minutes of a day
    start = date(2024, 1, 1)
    run_days = [start + timedelta(days=n) for n in range(8 * 366) if runs_on(start + timedelta(days=n))]
    if len(run_days) < 2:
        raise ValueError("it runs less than twice in eight years")
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    gaps += [(later - earlier).days * 1440 - times[-1] + times[0]
             for earlier, later in zip(run_days, run_days[1:])]
    return max(gaps) * 60


def verify_max_age_seconds(config: StackConfig) -> int:
    """How old the last restore check may be before it counts as overdue."""
    schedule = config.backup.verify_schedule
    try:
        return cron_period_seconds(schedule) + VERIFY_SLACK_SECONDS
    except ValueError as error:
        raise ValueError(f"fourlb:backup.verifySchedule = {schedule!r}: allowed: a cron "
                         f"expression that runs at least yearly ({error})") from error


def backup_files(scope: BackupScope, containers: list[Container],
                 config: StackConfig) -> tuple[Upload, ...]:
    values = settings(scope, containers, config)
    uploads = [
        Upload(f"{SCRIPTS_DIR}/{name}", (SCRIPTS_SOURCE / name).read_text(),
               mode="0644" if name.endswith(".sh") else "0755")
        for name in SCRIPTS
    ]
    uploads.append(Upload(CRONTAB, crontab(scope, config), mode="0600"))
    uploads.append(Upload(CONFIG_FILE, settings_file(values), mode="0400"))
    if "PGHOST" in values:
        # libpq ignores a password file that others may read
        uploads.append(Upload(PGPASS_FILE, f"{values['PGHOST']}:{values['PGPORT']}:*:"
                              f"{POSTGRES_USER}:{secret('postgres-password')}\n", mode="0400"))
    if "RESTIC_REPOSITORY" in values:
        uploads.append(Upload(RESTIC_PASSWORD_FILE, secret("backup-restic-password"), mode="0400"))
    if waits_for_other_nodes(scope, config):
        uploads.append(Upload(f"{WAITING_RESTIC_DIR}/restic",
                              (SCRIPTS_SOURCE / WAITING_RESTIC_SOURCE).read_text(), mode="0755"))
    return tuple(uploads)
