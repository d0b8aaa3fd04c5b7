"""Waiting, bounded both in attempts and in time."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

RETRIED = (OSError, AssertionError, ValueError)


def poll(what: str, condition: Callable[[], Any], timeout_s: float, interval_s: float = 0.5,
         detail: Optional[Callable[[], str]] = None) -> Any:
    """Calls `condition` until it returns something truthy: at most
    timeout_s / interval_s + 1 times, and never past timeout_s (plus one call)."""
    attempts = int(timeout_s / interval_s) + 1
    deadline = time.monotonic() + timeout_s
    last_error: Optional[BaseException] = None
    for attempt in range(attempts):
        try:
            result = condition()
            if result:
                return result
        except RETRIED as error:
            last_error = error
        if attempt + 1 == attempts or time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    more = f"\n{detail()}" if detail else ""
    raise AssertionError(f"{what}: not within {timeout_s}s / {attempts} attempts "
                         f"(last error: {last_error}){more}")
