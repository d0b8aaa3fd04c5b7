"""A scheduled backup run started by a test: the crontab's command, as crond would
run it, with the changes of changes.BACKUP_RUN_CHANGES (no off-site copy)."""

from __future__ import annotations

import json

from core.backup import CONFIG_FILE, SCRIPTS_DIR

RUN_SCRIPT = f"{SCRIPTS_DIR}/run "
LOCAL_CONFIG = "/tmp/local.env"


def crontab_command(crontab: str) -> str:
    """The command of the crontab's one line that starts a backup run."""
    (line,) = [line for line in crontab.splitlines()
               if line.strip() and not line.startswith("#") and RUN_SCRIPT in line]
    return line.split(None, 5)[5]


def local_run(crontab: str) -> list[str]:
    """argv (for `docker exec` into the backup container) of the crontab's run with the
    program's backup.env less its RESTIC_* and AWS_* lines."""
    return ["sh", "-c",
            f"grep -v -e '^RESTIC_' -e '^AWS_' {CONFIG_FILE} > {LOCAL_CONFIG} && "
            f"BACKUP_CONFIG={LOCAL_CONFIG} sh -c {json.dumps(crontab_command(crontab))}"]
