"""The plan as it was at a git ref, computed by that ref's own code.

The ref's tree (code and stack files) is exported into a temporary directory
and its `python -m plan` runs there: a change to the core then shows up in
the diff just like a change to a stack file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .document import EMPTY_DOCUMENT


class GitRefError(Exception):
    """The ref cannot be read, or the plan at that ref cannot be computed."""


def _git(project_dir: Path, *args: str) -> bytes:
    try:
        result = subprocess.run(["git", "-C", str(project_dir), *args],
                                capture_output=True, check=False)
    except FileNotFoundError:
        raise GitRefError("git is not installed") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise GitRefError(f"git {args[0]}: {message}")
    return result.stdout


def resolve(ref: str, project_dir: Path) -> str:
    """The commit `ref` names, or GitRefError saying it names none."""
    if not ref or ref.startswith("-"):
        raise GitRefError(f"unknown git ref {ref!r}")
    try:
        return _git(project_dir, "rev-parse", "--verify", "--quiet",
                    f"{ref}^{{commit}}").decode().strip()
    except GitRefError:
        raise GitRefError(f"unknown git ref {ref!r} (try `git fetch` or a commit id)") from None


@contextmanager
def exported_project(ref: str, project_dir: Path) -> Iterator[Path]:
    """The project directory as committed at `ref`, in a temporary directory."""
    commit = resolve(ref, project_dir)
    # the project may live in a subdirectory of the repository
    prefix = _git(project_dir, "rev-parse", "--show-prefix").decode().strip().rstrip("/")
    tree = f"{commit}:{prefix}" if prefix else commit
    archive = _git(project_dir, "archive", "--format=tar", tree)
    with tempfile.TemporaryDirectory(prefix="fourlb-plan-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            # extraction filters arrived in 3.11.4; "data" refuses paths outside tmp
            options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **options)
        yield Path(tmp)


def plan_document_in(tree: Path, stack: str) -> dict[str, Any]:
    """The plan document of `stack` computed by the code in `tree`; empty when
    that tree predates the plan package or the stack."""
    if not (tree / "plan" / "__main__.py").is_file() or not (tree / f"Pulumi.{stack}.yaml").is_file():
        return dict(EMPTY_DOCUMENT)
    env = {k: v for k, v in os.environ.items()
           # both would make the working tree's packages shadow the exported ones
           if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    result = subprocess.run([sys.executable, "-m", "plan", stack, "--format", "json"],
                            cwd=tree, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GitRefError(f"the plan of stack '{stack}' at the base ref failed:\n"
                          + result.stderr.strip())
    return json.loads(result.stdout)
