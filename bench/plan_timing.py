"""How long `python -m plan prod --format json` takes, end to end (a fresh
interpreter each time, as in CI and a shell): median and max of N runs.

    python bench/plan_timing.py [N] [STACK]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def time_one_run(stack: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plan", stack, "--format", "json"], cwd=PROJECT_DIR,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    stack = sys.argv[2] if len(sys.argv) > 2 else "prod"
    time_one_run(stack)  # warm-up: bytecode caches and the page cache
    seconds = [time_one_run(stack) for _ in range(runs)]
    print(f"python -m plan {stack} --format json, {runs} runs: "
          f"median {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
