"""Helpers for the servers some tests start (moto, Alertmanager, the policy pack)."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
