"""A small Docker Engine API client over the local unix socket, or over ssh.

The raw API (not the `docker` CLI) because the CLI cannot express what the
program sends: exec-form health checks (`["CMD", ...]`) and several networks
with aliases. Nothing here talks to a registry: images are built locally.

`DOCKER_HOST=ssh://user@host[:port]` (or the same as argument) reaches the engine
as the deploy does: each connection through `ssh ... docker system dial-stdio`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import tempfile
import urllib.parse
from typing import Any, Optional

from plan.docker_host import UnixHTTPConnection

# Everything used here exists since API 1.41 (Docker 20.10, Debian 12's docker.io);
# newer engines are asked for the newest version both sides know, capped at the
# newest one these tests were run against.
OLDEST_API = (1, 41)
NEWEST_TESTED_API = (1, 47)
DEFAULT_SOCKET = "/var/run/docker.sock"
# how long a closed connection's ssh may take to exit before it is killed
SSH_EXIT_S = 10


class EngineError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path}: HTTP {status}: {body.strip()[:500]}")
        self.status = status


def socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return DEFAULT_SOCKET


def dial_stdio_command(url: str) -> list[str]:
    """The command the docker CLI (and pulumi-docker, through the same code) runs for
    an ssh:// host: docker/cli v28.0-v28.2 cli/connhelper/connhelper.go getConnectionHelper
    and cli/connhelper/ssh/ssh.go Spec.Args. pulumi-docker (terraform-provider-docker
    Config.NewClient -> connhelper.GetConnectionHelperWithSSHOpts) puts its ssh_opts
    (docker:sshOpts, DOCKER_SSH_OPTS) first. Before v28.0 there is no -T; from v28.3
    -l and -p come first and the remote command is one quoted word."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname or parts.password or parts.query or parts.fragment:
        raise ValueError(f"not an ssh://[user@]host[:port][/socket] URL: {url!r}")
    args = ["ssh", "-o ConnectTimeout=30", "-T"]
    if parts.username:
        args += ["-l", parts.username]
    if parts.port:
        args += ["-p", str(parts.port)]
    remote = ["docker", "--host", f"unix://{parts.path}"] if parts.path else ["docker"]
    return args + ["--", parts.hostname] + remote + ["system", "dial-stdio"]


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


class _Connection(http.client.HTTPConnection):
    def finish(self) -> None:
        """After the response is read (or the request failed)."""
        self.close()

    def explained(self, error: BaseException) -> BaseException:
        return error


class _UnixConnection(UnixHTTPConnection, _Connection):
    pass


class _DialStdioConnection(_Connection):
    """One HTTP connection carried by its own `ssh ... docker system dial-stdio`, as the
    docker CLI does it: one end of a socket pair is the HTTP socket, the other the
    child's stdin and stdout. Closing it ends the child, which `finish` reaps."""

    def __init__(self, command: list[str], timeout: float):
        super().__init__("docker", timeout=timeout)
        self._command = command
        self._child: Optional[subprocess.Popen] = None
        self._ours: Optional[socket.socket] = None
        self._stderr = tempfile.TemporaryFile()
        self.said = ""  # ssh's stderr, once it has exited

    def connect(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            # a session of its own, as the CLI's commandconn: no terminal signal reaches ssh
            self._child = subprocess.Popen(self._command, stdin=theirs, stdout=theirs, stderr=self._stderr,
                                           start_new_session=True)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(self.timeout)
        self.sock = self._ours = ours

    # not in close(): http.client calls that while the response still reads the socket
    def finish(self) -> None:
        if self._ours is not None and self._ours.fileno() != -1:
            # EOF on the child's stdin (dial-stdio, then ssh, exit), even while a
            # response object still holds the socket
            with contextlib.suppress(OSError):
                self._ours.shutdown(socket.SHUT_RDWR)
        self.close()
        if self._child is not None and self._child.returncode is None:
            try:
                self._child.wait(timeout=SSH_EXIT_S)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        if not self._stderr.closed:
            self._stderr.seek(0)
            self.said = self._stderr.read().decode(errors="replace").strip()[-2000:]
            self._stderr.close()

    def explained(self, error: BaseException) -> BaseException:
        """`error` with what ssh said (e.g. "Host key verification failed.")."""
        self.finish()
        code = self._child.returncode if self._child else None
        return ConnectionError(f"{error} (through {' '.join(self._command)}: exit {code}, "
                               f"stderr: {self.said or 'empty'})")


class Engine:
    def __init__(self, path: Optional[str] = None, timeout: float = 30.0):
        """`path`: the engine's unix socket, or an ssh:// URL; default from DOCKER_HOST as
        the docker CLI reads it (unix:// or ssh://; anything else: the default socket)."""
        target = path or os.environ.get("DOCKER_HOST", "")
        self._ssh: Optional[list[str]] = None
        if target.startswith("ssh://"):
            self._ssh = dial_stdio_command(target)
            # the socket on the far side, that dial-stdio connects to
            self.path = urllib.parse.urlsplit(target).path or DEFAULT_SOCKET
            self.url = target
        else:
            self.path = path or socket_path()
            self.url = f"unix://{self.path}"  # DOCKER_HOST for the docker CLI
        self.timeout = timeout
        self._api: Optional[str] = None

    def api_version(self) -> str:
        if self._api is None:
            server = self._call("GET", "/version", None, None, "application/json", (200,), 5)
            newest = _version(server["ApiVersion"])
            oldest = _version(server.get("MinAPIVersion", "1.12"))
            chosen = min(newest, NEWEST_TESTED_API)
            if chosen < max(oldest, OLDEST_API):
                raise EngineError("GET", "/version", 200, f"engine API {newest} (minimum {oldest}) "
                                  f"and these tests ({OLDEST_API}..{NEWEST_TESTED_API}) share no version")
            self._api = "v%d.%d" % chosen
        return self._api

    @property
    def endpoint(self) -> str:
        """The socket as Traefik's docker provider names it (Traefik runs on the engine's
        host: for an ssh:// engine, the socket there)."""
        return f"unix://{self.path}"

    @property
    def ssh_command(self) -> Optional[list[str]]:
        """What each connection runs, for an ssh:// engine; None on the unix socket."""
        return list(self._ssh) if self._ssh else None

    def _connection(self, timeout: float) -> _Connection:
        if self._ssh:
            return _DialStdioConnection(self._ssh, timeout)
        return _UnixConnection(self.path, timeout)

    def request(self, method: str, path: str, query: Optional[dict[str, Any]] = None,
                body: Any = None, raw: Optional[bytes] = None, content_type: str = "application/json",
                ok: tuple[int, ...] = (200, 201, 204), timeout: Optional[float] = None) -> Any:
        url = f"/{self.api_version()}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in query.items()})
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return self._call(method, url, payload, path, content_type, ok, timeout)

    def _call(self, method: str, url: str, payload: Optional[bytes], path: Optional[str],
              content_type: str, ok: tuple[int, ...], timeout: Optional[float]) -> Any:
        path = path or url
        headers = {"Content-Type": content_type} if payload is not None else {}
        connection = self._connection(timeout or self.timeout)
        try:
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise connection.explained(error)
        finally:
            connection.finish()
        if response.status not in ok:
            raise EngineError(method, path, response.status, data.decode(errors="replace"))
        if not data:
            return None
        if response.getheader("Content-Type", "").startswith("application/json"):
            try:
                return json.loads(data)
            except ValueError:
                pass
        return data

    # --- what the tests use -------------------------------------------------

    def ping(self) -> None:
        self._call("GET", "/_ping", None, None, "application/json", (200,), 5)

    def build(self, context_tar: bytes, tag: str, labels: dict[str, str]) -> None:
        data = self.request("POST", "/build", query={"t": tag, "labels": labels, "rm": 1, "forcerm": 1},
                            raw=context_tar, content_type="application/x-tar", timeout=120)
        _raise_stream_error(data, f"building {tag}")

    def containers(self, label: str) -> list[dict[str, Any]]:
        return self.request("GET", "/containers/json", query={"all": 1, "filters": {"label": [label]}})

    def networks(self, label: Optional[str] = None, name: Optional[str] = None) -> list[dict[str, Any]]:
        filters: dict[str, list[str]] = {}
        if label:
            filters["label"] = [label]
        if name:
            filters["name"] = [name]
        return self.request("GET", "/networks", query={"filters": filters})

    def images(self, label: str) -> list[dict[str, Any]]:
        return self.request("GET", "/images/json", query={"filters": {"label": [label]}})

    def create_network(self, spec: dict[str, Any]) -> str:
        return self.request("POST", "/networks/create", body=spec)["Id"]

    def remove_network(self, ident: str) -> None:
        self.request("DELETE", f"/networks/{ident}", ok=(200, 204, 404))

    def create_container(self, name: str, spec: dict[str, Any]) -> str:
        return self.request("POST", "/containers/create", query={"name": name}, body=spec)["Id"]

    def connect(self, network: str, container: str, aliases: list[str]) -> None:
        self.request("POST", f"/networks/{network}/connect",
                     body={"Container": container, "EndpointConfig": {"Aliases": aliases}})

    def put_archive(self, container: str, tar: bytes, path: str = "/") -> None:
        self.request("PUT", f"/containers/{container}/archive", query={"path": path},
                     raw=tar, content_type="application/x-tar")

    def start(self, container: str) -> None:
        self.request("POST", f"/containers/{container}/start", ok=(204, 304))

    def inspect(self, container: str) -> dict[str, Any]:
        return self.request("GET", f"/containers/{container}/json")

    def stop(self, ident: str, timeout_s: int) -> None:
        """As `docker stop -t`: SIGTERM, then SIGKILL after `timeout_s` (0: at once)."""
        self.request("POST", f"/containers/{ident}/stop", query={"t": timeout_s}, ok=(204, 304))

    def remove_container(self, ident: str) -> None:
        self.request("DELETE", f"/containers/{ident}", query={"force": 1, "v": 1}, ok=(200, 204, 404))

    def remove_image(self, ident: str) -> None:
        self.request("DELETE", f"/images/{ident}", query={"force": 1}, ok=(200, 404, 409))

    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]:
        """Runs `cmd` in the container (as `user`, uid[:gid], if given: `docker exec --user`);
        exit code and combined output (multiplexed stream)."""
        ident = self.request("POST", f"/containers/{container}/exec", body={
            "Cmd": cmd, "AttachStdout": True, "AttachStderr": True, "User": user})["Id"]
        raw = self.request("POST", f"/exec/{ident}/start", body={"Detach": False, "Tty": False},
                           ok=(200,)) or b""
        code = self.request("GET", f"/exec/{ident}/json")["ExitCode"]
        return code, _demultiplexed(raw)

    def logs(self, container: str, timestamps: bool = False) -> str:
        """What the container wrote so far, stdout and stderr as one text (each line
        after the time Docker received it, with `timestamps`)."""
        raw = self.request("GET", f"/containers/{container}/logs", ok=(200,),
                           query={"stdout": 1, "stderr": 1, "timestamps": int(timestamps)}) or b""
        return _demultiplexed(raw).decode(errors="replace")

    def import_image(self, rootfs_tar: bytes, repository: str, tag: str, changes: list[str]) -> None:
        """As `docker import`: an image whose only layer is `rootfs_tar` (owners and modes
        as the archive has them), with Dockerfile instructions `changes` (USER, CMD, ...)."""
        query = urllib.parse.urlencode([("fromSrc", "-"), ("repo", repository), ("tag", tag)]
                                       + [("changes", change) for change in changes])
        url = f"/{self.api_version()}/images/create?{query}"
        data = self._call("POST", url, rootfs_tar, "/images/create", "application/x-tar", (200,), 300)
        _raise_stream_error(data, f"importing {repository}:{tag}")

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self.request("POST", "/volumes/create", body={"Name": name, "Labels": labels})

    def volumes(self, label: Optional[str] = None) -> list[dict[str, Any]]:
        query = {"filters": {"label": [label]}} if label else None
        return self.request("GET", "/volumes", query=query).get("Volumes") or []

    def remove_volume(self, name: str) -> None:
        self.request("DELETE", f"/volumes/{name}", query={"force": 1}, ok=(200, 204, 404))


def _raise_stream_error(data: Any, what: str) -> None:
    """The engine answers a build or an import with a stream of JSON lines, a failure
    among them as {"error": ...} after a 200: raise it."""
    if not isinstance(data, bytes):
        return
    for line in data.decode(errors="replace").splitlines():
        message = json.loads(line) if line.strip().startswith("{") else {}
        if "error" in message:
            raise RuntimeError(f"{what}: {message['error']}")


def _demultiplexed(raw: bytes) -> bytes:
    """A stream of a container without a TTY: frames of an 8-byte header (stream,
    0, 0, 0, big-endian size) and their bytes."""
    output = b""
    while len(raw) >= 8:
        size = int.from_bytes(raw[4:8], "big")
        output += raw[8:8 + size]
        raw = raw[8 + size:]
    return output
