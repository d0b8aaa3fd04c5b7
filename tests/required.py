"""What a suite does when a piece it needs is missing: skip and say why, except
under CI=true, where the suite must run and a missing piece fails its tests."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str, suite: str) -> None:
    """`suite`: how the failure names the tests, e.g. "the end-to-end tests"."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: {suite} must run)", pytrace=False)
    pytest.skip(reason)
