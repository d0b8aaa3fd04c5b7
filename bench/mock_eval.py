"""How long evaluating the prod program under mocks takes, against the floor.

The floor is what any Pulumi program of this size pays: importing pulumi,
pulumi-docker and pulumi-cloudflare and registering the same number of bare
resources of the same types. Each measurement runs in a fresh interpreter
(imports included), alternating, and the medians are compared.

    venv/bin/python bench/mock_eval.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def child(mode: str) -> None:
    start = time.perf_counter()
    sys.path.insert(0, str(PROJECT))
    import pulumi
    import pulumi_cloudflare  # noqa: F401  (part of the floor: the program imports it)
    import pulumi_docker  # noqa: F401

    from tests.mocks import Run, RecordingMocks, run_program, stack_config

    if mode == "program":
        config, secret_keys = stack_config("prod")
        run = run_program("prod", config, secret_keys)
        assert run.error is None, run.error
        count = len(run.resources)
    else:
        from pulumi.runtime.stack import run_pulumi_func
        from pulumi.runtime.sync_await import _sync_await

        types = json.loads(sys.argv[3])
        run = Run("prod")
        pulumi.runtime.set_mocks(RecordingMocks(run), project="fourlb", stack="prod", preview=False)

        def register() -> None:
            for index, typ in enumerate(types):
                if typ.startswith("fourlb:"):
                    pulumi.ComponentResource(typ, f"bare-{index}")
                else:
                    pulumi.CustomResource(typ, f"bare-{index}", {})

        _sync_await(run_pulumi_func(register))
        count = len(run.resources)
    print(json.dumps({"seconds": time.perf_counter() - start, "resources": count,
                      "types": [r.typ for r in run.resources]}))


def measure(mode: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *extra], check=True,
                         capture_output=True, text=True, cwd=PROJECT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    first = measure("program")
    types = json.dumps(first["types"])
    program, floor = [], []
    for _ in range(args.runs):
        program.append(measure("program")["seconds"])
        floor.append(measure("floor", types)["seconds"])
    p, f = statistics.median(program), statistics.median(floor)
    print(f"resources declared:        {first['resources']}")
    print(f"prod program under mocks:  median {p:.3f} s  (min {min(program):.3f}, max {max(program):.3f})")
    print(f"floor (imports + bare):    median {f:.3f} s  (min {min(floor):.3f}, max {max(floor):.3f})")
    print(f"ratio program/floor:       {p / f:.2f}x  (target <= 1.30x)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
