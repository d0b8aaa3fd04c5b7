"""One stack of this project under the real Pulumi engine (bin/install-pulumi).

The program runs from the repository, as `pulumi up` runs it for a user; what is
the test's own: the state (a file backend in a temporary directory), Pulumi's
home (no plugin cache, no credentials), and the stack's settings, a copy of the
committed Pulumi.<stack>.yaml passed with --config-file, so that a test changes
settings without touching the repository. The engine's plugins are the ones
next to the CLI, found on PATH: nothing is downloaded.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from config.loading import NAMESPACE, PROJECT_DIR, StackFile
from core.edge import load_plan
from plan.document import plan_document, secret_versions

# what keeps the CLI from calling out: update checks (which also report the command
# run), plugin downloads and registry look-ups
QUIET_ENGINE_ENV = {
    "PULUMI_SKIP_UPDATE_CHECK": "true",
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    "PULUMI_DISABLE_REGISTRY_RESOLVE": "true",
    "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
}
PASSPHRASE = "engine-suite"
# the commands that read the stack's settings (and take --config-file)
COMMANDS_WITH_CONFIG = ("config", "up", "preview", "destroy", "refresh")
UP_TIMEOUT_S = 900
PREVIEW_TIMEOUT_S = 300


class EngineError(AssertionError):
    pass


@dataclass
class EngineStack:
    cli: Path
    stack: str
    workdir: Path
    # the stack's fourlb settings (keys without the namespace), as the test has them now
    settings: dict[str, Any] = field(default_factory=dict)
    docker_host: Optional[str] = None

    @classmethod
    def create(cls, cli: Path, stack: str, workdir: Path, docker_host: Optional[str] = None,
               **changes: Any) -> "EngineStack":
        """The committed stack file's settings with `changes` merged, on a new stack."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "state").mkdir(exist_ok=True)
        engine = cls(cli, stack, workdir, copy.deepcopy(StackFile(stack).values), docker_host)
        engine.settings = merged(engine.settings, changes)
        engine._write_settings()
        # in the test's own project directory (a copy of Pulumi.yaml beside the stack
        # file), so that the passphrase's salt is written into the test's stack file
        (engine.project_dir / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
        engine.run("stack", "init", "--secrets-provider", "passphrase", cwd=engine.project_dir)
        return engine

    @property
    def project_dir(self) -> Path:
        """Where the stack file of this test lives: plan documents read it from here."""
        return self.workdir / "project"

    @property
    def config_file(self) -> Path:
        return self.project_dir / f"Pulumi.{self.stack}.yaml"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update(QUIET_ENGINE_ENV)
        env.update({
            "PATH": f"{self.cli.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_BACKEND_URL": f"file://{self.workdir / 'state'}",
            "PULUMI_HOME": str(self.workdir / "home"),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        })
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def run(self, *args: str, timeout: float = PREVIEW_TIMEOUT_S, check: bool = True,
            cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
        command = [str(self.cli), *args, "--stack", self.stack, "--non-interactive"]
        if args[0] in COMMANDS_WITH_CONFIG:
            command += ["--config-file", str(self.config_file)]
        result = subprocess.run(command, cwd=cwd, env=self.env(), capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise EngineError(f"`pulumi {' '.join(args)}` exited {result.returncode}:\n"
                              f"{_tail(result.stdout)}\n{_tail(result.stderr)}")
        return result

    # --- settings ---------------------------------------------------------------

    def change(self, **changes: Any) -> None:
        """Merge `changes` into the stack's settings (None removes a key)."""
        self.settings = merged(self.settings, changes)
        self._write_settings()

    def set_secret(self, key: str, value: str) -> None:
        self.run("config", "set", "--secret", f"{NAMESPACE}:{key}", value)

    def _write_settings(self) -> None:
        self.project_dir.mkdir(parents=True, exist_ok=True)
        raw = yaml.safe_load(self.config_file.read_text()) if self.config_file.exists() else {}
        raw = raw or {}
        kept = {k: v for k, v in (raw.get("config") or {}).items()
                if not k.startswith(NAMESPACE + ":") or isinstance(v, dict) and set(v) == {"secure"}}
        kept.update({f"{NAMESPACE}:{k}": v for k, v in self.settings.items()})
        raw["config"] = kept
        self.config_file.write_text(yaml.safe_dump(raw, sort_keys=True))

    def plan_document(self) -> dict[str, Any]:
        """`python -m plan`'s document of the stack as the test has set it."""
        config, plan = load_plan(self.stack, self.project_dir)
        return plan_document(config, plan, secret_versions(StackFile(self.stack, self.project_dir)))

    # --- the engine's commands -------------------------------------------------------

    def preview(self, *extra: str) -> list[dict[str, Any]]:
        """The steps `pulumi preview --diff --json` says the engine would take."""
        result = self.run("preview", "--diff", "--json", *extra)
        return json.loads(result.stdout).get("steps", [])

    def up(self, *extra: str) -> float:
        """`pulumi up`; its duration in seconds."""
        started = time.monotonic()
        self.run("up", "--yes", "--skip-preview", *extra, timeout=UP_TIMEOUT_S)
        return time.monotonic() - started

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def resources(self) -> list[dict[str, Any]]:
        """The resources of the stack's state."""
        exported = json.loads(self.run("stack", "export", "--show-secrets").stdout)
        return exported["deployment"].get("resources", [])

    def destroy(self) -> None:
        """Everything but the protected resources (the data volumes): they are kept."""
        self.run("destroy", "--yes", "--skip-preview", "--exclude-protected", timeout=UP_TIMEOUT_S)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` deep-merged into a copy of `base`; a None value removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
