"""The GitHub workflows are valid against the workflow schema (offline copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_workflow_files_validate_against_the_github_schema():
    # check-jsonschema is installed in the same virtualenv as pytest
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(PROJECT / ".ci" / "check-workflows")], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.lower()


def test_a_broken_workflow_is_refused(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps: []\n")  # no runs-on
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(PROJECT / ".ci" / "check-workflows"), str(broken)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
