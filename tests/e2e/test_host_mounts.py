"""The monitoring agents read the host through a read-only bind of `/`, which
holds the Docker socket: a read-only bind does not stop connect() on a socket.
The program lays empty tmpfs mounts over the socket's directories; here, on a
real engine, with the binds and tmpfs exactly as declared."""

from __future__ import annotations

from typing import Optional

import pytest

from . import standin
from .changes import E2E_LABEL
from .declared import Declared, DeclaredContainer
from .platform import Platform

HOST_SOCKET = "/run/docker.sock"  # /var/run is a link to /run on Debian and most hosts


def _root_target(container: DeclaredContainer) -> str:
    (target,) = [v["containerPath"] for v in container.volumes if v.get("hostPath") == "/"]
    return target.rstrip("/")


def _socket_visible(platform: Platform, container: DeclaredContainer,
                    tmpfs: Optional[dict[str, str]]) -> bool:
    """Runs the stand-in with the container's host binds (and tmpfs) and asks
    whether the host's Docker socket is reachable under the root bind."""
    binds = [f"{v['hostPath']}:{v['containerPath']}:{'ro' if v.get('readOnly') else 'rw'}"
             for v in container.volumes if v.get("hostPath")]
    name = f"{container.name}-mount-probe"
    platform.engine.remove_container(name)
    ident = platform.engine.create_container(name, {
        "Image": standin.TAG,
        "Entrypoint": ["/bin/sleep", "60"],
        "Labels": dict([E2E_LABEL]),
        "HostConfig": {"Binds": binds, "Tmpfs": tmpfs or {}, "NetworkMode": "none"},
    })
    try:
        platform.engine.start(ident)
        code, _ = platform.engine.exec(ident, ["/bin/test", "-S", _root_target(container) + HOST_SOCKET])
        return code == 0
    finally:
        platform.engine.remove_container(ident)


@pytest.mark.parametrize("service", ["cadvisor", "node-exporter"])
def test_the_host_root_bind_hides_the_docker_socket(platform: Platform, stacks: dict[str, Declared],
                                                    service: str) -> None:
    import os
    if not os.path.exists(HOST_SOCKET):
        pytest.skip(f"this host has no {HOST_SOCKET}")
    container = stacks["prod"].container(service)
    assert container.tmpfs, f"{service} declares no tmpfs over the socket's directories"
    # the control: without the tmpfs the socket is there, so the check can fail
    assert _socket_visible(platform, container, tmpfs=None)
    assert not _socket_visible(platform, container, tmpfs=container.tmpfs)
