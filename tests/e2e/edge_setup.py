"""The test edge for a platform: the real Traefik on the host with the program's
configuration (changes.rewrite_for_here), watching the platform's engine and the
traefik_dynamic volume its writer fills. Used by the suite's `edge` fixture and
by the takeover drill, on its own engine."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from config.loading import StackFile
from core.live_config import writer_name

from . import changes
from .declared import DYNAMIC_VOLUME, Declared, dynamic_writer, traefik_files
from .expectations import ROUTES
from .harness import Edge
from .platform import Platform
from .traefik_process import Traefik, binary_version, free_port, refused_port, write_static

# Given to the program as the secret fourlb:adminPassword, so that the basic-auth
# hash in Traefik's file is a real bcrypt hash of it (the mocks' generated one is not).
ADMIN_PASSWORD = "e2e-admin-password-4lb"


@contextlib.contextmanager
def running_edge(platform: Platform, prod: Declared, binary: Path, workdir: Path,
                 pid_file: Path) -> Iterator[Edge]:
    """Traefik answering /ping, with the writer of its files replaced by the one
    holding the files for here. Stopped on exit."""
    holder, acme_port = refused_port()
    here = changes.Here(web_port=free_port(), websecure_port=free_port(), ops_port=free_port(),
                        acme_port=acme_port, docker_endpoint=platform.engine.endpoint, workdir=workdir,
                        dynamic_dir=platform.volume_directory(DYNAMIC_VOLUME))
    static, dynamic = traefik_files(prod)
    tree = changes.rewrite_for_here(changes.production_tree(static, dynamic), here)
    static_file = write_static(tree, here)
    # the writer installs the file provider's files, with the changes for here
    platform.replace(prod.container(writer_name("traefik")), dynamic_writer(prod, tree))
    traefik = Traefik(binary, static_file, workdir / "traefik.log", here)
    dashboard = next(r.host for r in ROUTES if r.internal_service == "api@internal")
    user = StackFile("prod").config().admin_user
    try:
        traefik.start(pid_file=pid_file)
        traefik.wait_ping(timeout_s=15)
        yield Edge(traefik, here, (user, ADMIN_PASSWORD), binary_version(binary), dashboard)
    finally:
        traefik.stop()
        holder.close()
