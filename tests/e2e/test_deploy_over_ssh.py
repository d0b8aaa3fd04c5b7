"""The deploy's way to the engine: `DOCKER_HOST=ssh://user@host[:port]`, with the ssh
client configuration bin/deploy-ssh-setup writes (the deploy workflow runs it too),
against a real sshd on 127.0.0.1 in front of the local engine. How this differs from
a deploy to production: `changes.SSH_TARGET_CHANGES`.
"""

from __future__ import annotations

import io
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

from . import standin
from .changes import E2E_LABEL
from .conftest import DURATIONS, _unavailable
from .engine import Engine, dial_stdio_command
from .polling import poll
from .traefik_process import free_port

SETUP = Path(__file__).resolve().parents[2] / "bin" / "deploy-ssh-setup"
SSHD = Path("/usr/sbin/sshd")
# where Debian's sshd chroots its unprivileged pre-auth child; the package's service
# creates it at start (RuntimeDirectory=sshd), and installing it here starts no service
PRIVSEP_DIR = Path("/run/sshd")
CLIENT_TOOLS = ("ssh", "ssh-keygen", "ssh-keyscan")
SSHD_READY_S = 15
COMMAND_S = 60
SSH_LABEL = "fourlb.e2e.ssh"
HOST = "127.0.0.1"
# resolved at import, before a test puts the shim (which runs it) first on PATH
REAL_SSH = shutil.which("ssh")

SSHD_CONFIG = """\
# one test's sshd: loopback only, the test's own keys, no password, no terminal
ListenAddress {host}
Port {port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitTTY no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
"""

# the smallest image the engine can run and exec in: static busybox in `scratch`
IMAGE_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
CMD ["sleep", "600"]
"""


def _run(command: list[str], env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=COMMAND_S)


def keygen(path: Path) -> Path:
    """A new ed25519 key pair, `path` and `path`.pub."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fourlb-e2e", "-f", str(path)]).check_returncode()
    return path


@dataclass(frozen=True)
class Target:
    """The sshd the tests log in to, as the deploy logs in to the production host."""

    user: str
    port: int
    client_key: str  # the private key's text: DEPLOY_SSH_KEY
    known_hosts: str  # ssh-keyscan's lines: DEPLOY_SSH_KNOWN_HOSTS
    log: Path

    @property
    def deploy_host(self) -> str:
        return f"{self.user}@{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "sshd's log:\n" + "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Client:
    """A HOME configured by bin/deploy-ssh-setup, and the DOCKER_HOST it printed."""

    home: Path
    path: str  # PATH, with the ssh shim first (see SSH_TARGET_CHANGES)
    docker_host: str
    setup: subprocess.CompletedProcess

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "PATH": self.path, "DOCKER_HOST": self.docker_host}

    def use(self, monkeypatch: pytest.MonkeyPatch) -> Engine:
        """Sets this client's HOME, PATH and DOCKER_HOST, as the deploy step's environment
        is; returns Engine() from that environment."""
        for name in ("HOME", "PATH", "DOCKER_HOST"):
            monkeypatch.setenv(name, self.env()[name])
        return Engine()


@pytest.fixture(scope="module")
def ssh_tools() -> None:
    missing = [tool for tool in CLIENT_TOOLS if not shutil.which(tool)]
    if missing:
        _unavailable(f"no {', '.join(missing)} (apt-get install openssh-client)")


@pytest.fixture(scope="module")
def keys(ssh_tools: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("ssh-keys")
    return {name: keygen(directory / name) for name in ("host", "client", "other_host")}


@pytest.fixture(scope="module")
def target(keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if not SSHD.is_file():
        _unavailable(f"no {SSHD} (apt-get install openssh-server)")
    if not PRIVSEP_DIR.is_dir():
        if os.geteuid() != 0:
            _unavailable(f"sshd's privilege separation directory {PRIVSEP_DIR} is missing "
                         f"(as root: install -d -m 0755 {PRIVSEP_DIR})")
        PRIVSEP_DIR.mkdir(mode=0o755)
    work = tmp_path_factory.mktemp("sshd")
    authorized = work / "authorized_keys"
    authorized.write_text(keys["client"].with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port()
    config = work / "sshd_config"
    config.write_text(SSHD_CONFIG.format(host=HOST, port=port, host_key=keys["host"], pid_file=work / "sshd.pid",
                                         authorized_keys=authorized, user=user))
    log = work / "sshd.log"
    with log.open("wb") as out:
        # -D: no daemon, ours to stop; -e: log to stderr (the file)
        sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    partial = Target(user, port, keys["client"].read_text(), "", log)
    try:
        def scanned() -> str:
            if sshd.poll() is not None:
                raise RuntimeError(f"sshd exited with {sshd.returncode}\n{partial.log_tail()}")
            return _run(["ssh-keyscan", "-T", "2", "-p", str(port), HOST]).stdout

        known_hosts = poll(f"sshd on {HOST}:{port}", scanned, SSHD_READY_S, interval_s=0.2, detail=partial.log_tail)
        yield Target(user, port, partial.client_key, known_hosts, log)
    finally:
        sshd.terminate()
        try:
            sshd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sshd.kill()
            sshd.wait()


def run_setup(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """bin/deploy-ssh-setup with HOME=`home` and only `env` besides PATH."""
    return _run([str(SETUP)], env={"PATH": os.environ["PATH"], "HOME": str(home), **env})


def configured(directory: Path, target: Target, known_hosts: Optional[str] = None) -> Client:
    """A HOME under `directory` set up for `target` as the workflow does it; `known_hosts`
    replaces the pinned lines (default: the target's own)."""
    home, shims = directory / "home", directory / "bin"
    home.mkdir()
    shims.mkdir()
    shim = shims / "ssh"
    shim.write_text(f'#!/bin/sh\nexec {REAL_SSH} -F "$HOME/.ssh/config" "$@"\n')
    shim.chmod(0o755)
    result = run_setup(home, {"DEPLOY_HOST": target.deploy_host, "DEPLOY_SSH_KEY": target.client_key,
                              "DEPLOY_SSH_KNOWN_HOSTS": target.known_hosts if known_hosts is None else known_hosts,
                              "GITHUB_ENV": str(directory / "github_env")})
    assert result.returncode == 0, f"deploy-ssh-setup failed:\n{result.stderr}"
    (line,) = result.stdout.splitlines()
    name, _, docker_host = line.partition("=")
    assert name == "DOCKER_HOST", result.stdout
    return Client(home, f"{shims}{os.pathsep}{os.environ['PATH']}", docker_host, result)


@pytest.fixture(scope="module")
def client(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return configured(tmp_path_factory.mktemp("deployer"), target)


def _image_context() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = IMAGE_DOCKERFILE.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(standin.busybox_path(), arcname="busybox")
    return buffer.getvalue()


def _ssh_children() -> list[str]:
    """This process's child processes named ssh, zombies included: what was not reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name == "ssh" and int(fields[1]) == os.getpid():
            found.append(f"{stat.parent.name} ({fields[0]})")
    return found


def _mean_ping_s(engine: Engine, times: int = 5) -> float:
    started = time.monotonic()
    for _ in range(times):
        engine.ping()
    return (time.monotonic() - started) / times


# --- bin/deploy-ssh-setup ---------------------------------------------------------


def test_setup_pins_the_host_key_and_the_deploy_key(keys: dict[str, Path], tmp_path: Path) -> None:
    home, github_env = tmp_path / "home", tmp_path / "github_env"
    (home / ".ssh").mkdir(parents=True)
    # a user's own config: its global line stays global, its `Host *` must not loosen
    # the deploy host's block
    mine = "ServerAliveInterval 60\nHost *\n  StrictHostKeyChecking no\n  UserKnownHostsFile ~/.ssh/known_hosts\n"
    (home / ".ssh" / "config").write_text(mine)
    host_key = keys["host"].with_suffix(".pub").read_text().strip()
    for port in (2200, 2201):  # a rerun replaces its block: the second port wins
        # as secrets may come: a final newline on the host, CRLF, no final newline on the key
        result = run_setup(home, {"DEPLOY_HOST": f"deploy@{HOST}:{port}\n",
                                  "DEPLOY_SSH_KEY": keys["client"].read_text().strip(),
                                  "DEPLOY_SSH_KNOWN_HOSTS": f"[{HOST}]:{port} {host_key}\r\n",
                                  "GITHUB_ENV": str(github_env)})
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"DOCKER_HOST=ssh://deploy@{HOST}:{port}\n"
    assert github_env.read_text().splitlines() == [f"DOCKER_HOST=ssh://deploy@{HOST}:{port}" for port in (2200, 2201)]

    ssh_dir = home / ".ssh"
    key, known, config = ssh_dir / "fourlb-deploy.key", ssh_dir / "fourlb-deploy.known_hosts", ssh_dir / "config"
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (ssh_dir, key, known, config)}
    assert modes == {".ssh": "0o700", key.name: "0o600", known.name: "0o600", "config": "0o600"}
    assert known.read_text() == f"[{HOST}]:2201 {host_key}\n"
    text = config.read_text()
    assert text.count("# >>> fourlb deploy target") == 1 and text.count("# <<< fourlb deploy target") == 1, text
    assert text.endswith("\n\n" + mine), f"the user's own lines are kept after the block:\n{text}"

    effective = _run(["ssh", "-F", str(config), "-G", "-p", "2201", HOST]).stdout.splitlines()
    expected = {
        "user deploy", "port 2201", f"identityfile {key}", "identitiesonly yes", f"userknownhostsfile {known}",
        "globalknownhostsfile /dev/null", "stricthostkeychecking true", "updatehostkeys false",
        "batchmode yes", "serveraliveinterval 15", "serveralivecountmax 4",
    }
    assert expected <= set(effective), f"missing from `ssh -G`: {sorted(expected - set(effective))}"
    elsewhere = set(_run(["ssh", "-F", str(config), "-G", "other.example"]).stdout.splitlines())
    assert {"serveraliveinterval 60", "stricthostkeychecking false"} <= elsewhere, "the user's own lines changed scope"


@pytest.mark.parametrize("variable, value", [
    ("DEPLOY_HOST", None),
    ("DEPLOY_SSH_KEY", None),
    ("DEPLOY_SSH_KNOWN_HOSTS", None),
    ("DEPLOY_SSH_KEY", ""),
    ("DEPLOY_HOST", f"{HOST}:2200"),  # no user
    ("DEPLOY_HOST", f"deploy@{HOST}:99999"),
    ("DEPLOY_SSH_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"),
    ("DEPLOY_SSH_KNOWN_HOSTS", "host-key"),  # the line without [host]:port, as plain ssh-keyscan prints it
    ("DEPLOY_SSH_KNOWN_HOSTS", "other-host"),
])
def test_setup_refuses_and_changes_nothing(keys: dict[str, Path], tmp_path: Path, variable: str,
                                           value: Optional[str]) -> None:
    host_key = keys["host"].with_suffix(".pub").read_text().strip()
    lines = {"host-key": f"{HOST} {host_key}", "other-host": f"[192.0.2.1]:2200 {host_key}"}
    env = {"DEPLOY_HOST": f"deploy@{HOST}:2200", "DEPLOY_SSH_KEY": keys["client"].read_text(),
           "DEPLOY_SSH_KNOWN_HOSTS": f"[{HOST}]:2200 {host_key}", "GITHUB_ENV": str(tmp_path / "github_env")}
    if value is None:
        del env[variable]
    else:
        env[variable] = lines.get(value, value)
    home = tmp_path / "home"
    home.mkdir()
    result = run_setup(home, env)
    assert result.returncode == 1 and variable in result.stderr and not result.stdout, result
    assert not (home / ".ssh").exists() and not (tmp_path / "github_env").exists()


# --- the engine through ssh ----------------------------------------------------------


def test_the_engine_through_ssh_runs_a_container(engine: Engine, run_dir: Path, target: Target, client: Client,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    over_ssh = client.use(monkeypatch)
    assert over_ssh.ssh_command == dial_stdio_command(f"ssh://{target.deploy_host}")
    token = uuid.uuid4().hex[:12]
    name, labels = f"fourlb-e2e-ssh-{token}", {E2E_LABEL[0]: E2E_LABEL[1], SSH_LABEL: token}
    tag = f"{name}:latest"
    try:
        try:
            over_ssh.ping()
        except ConnectionError as error:
            raise AssertionError(f"{error}\n{target.log_tail()}") from error
        # each call is a new ssh login, as each connection of the docker CLI is
        DURATIONS["engine API call through ssh (ping, mean of 5)"] = _mean_ping_s(over_ssh)
        # a build sends the context (busybox, about 2 MB) through the connection
        over_ssh.build(_image_context(), tag, labels)
        network = over_ssh.create_network({"Name": name, "Labels": labels, "CheckDuplicate": True})
        container = over_ssh.create_container(name, {"Image": tag, "Labels": labels,
                                                     "HostConfig": {"NetworkMode": name}})
        over_ssh.start(container)
        seen = over_ssh.inspect(container)
        assert seen["State"]["Running"] and set(seen["NetworkSettings"]["Networks"]) == {name}, seen["State"]
        # a streamed (multiplexed) response through ssh
        assert over_ssh.exec(container, ["/bin/busybox", "echo", token]) == (0, f"{token}\n".encode())

        # the same engine: the local socket sees what came through ssh
        local = engine.containers(f"{SSH_LABEL}={token}")
        assert [(c["Id"], c["State"]) for c in local] == [(container, "running")], local
        assert [n["Id"] for n in engine.networks(label=f"{SSH_LABEL}={token}")] == [network]
        assert [i["RepoTags"] for i in engine.images(f"{SSH_LABEL}={token}")] == [[tag]]
        assert over_ssh.request("GET", "/info")["ID"] == engine.request("GET", "/info")["ID"]
    finally:
        engine.remove_container(name)
        engine.remove_network(name)
        engine.remove_image(tag)
    left = {"containers": engine.containers(f"{SSH_LABEL}={token}"),
            "networks": engine.networks(label=f"{SSH_LABEL}={token}"),
            "images": engine.images(f"{SSH_LABEL}={token}")}
    assert not any(left.values()), f"left on the engine: {left}"
    assert not _ssh_children(), f"ssh processes not reaped: {_ssh_children()}"
    assert f"Accepted publickey for {target.user}" in target.log.read_text(errors="replace")


def test_the_docker_cli_reaches_the_same_engine_with_this_config(engine: Engine, target: Target,
                                                                 client: Client) -> None:
    docker = shutil.which("docker", path=client.path)
    if docker is None:
        _unavailable("no docker CLI (apt-get install docker.io)")
    # --debug: the CLI logs the ssh command its connection helper starts
    result = _run([docker, "--debug", "info", "--format", "{{.ID}}"], env=client.env())
    assert result.returncode == 0, f"{result.stderr}\n{target.log_tail()}"
    assert result.stdout.strip() == engine.request("GET", "/info")["ID"]
    started = re.search(r"commandconn: starting ssh with \[(.*?)\]", result.stderr)
    assert started, f"no ssh command in the CLI's debug output:\n{result.stderr}"
    # nothing but the URL's user and port, a connect timeout and -T: no key, no host key
    # option of its own (docker/cli's order and -T vary by version)
    for args in (started.group(1), " ".join(dial_stdio_command(client.docker_host)[1:])):
        options, _, remote = args.partition(" -- ")
        assert remote == f"{HOST} docker system dial-stdio", args
        assert set(options.replace("-o ConnectTimeout=30", "").split()) <= {
            "-T", "-l", target.user, "-p", str(target.port)}, args


def test_an_unknown_host_key_is_refused(target: Target, keys: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned line names the host, with another key: ssh refuses before logging in."""
    wrong = f"[{HOST}]:{target.port} {keys['other_host'].with_suffix('.pub').read_text().strip()}\n"
    impostor = configured(tmp_path, target, known_hosts=wrong)
    logged = len(target.log.read_bytes())
    with pytest.raises(ConnectionError, match="Host key verification failed"):
        impostor.use(monkeypatch).ping()
    docker = shutil.which("docker", path=impostor.path)
    if docker:
        result = _run([docker, "version"], env=impostor.env())
        assert result.returncode != 0 and "Host key verification failed" in result.stderr, result
    assert (impostor.home / ".ssh" / "fourlb-deploy.known_hosts").read_text() == wrong, "ssh changed the pinned file"
    assert "Accepted" not in target.log.read_bytes()[logged:].decode(errors="replace")
    assert not _ssh_children()
