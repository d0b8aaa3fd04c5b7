"""Traefik's access log stays within its bound: backup/rotate-access-log (run by
the backup container's crond every 5 minutes) copies it aside and truncates it
in place, and the real Traefik keeps appending to the same file from its new
start, so CrowdSec's reader, which follows a truncation, misses nothing after it.
The script runs here on the host against the test Traefik's log file (its path
is the only change: `changes.TRAEFIK_CHANGES`, accessLog.filePath)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import FACTS
from .harness import Edge

SCRIPT = Path(__file__).resolve().parents[2] / "backup" / "rotate-access-log"
HOST = "jsr.4lb.ca"
REQUESTS = 40


def _rotate(log: Path, max_bytes: int) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "ACCESS_LOG": str(log), "ACCESS_LOG_MAX_BYTES": str(max_bytes)})


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_access_log_is_rotated_and_traefik_writes_on_from_the_start(edge: Edge) -> None:
    log = edge.here.access_log
    for _ in range(REQUESTS):
        assert edge.get(HOST, "/").status == 200
    edge.wait_for("the requests in the access log",
                  lambda: log.exists() and log.stat().st_size > 0 and len(_lines(log)) >= REQUESTS, 15)
    size = log.stat().st_size
    assert _rotate(log, max_bytes=size + 1).stdout == "", "rotated below its bound"
    result = _rotate(log, max_bytes=size // 2)
    assert result.returncode == 0 and "kept as" in result.stdout, result.stdout + result.stderr
    rotated = log.with_name(log.name + ".1")
    assert rotated.stat().st_size >= size and log.stat().st_size < size
    for _ in range(5):
        assert edge.get(HOST, "/after-rotation").status == 200
    edge.wait_for("new lines after the truncation",
                  lambda: any(e.get("RequestPath") == "/after-rotation" for e in _lines(log)), 15)
    raw = log.read_bytes()
    assert not raw.startswith(b"\0"), "Traefik wrote at its old offset: the file has a hole"
    assert all(e.get("RequestPath") != "/after-rotation" for e in _lines(rotated))
    FACTS["access log"] = (f"rotated at {size // 2} bytes: {len(_lines(rotated))} lines kept aside, "
                           f"{len(_lines(log))} new lines from the file's start")
