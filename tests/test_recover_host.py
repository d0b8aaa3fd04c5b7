"""bin/recover-host: one `pulumi up` that refreshes and builds the built images
again. The engine suite runs it for real (tests/engine: every container, network,
volume and image gone); its local stack builds no image (they cannot be built
here), so the `--replace` of built images is checked here, against a `pulumi`
that answers `stack export` with a state and records what `up` is given."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
IMAGE_URN = "urn:pulumi:prod::fourlb::fourlb:docker:Service$docker:index/image:Image::traefik"
STATE = {"deployment": {"resources": [
    {"urn": IMAGE_URN, "type": "docker:index/image:Image"},
    {"urn": "urn:pulumi:prod::fourlb::fourlb:docker:Service$docker:index/remoteImage:RemoteImage::redis",
     "type": "docker:index/remoteImage:RemoteImage"},
    {"urn": "urn:pulumi:prod::fourlb::fourlb:docker:Service$docker:index/container:Container::redis",
     "type": "docker:index/container:Container"},
]}}

FAKE_PULUMI = """#!/bin/sh
if [ "$1 $2" = "stack export" ]; then cat "$STATE_FILE"; exit 0; fi
printf '%s\\n' "$@" > "$ARGS_FILE"
"""


def recover(tmp_path: Path, state: dict, *extra: str) -> list[str]:
    fake = tmp_path / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps(state))
    env = {**os.environ, "PULUMI": str(fake), "STATE_FILE": str(tmp_path / "state.json"),
           "ARGS_FILE": str(tmp_path / "args")}
    result = subprocess.run([str(PROJECT / "bin" / "recover-host"), "prod", *extra], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "args").read_text().splitlines()


def test_every_built_image_is_built_again_and_the_rest_refreshed(tmp_path):
    args = recover(tmp_path, STATE, "--yes")
    assert args == ["up", "--stack", "prod", "--refresh", "--replace", IMAGE_URN, "--yes"]


def test_a_stack_that_builds_nothing_is_only_refreshed(tmp_path):
    state = {"deployment": {"resources": STATE["deployment"]["resources"][1:]}}
    assert recover(tmp_path, state) == ["up", "--stack", "prod", "--refresh"]
