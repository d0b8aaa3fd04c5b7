"""A three-node Docker Swarm on this one machine, for end-to-end tests of the swarm engine.

Each node is a `dockerd` of its own, in network, mount and UTS namespaces of its own:
its own hostname (the swarm node name), data root, exec root, pid file, socket and
`/etc/docker` (else the nodes would share one `key.json`, hence one engine ID). The
nodes' network namespaces meet on one Linux bridge, which lives in a namespace of its
own (`fourlb-swarm-lan`) with no IP address and no route out: the lab's addresses
exist only inside the lab, and nothing of it shows in the host's network namespace.
A fourth namespace on that bridge, the client, stands for the outside world: tests
send requests from it to the nodes' addresses, as a visitor's browser would.

The first node (edge) is the only manager and the two others (data, ai) are workers,
as the platform is laid out; each carries the label `fourlb.role=<role>`.

A fifth namespace runs an image registry (Debian's docker-registry, distribution 2.8)
that every node pulls from, as nodes of a real swarm pull from Docker Hub and the other
public registries: the nodes start with no image. Each node's daemon takes it as its
Docker Hub mirror and resolves the other registries' names to it (REGISTRY_NAMES):
an image keeps the very name the program gives it. `push_image` puts an image there.

What a swarm here cannot do that a production swarm does is in LIMITS, with why.

Everything the lab makes is named `fourlb-swarm*` (namespaces, cgroups, the directory
under the temp dir) and is found again by that name, so `cleanup_leftovers()` can remove
what a crashed run left without touching anything else. One lab runs at a time: the
lock file serializes two test runs on this machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional, Sequence, Union

from tests.e2e.engine import Engine
from tests.e2e.polling import poll
from tests.processes import stop

PREFIX = "fourlb-swarm"
ROOT = Path(tempfile.gettempdir()) / PREFIX
LOCK_FILE = Path(tempfile.gettempdir()) / f"{PREFIX}.lock"
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# every container of node N lives in the cgroup /fourlb-swarm/<N>/<id> of each hierarchy:
# found and removed by name, and never mixed with the main daemon's /docker/<id>
CGROUP_PARENT = f"/{PREFIX}"

LAN_NETNS = f"{PREFIX}-lan"
LAN_BRIDGE = "lan0"
LAN_PREFIX_LENGTH = 24
CLIENT_NETNS = f"{PREFIX}-client"
CLIENT_ADDRESS = "10.231.0.100"
# Swarm's default pool for overlay subnets is 10.0.0.0/8, which holds the LAN's
# 10.231.0.0/24: a pool of its own keeps an overlay from ever taking the LAN's addresses.
OVERLAY_POOL = "10.232.0.0/16"
OVERLAY_MASK_LENGTH = 24
SWARM_PORT = 2377
ROLE_LABEL = "fourlb.role"
REGISTRY_NETNS = f"{PREFIX}-registry"
REGISTRY_ADDRESS = "10.231.0.200"
# the registries the platform's images come from besides Docker Hub, and the one a
# swarm stack pushes its built images to in the lab (fourlb:swarm.registry): each
# node's /etc/hosts gives them the lab registry's address
OWN_REGISTRY = "registry.swarm-lab.internal"
REGISTRY_NAMES = ("ghcr.io", "lscr.io", "gcr.io", OWN_REGISTRY)
DOCKER_HUB = "docker.io"
NODE_DOCKER_SOCKET = "/var/run/docker.sock"

LIMITS = {
    "service VIPs and the ingress routing mesh":
        "this kernel has no IPVS: services use `--endpoint-mode dnsrr` and publish "
        "ports with `mode=host` on the node that runs the task",
    "encrypted overlay networks (`--opt encrypted`)":
        "this kernel has no ESP (IPsec): such overlays carry nothing between nodes",
    "a way out to the internet":
        "the LAN has no route out: the nodes pull every image from the lab's registry, Docker "
        "Hub's as its mirror and the other registries' under their names (REGISTRY_NAMES), "
        "over plain HTTP (each node's daemon marks them insecure)",
}

COMMAND_TIMEOUT_S = 60
DAEMON_READY_S = 30
SWARM_READY_S = 30
DAEMON_STOP_S = 20
IMAGE_LOAD_S = 180
PROCESSES_GONE_S = 10
CGROUPS_GONE_S = 10
LOCK_WAIT_S = 300
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class NodeSpec:
    name: str     # the hostname, hence the swarm node's name
    role: str     # the value of its fourlb.role label
    address: str  # on the lab LAN
    netns: str


NODES = (
    NodeSpec("fourlb-edge", "edge", "10.231.0.11", f"{PREFIX}-1"),
    NodeSpec("fourlb-data", "data", "10.231.0.12", f"{PREFIX}-2"),
    NodeSpec("fourlb-ai", "ai", "10.231.0.13", f"{PREFIX}-3"),
)

# What a node's dockerd does before it becomes dockerd, inside its new mount and UTS
# namespaces (already in the node's network namespace). Arguments: hostname, node
# directory, then dockerd's arguments.
# - The new mount namespace starts as a copy of the host's, with the main daemon's
#   container filesystems (overlay) and network-namespace files (nsfs): detached here,
#   a copy would keep them, and their veths, alive after the main daemon removes them.
# - A private /run: whatever dockerd or containerd write there by fixed path (shim
#   sockets in /run/containerd, /run/docker/...) stays the node's own and goes with it.
# - A fresh sysfs, mounted from inside the node's network namespace, shows the node's
#   interfaces in /sys/class/net (what dockerd's network drivers read); the host's cgroup
#   mounts are moved back onto it, since a new sysfs has none (`ip netns exec` loses them).
NODE_INIT = """\
set -eu
name=$1 node_dir=$2
shift 2
mountinfo=$(cat /proc/self/mountinfo)
printf '%s\\n' "$mountinfo" | while read -r _ _ _ _ point rest; do
    fstype=${rest#* - }
    fstype=${fstype%% *}
    case $point:$fstype in
        /:*) ;;
        /run:*|/run/*|*:overlay|*:nsfs) umount -l "$point" 2>/dev/null || true ;;
    esac
done
mount -t tmpfs -o mode=0755 fourlb-swarm-run /run
mount --rbind /sys/fs/cgroup "$node_dir/cgroup"
mount -t sysfs fourlb-swarm-sys /sys
mount --move "$node_dir/cgroup" /sys/fs/cgroup
mount --bind "$node_dir/etc" /etc/docker
mount --bind "$node_dir/hosts" /etc/hosts
printf '%s' "$name" > /proc/sys/kernel/hostname
exec "$@"
"""

# GET a URL from inside the client namespace; prints status, headers and body as JSON.
# No proxy from the environment: the lab's addresses are never behind one.
HTTP_GET = """\
import json, sys, urllib.error, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(url, timeout=timeout) as response:
        status, headers, body = response.status, dict(response.headers), response.read()
except urllib.error.HTTPError as error:
    status, headers, body = error.code, dict(error.headers), error.read()
print(json.dumps({"status": status, "headers": headers, "body": body.decode(errors="replace")}))
"""

# the programs a node runs on the host side: found again by name and the lab's path
DAEMON_PROGRAMS = frozenset({"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2",
                             "docker-proxy", "runc", "docker-registry"})
REGISTRY_READY_S = 30
# the lab registry: plain HTTP on the standard port, so that an image name needs no port
REGISTRY_CONFIG = f"""\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {ROOT}/registry/data}}
  delete: {{enabled: true}}
http:
  addr: {REGISTRY_ADDRESS}:80
"""


class LabError(RuntimeError):
    pass


class CommandFailed(subprocess.CalledProcessError):
    """A failed command whose message carries what it said (CalledProcessError's does not)."""

    def __str__(self) -> str:
        said = (self.stderr or self.stdout or "").strip()[-2000:]
        return f"{shlex.join(map(str, self.cmd))} exited {self.returncode}: {said or '(no output)'}"


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: str


def run(argv: Sequence[str], *, input: Optional[str] = None, timeout: float = COMMAND_TIMEOUT_S,
        check: bool = True, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, env=env,
                            check=False)
    if check and result.returncode:
        raise CommandFailed(result.returncode, result.args, result.stdout, result.stderr)
    return result


def ip(*args: str, netns: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *(["-n", netns] if netns else []), *args], check=check)


def node_env() -> dict[str, str]:
    """The environment for a node's dockerd and for `docker -H <node>`: no DOCKER_HOST or
    DOCKER_CONTEXT (the main daemon's) to conflict with -H."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_CLI_HINTS"] = "false"
    return env


class LanHost:
    """A network namespace with one port on the lab LAN: `eth0`, `address`/24."""

    def __init__(self, netns: str, address: str):
        self.netns = netns
        self.address = address

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    def run(self, argv: Sequence[str], *, input: Optional[str] = None, timeout: float = COMMAND_TIMEOUT_S,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """A host command inside this namespace's network only (nsenter, not `ip netns
        exec`, which would also remount /sys): it sees what a machine at `address` sees."""
        return run(["nsenter", f"--net={self.netns_path}", "--", *argv], input=input, timeout=timeout, check=check)

    def create_on_lan(self, port: str) -> None:
        """Creates the namespace and its veth to the LAN bridge (`port` on the bridge side)."""
        ip("netns", "add", self.netns)
        ip("link", "set", "lo", "up", netns=self.netns)
        ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", self.netns, netns=LAN_NETNS)
        ip("link", "set", port, "master", LAN_BRIDGE, "up", netns=LAN_NETNS)
        ip("addr", "add", f"{self.address}/{LAN_PREFIX_LENGTH}", "dev", "eth0", netns=self.netns)
        ip("link", "set", "eth0", "up", netns=self.netns)


class Node(LanHost):
    """One swarm node: a dockerd in its own namespaces, files under `directory`."""

    def __init__(self, spec: NodeSpec, directory: Path):
        super().__init__(spec.netns, spec.address)
        self.name = spec.name
        self.role = spec.role
        self.directory = directory
        self.swarm_id = ""  # known once the node is in the swarm
        self.engine = Engine(str(self.socket))
        self._process: Optional[subprocess.Popen[bytes]] = None

    def __repr__(self) -> str:
        return f"Node({self.name}, {self.address}, pid {self.pid})"

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def log_file(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "dockerd.pid"

    @property
    def pid(self) -> Optional[int]:
        """The pid of this node's dockerd while it runs."""
        return self._process.pid if self._process and self._process.returncode is None else None

    def docker(self, *args: str, input: Optional[str] = None, timeout: float = COMMAND_TIMEOUT_S,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this node (`docker -H unix://<socket> ...`)."""
        return run(["docker", "-H", f"unix://{self.socket}", *args], input=input, timeout=timeout, check=check,
                   env=node_env())

    def api(self, method: str, path: str, body: Any = None, query: Optional[dict[str, Any]] = None,
            timeout: Optional[float] = None) -> Any:
        """The Engine API of this node (e.g. `api("GET", "/nodes")`); JSON decoded."""
        return self.engine.request(method, path, query=query, body=body, timeout=timeout)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return f"--- {self.name}: no dockerd log yet"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- the last lines of {self.log_file}:\n{tail}"

    def dockerd_args(self) -> list[str]:
        """Flags that keep this dockerd apart from the main one and the other nodes.
        --iptables stays on (the default, as in production): its rules live in the node's
        network namespace only. --bridge=none: tasks use overlays and docker_gwbridge,
        never the default bridge."""
        return ["dockerd",
                f"--host=unix://{self.socket}",
                # also where a machine's daemon listens, in the node's own /run: a
                # service binding the Docker socket (the socket proxy) gets its node's
                f"--host=unix://{NODE_DOCKER_SOCKET}",
                f"--data-root={self.directory / 'data'}",
                f"--exec-root={self.directory / 'exec'}",
                f"--pidfile={self.pidfile}",
                f"--cgroup-parent={CGROUP_PARENT}/{self.name}",
                "--bridge=none",
                f"--swarm-default-advertise-addr={self.address}"]

    def start(self) -> None:
        for part in ("data", "exec", "etc", "cgroup"):
            (self.directory / part).mkdir(parents=True, exist_ok=True)
        (self.directory / "etc" / "daemon.json").write_text(json.dumps({
            "registry-mirrors": [f"http://{REGISTRY_ADDRESS}"],
            "insecure-registries": [REGISTRY_ADDRESS, *REGISTRY_NAMES]}))
        (self.directory / "hosts").write_text(
            f"127.0.0.1 localhost\n{self.address} {self.name}\n{REGISTRY_ADDRESS} {' '.join(REGISTRY_NAMES)}\n")
        argv = ["nsenter", f"--net={self.netns_path}", "--",
                "unshare", "--mount", "--uts", "--propagation", "private", "--",
                "/bin/sh", "-c", NODE_INIT, "node-init", self.name, str(self.directory), *self.dockerd_args()]
        env = node_env()
        with self.log_file.open("ab") as log:
            # nsenter, unshare and sh each exec the next: the child's pid is dockerd's.
            # A session of its own: a Ctrl-C at the terminal leaves the teardown to the lab.
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                             start_new_session=True)

    def wait_ready(self, timeout_s: float = DAEMON_READY_S) -> None:
        poll(f"dockerd of {self.name} to answer on {self.socket}", self._answers, timeout_s, interval_s=0.1,
             detail=self.log_tail)
        written = int(self.pidfile.read_text().strip())
        if written != self.pid:
            raise LabError(f"{self.name}: {self.pidfile} says {written}, the lab started {self.pid}: "
                           "something between nsenter and dockerd forked")

    def _answers(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            code = self._process.returncode if self._process else None
            raise LabError(f"dockerd of {self.name} exited ({code}) before answering\n{self.log_tail()}")
        self.engine.ping()
        return self.pidfile.exists()

    def terminate(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()

    def wait_stopped(self, timeout_s: float = DAEMON_STOP_S) -> None:
        """After terminate(): waits for dockerd, SIGKILL past `timeout_s`."""
        if self._process is not None:
            stop(self._process, timeout_s)
            self._process = None


class Lab:
    """The running swarm, as a context manager. Setup that fails tears down what it made."""

    def __init__(self) -> None:
        # one fixed place, so that cleanup_leftovers() finds what a crashed lab left
        self.root = ROOT
        self.nodes = [Node(spec, ROOT / spec.name) for spec in NODES]
        self.client = LanHost(CLIENT_NETNS, CLIENT_ADDRESS)
        self.registry = LanHost(REGISTRY_NETNS, REGISTRY_ADDRESS)
        self._registry_process: Optional[subprocess.Popen[bytes]] = None
        # seconds each step took: "LAN built", "daemons ready", "swarm formed", their sum
        # "lab up"; after tear_down also "daemons stopped" and "leftovers removed"
        self.timings: dict[str, float] = {}
        self._lock: Optional[IO[str]] = None

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        return self.nodes[1:]

    def node(self, role: str) -> Node:
        """The node with `fourlb.role=<role>` (edge, data, ai)."""
        for node in self.nodes:
            if node.role == role:
                return node
        raise KeyError(f"no node with role {role!r}; the roles are {[n.role for n in self.nodes]}")

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Lab:
        self._lock = take_lock()
        try:
            self._set_up()
        except BaseException:
            self.tear_down()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.tear_down()

    def _set_up(self) -> None:
        remove_leftovers()
        self._timed("LAN built", self._build_lan)
        self._timed("registry ready", self._start_registry)
        self._timed("daemons ready", self._start_daemons)
        self._timed("swarm formed", self._form_swarm)
        self.timings["lab up"] = round(sum(self.timings.values()), 3)

    def _timed(self, step: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        action()
        self.timings[step] = round(time.monotonic() - started, 3)

    def _build_lan(self) -> None:
        ip("netns", "add", LAN_NETNS)
        ip("link", "add", LAN_BRIDGE, "type", "bridge", netns=LAN_NETNS)
        ip("link", "set", LAN_BRIDGE, "up", netns=LAN_NETNS)
        for host in [*self.nodes, self.client, self.registry]:
            host.create_on_lan(port=f"to-{host.netns.removeprefix(PREFIX + '-')}")

    def _start_registry(self) -> None:
        directory = self.root / "registry"
        (directory / "data").mkdir(parents=True, exist_ok=True)
        config = directory / "config.yml"
        config.write_text(REGISTRY_CONFIG)
        with (directory / "registry.log").open("ab") as log:
            self._registry_process = subprocess.Popen(
                ["nsenter", f"--net={self.registry.netns_path}", "--", "docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

        def answers() -> bool:
            if self._registry_process is not None and self._registry_process.poll() is not None:
                raise LabError(f"the lab registry exited: {(directory / 'registry.log').read_text()[-2000:]}")
            return self.client_get(f"http://{REGISTRY_ADDRESS}/v2/").status == 200
        poll("the lab registry to answer", answers, REGISTRY_READY_S, interval_s=0.2)

    def _start_daemons(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()

    def _form_swarm(self) -> None:
        manager = self.manager
        manager.docker("swarm", "init", f"--advertise-addr={manager.address}",
                       f"--listen-addr={manager.address}:{SWARM_PORT}",
                       f"--default-addr-pool={OVERLAY_POOL}",
                       f"--default-addr-pool-mask-length={OVERLAY_MASK_LENGTH}")
        token = manager.docker("swarm", "join-token", "--quiet", "worker").stdout.strip()
        for worker in self.workers:
            worker.docker("swarm", "join", f"--token={token}", f"--advertise-addr={worker.address}",
                          f"{manager.address}:{SWARM_PORT}")
        for node in self.nodes:
            node.swarm_id = node.api("GET", "/info")["Swarm"]["NodeID"]
        self.wait_for("all nodes ready in the swarm", self._all_nodes_ready, SWARM_READY_S)
        for node in self.nodes:
            manager.docker("node", "update", "--label-add", f"{ROLE_LABEL}={node.role}", node.swarm_id)

    def _all_nodes_ready(self) -> bool:
        states = {n["ID"]: n["Status"]["State"] for n in self.manager.api("GET", "/nodes")}
        return all(states.get(node.swarm_id) == "ready" for node in self.nodes)

    def tear_down(self) -> None:
        """Idempotent: stops the lab's daemons by pid, then removes every namespace, cgroup,
        mount and file of the lab. The nodes do not leave the swarm first: its state goes
        with their data roots, and a worker's `swarm leave` waits seconds for the manager."""
        if self._lock is None:
            return  # torn down already (or never set up): without the lock, the names may be another lab's
        try:
            self._timed("daemons stopped", self._stop_daemons)
        finally:
            try:
                self._timed("leftovers removed", remove_leftovers)
            finally:
                release_lock(self._lock)
                self._lock = None

    def _stop_daemons(self) -> None:
        """SIGTERM to all first: each dockerd takes about a second to stop its containers."""
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.wait_stopped()
        if self._registry_process is not None:
            stop(self._registry_process, DAEMON_STOP_S)
            self._registry_process = None

    # --- for tests ---------------------------------------------------------------

    def wait_for(self, what: str, condition: Callable[[], Any], timeout_s: float,
                 interval_s: float = 0.2) -> Any:
        """poll() whose failure shows the tail of every node's dockerd log."""
        return poll(what, condition, timeout_s, interval_s, detail=self.daemon_logs)

    def daemon_logs(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes)

    def load_image(self, tag: str, timeout_s: float = IMAGE_LOAD_S) -> None:
        """Copies `tag` from the main daemon (DOCKER_HOST, else the default socket) into
        every node: `docker save`, then `docker load` on the nodes side by side."""
        archive = self.root / f"image-{tag.replace('/', '_').replace(':', '_')}.tar"
        run(["docker", "save", "--output", str(archive), tag], timeout=timeout_s)
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda node: node.docker("load", "--input", str(archive), timeout=timeout_s),
                              self.nodes))
        finally:
            archive.unlink(missing_ok=True)

    def push_image(self, tag: str, timeout_s: float = IMAGE_LOAD_S) -> str:
        """Puts `tag`, an image of the main daemon, into the lab registry under the name
        a node pulls it by (`traefik:v3.6` from Docker Hub's mirror, `ghcr.io/x/y:1` from
        the registry behind ghcr.io): the manager loads it, pushes it and forgets it, so
        that every node, the manager too, has to pull it. Returns its digest."""
        archive = self.root / f"image-{tag.replace('/', '_').replace(':', '_')}.tar"
        run(["docker", "save", "--output", str(archive), tag], timeout=timeout_s)
        try:
            self.manager.docker("load", "--input", str(archive), timeout=timeout_s)
        finally:
            archive.unlink(missing_ok=True)
        try:
            return self.push_from_manager(tag, timeout_s)
        finally:
            self.manager.docker("rmi", "--force", tag, check=False)

    def push_from_manager(self, tag: str, timeout_s: float = IMAGE_LOAD_S) -> str:
        """Puts `tag`, an image of the manager's, into the lab registry under the name
        a node pulls it by (push_image); returns its digest. The image stays on the
        manager under `tag` only."""
        pushed = f"{REGISTRY_ADDRESS}/{registry_path(tag)}"
        self.manager.docker("tag", tag, pushed)
        try:
            out = self.manager.docker("push", pushed, timeout=timeout_s).stdout
        finally:
            self.manager.docker("rmi", pushed, check=False)
        digests = [word for word in out.split() if word.startswith("sha256:")]
        if not digests:
            raise LabError(f"pushing {tag} as {pushed} printed no digest:\n{out}")
        return digests[-1]

    def run_in_node(self, node: Node, argv: Sequence[str], *, input: Optional[str] = None,
                    timeout: float = COMMAND_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A host command in `node`'s network namespace (e.g. curl to a task's address)."""
        return node.run(argv, input=input, timeout=timeout, check=check)

    def client_run(self, argv: Sequence[str], *, input: Optional[str] = None,
                   timeout: float = COMMAND_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A host command in the client namespace: the outside world, on the LAN only."""
        return self.client.run(argv, input=input, timeout=timeout, check=check)

    def client_get(self, url: str, timeout_s: float = 5) -> HttpReply:
        """GET `url` from the client namespace. A refused or timed-out connection raises
        ConnectionError (an OSError: poll() retries it); any HTTP status is a reply."""
        result = self.client_run([sys.executable, "-c", HTTP_GET, url, str(timeout_s)],
                                 timeout=timeout_s + 10, check=False)
        if result.returncode:
            raise ConnectionError(f"GET {url} from {self.client.address}: {result.stderr.strip()[-500:]}")
        reply = json.loads(result.stdout)
        return HttpReply(reply["status"], reply["headers"], reply["body"])


def registry_path(image: str) -> str:
    """The repository and tag of `image` in whichever registry serves it: Docker Hub's
    official images under library/, another registry's name dropped."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        if first not in (*REGISTRY_NAMES, DOCKER_HUB):
            raise ValueError(f"{image}: the lab registry stands for {DOCKER_HUB} and {', '.join(REGISTRY_NAMES)} only")
        image = rest
    elif not rest:
        image = f"library/{image}"
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


# --- finding and removing what the lab makes, by name ---------------------------


def take_lock(timeout_s: float = LOCK_WAIT_S) -> IO[str]:
    lock = LOCK_FILE.open("w")

    def take() -> bool:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError (an OSError): retried
        return True

    try:
        poll(f"the swarm lab lock {LOCK_FILE} (another lab runs on this machine)", take, timeout_s, interval_s=1)
    except BaseException:
        lock.close()
        raise
    return lock


def release_lock(lock: Optional[IO[str]]) -> None:
    if lock is not None and not lock.closed:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def cleanup_leftovers() -> None:
    """Removes what an earlier lab left behind (a crashed or killed run): its processes,
    cgroups, mounts, namespaces and files, all found by the lab's names. Waits for a lab
    that is still running elsewhere to end rather than remove it."""
    lock = take_lock()
    try:
        remove_leftovers()
    finally:
        release_lock(lock)


def remove_leftovers() -> None:
    """As cleanup_leftovers(), by a caller that holds the lock."""
    poll("the swarm lab's processes to exit", kill_lab_processes, PROCESSES_GONE_S, interval_s=0.1,
         detail=lambda: f"still running: {lab_processes()}")
    poll("the swarm lab's cgroups to be removed", remove_lab_cgroups, CGROUPS_GONE_S, interval_s=0.1)
    unmount_under(ROOT)
    for netns in lab_namespaces():
        ip("netns", "delete", netns)
    if ROOT.exists():
        shutil.rmtree(ROOT)


def lab_namespaces() -> list[str]:
    """Named network namespaces of the lab (`ip netns list` prints `name (id: N)`)."""
    listed = ip("netns", "list").stdout.splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    return [name for name in names if name.startswith(PREFIX)]


def kill_lab_processes() -> bool:
    """SIGKILLs every process of the lab; True once there is none left."""
    found = lab_processes()
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return not found


def lab_processes() -> list[int]:
    """Live processes the lab made: inside one of its network namespaces, inside one of its
    cgroups (the containers), or a daemon program started with one of its paths."""
    netns = {_namespace_identity(NETNS_DIR / name) for name in lab_namespaces()}
    found = []
    for pid in _pids():
        try:
            if _is_lab_process(pid, netns):
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # it exited meanwhile
        except PermissionError:
            continue  # not ours: the lab's processes all run as this user, in this user namespace
    return found


def _pids() -> Iterator[int]:
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != own:
            yield int(entry.name)


def _namespace_identity(path: Union[Path, str]) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _is_lab_process(pid: int, lab_netns: set[tuple[int, int]]) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False  # exited, waiting for its parent to reap it: nothing to kill
    if _namespace_identity(f"/proc/{pid}/ns/net") in lab_netns:
        return True
    if f"{CGROUP_PARENT}/" in Path(f"/proc/{pid}/cgroup").read_text():
        return True
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return Path(argv[0]).name in DAEMON_PROGRAMS and any(f"{ROOT}/" in arg for arg in argv)


def remove_lab_cgroups() -> bool:
    """Removes the lab's cgroup trees in every hierarchy, deepest first; True when none is left.
    A cgroup whose last process just died may still be busy for a moment: retried."""
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / CGROUP_PARENT.lstrip("/")
        if top.is_dir() and not hierarchy.is_symlink():
            for directory, _, _ in os.walk(top, topdown=False):
                os.rmdir(directory)
    return True


def unmount_under(root: Path) -> None:
    """Lazily unmounts anything mounted under `root` in the host's mount namespace, which
    would stop rmtree. The lab itself mounts only in the nodes' own mount namespaces (gone
    with their last process) and in /run/netns (`ip netns delete`): this is for a mount
    made there by hand, e.g. while debugging a node."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((p for p in points if p == str(root) or p.startswith(f"{root}/")), reverse=True):
        run(["umount", "-l", point], check=False)
