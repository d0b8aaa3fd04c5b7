"""The policy pack: each rule with a compliant and a violating resource, what
the pack sees through pulumi-policy's own Analyze, the pack served as the
engine starts it, and the real program (under mocks) passing its own policy."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import grpc
import pytest

import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, Secret
from pulumi_policy import policy as analyzer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy import rules, secret_view
from policy.rules import CONTAINER, VOLUME
from tests.processes import stop

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
SECRET = {secret_view.SIG_KEY: secret_view.SECRET_SIG}  # wire marker, add "value"


@dataclass
class Options:
    protect: bool = False
    retain_on_delete: Optional[bool] = None


@dataclass
class Resource:
    """The part of pulumi_policy.ResourceValidationArgs the checks read."""

    resource_type: str
    props: Any
    name: str = "r"
    opts: Options = field(default_factory=Options)
    urn: str = ""


def container(service: str = "shop", labels: Optional[dict[str, str]] = None, **props) -> Resource:
    all_labels = {"fourlb.service": service, "fourlb.stack": "prod", **(labels or {})}
    props["labels"] = [{"label": k, "value": v} for k, v in all_labels.items()]
    return Resource(CONTAINER, props, name=service)


def router(name: str = "shop", **overrides: Optional[str]) -> dict[str, str]:
    settings = {
        "rule": "Host(`shop.4lb.ca`) || Host(`www.shop.4lb.ca`)",
        "entrypoints": "websecure",
        "tls": "true",
        "tls.certresolver": "le",
        "middlewares": "security-headers@file,crowdsec@file,ratelimit-default@file",
        "service": name,
    }
    settings.update(overrides)
    return {f"traefik.http.routers.{name}.{k}": v for k, v in settings.items() if v is not None}


def own_headers(name: str = "shop-headers", **overrides: str) -> dict[str, str]:
    headers = {"stsseconds": "63072000", "stsincludesubdomains": "true", "stspreload": "true",
               "framedeny": "true", "contenttypenosniff": "true",
               "contentsecuritypolicy": "default-src 'self'"}
    headers.update(overrides)
    return {f"traefik.http.middlewares.{name}.headers.{k}": v for k, v in headers.items()}


# ---- docker socket -----------------------------------------------------------

SOCKET = {"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}


def test_socket_proxy_may_mount_the_socket_read_only():
    proxy = container("docker-socket-proxy", volumes=[{**SOCKET, "readOnly": True}])
    assert rules.check_docker_socket(proxy) == []


def test_socket_proxy_mounting_it_read_write_is_refused():
    proxy = container("docker-socket-proxy", volumes=[{**SOCKET, "readOnly": False}])
    assert rules.check_docker_socket(proxy) == [
        "docker-socket-proxy: mounts /var/run/docker.sock read-write; mount it read-only"]


@pytest.mark.parametrize("host_path", [
    "/var/run/docker.sock", "/run/docker.sock", "//var/run/docker.sock", "/var/run/./docker.sock",
    "/var/run/../run/docker.sock", "/run/", "/var/run", "/var"])
def test_no_other_container_mounts_the_socket_or_its_directory(host_path):
    shop = container("shop", volumes=[{"hostPath": host_path, "containerPath": "/s", "readOnly": True}])
    [message] = rules.check_docker_socket(shop)
    assert "exposes the Docker socket" in message and "docker-socket-proxy" in message


def test_a_bind_through_the_mounts_input_counts_too():
    shop = container("shop", mounts=[{"type": "bind", "source": "/run/docker.sock", "target": "/s"}])
    assert rules.check_docker_socket(shop)


def test_host_root_only_for_monitoring_and_read_only():
    root = {"hostPath": "/", "containerPath": "/rootfs"}
    hidden = {"/rootfs/run": "ro,size=64k", "/rootfs/var/run": "ro,size=64k"}
    assert rules.check_docker_socket(
        container("cadvisor", volumes=[{**root, "readOnly": True}], tmpfs=hidden)) == []
    assert rules.check_docker_socket(
        container("node-exporter", volumes=[{**root, "readOnly": False}], tmpfs=hidden))
    assert rules.check_docker_socket(
        container("shop", volumes=[{**root, "readOnly": True}], tmpfs=hidden))


def test_host_root_must_hide_the_socket_directories():
    root = {"hostPath": "/", "containerPath": "/rootfs", "readOnly": True}
    bare = rules.check_docker_socket(container("cadvisor", volumes=[root]))
    assert any("/rootfs/run" in p for p in bare) and any("/rootfs/var/run" in p for p in bare)
    half = rules.check_docker_socket(
        container("cadvisor", volumes=[root], tmpfs={"/rootfs/run": "ro"}))
    assert len(half) == 1 and "/rootfs/var/run" in half[0]


def test_named_volumes_and_other_host_paths_are_fine():
    shop = container("shop", volumes=[
        {"volumeName": "shop_data", "containerPath": "/data"},
        {"hostPath": "/srv/shop/var/run", "containerPath": "/x", "readOnly": True}])
    assert rules.check_docker_socket(shop) == []


def swarm_service(service: str, mounts: tuple[dict, ...] = (), published: tuple[int, ...] = ()) -> Resource:
    """A swarm service as the program declares one: labels on the service, mounts
    on its tasks' container spec, ports on its endpoint."""
    labels = [{"label": "fourlb.service", "value": service}]
    props = {"labels": labels, "taskSpec": {"containerSpec": {"image": "x", "mounts": list(mounts)}}}
    if published:
        props["endpointSpec"] = {"ports": [{"targetPort": 80, "publishedPort": p, "publishMode": "host"}
                                           for p in published]}
    return Resource(rules.SWARM_SERVICE, props, name=service)


def test_a_swarm_service_s_tasks_follow_the_socket_rules():
    root = {"type": "bind", "source": "/", "target": "/rootfs", "readOnly": True}
    hidden = [{"type": "tmpfs", "target": "/rootfs/run", "readOnly": True},
              {"type": "tmpfs", "target": "/rootfs/var/run", "readOnly": True}]
    socket = {"type": "bind", "source": "/var/run/docker.sock", "target": "/s", "readOnly": True}
    assert rules.check_docker_socket(swarm_service("cadvisor", (root, *hidden))) == []
    assert rules.check_docker_socket(swarm_service("docker-socket-proxy", (socket,))) == []
    [bare, other] = rules.check_docker_socket(swarm_service("cadvisor", (root,)))
    assert "/rootfs/run" in bare and "/rootfs/var/run" in other
    [stolen] = rules.check_docker_socket(swarm_service("shop", (socket,)))
    assert "exposes the Docker socket" in stolen
    assert rules.check_docker_socket(swarm_service("shop", ({"type": "volume", "source": "shop_data",
                                                             "target": "/data"},))) == []


def test_a_swarm_service_publishes_host_ports_only_as_the_edge():
    assert rules.check_host_ports(swarm_service("traefik", published=(80, 443))) == []
    assert rules.check_host_ports(swarm_service("grafana")) == []
    [other] = rules.check_host_ports(swarm_service("grafana", published=(3000,)))
    assert "only traefik may" in other
    [port] = rules.check_host_ports(swarm_service("traefik", published=(80, 8082)))
    assert "host port 8082" in port


# ---- host ports --------------------------------------------------------------

def ports(*external: Optional[int]) -> list[dict]:
    return [{"internal": 8080, "protocol": "tcp", **({"external": e} if e else {})} for e in external]


def test_traefik_publishes_80_and_443():
    assert rules.check_host_ports(container("traefik", ports=ports(80.0, 443.0))) == []


@pytest.mark.parametrize("service,published,fragment", [
    ("grafana", ports(3000), "only traefik may"),
    ("traefik", ports(80, 443, 8082), "host port 8082"),
    ("traefik", ports(None), "host port (any)"),
])
def test_other_ports_or_publishers_are_refused(service, published, fragment):
    [message] = rules.check_host_ports(container(service, ports=published))
    assert fragment in message


def test_host_network_is_refused_even_for_traefik():
    assert rules.check_host_ports(container("traefik", networkMode="host"))


def test_containers_without_ports_pass():
    assert rules.check_host_ports(container("grafana", ports=[])) == []


# ---- volumes -----------------------------------------------------------------

def test_protected_and_retained_volume_passes():
    volume = Resource(VOLUME, {"name": "postgres_data"}, "postgres_data",
                      Options(protect=True, retain_on_delete=True))
    assert rules.check_volume_kept(volume) == []


def test_unprotected_volume_is_refused():
    volume = Resource(VOLUME, {"name": "postgres_data"}, "postgres_data", Options(protect=False))
    assert rules.check_volume_kept(volume) == [
        "volume postgres_data: not protected; set protect=True"]


def test_volume_deleted_with_the_stack_is_refused_when_known():
    volume = Resource(VOLUME, {}, "redis_data", Options(protect=True, retain_on_delete=False))
    assert rules.check_volume_kept(volume) == [
        "volume redis_data: deleted with the stack; set retain_on_delete=True"]


def test_other_resource_types_are_not_volumes():
    assert rules.check_volume_kept(Resource(CONTAINER, {}, opts=Options(protect=False))) == []


# ---- routers -----------------------------------------------------------------

def test_a_complete_public_router_passes():
    assert rules.check_routers(container(labels=router())) == []


def test_a_router_with_its_own_complete_headers_middleware_passes():
    chain = "shop-headers@docker,crowdsec@file,ratelimit-default@file"
    assert rules.check_routers(container(labels={**router(middlewares=chain), **own_headers()})) == []


def test_localhost_routers_need_no_certificate_resolver():
    labels = router(rule="Host(`shop.localhost`)", **{"tls.certresolver": None})
    assert rules.check_routers(container(labels=labels)) == []


@pytest.mark.parametrize("overrides,fragment", [
    ({"tls": None}, "tls is not true"),
    ({"tls": "false"}, "tls is not true"),
    ({"entrypoints": "web,websecure"}, "entrypoints ['web', 'websecure']"),
    ({"tls.certresolver": None}, "no tls.certresolver"),
    ({"rule": "Host(`shop.localhost`) || Host(`shop.4lb.ca`)", "tls.certresolver": None},
     "no tls.certresolver"),
    ({"middlewares": "security-headers@file,ratelimit-default@file"}, "crowdsec@file must come second"),
    ({"middlewares": "security-headers@file,ratelimit-default@file,crowdsec@file"},
     "crowdsec@file must come second"),
    # headers last: a 401, 403 or 429 earlier in the chain would go out without them
    ({"middlewares": "crowdsec@file,ratelimit-default@file,security-headers@file"},
     "do not start with security-headers@file"),
    ({"middlewares": "shop-headers@docker,crowdsec@file"}, "(not defined)"),
])
def test_incomplete_routers_are_refused(overrides, fragment):
    messages = rules.check_routers(container(labels=router(**overrides)))
    assert messages and all(m.startswith("shop: router shop:") for m in messages)
    assert any(fragment in m for m in messages), messages


@pytest.mark.parametrize("weakened,fragment", [
    ({"stsseconds": "300"}, "stsSeconds >= 31536000"),
    ({"framedeny": "false"}, "frameDeny=true or customFrameOptionsValue=SAMEORIGIN"),
    ({"framedeny": "false", "customframeoptionsvalue": "ALLOW-FROM https://evil.example"},
     "frameDeny=true or customFrameOptionsValue=SAMEORIGIN"),
    ({"contentsecuritypolicy": " "}, "a contentSecurityPolicy"),
])
def test_a_weak_own_headers_middleware_is_refused(weakened, fragment):
    labels = {**router(middlewares="shop-headers@docker,crowdsec@file"), **own_headers(**weakened)}
    [message] = rules.check_routers(container(labels=labels))
    assert "headers middleware shop-headers lacks" in message and fragment in message


def test_same_origin_frames_and_an_application_policy_are_allowed_when_declared():
    """code-server frames its own webviews and sends its own per-page policy."""
    same_origin = own_headers(framedeny="false", customframeoptionsvalue="SAMEORIGIN",
                              contentsecuritypolicy="")
    labels = {**router(middlewares="shop-headers@docker,crowdsec@file"), **same_origin}
    [message] = rules.check_routers(container(labels=labels))
    assert "a contentSecurityPolicy" in message and "frameDeny" not in message
    assert rules.check_routers(container(labels={**labels, "fourlb.csp": "application"})) == []


def test_label_keys_are_read_case_insensitively():
    labels = {key.replace("routers", "Routers").replace(".tls", ".TLS"): value
              for key, value in router().items()}
    assert rules.check_routers(container(labels=labels)) == []


def test_the_dashboard_needs_admin_auth():
    dashboard = router("traefik", rule="Host(`traefik.4lb.ca`)", service="api@internal")
    [message] = rules.check_routers(container("traefik", labels=dashboard))
    assert "api@internal without admin-auth@file" in message
    chain = "security-headers@file,crowdsec@file,ratelimit-default@file,admin-auth@file"
    assert rules.check_routers(container("traefik", labels={**dashboard, **router(
        "traefik", rule="Host(`traefik.4lb.ca`)", service="api@internal", middlewares=chain)})) == []


# ---- plain-text secrets ------------------------------------------------------

def test_credentials_as_secrets_pass():
    envs = ["POSTGRES_USER=fourlb", Secret("POSTGRES_PASSWORD=s3cret-value-1234"),
            Secret("DATABASE_URL=postgresql://fourlb:s3cret-value-1234@postgres:5432/db")]
    shop = container("shop", envs=envs, uploads=[{"file": "/a.conf", "content": Secret(
        "requirepass ${secret:x}")}])
    assert rules.check_plaintext_secrets(shop) == []


def test_a_whole_secret_env_list_passes():
    shop = container("shop", envs=Secret(["POSTGRES_PASSWORD=s3cret-value-1234"]))
    assert rules.check_plaintext_secrets(shop) == []


@pytest.mark.parametrize("env,fragment", [
    ("POSTGRES_PASSWORD=hunter2", "env POSTGRES_PASSWORD looks like a credential"),
    ("CF_DNS_API_TOKEN=abc", "env CF_DNS_API_TOKEN looks like a credential"),
    ("BOUNCER_KEY_traefik=abc", "env BOUNCER_KEY_traefik looks like a credential"),
    ("REDIS_URL=redis://:hunter2@redis:6379/0", "URL with a password"),
    ("X=${secret:postgres-password}", "unrendered ${secret:…} placeholder"),
    ("USERS=admin:$2y$05$abcdefghijklmnopqrstuv", "password hash"),
])
def test_plain_credentials_in_env_are_refused(env, fragment):
    [message] = rules.check_plaintext_secrets(container("shop", envs=[env]))
    assert fragment in message


@pytest.mark.parametrize("env", [
    "POSTGRES_USER=fourlb", "POSTGRES_PASSWORD_FILE=/run/secrets/pg", "GF_SECURITY_ADMIN_PASSWORD=",
    "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana", "FILE__PASSWORD=/run/secrets/code",
    "KEYCLOAK_URL=https://id.4lb.ca", "JWT_EXPIRATION_SECONDS=3600", "CHROMA_HOST=chromadb"])
def test_ordinary_env_passes(env):
    assert rules.check_plaintext_secrets(container("shop", envs=[env])) == []


@pytest.mark.parametrize("value,fragment", [
    ("${secret:admin-password-bcrypt}", "placeholder"),
    ("admin:$2a$10$" + "h" * 53, "password hash"),
    ("admin:$apr1$abc$def", "password hash"),
    ("token s3cret-value-1234", "value of a credential env"),
])
def test_secrets_in_labels_are_refused(value, fragment):
    shop = container("shop", labels={"traefik.http.middlewares.auth.basicauth.users": value},
                     envs=[Secret("APP_SECRET_KEY=s3cret-value-1234")])
    [message] = rules.check_plaintext_secrets(shop)
    assert "label traefik.http.middlewares.auth.basicauth.users" in message and fragment in message


def test_a_plain_file_with_a_hash_is_refused():
    uploads = [{"file": "/etc/traefik/dynamic/m.yml", "content": "users: [admin:$2b$12$abc]"}]
    [message] = rules.check_plaintext_secrets(container("traefik", uploads=uploads))
    assert "file /etc/traefik/dynamic/m.yml holds a credential" in message


# ---- through pulumi-policy's own analyzer ------------------------------------

def analyze_request(typ: str, props: dict, protect: bool = False,
                    name: str = "r") -> proto.AnalyzeRequest:
    """What the engine sends for one resource."""
    return proto.AnalyzeRequest(
        type=typ, name=name, urn=f"urn:pulumi:prod::fourlb::{typ}::{name}",
        properties=json_format.ParseDict(props, struct_pb2.Struct()),
        options=proto.AnalyzerResourceOptions(protect=protect))


def analyze(typ: str, props: dict, protect: bool = False,
            name: str = "r") -> list[tuple[str, str, int]]:
    """Runs pulumi-policy's Analyze on the pack's policies, in this process."""
    servicer = analyzer._PolicyAnalyzerServicer(
        "fourlb", "0.1.0", rules.policies(), EnforcementLevel.MANDATORY)
    response = servicer.Analyze(analyze_request(typ, props, protect, name), None)
    return [(d.policyName, d.message, d.enforcementLevel) for d in response.diagnostics]


def wire_container(envs) -> dict:
    return {"labels": [{"label": "fourlb.service", "value": "postgres"}], "envs": envs}


def test_without_the_secret_view_the_sdk_hides_which_inputs_are_secret():
    # the engine marks the value secret, yet the validate function sees plain text
    envs = [{**SECRET, "value": "POSTGRES_PASSWORD=s3cret-value-1234"}]
    [(policy, message, level)] = analyze(CONTAINER, wire_container(envs))
    assert policy == "no-plaintext-secrets" and "is not a secret" in message


def test_with_the_secret_view_secrets_pass_and_plain_credentials_are_mandatory(monkeypatch):
    monkeypatch.setattr(analyzer, "deserialize_properties", secret_view.deserialize_keeping_secrets)
    assert analyze(CONTAINER, wire_container([{**SECRET, "value": "POSTGRES_PASSWORD=s3cret-1234"}])) == []
    assert analyze(CONTAINER, wire_container({**SECRET, "value": ["POSTGRES_PASSWORD=x"]})) == []
    [(policy, _, level)] = analyze(CONTAINER, wire_container(["POSTGRES_PASSWORD=hunter2"]))
    assert policy == "no-plaintext-secrets" and level == proto.MANDATORY


def test_keep_secret_markers_installs_the_view(monkeypatch):
    monkeypatch.setattr(analyzer, "deserialize_properties", analyzer.deserialize_properties)
    secret_view.keep_secret_markers()
    assert analyzer.deserialize_properties is secret_view.deserialize_keeping_secrets


def test_during_preview_unknown_mounts_make_the_check_advisory(monkeypatch):
    monkeypatch.setattr(analyzer, "deserialize_properties", secret_view.deserialize_keeping_secrets)
    props = {"labels": [{"label": "fourlb.service", "value": "shop"}],
             "volumes": [{"hostPath": UNKNOWN_STRING_VALUE, "containerPath": "/s"}]}
    [(policy, message, level)] = analyze(CONTAINER, props)
    assert policy == "docker-socket-only-in-proxy" and level == proto.ADVISORY
    assert "can't be known during preview" in message


def test_during_preview_a_generated_secret_is_unknown_and_skipped(monkeypatch):
    monkeypatch.setattr(analyzer, "deserialize_properties", secret_view.deserialize_keeping_secrets)
    assert analyze(CONTAINER, wire_container(["POSTGRES_USER=fourlb", UNKNOWN_STRING_VALUE])) == []


def test_the_analyzer_sees_protect_but_not_retain_on_delete():
    assert "retainOnDelete" not in proto.AnalyzerResourceOptions.DESCRIPTOR.fields_by_name
    [(policy, _, level)] = analyze(VOLUME, {"name": "postgres_data"}, protect=False)
    assert policy == "volumes-protected" and level == proto.MANDATORY
    assert analyze(VOLUME, {"name": "postgres_data"}, protect=True) == []


# ---- the real program passes its own policy ----------------------------------

def as_policy_input(declared) -> Resource:
    """A resource the mocks recorded, as the pack sees it with the secret view."""
    props = unknown_checking_proxy(secret_view.deserialize_keeping_secrets(declared.inputs))
    options = declared.options
    opts = Options(protect=bool(options and options.protect),
                   retain_on_delete=options.retain_on_delete if options else None)
    return Resource(declared.typ, props, declared.name, opts)


@pytest.mark.parametrize("stack", ["prod", "dev", "local", "swarm"])
def test_every_declared_resource_passes_every_policy(deploy, stack):
    run = deploy(stack)
    assert run.error is None, run.error
    assert run.containers or run.of_type(rules.SWARM_SERVICE)
    found = {f"{d.typ}::{d.name}": rules.violations(as_policy_input(d)) for d in run.resources}
    assert {urn: v for urn, v in found.items() if v} == {}
    if stack not in ("dev", "swarm"):  # a swarm's volumes live on their nodes (core.swarm)
        volumes = run.of_type(VOLUME)
        assert volumes and all(as_policy_input(v).opts.retain_on_delete for v in volumes)


def prod_through_the_analyzer(run) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for declared in run.of_type(CONTAINER) + run.of_type(VOLUME):
        protect = bool(declared.options and declared.options.protect)
        props = json.loads(json.dumps(declared.inputs))
        for policy, _, _ in analyze(declared.typ, props, protect, declared.name):
            found.setdefault(policy, []).append(declared.name)
    return found


def test_prod_passes_through_the_analyzer_code_path(deploy, monkeypatch):
    run = deploy("prod")
    # the stock SDK shows every rendered secret as plain text: the pack would
    # block each preview once the generated passwords exist
    blocked = prod_through_the_analyzer(run)
    assert set(blocked) == {"no-plaintext-secrets"}
    assert {"traefik-config", "ai-orchestrator-backend"} <= set(blocked["no-plaintext-secrets"])
    monkeypatch.setattr(analyzer, "deserialize_properties", secret_view.deserialize_keeping_secrets)
    assert prod_through_the_analyzer(run) == {}


@pytest.mark.parametrize("target,change,policy", [
    ("grafana", lambda p: p["volumes"].append(
        {"hostPath": "/var/run/docker.sock", "containerPath": "/s", "readOnly": True}),
     "docker-socket-only-in-proxy"),
    ("grafana", lambda p: p.__setitem__("ports", [{"internal": 3000, "external": 3000}]),
     "host-ports-only-traefik"),
    ("jsr-solutions-prod", lambda p: [item.__setitem__("value", item["value"].replace(",crowdsec@file", ""))
                                      for item in p["labels"] if item["label"].endswith(".middlewares")],
     "routers-https-crowdsec-headers"),
    ("ai-orchestrator-backend", lambda p: p.__setitem__("envs", p["envs"]["value"]),
     "no-plaintext-secrets"),
])
def test_a_changed_prod_container_is_caught(deploy, target, change, policy):
    declared = deploy("prod").containers[target]
    props = json.loads(json.dumps(declared.inputs))
    change(props)
    resource = Resource(CONTAINER, secret_view.deserialize_keeping_secrets(props), target)
    assert set(rules.violations(resource)) == {policy}


# ---- the pack itself ---------------------------------------------------------

def test_every_policy_is_mandatory_and_described():
    policies = rules.policies()
    assert [p.name for p in policies] == list(rules.CHECKS)
    for policy in policies:
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        assert policy.description and "\n" not in policy.description


def test_the_pack_directory_runs_in_its_own_virtualenv():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    requirements = (POLICY_DIR / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements and "\npulumi>=" in "\n" + requirements


@pytest.fixture(scope="module")
def served_pack():
    """policy/ started the way `pulumi preview --policy-pack policy` starts it."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."], cwd=POLICY_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        port = process.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            process.kill()
            pytest.fail("the policy pack did not start: " + process.stderr.read())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        stop(process)


def test_the_served_pack_is_mandatory_and_sees_secrets(served_pack):
    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "fourlb"
    assert {p.name: p.enforcementLevel for p in info.policies} == {
        name: proto.MANDATORY for name in rules.CHECKS}
    secret = analyze_request(CONTAINER, wire_container([{**SECRET, "value": "POSTGRES_PASSWORD=s3cret-1234"}]))
    assert list(served_pack.Analyze(secret).diagnostics) == []
    plain = analyze_request(CONTAINER, wire_container(["POSTGRES_PASSWORD=s3cret-1234"]))
    [diagnostic] = served_pack.Analyze(plain).diagnostics
    assert diagnostic.policyName == "no-plaintext-secrets"
    assert diagnostic.enforcementLevel == proto.MANDATORY


def test_a_swarm_service_with_a_credential_in_its_env_or_a_config_is_refused():
    service = Resource(rules.SWARM_SERVICE, {"taskSpec": {"containerSpec": {"env": {
        "DATABASE_URL": "postgresql://fourlb:hunter2hunter2@postgres/db",
        "DATABASE_URL_FILE": "/run/secrets/env-database-url"}}}}, name="backend")
    [message] = rules.check_swarm_plaintext_secrets(service)
    assert "DATABASE_URL is a URL with a password" in message
    import base64
    leaky = Resource(rules.SWARM_CONFIG, {"data": base64.b64encode(
        b"users: admin:$2y$05$abcdefghijklmnopqrstuv").decode()}, name="middlewares")
    assert rules.check_swarm_plaintext_secrets(leaky)
    clean = Resource(rules.SWARM_CONFIG, {"data": base64.b64encode(b"log: {}").decode()})
    assert rules.check_swarm_plaintext_secrets(clean) == []
