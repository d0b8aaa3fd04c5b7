"""A newcomer's first command: `bin/install-pulumi` and `bin/up-local`, run for real.

The Pulumi release is a fake one (an archive whose `pulumi/pulumi` is a small shell script,
and its checksum file) served by `http.server` on 127.0.0.1; the installer is pointed at it
through its URL overrides and installs into a temporary directory. `bin/up-local` runs in a
temporary copy of the project (its two scripts and requirements.txt), with a fake `docker`,
a fake `venv/bin/python` and a fake `pulumi` that record what they were asked. Nothing here
talks to anything but 127.0.0.1, and nothing is written into the repository.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import platform
import re
import shutil
import subprocess
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "bin" / "install-pulumi"
UP_LOCAL = REPO / "bin" / "up-local"
VERSION = re.search(r"^PULUMI_VERSION=(\S+)$", INSTALLER.read_text(), re.MULTILINE).group(1)
FAKE_VERSION_OUTPUT = f"v{VERSION}-fake"

# The same names the installer derives from `uname -s` and `uname -m`.
OS_NAMES = {"Linux": "linux", "Darwin": "darwin"}
ARCH_NAMES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
OS_NAME = OS_NAMES.get(platform.system())
ARCH_NAME = ARCH_NAMES.get(platform.machine())
pytestmark = pytest.mark.skipif(OS_NAME is None or ARCH_NAME is None,
                                reason=f"no Pulumi build for {platform.system()} {platform.machine()}")
ARCHIVE = f"pulumi-v{VERSION}-{OS_NAME}-{ARCH_NAME}.tar.gz"
CHECKSUMS = f"pulumi-{VERSION}-checksums.txt"
OTHER_ARCHIVES = [f"pulumi-v{VERSION}-{os_}-{arch}.tar.gz"
                  for os_ in ("linux", "darwin") for arch in ("x64", "arm64")
                  if (os_, arch) != (OS_NAME, ARCH_NAME)]

# Stands in for the Pulumi CLI. With FAKE_PULUMI_LOG set, every call appends one line:
# "call", $0, PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PATH, then each argument (tabs).
FAKE_PULUMI = f"""#!/bin/sh
if [ -n "${{FAKE_PULUMI_LOG:-}}" ]; then
  {{
    printf 'call\\t%s\\t%s\\t%s\\t%s' "$0" "${{PULUMI_BACKEND_URL-<unset>}}" \\
      "${{PULUMI_CONFIG_PASSPHRASE-<unset>}}" "$PATH"
    printf '\\t%s' "$@"
    printf '\\n'
  }} >> "$FAKE_PULUMI_LOG"
fi
if [ "${{1:-}}" = version ]; then echo {FAKE_VERSION_OUTPUT}; fi
exit 0
"""
TIMEOUT_S = 60


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_archive() -> bytes:
    """A release archive laid out like Pulumi's: everything under `pulumi/`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("pulumi/pulumi", FAKE_PULUMI),
                           ("pulumi/pulumi-language-python", "#!/bin/sh\nexit 0\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Release:
    """The fake release as served: where the files are, and every path requested."""
    served: Path
    base_url: str
    archive: bytes
    requests: list[str] = field(default_factory=list)

    @property
    def releases_url(self) -> str:
        return f"{self.base_url}/releases/sdk"

    @property
    def checksums_url(self) -> str:
        return f"{self.base_url}/download/v{VERSION}"

    def publish_checksums(self, lines: list[str]) -> None:
        path = self.served / "download" / f"v{VERSION}" / CHECKSUMS
        path.write_text("".join(f"{line}\n" for line in lines))

    def good_checksum_lines(self) -> list[str]:
        """As Pulumi publishes them: one line per platform archive."""
        return [f"{sha256(name.encode())}  {name}" for name in OTHER_ARCHIVES[:2]] + \
               [f"{sha256(self.archive)}  {ARCHIVE}"] + \
               [f"{sha256(name.encode())}  {name}" for name in OTHER_ARCHIVES[2:]]

    def env(self) -> dict[str, str]:
        return {"FOURLB_PULUMI_RELEASES_URL": self.releases_url,
                "FOURLB_PULUMI_CHECKSUMS_URL": self.checksums_url}


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    served = tmp_path / "served"
    (served / "releases" / "sdk").mkdir(parents=True)
    (served / "download" / f"v{VERSION}").mkdir(parents=True)
    archive = fake_archive()
    (served / "releases" / "sdk" / ARCHIVE).write_bytes(archive)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, name="fake-pulumi-release", daemon=True)
    thread.start()
    try:
        yield Release(served, f"http://127.0.0.1:{server.server_address[1]}", archive, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def base_env(tmp_path: Path, path: Optional[str] = None) -> dict[str, str]:
    """The caller's environment without proxies (the server is local) and with a fresh HOME
    (no ~/.curlrc, no Pulumi login of the person running the tests)."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith(("FOURLB_", "PULUMI_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    if path is not None:
        env["PATH"] = path
    return env


def install(tmp_path: Path, release: Release, tools: Path,
            path: Optional[str] = None) -> subprocess.CompletedProcess:
    env = {**base_env(tmp_path, path), **release.env(), "FOURLB_TOOLS_DIR": str(tools)}
    return subprocess.run([str(INSTALLER)], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def assert_nothing_installed(tools: Path) -> None:
    files = [p for p in tools.rglob("*") if not p.is_dir()]
    assert not files, f"a refused install left files behind: {files}"
    assert not (tools / "pulumi" / VERSION).exists()
    leftovers = list((tools / "pulumi").glob(".partial-*")) if (tools / "pulumi").exists() else []
    assert not leftovers, f"temporary directories left behind: {leftovers}"


def test_installs_the_verified_archive_once(tmp_path: Path, release: Release) -> None:
    release.publish_checksums(release.good_checksum_lines())
    tools = tmp_path / "tools"

    first = install(tmp_path, release, tools)
    assert first.returncode == 0, first.stderr
    installed = Path(first.stdout.splitlines()[-1])
    assert installed == tools / "pulumi" / VERSION / "pulumi"
    ran = subprocess.run([str(installed), "version"], capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    assert ran.stdout.strip() == FAKE_VERSION_OUTPUT
    assert (installed.parent / "pulumi-language-python").is_file(), "the language host is missing"
    assert sorted(release.requests) == sorted([f"/download/v{VERSION}/{CHECKSUMS}",
                                               f"/releases/sdk/{ARCHIVE}"])
    assert not list((tools / "pulumi").glob(".partial-*"))

    second = install(tmp_path, release, tools)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == str(installed)
    assert len(release.requests) == 2, f"the second run downloaded again: {release.requests}"


def test_refuses_an_archive_whose_digest_differs(tmp_path: Path, release: Release) -> None:
    published = sha256(b"what the release said")
    release.publish_checksums([f"{published}  {ARCHIVE}"])
    tools = tmp_path / "tools"

    result = install(tmp_path, release, tools)
    assert result.returncode != 0
    assert published in result.stderr, result.stderr
    assert sha256(release.archive) in result.stderr, result.stderr
    assert result.stdout == ""
    assert_nothing_installed(tools)


def test_refuses_when_the_checksum_file_has_no_line_for_the_archive(
        tmp_path: Path, release: Release) -> None:
    # Names that contain the archive's name, with its right digest: only an exact match counts.
    right = sha256(release.archive)
    lines = [line for line in release.good_checksum_lines() if not line.endswith(f"  {ARCHIVE}")]
    lines += [f"{right}  x{ARCHIVE}", f"{right}  {ARCHIVE}.sig", f"{right}  old/{ARCHIVE}"]
    release.publish_checksums(lines)
    tools = tmp_path / "tools"

    result = install(tmp_path, release, tools)
    assert result.returncode != 0
    assert f"no line for {ARCHIVE}" in result.stderr, result.stderr
    assert_nothing_installed(tools)


def test_refuses_a_platform_pulumi_does_not_build_for(tmp_path: Path, release: Release) -> None:
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    write_script(fakebin / "uname", '#!/bin/sh\ncase "$1" in -s) echo FreeBSD;; *) echo amd64;; esac\n')
    release.publish_checksums(release.good_checksum_lines())
    tools = tmp_path / "tools"

    result = install(tmp_path, release, tools, path=f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode != 0
    assert "FreeBSD" in result.stderr and "Linux and Darwin" in result.stderr, result.stderr
    assert release.requests == []
    assert_nothing_installed(tools)


# bin/up-local


def write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@dataclass
class LocalProject:
    """A copy of the project's pieces `bin/up-local` uses, and what its fakes recorded."""
    root: Path
    fakebin: Path
    pulumi_log: Path
    venv_log: Path

    def calls(self) -> list[dict[str, object]]:
        if not self.pulumi_log.exists():
            return []
        calls = []
        for line in self.pulumi_log.read_text().splitlines():
            marker, argv0, backend, passphrase, path, *args = line.split("\t")
            assert marker == "call", line
            calls.append({"argv0": argv0, "backend": backend, "passphrase": passphrase,
                          "path": path, "args": args})
        return calls


@pytest.fixture
def project(tmp_path: Path) -> LocalProject:
    root = tmp_path / "project"
    (root / "bin").mkdir(parents=True)
    for script in (UP_LOCAL, INSTALLER):
        shutil.copy2(script, root / "bin" / script.name)
    shutil.copy2(REPO / "requirements.txt", root / "requirements.txt")
    venv_log = tmp_path / "venv.log"
    (root / "venv" / "bin").mkdir(parents=True)
    write_script(root / "venv" / "bin" / "python", f'#!/bin/sh\necho "$*" >> "{venv_log}"\n')
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    write_script(fakebin / "docker", "#!/bin/sh\nexit 0\n")
    return LocalProject(root.resolve(), fakebin, tmp_path / "pulumi.log", venv_log)


def path_without_pulumi(fakebin: Path) -> str:
    """The fakes first, then the caller's PATH minus any directory holding a `pulumi`."""
    kept = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "pulumi").exists()]
    path = os.pathsep.join([str(fakebin), *kept])
    missing = [tool for tool in ("bash", "curl", "tar", "awk", "mktemp")
               if shutil.which(tool, path=path) is None]
    if missing:
        pytest.skip(f"without the directories that hold a pulumi, PATH lacks {missing}")
    return path


def up_local(tmp_path: Path, project: LocalProject, *args: str,
             extra_env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = {**base_env(tmp_path, path_without_pulumi(project.fakebin)),
           "FAKE_PULUMI_LOG": str(project.pulumi_log), **(extra_env or {})}
    return subprocess.run([str(project.root / "bin" / "up-local"), *args], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)


def installer_calls(project: LocalProject) -> list[dict[str, object]]:
    """The installer's own calls of the CLI it installed: the plugins it asks for."""
    return [call for call in project.calls() if call["args"][:2] == ["plugin", "install"]]


def assert_local_stack_in_project(project: LocalProject) -> list[dict[str, object]]:
    calls = [call for call in project.calls() if call not in installer_calls(project)]
    assert calls, "bin/up-local ran no pulumi command"
    state = f"file://{project.root}/.pulumi-state"
    for call in calls:
        assert "login" not in call["args"], f"bin/up-local ran `pulumi {' '.join(call['args'])}`"
        assert call["backend"] == state, f"`pulumi {' '.join(call['args'])}` saw {call['backend']}"
    assert (project.root / ".pulumi-state").is_dir()
    assert calls[0]["args"] == ["stack", "select", "--create", "local"]
    assert calls[-1]["args"][:3] == ["up", "--stack", "local"]
    return calls


def test_up_local_keeps_the_state_in_the_project(tmp_path: Path, project: LocalProject) -> None:
    write_script(project.fakebin / "pulumi", FAKE_PULUMI)
    # A backend from the environment (a team's bucket) must not be where the local stack goes.
    result = up_local(tmp_path, project, "--yes", extra_env={
        "PULUMI_BACKEND_URL": "s3://team-state", "PULUMI_CONFIG_PASSPHRASE": "correct horse"})
    assert result.returncode == 0, result.stderr

    calls = assert_local_stack_in_project(project)
    assert calls[-1]["args"] == ["up", "--stack", "local", "--yes"]
    assert {call["argv0"] for call in calls} == {str(project.fakebin / "pulumi")}
    assert {call["passphrase"] for call in calls} == {"correct horse"}
    assert "-m pip install" in project.venv_log.read_text()
    assert "-r requirements.txt" in project.venv_log.read_text()
    assert not (project.root / ".tools").exists(), "installed a Pulumi although one was on PATH"


def test_up_local_installs_the_pinned_pulumi_when_none_is_on_path(
        tmp_path: Path, project: LocalProject, release: Release) -> None:
    release.publish_checksums(release.good_checksum_lines())
    result = up_local(tmp_path, project, extra_env=release.env())
    assert result.returncode == 0, result.stderr

    installed = project.root / ".tools" / "pulumi" / VERSION / "pulumi"
    calls = assert_local_stack_in_project(project)
    assert {call["argv0"] for call in calls} == {str(installed)}
    assert {call["path"].split(os.pathsep)[0] for call in calls} == {str(installed.parent)}, \
        "the installed CLI's directory (its language hosts) is not first on PATH"
    assert {call["passphrase"] for call in calls} == {"<unset>"}, "left to Pulumi to ask"
    assert len(release.requests) == 2
    pinned = dict(re.findall(r"^pulumi-(docker|random|command)==(\S+)$",
                             (REPO / "requirements.txt").read_text(), re.MULTILINE))
    assert [call["args"] for call in installer_calls(project)] == [
        ["plugin", "install", "resource", name, pinned[name]] for name in ("docker", "random", "command")]
