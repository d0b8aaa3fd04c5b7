"""The backup job of a platform stack, as data: what it archives, where it keeps
the copies, and how it tells Prometheus how it went.

The work itself is done by the scripts in backup/ (POSIX sh, uploaded as they
are): this module only decides their settings and the container's mounts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Optional

from config.models import StackConfig

from .catalog import NOT_SNAPSHOTTED, POSTGRES_USER
from .model import Container, Mount, Upload, secret

SCRIPTS_SOURCE = Path(__file__).resolve().parent.parent / "backup"
SCRIPTS = ("lib.sh", "run", "dump-databases", "snapshot-volumes", "upload", "prune",
           "restore-db", "restore-volume", "fetch-remote", "list", "rotate-access-log",
           "verify-latest")
# Traefik's access log (the traefik_logs volume), kept within a bound by rotate-access-log
ACCESS_LOG_DIR = "/traefik-logs"
ACCESS_LOG_MAX_BYTES = 50 * 1024 * 1024
SCRIPTS_DIR = "/opt/backup"
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


def snapshotted_volumes(containers: list[Container]) -> list[str]:
    used = {m.volume for c in containers for m in c.mounts if m.volume}
    return sorted(used - set(NOT_SNAPSHOTTED))


def with_backup_mounts(containers: list[Container]) -> list[Container]:
    """The backup container reads every volume worth archiving, read-only, and
    node-exporter reads the status file it writes."""
    names = {c.name for c in containers}
    if "backup" not in names:
        return containers
    volumes = snapshotted_volumes(containers)
    result = []
    for container in containers:
        if container.name == "backup":
            archived = tuple(Mount(target=f"{VOLUMES_DIR}/{v}", volume=v, read_only=True)
                             for v in volumes)
            container = replace(container, mounts=container.mounts + archived)
        elif container.name == "node-exporter":
            container = replace(
                container,
                mounts=container.mounts + (
                    Mount(target=TEXTFILE_DIR, volume=METRICS_VOLUME, read_only=True),),
                command=container.command + (f"--collector.textfile.directory={TEXTFILE_DIR}",))
        result.append(container)
    return result


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


def settings(containers: list[Container], config: StackConfig) -> dict[str, str]:
    """The environment every backup script reads (backup/lib.sh, load_config)."""
    values = {
        "BACKUP_DIR": BACKUP_DIR,
        "VOLUMES_DIR": VOLUMES_DIR,
        "METRICS_DIR": METRICS_DIR,
        # restic's snapshot host: stable, unlike a container's hostname
        "BACKUP_HOST": config.platform_domain,
        "LOCAL_RETENTION_DAYS": str(config.backup.local_retention_days),
        "REMOTE_RETENTION_DAYS": str(config.backup.remote_retention_days),
    }
    postgres = next((c for c in containers if c.name == "postgres"), None)
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


def crontab(config: StackConfig) -> str:
    # crond is PID 1: its output is `docker logs backup`
    output = ">/proc/1/fd/1 2>/proc/1/fd/2"
    return (f"{config.backup.schedule} {SCRIPTS_DIR}/run {output}\n"
            f"*/5 * * * * ACCESS_LOG={ACCESS_LOG_DIR}/access.log "
            f"ACCESS_LOG_MAX_BYTES={ACCESS_LOG_MAX_BYTES} {SCRIPTS_DIR}/rotate-access-log {output}\n"
            f"{config.backup.verify_schedule} {SCRIPTS_DIR}/verify-latest {output}\n")


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


def backup_files(containers: list[Container], config: StackConfig) -> tuple[Upload, ...]:
    values = settings(containers, config)
    uploads = [
        Upload(f"{SCRIPTS_DIR}/{name}", (SCRIPTS_SOURCE / name).read_text(),
               mode="0644" if name.endswith(".sh") else "0755")
        for name in SCRIPTS
    ]
    uploads.append(Upload(CRONTAB, crontab(config), mode="0600"))
    uploads.append(Upload(CONFIG_FILE, settings_file(values), mode="0400"))
    if "PGHOST" in values:
        # libpq ignores a password file that others may read
        uploads.append(Upload(PGPASS_FILE, f"{values['PGHOST']}:{values['PGPORT']}:*:"
                              f"{POSTGRES_USER}:{secret('postgres-password')}\n", mode="0400"))
    if "RESTIC_REPOSITORY" in values:
        uploads.append(Upload(RESTIC_PASSWORD_FILE, secret("backup-restic-password"), mode="0400"))
    return tuple(uploads)
