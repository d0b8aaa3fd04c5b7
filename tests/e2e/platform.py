"""The program's networks and containers on the local Docker engine, on stand-ins.

Everything created here carries the label fourlb.e2e=1 and is removed by that
label before and after the run.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from components.connection import CONTAINER_VAR
from core.live_config import WRITER_SUFFIX

from . import standin
from .changes import E2E_LABEL, IMAGE_EXPOSED_PORTS
from .declared import Declared, DeclaredContainer
from .engine import Engine
from .polling import poll
from .real import images as real_images
from .real.contracts import Contract, contract_for

LABEL_FILTER = f"{E2E_LABEL[0]}={E2E_LABEL[1]}"
WRITERS_WITHIN_S = 30  # a writer checks every 2 s: its files are in place within seconds
# Go's duration syntax, as the program writes health checks (components.durations): 15s, 1m0s
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def duration_ns(text: str) -> int:
    assert _DURATION.match(text), f"unsupported duration {text!r}"
    return sum(int(float(number) * _UNITS_NS[unit]) for number, unit in _DURATION_PART.findall(text))


def real_contract(container: DeclaredContainer) -> Optional[Contract]:
    """The contract of the real program that runs for `container`, if any; a
    configuration writer runs its service's image (core.live_config)."""
    return contract_for(container.image, container.service.removesuffix(WRITER_SUFFIX))


def is_writer(container: DeclaredContainer) -> bool:
    return container.service.endswith(WRITER_SUFFIX)


def identity(container: DeclaredContainer, path: str = "/") -> tuple[str, Callable[[str], bool]]:
    """What to request of `container` to know it answered, and the test of the
    answer's body: a stand-in answers every path with exactly its name; a real
    program's contract names a page only it serves and a text on that page."""
    contract = real_contract(container)
    if contract is None:
        return path, lambda body: body.strip() == container.name
    assert contract.identity, f"{container.service}: its contract names no identity page"
    page, text = contract.identity
    return page, lambda body: text in body


def _mounts(container: DeclaredContainer) -> list[dict[str, Any]]:
    """The declared volumes and read-only host directories, as the provider mounts them."""
    return [{"Type": "volume" if v.get("volumeName") else "bind",
             "Source": v.get("volumeName") or v["hostPath"],
             "Target": v["containerPath"], "ReadOnly": bool(v.get("readOnly"))}
            for v in container.volumes]


def create_spec(container: DeclaredContainer) -> dict[str, Any]:
    """The Engine API body for `container`, as the Docker provider would send it,
    with `changes.CONTAINER_CHANGES` applied: a container whose real program runs
    here (real/contracts.py) keeps its volumes, host directories and tmpfs mounts
    and runs the image built from its contract; the others run the stand-in."""
    first_network, first_aliases = container.networks[0] if container.networks else ("none", ())
    check = container.healthcheck
    contract = real_contract(container)
    # a writer mounts its configuration volume whatever image it runs: writing there is its job
    real_host = ({"Mounts": _mounts(container), "Tmpfs": dict(container.tmpfs)}
                 if contract or is_writer(container) else {})
    return {
        "Image": contract.tag if contract else standin.TAG,
        "Entrypoint": list(container.entrypoint) or None,
        "User": container.user,
        "Cmd": list(container.command) or None,
        "Env": list(container.envs),
        "Labels": {**container.labels, E2E_LABEL[0]: E2E_LABEL[1]},
        "ExposedPorts": {} if contract else {
            port: {} for port in IMAGE_EXPOSED_PORTS.get(container.image.split(":")[0], ())},
        "Healthcheck": {
            "Test": list(check["tests"]),
            "Interval": duration_ns(check["interval"]),
            "Timeout": duration_ns(check["timeout"]),
            "Retries": int(check["retries"]),
            "StartPeriod": duration_ns(check["startPeriod"]),
        } if check else None,
        "HostConfig": {
            "NetworkMode": first_network,
            "Memory": container.memory_mb * 1024 * 1024,
            "SecurityOpt": list(container.security_opts),
            "ExtraHosts": list(container.extra_hosts) or None,
            "RestartPolicy": {"Name": container.restart},
            "LogConfig": {"Type": container.log_driver, "Config": container.log_opts},
            **real_host,
        },
        "NetworkingConfig": {"EndpointsConfig": {first_network: {"Aliases": list(first_aliases)}}
                             if container.networks else {}},
    }


def uploads_tar(container: DeclaredContainer) -> bytes:
    files = [(u.file, u.content, u.permissions) for u in container.uploads]
    if real_contract(container) is None:
        files.append(standin.listen_file(container.port, container.name))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories: set[str] = set()
        for path, content, mode in files:
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            data = content.encode()
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode = len(data), int(mode, 8)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _isolate(network_id: str) -> None:
    """No routing through the host from this network's bridge to another (see
    changes.CONTAINER_CHANGES["networks"]): what Docker's iptables rules do on the
    real host. Docker names a bridge network's interface br-<first 12 of its id>."""
    forwarding = Path(f"/proc/sys/net/ipv4/conf/br-{network_id[:12]}/forwarding")
    forwarding.write_text("0\n")


class Platform:
    def __init__(self, engine: Engine, stacks: Iterable[Declared]):
        self.engine = engine
        self.stacks = tuple(stacks)

    @property
    def containers(self) -> tuple[DeclaredContainer, ...]:
        return tuple(c for stack in self.stacks for c in stack.containers)

    def clean(self) -> None:
        """Removes whatever carries the tests' label: containers, networks, the image."""
        for container in self.engine.containers(LABEL_FILTER):
            self.engine.remove_container(container["Id"])
        for network in self.engine.networks(label=LABEL_FILTER):
            self.engine.remove_network(network["Id"])
        for volume in self.engine.volumes(LABEL_FILTER):
            self.engine.remove_volume(volume["Name"])
        for image in self.engine.images(LABEL_FILTER):
            self.engine.remove_image(image["Id"])

    def leftovers(self) -> dict[str, list[str]]:
        return {
            "containers": [c["Names"][0] for c in self.engine.containers(LABEL_FILTER)],
            "networks": [n["Name"] for n in self.engine.networks(label=LABEL_FILTER)],
            "volumes": [v["Name"] for v in self.engine.volumes(LABEL_FILTER)],
            "images": [i["Id"] for i in self.engine.images(LABEL_FILTER)],
        }

    def real_contracts(self) -> list[Contract]:
        found = {c.service: c for c in map(real_contract, self.containers) if c}
        return sorted(found.values(), key=lambda c: c.service)

    def build_image(self, workdir: Path) -> None:
        """The stand-in image, and the image of every real program that runs here."""
        context = standin.write_context(workdir)
        self.engine.build(standin.context_tar(context), standin.TAG, dict([E2E_LABEL]))
        real_images.build_all(self.engine, self.real_contracts())

    def create_volumes(self, adopted: Iterable[str] = ()) -> list[str]:
        """The declared volumes the real programs mount (new and empty, as on a new
        host), but those `adopted` (a takeover: they are there, with their data).
        Returns the names it created."""
        adopted = set(adopted)
        names = sorted({v["volumeName"] for c in self.containers if real_contract(c) or is_writer(c)
                        for v in c.volumes if v.get("volumeName")} - adopted)
        existing = {v["Name"]: v for v in self.engine.volumes()}
        foreign = [n for n in names if n in existing
                   and (existing[n].get("Labels") or {}).get(E2E_LABEL[0]) != E2E_LABEL[1]]
        assert not foreign, f"volumes not made by these tests exist on this engine: {foreign}; refusing to use them"
        for name in names:
            self.engine.create_volume(name, dict([E2E_LABEL]))
        return names

    def create_networks(self) -> None:
        for stack in self.stacks:
            for network in stack.networks:
                foreign = [n for n in self.engine.networks(name=network.name)
                           if n["Name"] == network.name and n.get("Labels", {}).get(E2E_LABEL[0]) != E2E_LABEL[1]]
                assert not foreign, (f"a network {network.name} not made by these tests exists on this "
                                     "engine: refusing to use or remove it")
                ident = self.engine.create_network({
                    "Name": network.name,
                    "Driver": network.driver,
                    "Internal": network.internal,
                    "CheckDuplicate": True,
                    "Labels": {**network.labels, E2E_LABEL[0]: E2E_LABEL[1]},
                })
                _isolate(ident)

    def run(self, container: DeclaredContainer) -> str:
        """Creates, fills (uploads) and starts one container; returns its id."""
        ident = self.engine.create_container(container.name, create_spec(container))
        for network, aliases in container.networks[1:]:
            self.engine.connect(network, ident, list(aliases))
        self.engine.put_archive(ident, uploads_tar(container))
        self.engine.start(ident)
        self.connect(container, ident)
        return ident

    def connect(self, container: DeclaredContainer, ident: str) -> None:
        """Runs the container's connections (components.connection) as pulumi-command
        would once it exists: the declared scripts, with the docker CLI, against this
        engine (changes.CONTAINER_CHANGES["connections"])."""
        stack = next(s for s in self.stacks if s.stack == container.stack)
        for connection in stack.connections:
            if connection.service == container.service:
                result = self.run_script(connection.create, {**connection.environment,
                                                              CONTAINER_VAR: ident})
                assert result.returncode == 0, (f"{container.service} on {connection.network}: "
                                                f"{result.stdout}{result.stderr}")

    def run_script(self, script: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
        """A declared shell script, as pulumi-command runs it, against this engine."""
        return subprocess.run(["sh", "-c", script],
                              env={**os.environ, **environment, "DOCKER_HOST": self.engine.url},
                              capture_output=True, text=True, timeout=60)

    def run_all(self, containers: Optional[Iterable[DeclaredContainer]] = None) -> None:
        """As `pulumi up` orders them: the configuration writers first, until their
        files are in place (`starts_after`, `wait=True`), then everything else."""
        todo = list(self.containers if containers is None else containers)
        writers = [c for c in todo if is_writer(c)]
        for batch in (writers, [c for c in todo if not is_writer(c)]):
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                for future in [pool.submit(self.run, c) for c in batch]:
                    future.result()
            if batch is writers and writers:
                self.wait_healthy(writers, WRITERS_WITHIN_S)

    def replace(self, old: DeclaredContainer, new: DeclaredContainer) -> None:
        """A stop-first replacement, as `pulumi up` does it (delete, create, wait healthy)."""
        self.remove(old)
        self.run(new)
        self.wait_healthy([new], WRITERS_WITHIN_S)

    def volume_directory(self, name: str) -> Path:
        """Where a (local) volume's files are on this host."""
        return Path(self.engine.request("GET", f"/volumes/{name}")["Mountpoint"])

    def remove(self, container: DeclaredContainer) -> None:
        self.engine.remove_container(container.name)

    def health(self, name: str) -> str:
        state = self.engine.inspect(name)["State"]
        if not state.get("Running"):
            return "not running: " + state.get("Status", "?")
        return (state.get("Health") or {}).get("Status", "running")

    def wait_healthy(self, containers: Iterable[DeclaredContainer], timeout_s: float) -> None:
        waiting = {c.name for c in containers}

        def all_healthy() -> bool:
            waiting.difference_update({n for n in list(waiting) if self.health(n) in ("healthy", "running")})
            return not waiting

        poll("containers healthy", all_healthy, timeout_s,
             detail=lambda: str({name: self._health_detail(name) for name in sorted(waiting)}))

    def _health_detail(self, name: str) -> str:
        state = self.engine.inspect(name)["State"]
        log = (state.get("Health") or {}).get("Log") or [{}]
        return f"{state.get('Status')}/{(state.get('Health') or {}).get('Status')}: {log[-1].get('Output', '')!r}"

    def address(self, name: str, network: str) -> str:
        return self.engine.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
