"""The program's swarm resources (the `swarm` stack under mocks) on the lab:
networks, configs and secrets, then services, created through the manager's
Engine API from the declared inputs, with only tests/swarm/changes.py applied."""

from __future__ import annotations

import base64
import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from tests.e2e import standin
from tests.e2e.engine import Engine
from tests.e2e.platform import duration_ns
from tests.e2e.polling import poll
from tests.mocks import Run, plain

from . import changes
from .lab import Lab, Node

SERVICE = "docker:index/service:Service"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
TRAEFIK_TAG = "fourlb-swarm-traefik:lab"
STATIC_FILE = "/etc/traefik/traefik.yml"
MIDDLEWARES_FILE = "/etc/traefik/dynamic/middlewares.yml"
CONVERGED_WITHIN_S = 90
def seconds_ns(text: str) -> int:
    """A duration as the program writes it for a service (components.durations: 15s, 1m, 1m30s)."""
    return duration_ns(text)


def build_traefik_image(main: Engine, traefik_binary: Path, workdir: Path) -> None:
    """The real Traefik binary in an image FROM scratch (static: it needs nothing
    else), built from a context in `workdir`."""
    (workdir / "Dockerfile").write_text("FROM scratch\nCOPY traefik /usr/local/bin/traefik\n"
                                        "ENV PATH=/usr/local/bin\nENTRYPOINT [\"/usr/local/bin/traefik\"]\n")
    shutil.copy2(traefik_binary.resolve(), workdir / "traefik")
    main.build(standin.context_tar(workdir), TRAEFIK_TAG, {"fourlb.swarm-lab": "1"})


def _mode(declared: dict[str, Any]) -> dict[str, Any]:
    """The Engine API's service mode of the declared one (components/swarm.py)."""
    if declared.get("global"):
        return {"Global": {}}
    return {"Replicated": {"Replicas": int(declared["replicated"]["replicas"])}}


def _rewrite(text: str, edits: dict[tuple[str, ...], tuple[Any, str]]) -> str:
    tree = yaml.safe_load(text)
    for path, (value, _why) in edits.items():
        *parents, last = path
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return yaml.safe_dump(tree, sort_keys=False)


@dataclass
class Declared:
    """A mock run's swarm resources, by name."""

    services: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    secrets: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, run: Run) -> "Declared":
        assert run.error is None, run.error
        # configs and secrets by their name in the swarm (a secret's carries its value's digest)
        by_type = {typ: {plain(r.inputs)["name"] if typ in (CONFIG, SECRET) else r.name: plain(r.inputs)
                         for r in run.of_type(typ)}
                   for typ in (SERVICE, CONFIG, SECRET, NETWORK)}
        return cls(by_type[SERVICE], by_type[CONFIG], by_type[SECRET], by_type[NETWORK])

    def files_of(self, service: str) -> list[tuple[str, dict[str, Any], bool]]:
        """(name, declared inputs, is a secret) of each file the service mounts."""
        spec = self.services[service]["taskSpec"]["containerSpec"]
        return ([(c["configName"], self.configs[c["configName"]], False) for c in spec.get("configs") or []]
                + [(s["secretName"], self.secrets[s["secretName"]], True) for s in spec.get("secrets") or []])


@dataclass
class SwarmPlatform:
    lab: Lab
    standin_tag: str
    ports: dict[str, int]  # service -> the port its stand-in listens on (the plan's)
    ids: dict[str, str] = field(default_factory=dict)  # network, config, secret name -> ID
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def manager(self) -> Node:
        return self.lab.manager

    def tag_images(self, declared: Declared) -> None:
        """Every declared image, on every node: the stand-in, Traefik for the edge."""
        for name in changes.DEPLOYED:
            tag = self._image(declared.services[name])
            source = TRAEFIK_TAG if name == "traefik" else self.standin_tag
            for node in self.lab.nodes:
                node.docker("tag", source, tag)

    @staticmethod
    def _image(service: dict[str, Any]) -> str:
        """The local tag standing for the declared `repo@sha256:<digest>` (changes.py)."""
        repository, _, digest = service["taskSpec"]["containerSpec"]["image"].partition("@sha256:")
        return f"{repository}:{digest[:12]}"

    def create_networks(self, declared: Declared) -> None:
        used = {n["id"].removesuffix("-id") for name in changes.DEPLOYED
                for n in declared.services[name]["taskSpec"].get("networksAdvanceds") or []}
        for name in sorted(used):
            network = declared.networks[name]
            self.ids[name] = self.manager.api("POST", "/networks/create", body={
                "Name": name, "Driver": "overlay", "Internal": bool(network.get("internal")),
                "Attachable": bool(network.get("attachable")), "CheckDuplicate": True,
                "Labels": {label["label"]: label["value"] for label in network.get("labels") or []},
            })["Id"]

    def create_files(self, declared: Declared, service: str) -> None:
        for name, inputs, is_secret in declared.files_of(service):
            if name in self.ids:
                continue
            data = base64.b64decode(inputs["data"]).decode()
            if service == "traefik" and name.startswith("traefik-etc-traefik-traefik-yml"):
                data = _rewrite(data, changes.STATIC_CHANGES)
            if service == "traefik-config" and "middlewares" in name:
                data = _rewrite(data, changes.MIDDLEWARE_CHANGES)
            kind = "secrets" if is_secret else "configs"
            self.ids[name] = self.manager.api("POST", f"/{kind}/create", body={
                "Name": name, "Data": base64.b64encode(data.encode()).decode()})["ID"]
        if service in self.ports:
            listen = f"{service}-standin-listen"
            if listen not in self.ids:
                self.ids[listen] = self.manager.api("POST", "/configs/create", body={
                    "Name": listen, "Templating": {"Name": "golang"},
                    "Data": base64.b64encode(f"{self.ports[service]} {{{{.Task.Name}}}}".encode()).decode(),
                })["ID"]

    def spec(self, declared: Declared, name: str) -> dict[str, Any]:
        """The Engine API ServiceSpec of the declared inputs, with the lab's changes."""
        inputs = copy.deepcopy(declared.services[name])
        task, container = inputs["taskSpec"], inputs["taskSpec"]["containerSpec"]
        check = container.get("healthcheck")
        mounts = [{"Type": m["type"], "Source": m.get("source"), "Target": m["target"],
                   "ReadOnly": bool(m.get("readOnly")),
                   **({"TmpfsOptions": {"SizeBytes": int(m["tmpfsOptions"]["sizeBytes"])}}
                      if m.get("tmpfsOptions") else {})}
                  for m in container.get("mounts") or []]
        configs = [{"ConfigID": self.ids[c["configName"]], "ConfigName": c["configName"],
                    "File": {"Name": c["fileName"], "UID": "0", "GID": "0", "Mode": int(c["fileMode"])}}
                   for c in container.get("configs") or []]
        secrets = [{"SecretID": self.ids[s["secretName"]], "SecretName": s["secretName"],
                    "File": {"Name": s["fileName"], "UID": "0", "GID": "0", "Mode": int(s["fileMode"])}}
                   for s in container.get("secrets") or []]
        if name == "traefik":
            mounts.append({"Type": "bind", "Source": str(self.manager.socket),
                           "Target": "/var/run/docker.sock", "ReadOnly": True})
        if name in self.ports:
            listen = f"{name}-standin-listen"
            configs.append({"ConfigID": self.ids[listen], "ConfigName": listen,
                            "File": {"Name": "/standin/listen", "UID": "0", "GID": "0", "Mode": 0o444}})
        networks = [{"Target": self.ids[n["id"].removesuffix("-id")], "Aliases": n.get("aliases") or []}
                    for n in task.get("networksAdvanceds") or []
                    if n["id"].removesuffix("-id") in self.ids]
        own_aliases = [a for n in task.get("networksAdvanceds") or [] for a in n.get("aliases") or []
                       if a != inputs["name"]]
        update, rollback = inputs.get("updateConfig") or {}, inputs.get("rollbackConfig") or {}
        ports = (inputs.get("endpointSpec") or {}).get("ports") or []
        return {
            "Name": inputs["name"],
            "Labels": {label["label"]: label["value"] for label in inputs.get("labels") or []},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": self._image(inputs),
                    "Command": container.get("commands"), "Args": container.get("args"),
                    "Env": [f"{k}={v}" for k, v in (container.get("env") or {}).items()],
                    "User": container.get("user"), "Mounts": mounts,
                    "Configs": configs, "Secrets": secrets,
                    "Healthcheck": {"Test": check["tests"], "Interval": seconds_ns(check["interval"]),
                                    "Timeout": seconds_ns(check["timeout"]), "Retries": int(check["retries"]),
                                    "StartPeriod": seconds_ns(check["startPeriod"])} if check else None,
                    "StopGracePeriod": seconds_ns(container["stopGracePeriod"]),
                    "Init": name != "traefik",
                    "Hostname": own_aliases[0] if own_aliases else None,
                },
                "Placement": {"Constraints": (task.get("placement") or {}).get("constraints") or []},
                "Networks": networks,
                "Resources": {"Limits": {"MemoryBytes": int(task["resources"]["limits"]["memoryBytes"])}},
                "RestartPolicy": {"Condition": "any", "Delay": 5 * 10**9},
                "LogDriver": {"Name": task["logDriver"]["name"], "Options": task["logDriver"]["options"]},
            },
            "Mode": _mode(inputs["mode"]),
            "UpdateConfig": {"Parallelism": int(update["parallelism"]), "Order": update["order"],
                             "Delay": seconds_ns(update["delay"]), "FailureAction": update["failureAction"],
                             "Monitor": seconds_ns(update["monitor"])},
            "RollbackConfig": {"Parallelism": int(rollback["parallelism"]), "Order": rollback["order"],
                               "Monitor": seconds_ns(rollback["monitor"])},
            "EndpointSpec": {"Mode": "dnsrr", "Ports": [
                {"Protocol": p["protocol"], "TargetPort": int(p["targetPort"]),
                 "PublishedPort": int(p["publishedPort"]), "PublishMode": p["publishMode"]} for p in ports]},
        }

    def create(self, declared: Declared, names: Iterable[str] = changes.DEPLOYED) -> None:
        for name in names:
            self.create_files(declared, name)
            self.ids[name] = self.manager.api("POST", "/services/create", body=self.spec(declared, name))["ID"]

    def wanted_tasks(self, name: str, mode: dict[str, Any]) -> int:
        """A replicated service's replica count; a global one's tasks the swarm wants
        running (one on each node its constraints allow)."""
        if "Replicated" in mode:
            return int(mode["Replicated"]["Replicas"])
        return len(self.manager.api("GET", "/tasks", query={"filters": {
            "service": [name], "desired-state": ["running"]}}))

    def running_tasks(self, name: str) -> list[dict[str, Any]]:
        tasks = self.manager.api("GET", "/tasks", query={"filters": {"service": [name],
                                                                    "desired-state": ["running"]}})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def wait_converged(self, names: Iterable[str]) -> None:
        names = tuple(names)
        def converged() -> bool:
            for name in names:
                service = self.manager.api("GET", f"/services/{self.ids[name]}")
                if (service.get("UpdateStatus") or {}).get("State") in ("updating", "rollback_started"):
                    return False
                running = len(self.running_tasks(name))
                if running != self.wanted_tasks(name, service["Spec"]["Mode"]) or not running:
                    return False
            return True
        poll(f"{', '.join(names)} converged", converged, CONVERGED_WITHIN_S, interval_s=0.5,
             detail=lambda: self.task_states(names))

    def logs(self, name: str, lines: int = 30) -> str:
        """The last lines of every container of service `name`, on every node."""
        out = []
        for node in self.lab.nodes:
            for container in node.api("GET", "/containers/json", query={
                    "all": 1, "filters": {"label": [f"com.docker.swarm.service.name={name}"]}}):
                logs = node.docker("logs", "--tail", str(lines), container["Id"], check=False)
                out.append(f"--- {node.name} {container['Names'][0]}\n{logs.stdout}{logs.stderr}")
        return "\n".join(out)

    def task_states(self, names: Iterable[str]) -> str:
        """Each service's tasks: state, node and error (what a failed wait shows)."""
        lines = []
        for name in names:
            tasks = self.manager.api("GET", "/tasks", query={"filters": {"service": [name]}})
            for task in sorted(tasks, key=lambda t: t["CreatedAt"])[-4:]:
                status = task["Status"]
                lines.append(f"{name}: {status['State']} (wants {task['DesiredState']}) on "
                             f"{task.get('NodeID', '-')[:8]}: {status.get('Err') or status.get('Message')}")
        return "\n".join(lines)
