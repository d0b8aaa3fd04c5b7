"""Backups on a swarm (core.backup, and core.swarm's rule of volumes): a named
volume is local to the node of the task that mounts it, so each node role that
holds data runs a backup of its own there. Pure checks of the plan, then the
real __main__.py under mocks; tests/test_backup.py runs the scripts of two
nodes' backups against one repository."""

from __future__ import annotations

import base64
import json
from typing import Callable, Optional

import pytest

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.backup import ACCESS_LOG_DIR, WAITING_RESTIC_DIR
from core.build import build_plan
from core.catalog import NOT_SNAPSHOTTED, PER_NODE_VOLUMES
from core.swarm import SwarmPlan, SwarmService, swarm_plan
from plan.document import plan_document
from plan.render import plan_markdown
from tests.mocks import PROVIDED_PREFIX, plain
from tests.plans import prod_plan

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
REMOTE = {"endpoint": "https://s3.ca-central-1.amazonaws.com", "bucket": "fourlb-backups"}
BACKUP_SECRETS = {"fourlb:backupS3AccessKeyId": PROVIDED_PREFIX + "backup-s3-access-key-id",
                  "fourlb:backupS3SecretAccessKey": PROVIDED_PREFIX + "backup-s3-secret-access-key",
                  "fourlb:backupResticPassword": PROVIDED_PREFIX + "backup-restic-password"}


def swarm_values(change: Optional[Callable[[dict], None]] = None) -> dict:
    values = json.loads(json.dumps(StackFile("swarm").values))
    if change:
        change(values)
    return values


def planned(change: Optional[Callable[[dict], None]] = None) -> SwarmPlan:
    config = parse_stack_config("swarm", swarm_values(change))
    return swarm_plan(config, build_plan(config, "swarm"))


def with_remote(values: dict) -> None:
    values["backup"] = {"remote": REMOTE}


def moved(**nodes: str) -> Callable[[dict], None]:
    def change(values: dict) -> None:
        values["swarm"]["nodes"] = {name.replace("_", "-"): role for name, role in nodes.items()}
    return change


def backups(swarm: SwarmPlan) -> dict[str, SwarmService]:
    return {s.container.name: s for s in swarm.services if s.container.role == "backup"}


def archived(service: SwarmService) -> set[str]:
    return {m.volume for m in service.container.mounts if m.target.startswith("/volumes/")}


def file_of(service: SwarmService, target: str) -> str:
    return next(f.content for f in service.files if f.target == target)


def settings(service: SwarmService) -> dict[str, str]:
    """What the backup scripts read: the settings file, over the task's env."""
    pairs = (line.split("=", 1) for line in file_of(service, "/etc/backup/backup.env").splitlines()
             if line and not line.startswith("#"))
    return {**dict(service.container.env), **{key: value.strip("'") for key, value in pairs}}


def held_volumes(swarm: SwarmPlan) -> dict[str, set[str]]:
    """Node role -> the volumes with data its services keep, read off the placement
    of every service that is not a backup."""
    held: dict[str, set[str]] = {}
    for service in swarm.services:
        if service.container.role != "backup":
            volumes = {m.volume for m in service.container.mounts if m.volume}
            held.setdefault(service.node_role, set()).update(
                volumes - set(NOT_SNAPSHOTTED) - set(PER_NODE_VOLUMES))
    return {role: volumes for role, volumes in held.items() if volumes}


def test_each_node_role_backs_up_exactly_the_volumes_it_holds():
    swarm = planned()
    found = backups(swarm)
    assert set(found) == {"backup-edge", "backup-data", "backup-ai"}
    assert {name: archived(s) for name, s in found.items()} == {
        f"backup-{role}": volumes for role, volumes in held_volumes(swarm).items()}
    assert archived(found["backup-edge"]) == {"traefik_certs", "crowdsec_data", "crowdsec_config"}
    assert archived(found["backup-ai"]) == {"open_webui_data", "code_server_data"}
    for name, service in found.items():
        role = name.removeprefix("backup-")
        assert service.node_role == role and service.constraints == (f"node.labels.fourlb.role=={role}",)
        assert service.update_order == "stop-first"
        assert all(m.read_only for m in service.container.mounts if m.target.startswith("/volumes/"))
    # one task where the data is: on the data and AI nodes one, and on each edge
    # node one, as Traefik keeps its certificates and access log on each
    assert {name: (s.mode, s.replicas) for name, s in found.items()} == {
        "backup-data": ("replicated", 1), "backup-ai": ("replicated", 1),
        "backup-edge": (swarm.service("traefik").mode, None)}


def test_a_moved_service_takes_the_backup_of_its_volume_along():
    swarm = planned(moved(open_webui="data"))
    found = backups(swarm)
    assert "open_webui_data" in archived(found["backup-data"])
    assert archived(found["backup-ai"]) == {"code_server_data"}
    # with nothing left to back up on the AI node, it runs no backup
    assert "backup-ai" not in backups(planned(moved(open_webui="data", code_server="data")))


def test_a_volume_mounted_from_two_node_roles_is_refused_naming_the_setting():
    # CrowdSec reads the access log Traefik writes on the edge node
    with pytest.raises(StackConfigError) as refused:
        planned(moved(crowdsec="data"))
    assert [str(p) for p in refused.value.problems] == [
        "fourlb:swarm.nodes.crowdsec = 'data': allowed: 'edge', the node role that holds "
        "traefik_logs (mounted there by backup-edge, traefik); a volume is local to its node, "
        "so every service that mounts it runs on one node role"]


def test_a_nodes_backup_is_placed_by_its_volumes_and_no_setting():
    with pytest.raises(StackConfigError) as refused:
        planned(moved(backup_edge="data"))
    assert "fourlb:swarm.nodes.backup-edge = 'data': allowed: unset" in str(refused.value)

    def placed(values):
        values["swarm"]["placement"]["backup"] = "data"
    with pytest.raises(StackConfigError) as refused:
        planned(placed)
    assert "fourlb:swarm.placement = " in str(refused.value)
    assert "backup is none: each node role that holds data runs its own backup" in str(refused.value)

    def site_named_like_a_backup(values):
        values["sites"]["backup-ai"] = {"image": "nginx:1.27-alpine", "port": 80,
                                        "hostnames": ["shop.4lb.ca"]}
    with pytest.raises(StackConfigError) as refused:
        planned(site_named_like_a_backup)
    assert "fourlb:sites.backup-ai = 'backup-ai': allowed: a name the program does not give" in str(
        refused.value)


def test_the_access_log_is_rotated_where_traefik_writes_it():
    swarm = planned()
    found = backups(swarm)
    traefik = swarm.service("traefik")
    log_volume = next(m.volume for m in traefik.container.mounts if m.target == "/var/log/traefik")
    for name, service in found.items():
        rotates = [line for line in file_of(service, "/etc/crontabs/root").splitlines()
                   if "rotate-access-log" in line]
        mounts = {m.volume: m for m in service.container.mounts}
        if name == "backup-edge":
            assert service.node_role == traefik.node_role
            (line,) = rotates
            assert line.startswith("*/5 * * * * ") and f"ACCESS_LOG={ACCESS_LOG_DIR}/access.log" in line
            assert mounts[log_volume].target == ACCESS_LOG_DIR and not mounts[log_volume].read_only
        else:
            assert not rotates and log_volume not in mounts, name


def test_on_two_edge_nodes_each_backs_up_and_rotates_its_own():
    """Traefik runs on each edge node, with its own certificates and access log."""
    def two_edge_nodes(values):
        values["swarm"]["edgeAddresses"] = ["1.2.3.4", "5.6.7.8"]
        values["acme"] = {**values["acme"], "challenge": "cloudflare-dns"}
    swarm = planned(two_edge_nodes)
    edge, traefik = swarm.service("backup-edge"), swarm.service("traefik")
    assert (edge.mode, edge.constraints) == (traefik.mode, traefik.constraints) == (
        "global", ("node.labels.fourlb.role==edge",))
    assert "rotate-access-log" in file_of(edge, "/etc/crontabs/root")
    # each edge node's snapshots under its own host: the swarm names the node
    assert settings(edge)["BACKUP_HOST"] == "4lb.ca/edge/{{.Node.Hostname}}"
    assert "BACKUP_HOST" not in file_of(edge, "/etc/backup/backup.env")


def test_only_the_backup_beside_postgresql_dumps_it_and_reaches_the_data_services():
    found = backups(planned())
    for name, service in found.items():
        values = settings(service)
        if name == "backup-data":
            assert values["PGHOST"] == "postgres" and "data-net" in service.container.networks
            pgpass = next(f for f in service.files if f.target == values["PGPASSFILE"])
            assert pgpass.secret
        else:
            assert "PGHOST" not in values and "data-net" not in service.container.networks, name
            assert not any(f.target == "/etc/backup/pgpass" for f in service.files), name


def test_every_nodes_backup_shares_schedule_and_repository_under_a_snapshot_host_of_its_own():
    found = backups(planned(with_remote))
    values = {name: settings(s) for name, s in found.items()}
    repositories = {v["RESTIC_REPOSITORY"] for v in values.values()}
    assert repositories == {"s3:https://s3.ca-central-1.amazonaws.com/fourlb-backups/4lb.ca"}
    assert {name: v["BACKUP_HOST"] for name, v in values.items()} == {
        "backup-edge": "4lb.ca/edge/{{.Node.Hostname}}", "backup-data": "4lb.ca/data",
        "backup-ai": "4lb.ca/ai"}
    runs = {file_of(s, "/etc/crontabs/root").splitlines()[0] for s in found.values()}
    # one schedule, and restic waits for another node's lock on the shared repository
    assert runs == {f"15 3 * * * PATH={WAITING_RESTIC_DIR}:$PATH /opt/backup/run "
                    ">/proc/1/fd/1 2>/proc/1/fd/2"}
    for service in found.values():
        waiting = next(f for f in service.files if f.target == f"{WAITING_RESTIC_DIR}/restic")
        assert waiting.mode == "0755" and not waiting.secret


def test_the_backups_secrets_reach_every_nodes_backup_as_secret_files():
    for name, service in backups(planned(with_remote)).items():
        files = {f.target: f for f in service.files}
        env = files["/etc/backup/backup.env"]
        assert env.secret and env.mode == "0400", name
        assert "${secret:backup-s3-access-key-id}" in env.content, name
        assert "${secret:backup-s3-secret-access-key}" in env.content, name
        password = files[settings(service)["RESTIC_PASSWORD_FILE"]]
        assert password.secret and password.content == "${secret:backup-restic-password}", name


def test_the_secrets_are_docker_secrets_of_each_backup_service(deploy):
    run = deploy("swarm", overrides={"fourlb:backup": json.dumps({"remote": REMOTE})},
                 secrets=BACKUP_SECRETS)
    assert run.error is None, run.error
    secrets = {plain(s.inputs)["name"]: base64.b64decode(plain(s.inputs)["data"]).decode()
               for s in run.of_type(SECRET)}
    services = {r.name: plain(r.inputs) for r in run.of_type(SERVICE)}
    for name in ("backup-edge", "backup-data", "backup-ai"):
        spec = services[name]["taskSpec"]["containerSpec"]
        given = {s["fileName"]: secrets[s["secretName"]] for s in spec["secrets"]}
        assert given["/etc/backup/restic-password"] == BACKUP_SECRETS["fourlb:backupResticPassword"]
        env = given["/etc/backup/backup.env"]
        assert f"AWS_ACCESS_KEY_ID='{BACKUP_SECRETS['fourlb:backupS3AccessKeyId']}'" in env, name
        host = ({"BACKUP_HOST": "4lb.ca/edge/{{.Node.Hostname}}"} if name == "backup-edge" else {})
        assert (spec.get("env") or {}) == host, name  # the swarm puts each edge node's name in
        if not host:
            assert f"BACKUP_HOST='4lb.ca/{name.removeprefix('backup-')}'" in env, name


def test_the_nodes_backups_run_one_image_built_and_pushed_once(deploy):
    run = deploy("swarm")
    assert run.error is None, run.error
    built = [r.name for r in run.of_type("docker:index/image:Image")]
    assert sorted(built) == ["backup", "traefik"]
    images = {plain(r.inputs)["taskSpec"]["containerSpec"]["image"]
              for r in run.of_type(SERVICE) if r.name.startswith("backup-")}
    assert len(images) == 1 and next(iter(images)).startswith("registry.4lb.ca/fourlb-backup@sha256:")


def test_one_host_keeps_its_one_backup():
    plan = prod_plan()
    (backup,) = [c for c in plan.containers if c.role == "backup"]
    assert (backup.name, backup.node_role) == ("backup", None)
    uploads = {u.path: u.content for u in backup.uploads}
    assert "BACKUP_HOST='4lb.ca'\n" in uploads["/etc/backup/backup.env"]
    assert not any(path.startswith(WAITING_RESTIC_DIR) for path in uploads)
    assert "PATH=" not in uploads["/etc/crontabs/root"]
    assert "rotate-access-log" in uploads["/etc/crontabs/root"]
    used = {m.volume for c in plan.containers if c.role != "backup" for m in c.mounts if m.volume}
    assert {m.volume for m in backup.mounts if m.read_only} == used - set(NOT_SNAPSHOTTED)
    assert "backups" not in plan_document(parse_stack_config("prod", StackFile("prod").values), plan)


def test_the_plan_shows_each_nodes_backup():
    config = parse_stack_config("swarm", swarm_values())
    document = plan_document(config, build_plan(config, "swarm"))
    assert document["backups"]["backup-edge"] == {
        "node": "edge", "on_each_node": True,
        "archives": ["crowdsec_config", "crowdsec_data", "traefik_certs"],
        "dumps_databases": False, "rotates_access_log": True,
        "repository": None, "snapshot_host": "4lb.ca/edge/{{.Node.Hostname}}"}
    assert document["backups"]["backup-data"]["dumps_databases"]
    page = plan_markdown(document)
    assert "## Backups per node" in page
    assert "| `backup-ai` | ai | `code_server_data`, `open_webui_data` | no | no | `4lb.ca/ai` |" in page
