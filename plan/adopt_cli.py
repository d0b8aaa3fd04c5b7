"""`python -m plan adopt STACK`: what taking over the running host needs (docs/cutover.md).

Exit codes: 0 nothing blocks, 1 something does (each blocker with its fix),
2 the report could not be made (bad stack file, no engine, unreadable compose file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from config.errors import StackConfigError
from config.loading import PROJECT_DIR, StackFile
from core.edge import load_plan

from .adopt import adopt, parse_compose, report_text
from .docker_host import DockerHost, DockerHostError

NOTHING_BLOCKS, BLOCKED, ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plan adopt",
        description="Read the Docker engine at DOCKER_HOST (a unix:// socket; default "
                    "/var/run/docker.sock; GET requests only) and say what taking it over with "
                    "STACK needs: the volumes holding the data, the settings, the secrets to "
                    "carry over, what to stop and pull. No secret value is printed. Exit 0: "
                    "nothing blocks, 1: something does, 2: error.")
    parser.add_argument("stack")
    parser.add_argument("--compose", metavar="FILE",
                        help="today's compose file (its volume names and project)")
    parser.add_argument("--import-file", metavar="PATH",
                        help="write a file for `pulumi import --file PATH` (volumes, networks)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def adopt_command(args: Sequence[str], environ: Optional[dict[str, str]] = None,
                  project_dir: Path = PROJECT_DIR) -> int:
    options = _parser().parse_args(args)
    environ = dict(os.environ) if environ is None else environ
    try:
        config, plan = load_plan(options.stack, project_dir)
        stack_file = StackFile(options.stack, project_dir)
        compose = None
        if options.compose:
            path = Path(options.compose)
            compose = parse_compose(path.read_text(), str(path.resolve()), environ)
        facts = DockerHost(environ.get("DOCKER_HOST")).facts()
    except (StackConfigError, DockerHostError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    report = adopt(plan, facts, compose, volume_names=config.volume_names,
                   secrets_set=stack_file.secret_keys, import_file=bool(options.import_file))
    if options.import_file:
        Path(options.import_file).write_text(json.dumps(report.import_file, indent=2) + "\n")
    if options.format == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(report_text(report, options.import_file))
    return BLOCKED if report.blockers else NOTHING_BLOCKS
