"""Requests to the lab's edge node from its client namespace (load.py): one, or a
loop on a thread while a change happens, bounded in count and time."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from .lab import Lab

LOAD = Path(__file__).resolve().parent / "load.py"
LOAD_MAX_S = 90


def edge_address(lab: Lab) -> str:
    return lab.node("edge").address


def once(lab: Lab, host: str, path: str, auth: str = "") -> tuple[str, dict[str, str]]:
    with tempfile.TemporaryDirectory() as stop:
        done = lab.client_run([sys.executable, str(LOAD), edge_address(lab), host, path,
                               str(Path(stop) / "stop"), "10", "1", "0", auth], timeout=30)
    result = json.loads(done.stdout)
    return result["answers"][0], result["last_headers"]


class Load:
    """Requests from the client namespace on a thread, until stopped (bounded)."""

    def __init__(self, lab: Lab, host: str, path: str, interval_s: float = 0.02, answer: str = ""):
        """`answer`: what every answer must be (else any task's answer counts)."""
        self.lab, self.host, self.path, self.interval_s, self.answer = lab, host, path, interval_s, answer
        self.stop_dir = tempfile.mkdtemp()
        self.answers: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        done = self.lab.client_run([sys.executable, str(LOAD), edge_address(self.lab), self.host, self.path,
                                    f"{self.stop_dir}/stop", str(LOAD_MAX_S), "5000", str(self.interval_s)],
                                   timeout=LOAD_MAX_S + 30)
        self.answers = json.loads(done.stdout)["answers"]

    def __enter__(self) -> "Load":
        self.thread.start()
        time.sleep(2)  # some answers before the change
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(3)  # and after it
        Path(self.stop_dir, "stop").touch()
        self.thread.join(timeout=LOAD_MAX_S + 40)

    @property
    def failures(self) -> list[str]:
        if self.answer:
            return [a for a in self.answers if a != self.answer]
        return [a for a in self.answers if not a.startswith("task ")]

    def figure(self) -> str:
        if self.answer:
            return f"{len(self.failures)} failed of {len(self.answers)} requests, each to answer {self.answer!r}"
        tasks = len({a for a in self.answers if a.startswith("task ")})
        return f"{len(self.failures)} failed of {len(self.answers)} requests, answered by {tasks} tasks"
