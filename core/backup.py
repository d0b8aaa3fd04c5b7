"""The backup job of a platform stack, as data: what it archives, where it keeps
the copies, and how it tells Prometheus how it went.

The work itself is done by the scripts in backup/ (POSIX sh, uploaded as they
are): this module only decides their settings and the container's mounts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from config.models import StackConfig

from .catalog import NOT_SNAPSHOTTED, POSTGRES_USER
from .model import Container, Mount, Upload, secret

SCRIPTS_SOURCE = Path(__file__).resolve().parent.parent / "backup"
SCRIPTS = ("lib.sh", "run", "dump-databases", "snapshot-volumes", "upload", "prune",
           "restore-db", "restore-volume", "fetch-remote", "list", "rotate-access-log")
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
            f"ACCESS_LOG_MAX_BYTES={ACCESS_LOG_MAX_BYTES} {SCRIPTS_DIR}/rotate-access-log {output}\n")


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
