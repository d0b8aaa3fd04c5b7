"""The real `__main__.py` under Pulumi mocks: what each stack declares."""

from __future__ import annotations

import json

import pytest

from tests.e2e.declared import plain
from tests.mocks import CLOUDFLARE_TOKEN, GENERATED_PREFIX, SECRET_SIG
from tests.test_plan import INVENTORY, SEED_VOLUMES

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
RECORD = "cloudflare:index/dnsRecord:DnsRecord"


def is_secret(value) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def labels(declared) -> dict[str, str]:
    return {item["label"]: item["value"] for item in declared.inputs.get("labels", [])}


@pytest.fixture(scope="module")
def prod(deploy):
    run = deploy("prod")
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def dev(deploy):
    run = deploy("dev")
    assert run.error is None, run.error
    return run


def test_prod_declares_every_inventory_container_with_its_pinned_image(prod):
    containers = prod.containers
    assert set(INVENTORY) <= set(containers)
    for name in INVENTORY:
        if name == "traefik":  # built on the host from edge/, with the bouncer plugin inside
            built = prod.one("docker:index/image:Image", name)
            assert containers[name].inputs["image"] == "sha256:" + built.inputs["imageName"]
            assert built.inputs["build"]["context"].endswith("/edge")
            assert built.inputs["build"]["platform"] == "linux/amd64"  # the host's, not the deployer's
            continue
        image = prod.one(IMAGE, name)
        assert containers[name].inputs["image"] == "sha256:" + image.inputs["name"]
        assert not image.inputs["name"].endswith(":latest")


def test_prod_container_names_are_those_users_type(prod):
    for name, declared in prod.containers.items():
        docker_name = declared.inputs["name"]
        if labels(declared)["fourlb.update-order"] == "stop-first":
            assert docker_name == name
        else:  # the stable name plus a six-digit suffix, findable by label
            assert docker_name.startswith(name + "-") and len(docker_name) == len(name) + 7
        assert labels(declared)["fourlb.service"] == name


def test_volumes_keep_their_names_and_are_protected_and_retained(prod):
    volumes = {v.name: v for v in prod.of_type(VOLUME)}
    assert set(SEED_VOLUMES) <= set(volumes)
    for name, volume in volumes.items():
        assert volume.inputs["name"] == name
        assert volume.options.protect is True, name
        assert volume.options.retain_on_delete is True, name
    for name, (owner, target) in SEED_VOLUMES.items():
        mounts = prod.containers[owner].inputs["volumes"]
        assert {"volumeName": name, "containerPath": target, "readOnly": False} in mounts


def test_networks_and_data_isolation(prod):
    networks = {n.name: n.inputs for n in prod.of_type(NETWORK)}
    assert networks["unified-net"].get("internal") in (None, False)
    assert networks["data-net"]["internal"] is True
    for name in ("postgres", "redis", "chromadb"):
        joined = [n["name"] for n in prod.containers[name].inputs["networksAdvanced"]]
        assert joined == ["data-net"]
    backend = [n["name"] for n in prod.containers["ai-orchestrator-backend"].inputs["networksAdvanced"]]
    assert set(backend) == {"edge-ai-orchestrator-backend-out", "data-net"}
    # the edge reaches the sites of the stacks it serves (dev) on a network it declares
    assert networks["edge-stack-dev"].get("internal") in (None, False)
    assert "edge-stack-dev" in [n["name"] for n in prod.containers["traefik"].inputs["networksAdvanced"]]


def test_only_traefik_has_host_ports(prod):
    with_ports = {name: [(p["internal"], p["external"]) for p in c.inputs.get("ports", [])]
                  for name, c in prod.containers.items() if c.inputs.get("ports")}
    assert with_ports == {"traefik": [(80, 80), (443, 443)]}


def test_stateful_containers_are_deleted_before_they_are_replaced(prod):
    for name in ("postgres", "redis", "chromadb", "traefik", "grafana", "prometheus"):
        declared = prod.one(CONTAINER, name)
        assert declared.options.delete_before_replace is True, name
        assert declared.inputs["destroyGraceSeconds"] >= 30
    for name in ("jsr-solutions-prod", "ai-orchestrator-frontend"):
        declared = prod.one(CONTAINER, name)
        assert not declared.options.delete_before_replace, name
        assert declared.inputs["wait"] is True  # health-gated before the old one goes


def test_traefik_labels_reach_docker_as_planned(prod):
    backend = labels(prod.containers["ai-orchestrator-backend"])
    rules = [v for k, v in backend.items() if k.endswith(".rule")]
    assert rules == ["Host(`ai.4lb.ca`) && PathPrefix(`/api`)"]
    traefik = labels(prod.containers["traefik"])
    assert traefik["traefik.http.routers.traefik.service"] == "api@internal"


def test_dns_records_land_in_their_zones(prod):
    zones = {call[1]["filter"]["name"] for call in prod.calls if call[0].endswith("getZone")}
    assert zones == {"4lb.ca", "jsr-solutions.ca"}
    records = {r.inputs["name"]: r.inputs for r in prod.of_type(RECORD)}
    assert records["www.jsr-solutions.ca"]["zoneId"] == "zone-id-jsr-solutions.ca"
    assert records["grafana.4lb.ca"]["zoneId"] == "zone-id-4lb.ca"
    assert all(r["type"] == "A" and r["ttl"] == 1 for r in records.values())
    assert len(records) == 8


def test_secrets_reach_containers_only_as_encrypted_values(prod):
    for name, declared in prod.containers.items():
        for env in declared.inputs.get("envs", []):
            if is_secret(env):
                continue
            assert GENERATED_PREFIX not in json.dumps(env), name
        text = json.dumps(labels(declared))
        assert GENERATED_PREFIX not in text and "$2a$" not in text, name
    backend_envs = prod.containers["ai-orchestrator-backend"].inputs["envs"]
    assert is_secret(backend_envs)
    assert any("generated-secret-postgres-password" in e for e in backend_envs["value"])
    uploads = prod.containers["traefik-config"].inputs["uploads"]
    assert is_secret(uploads)
    dynamic = [u for u in uploads["value"] if u["file"].endswith("middlewares.yml")][0]
    assert "admin:$2a$10$" in dynamic["content"]  # a bcrypt hash, not the password
    assert GENERATED_PREFIX + "admin-password" not in dynamic["content"]
    # the bouncer key is no longer in the directory the writer fills: a file of Traefik's
    assert GENERATED_PREFIX + "crowdsec-bouncer-key" not in dynamic["content"]
    edge_uploads = prod.containers["traefik"].inputs["uploads"]
    assert is_secret(edge_uploads)
    (key_file,) = [u for u in edge_uploads["value"] if u["file"] == "/run/secrets/crowdsec-bouncer-key"]
    assert key_file["content"] == GENERATED_PREFIX + "crowdsec-bouncer-key"


def test_dev_declares_two_sites_on_the_existing_network_and_no_platform(dev, prod):
    assert set(dev.containers) == {"jsr-dev", "jsr-solutions"}
    assert not dev.of_type(NETWORK) and not dev.of_type(VOLUME)
    for declared in dev.containers.values():
        assert [n["name"] for n in declared.inputs["networksAdvanced"]] == ["edge-stack-dev"]
        assert not declared.inputs.get("ports")
    dev_hosts = {r.inputs["name"] for r in dev.of_type(RECORD)}
    assert dev_hosts == {"jsr.4lb.ca", "jsr-solutions-dev.4lb.ca"}
    assert not any(h.endswith("jsr-solutions.ca") for h in dev_hosts)
    assert not dev_hosts & {r.inputs["name"] for r in prod.of_type(RECORD)}


def test_local_stack_needs_no_cloudflare(deploy):
    run = deploy("local")
    assert run.error is None, run.error
    assert not run.of_type(RECORD) and not run.calls
    assert "traefik" in run.containers and "jsr-solutions-prod" in run.containers


def test_bad_config_declares_nothing_and_names_the_key(deploy):
    run = deploy("prod", overrides={"fourlb:sites": json.dumps(
        {"shop": {"image": "shop:1.0", "hostnames": ["shop.4lb.ca"], "port": 70000}})})
    assert run.error is not None and "fourlb:sites.shop.port = 70000" in str(run.error)
    assert run.resources == []


def test_missing_cloudflare_token_stops_before_any_resource(deploy, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    run = deploy("prod", drop=("cloudflare:apiToken",))
    assert "cloudflare:apiToken" in str(run.error) and "--secret" in str(run.error)
    assert run.resources == []


def test_a_required_secret_that_is_missing_is_named(deploy):
    acme = json.dumps({"email": "admin@4lb.ca", "challenge": "cloudflare-dns"})
    run = deploy("prod", overrides={"fourlb:acme": acme})
    assert "fourlb:cloudflareDnsToken" in str(run.error)
    assert run.resources == []
    ok = deploy("prod", overrides={"fourlb:acme": acme},
                secrets={"fourlb:cloudflareDnsToken": "dns-token"})
    assert ok.error is None, ok.error


def test_a_secret_set_in_plain_text_is_refused(deploy):
    run = deploy("prod", overrides={"fourlb:postgresPassword": "hunter2"})
    assert "fourlb:postgresPassword" in str(run.error) and "plain text" in str(run.error)
    assert run.resources == []


def test_a_provided_secret_replaces_the_generated_one(deploy):
    run = deploy("prod", secrets={"fourlb:postgresPassword": "provided-pg-password"})
    assert run.error is None, run.error
    inputs = plain(run.containers["postgres"].inputs)
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password" in inputs["envs"]
    assert ("/run/secrets/postgres-password", "provided-pg-password") in {
        (u["file"], u["content"]) for u in inputs["uploads"]}
    backend = plain(run.containers["ai-orchestrator-backend"].inputs)["envs"]
    assert any(e.startswith("DATABASE_URL=") and ":provided-pg-password@" in e for e in backend)
    generated = {r.name for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert "postgres-password" not in generated and "redis-password" in generated


def test_same_hostname_in_dev_and_prod_is_refused_under_pulumi(deploy):
    sites = {"jsr-dev": {"image": "jsr-dev:dev", "hostnames": ["jsr.4lb.ca", "ai.4lb.ca"]}}
    run = deploy("dev", overrides={"fourlb:sites": json.dumps(sites)})
    assert "ai.4lb.ca" in str(run.error) and "stack 'prod'" in str(run.error)
    assert run.resources == []


def test_cloudflare_token_is_not_in_any_input(prod):
    assert CLOUDFLARE_TOKEN not in json.dumps([r.inputs for r in prod.resources], default=str)


def test_the_old_start_first_container_outlives_the_new_one_being_healthy(prod):
    """A dependent that Pulumi replaces with each new container and that takes
    SETTLE_S to create: the old container is deleted only after it."""
    settles = {r.name: r for r in prod.of_type("command:local:Command")}
    for name, declared in prod.containers.items():
        start_first = not declared.options.delete_before_replace
        routed = any(i["label"] == "traefik.enable" for i in declared.inputs["labels"])
        settle = settles.get(f"{name}-settle")
        if start_first and routed:
            assert settle is not None, name
            assert settle.inputs["create"] == "sleep 5"
            assert settle.inputs["triggers"] == [f"{name}-id"]  # the container's ID
        else:
            assert settle is None, name


RANDOM_ID = "random:index/randomId:RandomId"


def test_start_first_names_are_drawn_again_when_the_image_id_moves(prod, deploy):
    """A new build under the same tag (read by `pulumi up --refresh`) changes the
    image ID only: the name must change too, or the replacement meets the old one."""
    moved = deploy("prod", image_ids={"jsr-solutions-frontend:1.0.0": "sha256:" + "c" * 64})
    before, after = prod.containers["jsr-solutions-prod"], moved.containers["jsr-solutions-prod"]
    assert labels(before) == labels(after)
    assert before.inputs["name"] != after.inputs["name"]
    # stop-first containers keep their exact name whatever the image
    assert moved.containers["postgres"].inputs["name"] == "postgres"


def test_instance_names_keep_no_secret_in_plain_text(prod):
    instances = {r.name: r for r in prod.of_type(RANDOM_ID)}
    assert set(instances) == {f"{name}-instance" for name, c in prod.containers.items()
                              if labels(c)["fourlb.update-order"] == "start-first"}
    text = json.dumps([r.inputs for r in instances.values()])
    assert GENERATED_PREFIX not in text and "provided-secret-" not in text
    backend = plain(instances["ai-orchestrator-backend-instance"].inputs["keepers"])
    assert set(backend) == {"spec", "image", "secrets"} and len(backend["secrets"]) == 64


def test_a_followed_tag_is_pulled_again_when_the_registry_digest_moves(deploy):
    sites = {"shop": {"image": "ghcr.io/jsr/shop:dev", "hostnames": ["shop.4lb.ca"], "followTag": True},
             "blog": {"image": "ghcr.io/jsr/blog:dev", "hostnames": ["blog.4lb.ca"]}}
    overrides = {"fourlb:sites": json.dumps(sites)}
    first = deploy("dev", overrides=overrides)
    image = first.one(IMAGE, "shop")
    # by digest: the provider takes a local image of the given name and pulls nothing
    assert image.inputs["name"] == "ghcr.io/jsr/shop:dev@sha256:registry-ghcr.io/jsr/shop:dev"
    assert ("docker:index/getRegistryImage:getRegistryImage", {"name": "ghcr.io/jsr/shop:dev"}) in [
        (token, {k: v for k, v in args.items() if k == "name"}) for token, args in first.calls]
    moved = deploy("dev", overrides=overrides, image_ids={"ghcr.io/jsr/shop:dev": "sha256:" + "d" * 64})
    assert moved.one(IMAGE, "shop").inputs["name"] == "ghcr.io/jsr/shop:dev@sha256:" + "d" * 64
    # tags not followed ask no registry
    assert first.one(IMAGE, "blog").inputs["name"] == "ghcr.io/jsr/blog:dev"


def test_every_login_is_a_secret_stack_output_holding_what_the_service_gets(prod):
    exported = {name: value for name, (value, secret) in prod.exports.items() if secret}
    assert {"adminPassword", "grafanaAdminPassword", "codeServerPassword"} <= set(exported)
    assert not any(secret is False and "assword" in name for name, (_, secret) in prod.exports.items())
    grafana = plain(prod.containers["grafana"].inputs)["uploads"]
    code = plain(prod.containers["code-server"].inputs)["uploads"]
    assert exported["grafanaAdminPassword"] in {u["content"] for u in grafana}
    assert exported["codeServerPassword"] in {u["content"] for u in code}
    assert exported["adminPassword"] == GENERATED_PREFIX + "admin-password"


def implied_urn(entry: dict, name_table: dict[str, str]) -> str:
    """The URN `pulumi import --file` gives a resource: its parent's qualified type,
    then its own (the engine's format)."""
    parent = name_table[entry["parent"]]
    prefix, parent_type, _ = parent.rsplit("::", 2)
    return f"{prefix}::{parent_type}${entry['type']}::{entry['name']}"


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_dns_import_file_names_the_records_as_the_program_declares_them(deploy, stack):
    import subprocess
    import sys
    from tests.mocks import PROJECT_DIR
    result = subprocess.run([sys.executable, "-m", "plan", "import-dns", stack], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    run = deploy(stack)
    declared_urns = {urn for (typ, _), urn in run.urns.items() if typ == RECORD}
    imported = {implied_urn(entry, document["nameTable"]) for entry in document["resources"]}
    assert declared_urns and imported == declared_urns
    # the parent itself is a component the program declares under that URN. The mock
    # monitor qualifies a child of the stack with the stack's type; the engine does
    # not (a top-level component is urn:pulumi:STACK::PROJECT::TYPE::NAME)
    engine_urns = {urn.replace("::pulumi:pulumi:Stack$", "::") for urn in run.urns.values()}
    assert set(document["nameTable"].values()) <= engine_urns
