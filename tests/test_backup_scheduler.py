"""backup/scheduler, the backup container's PID 1: busybox crond, stopped on SIGTERM.

Run as PID 1 of a new PID namespace (`unshare --pid --fork`), as in the container,
where the kernel drops any signal PID 1 has no handler for: crond alone there
ignores SIGTERM (shown first), the scheduler does not, and waits for a backup run
that holds the lock before it exits. Needs root (for the namespace) and busybox.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.polling import poll

SCHEDULER = Path(__file__).resolve().parent.parent / "backup" / "scheduler"
EXITS_WITHIN_S = 10
WAIT_S = 30  # STOP_WAIT_S: longer than the test takes, so only the lock's release ends the wait

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("busybox") or not shutil.which("flock"),
                                reason="needs root (a PID namespace), busybox and util-linux's flock")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A PATH with busybox's crond, a settings file and an empty crontab directory."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "crond").symlink_to(shutil.which("busybox"))
    (tmp_path / "crontabs").mkdir()
    (tmp_path / "backups").mkdir()
    (tmp_path / "backup.env").write_text(f"BACKUP_DIR={tmp_path / 'backups'}\n")
    return tmp_path


def as_pid_1(root: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
           "BACKUP_CONFIG": str(root / "backup.env"), "STOP_WAIT_S": str(WAIT_S)}
    return subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def pid_1_of(started: subprocess.Popen[bytes]) -> int:
    """The pid, seen from here, of what `unshare --fork` started (its one child)."""
    return poll("the namespace's PID 1 started", lambda: next(iter(children(started.pid)), 0), EXITS_WITHIN_S,
                interval_s=0.05)


def running_child(pid_1: int, program: str) -> bool:
    # a child that exited and is not reaped yet is no longer running
    return any(Path(f"/proc/{c}/comm").read_text().strip() == program
               and Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z" for c in children(pid_1))


@pytest.fixture
def lock(root: Path) -> Iterator[object]:
    """The lock a backup run holds (backup/run)."""
    with open(root / "backups" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield held


def test_crond_as_pid_1_ignores_sigterm(root: Path) -> None:
    started = as_pid_1(root, "crond", "-f", "-c", str(root / "crontabs"))
    try:
        crond = pid_1_of(started)
        os.kill(crond, signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            started.wait(timeout=2)
    finally:
        started.kill()
        started.wait()


def test_sigterm_ends_the_scheduler_and_its_crond(root: Path) -> None:
    started = as_pid_1(root, str(SCHEDULER), "-c", str(root / "crontabs"))
    try:
        scheduler = pid_1_of(started)
        poll("crond started", lambda: running_child(scheduler, "crond"), EXITS_WITHIN_S, interval_s=0.05)
        os.kill(scheduler, signal.SIGTERM)
        assert started.wait(timeout=EXITS_WITHIN_S) == 0
    finally:
        started.kill()
        started.wait()


def test_a_stop_waits_for_the_backup_run_that_holds_the_lock(root: Path, lock) -> None:
    started = as_pid_1(root, str(SCHEDULER), "-c", str(root / "crontabs"))
    try:
        scheduler = pid_1_of(started)
        poll("crond started", lambda: running_child(scheduler, "crond"), EXITS_WITHIN_S, interval_s=0.05)
        os.kill(scheduler, signal.SIGTERM)
        poll("crond stopped", lambda: not running_child(scheduler, "crond"), EXITS_WITHIN_S, interval_s=0.05)
        poll("the scheduler waiting for the lock", lambda: running_child(scheduler, "flock"), EXITS_WITHIN_S,
             interval_s=0.05)
        assert started.poll() is None, "the scheduler exited while a run held the lock"
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert started.wait(timeout=EXITS_WITHIN_S) == 0
    finally:
        started.kill()
        started.wait()
