"""`python -m plan adopt`: the decisions on plain data (plan/adopt.py), the host
reader's reduction of what the engine says (no secret kept), the settings it
proposes (config + core.build), and what the program declares with them (mocks)."""

from __future__ import annotations

import json

import pytest

from config.errors import StackConfigError
from config.loading import StackFile, parse_stack_config
from core.build import build_plan
from core.edge import load_plan
from core.import_file import component_urn
from plan.adopt import (COMPOSE_PROJECT, COMPOSE_SERVICE, COMPOSE_VOLUME, HostContainer,
                        HostFacts, HostMount, HostNetwork, HostVolume, adopt, parse_compose,
                        report_text)
from plan.docker_host import reduce_container

HOST = "unix:///var/run/docker.sock"
PGDATA = "/var/lib/postgresql/data"
COMPOSE_FILE = "/home/lalpha/projets/ai-tools/docker-compose.yml"
COMPOSE = """
services:
  postgres:
    image: postgres:16-alpine
    container_name: postgres
    volumes: [postgres_data:/var/lib/postgresql/data]
  redis:
    image: redis:7-alpine
    container_name: redis
    volumes: ["redis_data:/data"]
volumes:
  postgres_data:
  redis_data:
networks:
  default:
    name: unified-net
    external: true
"""


@pytest.fixture(scope="module")
def prod():
    return load_plan("prod")[1]


def compose_volume(key: str, size: int = 1000, project: str = "ai-tools") -> HostVolume:
    return HostVolume(f"{project}_{key}", {COMPOSE_PROJECT: project, COMPOSE_VOLUME: key}, size)


def compose_container(name: str, image: str, mounts: tuple[HostMount, ...] = (),
                      **fields) -> HostContainer:
    return HostContainer(name=name, image=image, compose_project="ai-tools", compose_service=name,
                         label_keys=frozenset({COMPOSE_PROJECT, COMPOSE_SERVICE}), mounts=mounts,
                         **fields)


def volume_mount(name: str, destination: str) -> HostMount:
    return HostMount("volume", destination, name=name)


def seed_host(**changes) -> HostFacts:
    """Today's host as the seed describes it, run by Compose (project ai-tools)."""
    postgres = compose_container(
        "postgres", "postgres:16-alpine", (volume_mount("ai-tools_postgres_data", PGDATA),),
        env_names=frozenset({"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "PATH"}),
        env={"POSTGRES_USER": "fourlb", "POSTGRES_DB": "orchestrator"})
    redis = compose_container("redis", "redis:7-alpine", (volume_mount("ai-tools_redis_data", "/data"),),
                              command=("redis-server", "--requirepass", "(not read)"), aof=True)
    grafana = compose_container(
        "grafana", "grafana/grafana:11.5.2",
        (volume_mount("ai-tools_grafana_data", "/var/lib/grafana"),),
        env_names=frozenset({"GF_SECURITY_ADMIN_PASSWORD"}))
    traefik = compose_container("traefik", "traefik:v3.6",
                                (volume_mount("ai-tools_traefik_certs", "/letsencrypt"),),
                                host_ports=(80, 443, 8080))
    facts = HostFacts(
        docker_host=HOST, version="27.5.1",
        volumes=tuple(compose_volume(k) for k in ("postgres_data", "redis_data", "grafana_data",
                                                   "traefik_certs")),
        containers=(postgres, redis, grafana, traefik,
                    compose_container("jsr-dev", "jsr-dev:latest")),
        networks=(HostNetwork("unified-net", "4f3c2a1b0e9d8c7b6a5f", "bridge", False),),
        images=frozenset({"postgres:16-alpine", "redis:7-alpine", "traefik:v3.6"}))
    return HostFacts(**{**facts.__dict__, **changes})


def blockers(report) -> list[tuple[str, str, str]]:
    return [(b.subject, b.problem, b.fix) for b in report.blockers]


# --- the decisions ----------------------------------------------------------------

def test_an_empty_engine_blocks_with_the_reason(prod):
    report = adopt(prod, HostFacts(docker_host=HOST))
    assert blockers(report) == [(
        "engine", f"nothing to take over at {HOST}: no container and no volume",
        "point DOCKER_HOST at the running 4lb.ca host; a new host needs no takeover: deploy "
        "without fourlb:takeover")]
    assert all(v.status == "new" for v in report.volumes)
    assert report.settings == {} and report.secrets == ()


def test_two_volumes_that_could_be_postgres_data_block_and_nothing_is_guessed(prod):
    facts = seed_host(volumes=seed_host().volumes + (HostVolume("postgres_data", {}, 0),))
    report = adopt(prod, facts)
    (finding,) = [v for v in report.volumes if v.key == "postgres_data"]
    assert finding.status == "blocked" and finding.name is None
    assert ("postgres_data",
            "2 volumes could hold its data: ai-tools_postgres_data (1.0 kB: Compose volume "
            "postgres_data of project ai-tools, mounted at /var/lib/postgresql/data by postgres); "
            "postgres_data (0 B: named exactly postgres_data)",
            "choose the one holding the data (the running container mounts "
            "ai-tools_postgres_data): pulumi config set --path 'fourlb:volumeNames.postgres_data' "
            "<volume> -s prod") in blockers(report)
    assert "postgres_data" not in report.settings["fourlb:volumeNames"]
    # the stack's own choice settles it
    settled = adopt(prod, facts, volume_names={"postgres_data": "ai-tools_postgres_data"},
                    secrets_set={"fourlb:postgresPassword", "fourlb:grafanaAdminPassword",
                                 "fourlb:redisPassword"})
    (finding,) = [v for v in settled.volumes if v.key == "postgres_data"]
    assert finding.status == "adopt" and finding.name == "ai-tools_postgres_data"
    assert "also found, not used: postgres_data" in finding.evidence
    assert [b.subject for b in settled.blockers] == ["unified-net"]


def test_a_volume_the_compose_file_names_but_the_engine_lacks_blocks(prod):
    facts = seed_host(volumes=tuple(v for v in seed_host().volumes
                                    if v.name != "ai-tools_postgres_data"),
                      containers=tuple(c for c in seed_host().containers if c.name != "postgres"))
    report = adopt(prod, facts, parse_compose(COMPOSE, COMPOSE_FILE))
    assert ("postgres_data",
            f"{COMPOSE_FILE} names its volume ai-tools_postgres_data, which {HOST} does not have",
            "run adopt against the host this compose file runs on (DOCKER_HOST), or set "
            "pulumi config set --path 'fourlb:volumeNames.postgres_data' <volume> -s prod"
            ) in blockers(report)


def test_data_outside_a_volume_blocks_with_the_copy_to_make(prod):
    postgres = compose_container("postgres", "postgres:16-alpine",
                                 (HostMount("bind", PGDATA, source="/srv/pgdata"),))
    facts = seed_host(containers=(postgres,), volumes=())
    assert blockers(adopt(prod, facts))[0] == (
        "postgres_data", "postgres keeps /var/lib/postgresql/data in the host directory "
        "/srv/pgdata, not in a volume",
        "copy it into a volume with postgres stopped: docker volume create postgres_data && "
        "docker run --rm -v /srv/pgdata:/from:ro -v postgres_data:/to --entrypoint cp "
        "postgres:16-alpine -a /from/. /to/, then run adopt again")


def test_the_seed_host_is_adopted_under_its_compose_names(prod):
    report = adopt(prod, seed_host(), parse_compose(COMPOSE, COMPOSE_FILE), import_file=True)
    adopted = {v.key: v.name for v in report.volumes if v.status == "adopt"}
    assert adopted == {"postgres_data": "ai-tools_postgres_data", "redis_data": "ai-tools_redis_data",
                       "grafana_data": "ai-tools_grafana_data",
                       "traefik_certs": "ai-tools_traefik_certs"}
    assert report.settings == {"fourlb:takeover": True, "fourlb:volumeNames": adopted}
    assert "pulumi config set --path 'fourlb:volumeNames.postgres_data' ai-tools_postgres_data " \
           "-s prod" in report.setting_commands
    commands = {s.config_key: s.command for s in report.secrets}
    assert commands == {
        "fourlb:postgresPassword":
            "docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' postgres | "
            "sed -n 's/^POSTGRES_PASSWORD=//p' | tr -d '\\n' | pulumi config set --secret "
            "fourlb:postgresPassword -s prod",
        "fourlb:grafanaAdminPassword":
            "docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' grafana | "
            "sed -n 's/^GF_SECURITY_ADMIN_PASSWORD=//p' | tr -d '\\n' | pulumi config set "
            "--secret fourlb:grafanaAdminPassword -s prod",
        "fourlb:redisPassword":
            "docker inspect --format '{{range .Config.Cmd}}{{println .}}{{end}}' redis | "
            "sed -n '/^--requirepass$/{n;p;}' | tr -d '\\n' | pulumi config set --secret "
            "fourlb:redisPassword -s prod",
    }
    assert {(c.name, c.reason) for c in report.stop} >= {
        ("postgres", "has the plan's fixed name"),
        ("traefik", "has the plan's fixed name; holds host port 80, 443")}
    assert [c.name for c in report.others] == ["jsr-dev"]
    assert [(n.name, n.action) for n in report.networks] == [("unified-net", "import")]
    assert "grafana/grafana:11.5.2" in report.pulls and "postgres:16-alpine" not in report.pulls
    assert report.blockers == ()
    text = report_text(report, "docker-import.json")
    assert "Nothing blocks: follow docs/cutover.md" in text
    assert "  docker pull grafana/grafana:11.5.2" in text
    # the images built from the project are no pull: they are named with their directory
    assert "fourlb-traefik:3.6-bouncer-1.4.2" not in report.pulls
    assert "  docker build -t fourlb-traefik:3.6-bouncer-1.4.2 edge/" in text
    assert "docker build -t fourlb-backup:16-1 backup/" in report.to_json()["build"]


def test_the_import_file_names_volumes_and_networks_under_the_program_s_parents(prod):
    report = adopt(prod, seed_host(), import_file=True)
    resources = report.import_file["resources"]
    assert {"type": "fourlb:docker:Volumes", "name": "volumes", "component": True} in resources
    assert {"type": "docker:index/volume:Volume", "name": "postgres_data", "parent": "volumes",
            "id": "ai-tools_postgres_data"} in resources
    assert {"type": "docker:index/network:Network", "name": "unified-net", "parent": "networks",
            "id": "4f3c2a1b0e9d8c7b6a5f"} in resources


def test_an_existing_network_blocks_until_an_import_file_is_written(prod):
    report = adopt(prod, seed_host())
    assert ("unified-net", "exists (made outside Compose): pulumi up would fail creating it",
            "python -m plan adopt prod --import-file docker-import.json, then pulumi import "
            "--file docker-import.json -s prod") in blockers(report)


def test_a_network_of_another_kind_must_be_removed(prod):
    report = adopt(prod, seed_host(networks=(HostNetwork("data-net", "abc", "bridge", False),)))
    assert ("data-net", "exists as bridge; the plan declares a bridge (internal)",
            "remove it once the old containers are stopped: docker network rm data-net "
            "(pulumi up creates it)") in blockers(report)


def test_a_secret_with_no_copy_in_the_old_configuration_blocks(prod):
    grafana = compose_container("grafana", "grafana/grafana:11.5.2",
                                (volume_mount("ai-tools_grafana_data", "/var/lib/grafana"),))
    facts = seed_host(containers=tuple(c for c in seed_host().containers if c.name != "grafana")
                      + (grafana,))
    assert ("fourlb:grafanaAdminPassword",
            "ai-tools_grafana_data is adopted, and grafana holds no copy of this secret in its "
            "configuration",
            "set the value in use, typed at the prompt: pulumi config set --secret "
            "fourlb:grafanaAdminPassword -s prod") in blockers(adopt(prod, facts, import_file=True))
    done = adopt(prod, facts, import_file=True, secrets_set={"fourlb:grafanaAdminPassword"})
    assert done.blockers == ()


def test_a_redis_without_an_append_only_file_blocks(prod):
    redis = compose_container("redis", "redis:7-alpine", (volume_mount("ai-tools_redis_data", "/data"),),
                              command=("redis-server", "--requirepass", "(not read)"), aof=False)
    facts = seed_host(containers=tuple(c for c in seed_host().containers if c.name != "redis")
                      + (redis,))
    (blocker,) = adopt(prod, facts, import_file=True).blockers
    assert (blocker.subject, blocker.problem) == ("redis_data", (
        "redis keeps its data in dump.rdb only (no append-only file in ai-tools_redis_data); the "
        "plan's redis runs with appendonly yes and, finding no append-only file, would start empty"))
    assert blocker.fix.startswith("have the running redis write one before the cutover: docker exec "
                                  "-e REDISCLI_AUTH=\"$(docker inspect")
    assert blocker.fix.endswith("redis redis-cli CONFIG SET appendonly yes (then run adopt again)")


def test_a_postgres_created_under_another_user_blocks(prod):
    postgres = compose_container("postgres", "postgres:16-alpine",
                                 (volume_mount("ai-tools_postgres_data", PGDATA),),
                                 env_names=frozenset({"POSTGRES_PASSWORD"}))
    facts = seed_host(containers=(postgres,), volumes=(compose_volume("postgres_data"),))
    problems = [b.problem for b in adopt(prod, facts, import_file=True).blockers]
    assert problems == [
        "the data directory's superuser is postgres (postgres's POSTGRES_USER); the plan "
        "connects as fourlb",
        "the AI backend's database is postgres (postgres's POSTGRES_DB); the plan's DATABASE_URL "
        "names orchestrator"]


def test_compose_names_volumes_as_compose_does():
    compose = parse_compose(COMPOSE.replace("  redis_data:\n", "  redis_data:\n  certs:\n    name: "
                                            "letsencrypt\n  old:\n    external: true\n"),
                            COMPOSE_FILE)
    assert compose.project == "ai-tools"
    assert dict(compose.volumes) == {"postgres_data": "ai-tools_postgres_data",
                                     "redis_data": "ai-tools_redis_data", "certs": "letsencrypt",
                                     "old": "old"}
    assert compose.services["postgres"].mounts == (("ai-tools_postgres_data", PGDATA),)
    assert parse_compose("name: Other\n", COMPOSE_FILE).project == "other"


# --- no secret is kept, so none is printed ---------------------------------------

SENTINELS = ("pg-sentinel-51b2", "redis-sentinel-77c1", "lapi-sentinel-0a9e", "gf-sentinel-3f3f")


def inspected(name: str, env: list[str], cmd: list[str] = (), labels: dict = {},
              mounts: list = (), ports: dict = {}) -> dict:
    return {"Id": f"{name}-id", "Name": f"/{name}",
            "Config": {"Image": f"{name}:1", "Env": env, "Cmd": list(cmd),
                       "Labels": {COMPOSE_PROJECT: "ai-tools", COMPOSE_SERVICE: name, **labels}},
            "State": {"Running": True}, "HostConfig": {"PortBindings": ports},
            "Mounts": list(mounts), "NetworkSettings": {"Networks": {"unified-net": {}}}}


def test_no_secret_of_the_host_reaches_the_report(prod):
    containers = [
        inspected("postgres", [f"POSTGRES_PASSWORD={SENTINELS[0]}", "POSTGRES_USER=fourlb",
                               "POSTGRES_DB=orchestrator"],
                  mounts=[{"Type": "volume", "Name": "ai-tools_postgres_data", "Destination": PGDATA}]),
        inspected("redis", [], ["redis-server", "--requirepass", SENTINELS[1]],
                  mounts=[{"Type": "volume", "Name": "ai-tools_redis_data", "Destination": "/data"}]),
        inspected("traefik", [], labels={
            "traefik.http.middlewares.crowdsec.plugin.bouncer.crowdsecLapiKey": SENTINELS[2]},
            ports={"443/tcp": [{"HostIp": "", "HostPort": "443"}]}),
        inspected("grafana", [f"GF_SECURITY_ADMIN_PASSWORD={SENTINELS[3]}"],
                  mounts=[{"Type": "volume", "Name": "ai-tools_grafana_data",
                           "Destination": "/var/lib/grafana"}]),
        inspected("crowdsec", [], mounts=[{"Type": "volume", "Name": "ai-tools_crowdsec_data",
                                           "Destination": "/var/lib/crowdsec/data"}]),
    ]
    reduced = tuple(reduce_container(c) for c in containers)
    assert reduced[0].env == {"POSTGRES_USER": "fourlb", "POSTGRES_DB": "orchestrator"}
    assert reduced[2].host_ports == (443,)
    facts = seed_host(containers=reduced, volumes=tuple(compose_volume(k) for k in (
        "postgres_data", "redis_data", "grafana_data", "crowdsec_data")))
    report = adopt(prod, facts, import_file=True)
    output = report_text(report) + json.dumps(report.to_json()) + repr(facts)
    assert not [s for s in SENTINELS if s in output]
    keys = {s.config_key: s.source for s in report.secrets}
    assert keys == {"fourlb:postgresPassword": "postgres's env POSTGRES_PASSWORD",
                    "fourlb:redisPassword": "redis's command (--requirepass)",
                    "fourlb:grafanaAdminPassword": "grafana's env GF_SECURITY_ADMIN_PASSWORD",
                    "fourlb:crowdsecBouncerKey": "traefik's label "
                    "traefik.http.middlewares.crowdsec.plugin.bouncer.crowdsecLapiKey"}


# --- the settings -------------------------------------------------------------------

def prod_values(**extra) -> dict:
    return {**StackFile("prod").values, **extra}


def test_volume_names_map_the_docker_name_and_keep_the_key():
    config = parse_stack_config("prod", prod_values(
        volumeNames={"postgres_data": "ai-tools_postgres_data"}, takeover=True))
    plan = build_plan(config, "prod")
    volumes = {v.name: v for v in plan.volumes}
    assert volumes["postgres_data"].engine_name == "ai-tools_postgres_data"
    assert volumes["postgres_data"].adopted and not volumes["redis_data"].adopted
    assert volumes["redis_data"].engine_name == "redis_data"
    assert all(n.adopted for n in plan.networks)
    mounts = [m.volume for m in plan.container("postgres").mounts]
    assert mounts == ["postgres_data"]  # the plan's key; the component maps it


@pytest.mark.parametrize("names, key, allowed", [
    ({"postgres": "pg"}, "fourlb:volumeNames.postgres",
     "allowed: a volume of this stack's plan: alertmanager_"),
    ({"postgres_data": "x_data", "redis_data": "x_data"}, "fourlb:volumeNames.redis_data",
     "allowed: a Docker volume no other key uses (volumeNames.postgres_data)"),
    ({"postgres_data": "redis_data"}, "fourlb:volumeNames.postgres_data",
     "allowed: a Docker volume no other key uses (the plan's volume redis_data)"),
    ({"postgres_data": "bad name"}, "fourlb:volumeNames.postgres_data",
     "allowed: a Docker volume name"),
])
def test_volume_names_are_checked(names, key, allowed):
    with pytest.raises(StackConfigError) as error:
        build_plan(parse_stack_config("prod", prod_values(volumeNames=names)), "prod")
    problems = [(p.key, p.allowed) for p in error.value.problems]
    assert any(k == key and a.startswith(allowed) for k, a in problems), problems


# --- what the program declares (mocks) ------------------------------------------------

VOLUME = "docker:index/volume:Volume"
TAKEOVER = {"fourlb:volumeNames": json.dumps({"postgres_data": "ai-tools_postgres_data"}),
            "fourlb:takeover": "true"}


def test_a_takeover_imports_the_mapped_volume_under_its_docker_name(deploy):
    plain_run = deploy("prod")
    # read before the next run: the recording transformation of a run also sees later runs
    plain = {key: plain_run.options[key].ignore_changes
             for key in ((VOLUME, "redis_data"), ("docker:index/network:Network", "unified-net"))}
    run = deploy("prod", overrides=TAKEOVER)
    assert run.error is None, run.error
    inputs = run.one(VOLUME, "postgres_data").inputs
    assert inputs["name"] == "ai-tools_postgres_data"
    options = run.options[(VOLUME, "postgres_data")]
    assert options.import_ == "ai-tools_postgres_data" and options.protect
    assert run.options[(VOLUME, "redis_data")].import_ is None
    assert options.ignore_changes == plain[(VOLUME, "redis_data")] == ["labels"]
    # same URN as without the mapping: nothing is replaced by adopting
    assert run.urns[(VOLUME, "postgres_data")] == plain_run.urns[(VOLUME, "postgres_data")]
    mounted = [v for v in run.containers["postgres"].inputs["volumes"]
               if v["containerPath"] == "/var/lib/postgresql/data"]
    assert [v["volumeName"] for v in mounted] == ["ai-tools_postgres_data"]
    network = run.options[("docker:index/network:Network", "unified-net")]
    assert network.ignore_changes == ["labels"]
    assert plain[("docker:index/network:Network", "unified-net")] is None


def test_the_docker_import_file_names_resources_as_the_program_declares_them(deploy, prod):
    report = adopt(prod, seed_host(), import_file=True)
    run = deploy("prod")
    engine_urns = {urn.replace("::pulumi:pulumi:Stack$", "::") for urn in run.urns.values()}
    types = {e["name"]: e["type"] for e in report.import_file["resources"] if e.get("component")}
    implied = set()
    for entry in report.import_file["resources"]:
        if entry.get("component"):
            implied.add(component_urn("prod", entry["type"], entry["name"]))
        else:
            parent = entry["parent"]
            implied.add(f"urn:pulumi:prod::fourlb::{types[parent]}${entry['type']}::{entry['name']}")
    assert len(implied) == 7 and implied <= engine_urns, sorted(implied - engine_urns)
