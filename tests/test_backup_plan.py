"""The backup job in the plan: what it reads, what it needs, and the settings
that decide it (no servers here; tests/test_backup.py runs the scripts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.backup import cron_period_seconds
from core.edge import load_plan
from core.model import SECRET_PLACEHOLDER, Plan
from tests.plans import prod_plan

PROJECT = Path(__file__).resolve().parent.parent
REMOTE = {"endpoint": "https://s3.ca-central-1.amazonaws.com", "bucket": "fourlb-backups",
          "region": "ca-central-1"}


def settings_of(plan: Plan) -> dict[str, str]:
    content = next(u.content for u in plan.container("backup").uploads
                   if u.path == "/etc/backup/backup.env")
    pairs = (line.split("=", 1) for line in content.splitlines() if line and not line.startswith("#"))
    return {key: value.strip("'") for key, value in pairs}


def test_every_volume_with_data_is_archived_read_only_and_postgres_is_dumped_instead():
    plan = prod_plan()
    backup = plan.container("backup")
    read_only = {m.volume: m.target for m in backup.mounts if m.read_only}
    volumes = {v.name for v in plan.volumes}
    # the data the platform's seed lists, apart from the database files and metrics history
    for name in ("redis_data", "chromadb_data", "traefik_certs", "grafana_data",
                 "open_webui_data", "code_server_data", "crowdsec_config"):
        assert name in volumes and read_only[name] == f"/volumes/{name}", name
    assert "postgres_data" not in read_only and "prometheus_data" not in read_only
    writable = {m.volume for m in backup.mounts if not m.read_only}
    # and Traefik's access log, which it rotates (backup/rotate-access-log)
    assert writable == {"backup_data", "backup_metrics", "traefik_logs"}
    # which the settings name as the place for runs and status
    targets = {m.volume: m.target for m in backup.mounts}
    settings = settings_of(plan)
    assert (targets["backup_data"], targets["backup_metrics"]) == (
        settings["BACKUP_DIR"], settings["METRICS_DIR"])
    assert settings["VOLUMES_DIR"] == "/volumes"


def test_the_database_is_reached_on_the_data_network_with_the_generated_password():
    plan = prod_plan()
    backup = plan.container("backup")
    assert set(backup.networks) & set(plan.container("postgres").networks)
    assert "unified-net" not in backup.networks
    settings = settings_of(plan)
    assert (settings["PGHOST"], settings["PGPORT"], settings["PGUSER"]) == ("postgres", "5432", "fourlb")
    pgpass = next(u for u in backup.uploads if u.path == settings["PGPASSFILE"])
    assert pgpass.content == "postgres:5432:*:fourlb:${secret:postgres-password}\n"
    assert pgpass.mode == "0400"  # libpq ignores a password file others may read


def test_local_only_backups_need_no_secret_of_their_own():
    plan = prod_plan(backup={"schedule": "15 3 * * *"})
    assert "RESTIC_REPOSITORY" not in settings_of(plan)
    assert not {s.name for s in plan.secrets if not s.generated} & {
        "backup-s3-access-key-id", "backup-s3-secret-access-key", "backup-restic-password"}


def test_an_off_site_copy_needs_three_secrets_the_user_provides():
    plan = prod_plan(backup={"remote": REMOTE})
    provided = {s.name: s.config_key for s in plan.secrets
                if not s.generated and s.name.startswith("backup-")}
    assert provided == {"backup-s3-access-key-id": "backupS3AccessKeyId",
                        "backup-s3-secret-access-key": "backupS3SecretAccessKey",
                        "backup-restic-password": "backupResticPassword"}
    settings = settings_of(plan)
    assert settings["RESTIC_REPOSITORY"] == "s3:https://s3.ca-central-1.amazonaws.com/fourlb-backups/4lb.ca"
    assert settings["S3_REGION"] == "ca-central-1"
    # secrets only as placeholders, in files only root may read
    backup = plan.container("backup")
    env_file = next(u for u in backup.uploads if u.path == "/etc/backup/backup.env")
    assert env_file.mode == "0400"
    assert SECRET_PLACEHOLDER.fullmatch(settings["AWS_SECRET_ACCESS_KEY"])
    password = next(u for u in backup.uploads if u.path == settings["RESTIC_PASSWORD_FILE"])
    assert (password.content, password.mode) == ("${secret:backup-restic-password}", "0400")
    egress = [n.name for n in plan.networks if not n.internal and n.name in backup.networks]
    assert egress == ["backup-net"]


def test_schedule_and_retention_come_from_the_stack():
    plan = prod_plan(backup={"schedule": "0 */6 * * *", "localRetentionDays": 3,
                             "remoteRetentionDays": 90, "remote": REMOTE})
    backup = plan.container("backup")
    crontab = next(u.content for u in backup.uploads if u.path == "/etc/crontabs/root")
    assert crontab.startswith("0 */6 * * * /opt/backup/run ")
    settings = settings_of(plan)
    assert (settings["LOCAL_RETENTION_DAYS"], settings["REMOTE_RETENTION_DAYS"]) == ("3", "90")
    default = next(u.content for u in prod_plan(backup={}).container("backup").uploads
                   if u.path == "/etc/crontabs/root")
    assert default.startswith("15 3 * * * ")


def test_the_container_runs_the_scripts_of_this_repository():
    backup = prod_plan().container("backup")
    uploaded = {u.path: u for u in backup.uploads if u.path.startswith("/opt/backup/")}
    for script in ("run", "restore-db", "restore-volume", "prune", "upload", "fetch-remote"):
        item = uploaded[f"/opt/backup/{script}"]
        assert item.content == (PROJECT / "backup" / script).read_text()
        assert item.mode == "0755"
    crontab = next(u.content for u in backup.uploads if u.path == "/etc/crontabs/root")
    assert crontab.split()[5] in uploaded


def test_only_platform_stacks_back_up():
    assert "backup" in {c.name for c in load_plan("local", PROJECT)[1].containers}
    assert "backup" not in {c.name for c in load_plan("dev", PROJECT)[1].containers}
    plan = prod_plan(services={"backup": {"enabled": False}})
    assert "backup" not in {c.name for c in plan.containers}
    assert "--collector.textfile.directory=/textfile" not in plan.container("node-exporter").command


@pytest.mark.parametrize("setting, key, value", [
    ({"schedule": "every night"}, "fourlb:backup.schedule", "every night"),
    ({"schedule": "15 3 * *"}, "fourlb:backup.schedule", "15 3 * *"),
    ({"verifySchedule": "weekly"}, "fourlb:backup.verifySchedule", "weekly"),
    ({"localRetentionDays": 0}, "fourlb:backup.localRetentionDays", 0),
    ({"remote": {**REMOTE, "endpoint": "http://s3.example.com"}}, "fourlb:backup.remote.endpoint",
     "http://s3.example.com"),
    ({"remote": {**REMOTE, "bucket": "Fourlb_Backups"}}, "fourlb:backup.remote.bucket",
     "Fourlb_Backups"),
])
def test_a_bad_backup_setting_names_its_key_and_what_is_allowed(setting, key, value):
    values = {**StackFile("prod", PROJECT).values, "backup": setting}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", values)
    message = str(caught.value)
    assert f"{key} = {value!r}: allowed" in message, message


@pytest.mark.parametrize("setting, key", [
    ({"cpuPercent": 150}, "fourlb:alerting.cpuPercent"),
    ({"serverErrorRatio": 0}, "fourlb:alerting.serverErrorRatio"),
    ({"smtp": {"host": "smtp.4lb.ca", "fromAddress": "alerts", "to": ["ops@4lb.ca"]}},
     "fourlb:alerting.smtp.fromAddress"),
    ({"smtp": {"host": "smtp.4lb.ca", "fromAddress": "alerts@4lb.ca", "to": []}},
     "fourlb:alerting.smtp.to"),
])
def test_a_bad_alerting_setting_names_its_key(setting, key):
    values = {**StackFile("prod", PROJECT).values, "alerting": setting}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", values)
    assert f"{key} = " in str(caught.value)
    assert ": allowed" in str(caught.value) or ": required" in str(caught.value)


def test_a_sites_stack_cannot_carry_backup_or_alerting_settings():
    values = {**StackFile("dev", PROJECT).values, "backup": {"schedule": "0 1 * * *"}}
    with pytest.raises(StackConfigError, match="fourlb:backup"):
        parse_stack_config("dev", values)


def test_the_access_log_is_rotated_every_five_minutes_within_a_bound():
    backup = prod_plan().container("backup")
    crontab = next(u.content for u in backup.uploads if u.path == "/etc/crontabs/root")
    (line,) = [line for line in crontab.splitlines() if "rotate-access-log" in line]
    assert line.startswith("*/5 * * * * ")
    assert "ACCESS_LOG=/traefik-logs/access.log" in line and "ACCESS_LOG_MAX_BYTES=52428800" in line
    mounts = {m.volume: m.target for m in backup.mounts}
    assert mounts["traefik_logs"] == "/traefik-logs"
    traefik = {m.volume: m.target for m in prod_plan().container("traefik").mounts}
    assert traefik["traefik_logs"] == "/var/log/traefik"  # the same file, access.log in both


def test_the_restore_check_runs_weekly_after_the_nightly_backup_unless_told_otherwise():
    def verify_line(plan: Plan) -> str:
        crontab = next(u.content for u in plan.container("backup").uploads
                       if u.path == "/etc/crontabs/root")
        (line,) = [line for line in crontab.splitlines() if "verify-latest" in line]
        return line
    # Sundays at 04:45 UTC, an hour and a half after the 03:15 backup
    assert verify_line(prod_plan()).startswith("45 4 * * 0 /opt/backup/verify-latest ")
    assert verify_line(prod_plan(backup={"verifySchedule": "0 6 * * 3"})).startswith(
        "0 6 * * 3 /opt/backup/verify-latest ")
    uploaded = {u.path: u for u in prod_plan().container("backup").uploads}
    script = uploaded["/opt/backup/verify-latest"]
    assert (script.content, script.mode) == ((PROJECT / "backup" / "verify-latest").read_text(), "0755")


@pytest.mark.parametrize("schedule, hours", [
    ("45 4 * * 0", 168), ("15 3 * * *", 24), ("0 */6 * * *", 6), ("0 3 * * 1-5", 72),
    ("0 0 1,15 * 1", 168),  # the 1st, the 15th or a Monday (either day field, as crond)
    ("0 3 1 * *", 31 * 24), ("30 2 29 2 *", 4 * 365 * 24 + 24),
])
def test_a_schedules_period_is_its_longest_gap(schedule, hours):
    assert cron_period_seconds(schedule) == hours * 3600


def test_a_schedule_that_never_runs_names_the_setting():
    with pytest.raises(ValueError, match=r"fourlb:backup.verifySchedule = '0 3 31 2 \*': allowed"):
        prod_plan(backup={"verifySchedule": "0 3 31 2 *"})
    with pytest.raises(ValueError, match="fourlb:backup.verifySchedule = '75 3 \\* \\* \\*'"):
        prod_plan(backup={"verifySchedule": "75 3 * * *"})
