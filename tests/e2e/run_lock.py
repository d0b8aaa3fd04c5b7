"""One run at a time per Docker engine: the end-to-end suites create containers,
networks and volumes under the platform's own names, so two runs (or two suites
of one run) on one engine would remove each other's."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .polling import poll

LOCK_WAIT_S = 300


def run_directory(engine_path: str) -> Path:
    """The directory of the runs on this engine: it holds the lock (and the e2e
    suite's Traefik pid)."""
    digest = hashlib.sha256(engine_path.encode()).hexdigest()[:12]
    directory = Path(tempfile.gettempdir()) / f"fourlb-e2e-{digest}"
    directory.mkdir(exist_ok=True)
    return directory


@contextlib.contextmanager
def holding_run_lock(engine_path: str) -> Iterator[float]:
    """Held while the body runs; yields the seconds spent waiting for it.
    AssertionError when another run held it for LOCK_WAIT_S."""
    path = run_directory(engine_path) / "lock"
    started = time.monotonic()
    with path.open("w") as lock:
        def take() -> bool:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: retried
            return True

        poll(f"the lock {path}", take, LOCK_WAIT_S, interval_s=1)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
