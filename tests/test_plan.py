"""The pure plan of each stack against the platform's inventory."""

from __future__ import annotations

from pathlib import Path

import dataclasses
import json

import pytest
import yaml

from core.edge import load_plan
from config.errors import StackConfigError
from core.model import secret_names_in
from core.traefik import DYNAMIC_DIR, STATIC_FILE
from tests.plans import prod_plan, served

PROJECT = Path(__file__).resolve().parent.parent

# The inventory the platform must reproduce: container -> (image repository, port, route)
INVENTORY = {
    "traefik": ("fourlb-traefik", None, "traefik.4lb.ca"),  # built FROM traefik (edge/)
    "postgres": ("postgres", 5432, None),
    "redis": ("redis", 6379, None),
    "chromadb": ("chromadb/chroma", 8000, None),
    "crowdsec": ("crowdsecurity/crowdsec", None, None),
    "ai-orchestrator-backend": (None, 8001, "ai.4lb.ca/api"),
    "ai-orchestrator-frontend": ("nginx", 80, "ai.4lb.ca"),
    "open-webui": ("ghcr.io/open-webui/open-webui", 8080, "llm.4lb.ca"),
    "prometheus": ("prom/prometheus", 9090, "prometheus.4lb.ca"),
    "grafana": ("grafana/grafana", 3000, "grafana.4lb.ca"),
    "cadvisor": ("ghcr.io/google/cadvisor", 8080, None),
    "node-exporter": ("prom/node-exporter", 9100, None),
    "code-server": (None, 8443, "code.4lb.ca"),
    "jsr-solutions-prod": (None, 80, "jsr-solutions.ca"),
}
SEED_VOLUMES = {
    "postgres_data": ("postgres", "/var/lib/postgresql/data"),
    "redis_data": ("redis", "/data"),
    "chromadb_data": ("chromadb", "/chroma/chroma"),
    "traefik_certs": ("traefik", "/letsencrypt"),
    "grafana_data": ("grafana", "/var/lib/grafana"),
    "prometheus_data": ("prometheus", "/prometheus"),
}


@pytest.fixture(scope="module")
def prod():
    return load_plan("prod", PROJECT)[1]


@pytest.fixture(scope="module")
def dev():
    return load_plan("dev", PROJECT)[1]


@pytest.fixture(scope="module")
def local():
    return load_plan("local", PROJECT)[1]


DYNAMIC_FILE = f"{DYNAMIC_DIR}/middlewares.yml"


def test_cadvisor_sees_containers_of_docker_29_and_older_engines(prod):
    """google/cadvisor: the containerd image store (Docker 29's default) is read
    from v0.54.0 (7eda1904, PR #3709); v0.54.1 to v0.55.1 fail to register Docker
    without containerd's socket (#3772, fixed in v0.56.0: e054fca1); v0.56.x's
    Docker client needs API 1.44 (Docker 25), and v0.57.0 takes 1.40 and later
    again (e1ccfa9b). Its images are on ghcr.io since v0.54.0 (159a7b24), with
    a `v` tag since v0.57.0 (d45869d9)."""
    image, _, tag = prod.container("cadvisor").image.rpartition(":")
    assert image == "ghcr.io/google/cadvisor"
    version = tuple(int(part) for part in tag.removeprefix("v").split("."))
    assert version >= (0, 57, 0), tag


def traefik_file(plan, path: str) -> dict:
    (content,) = [f.content for f in plan.files_of("traefik") if f.path == path]
    return yaml.safe_load(content)


def labels_of(container) -> dict[str, str]:
    return dict(container.labels)


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_prod_runs_each_container_of_the_inventory(prod, name):
    repository, port, route = INVENTORY[name]
    container = prod.container(name)
    image, _, tag = container.image.rpartition(":")
    assert tag and tag != "latest", f"{name}: image {container.image} is not pinned"
    if repository:
        assert image == repository
    if port:
        assert container.port == port
    if route:
        host, _, path = route.partition("/")
        rules = [r.rule for r in container.routes]
        assert any(f"Host(`{host}`)" in rule for rule in rules), rules
        if path:
            assert any(f"PathPrefix(`/{path}`)" in rule for rule in rules), rules
    else:
        assert not container.routes


def test_jsr_production_site_answers_on_both_client_names(prod):
    assert set(prod.container("jsr-solutions-prod").public_hostnames) == {
        "jsr-solutions.ca", "www.jsr-solutions.ca"}


def test_only_traefik_publishes_host_ports_and_never_8080(prod, local):
    for plan in (prod, local):
        publishing = {c.name: {p.external for p in c.published_ports}
                      for c in plan.containers if c.published_ports}
        assert publishing == {"traefik": {80, 443}}


def test_seed_volumes_keep_their_names_mounts_and_protection(prod):
    volumes = {v.name: v for v in prod.volumes}
    for name, (owner, target) in SEED_VOLUMES.items():
        assert volumes[name].protected, name
        mounts = [(m.volume, m.target) for m in prod.container(owner).mounts]
        assert (name, target) in mounts
    assert all(v.protected for v in prod.volumes)


def test_data_services_stay_off_the_public_network(prod):
    internal = {n.name for n in prod.networks if n.internal}
    for name in ("postgres", "redis", "chromadb"):
        networks = set(prod.container(name).networks)
        assert "unified-net" not in networks
        assert networks <= internal
    # and the backend reaches them
    assert set(prod.container("postgres").networks) & set(prod.container("ai-orchestrator-backend").networks)


def test_monitoring_agents_mount_host_paths_read_only(prod):
    for name in ("cadvisor", "node-exporter"):
        host_mounts = [m for m in prod.container(name).mounts if m.host_path]
        assert host_mounts and all(m.read_only for m in host_mounts)


def test_only_the_socket_proxy_sees_the_docker_socket(prod):
    holders = {c.name for c in prod.containers for m in c.mounts
               if m.host_path and "docker.sock" in m.host_path}
    assert holders == {"docker-socket-proxy"}
    assert all(m.read_only for m in prod.container("docker-socket-proxy").mounts)


def test_every_public_router_has_tls_headers_crowdsec_and_its_port(prod, dev):
    for plan in (prod, dev):
        for container in plan.containers:
            labels = labels_of(container)
            routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
            assert len(routers) == len(container.routes), container.name
            for router in routers:
                prefix = f"traefik.http.routers.{router}"
                assert labels[f"{prefix}.entrypoints"] == "websecure"
                assert labels[f"{prefix}.tls.certresolver"] == "le"
                middlewares = labels[f"{prefix}.middlewares"].split(",")
                assert "crowdsec@file" in middlewares
                # the platform's headers, or its own (a policy of the catalog or a site's)
                own = f"{container.name}-headers@docker"
                assert middlewares[0] == ("security-headers@file" if container.headers is None else own)
                service = labels[f"{prefix}.service"]
                if service != "api@internal":
                    port = labels[f"traefik.http.services.{service}.loadbalancer.server.port"]
                    assert int(port) == container.port


def test_router_names_are_unique_across_prod_and_dev(prod, dev):
    names = [k.split(".")[3] for plan in (prod, dev) for c in plan.containers
             for k, _ in c.labels if k.startswith("traefik.http.routers.") and k.endswith(".rule")]
    assert len(names) == len(set(names))


def test_admin_hostnames_need_basic_auth(prod):
    for name in ("traefik", "prometheus"):
        chain = [v for k, v in prod.container(name).labels if k.endswith(".middlewares")]
        assert chain and all("admin-auth@file" in v for v in chain)
    dynamic = traefik_file(prod, DYNAMIC_FILE)
    users = dynamic["http"]["middlewares"]["admin-auth"]["basicAuth"]["users"]
    assert users == ["admin:${secret:admin-password-bcrypt}"]


def test_ai_api_is_limited_to_60_requests_a_minute(prod):
    backend = labels_of(prod.container("ai-orchestrator-backend"))
    assert any(v.endswith("ratelimit-ai-api@file") or "ratelimit-ai-api@file," in v
               for k, v in backend.items() if k.endswith(".middlewares"))
    dynamic = traefik_file(prod, DYNAMIC_FILE)
    limit = dynamic["http"]["middlewares"]["ratelimit-ai-api"]["rateLimit"]
    assert (limit["average"], limit["period"]) == (60, "1m")


def test_traefik_static_configuration(prod):
    static = traefik_file(prod, STATIC_FILE)
    web = static["entryPoints"]["web"]
    assert web["address"] == ":80"
    assert web["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert static["entryPoints"]["websecure"]["address"] == ":443"
    assert static["providers"]["docker"]["exposedByDefault"] is False
    assert static["providers"]["docker"]["network"] == "unified-net"
    assert static["providers"]["file"]["directory"] == "/etc/traefik/dynamic"
    acme = static["certificatesResolvers"]["le"]["acme"]
    assert acme["email"] == "admin@4lb.ca"
    assert acme["storage"] == "/letsencrypt/acme.json"
    assert acme["httpChallenge"]["entryPoint"] == "web"
    assert static["api"] == {"dashboard": True}  # never insecure
    assert "ping" in static and static["accessLog"]["format"] == "json"
    assert static["global"]["checkNewVersion"] is False


def test_cloudflare_dns_challenge_is_an_option(prod):
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan

    values = dict(StackFile("prod", PROJECT).values)
    values["acme"] = {"email": "admin@4lb.ca", "challenge": "cloudflare-dns"}
    plan = build_plan(parse_stack_config("prod", values), "prod")
    traefik = served(plan, "traefik")
    (static,) = [yaml.safe_load(u.content) for u in traefik.uploads if u.path == STATIC_FILE]
    assert static["certificatesResolvers"]["le"]["acme"]["dnsChallenge"] == {"provider": "cloudflare"}
    (token,) = [value for key, value in traefik.env if key == "CF_DNS_API_TOKEN_FILE"]
    assert [(u.content, u.mode) for u in traefik.uploads if u.path == token] == [
        ("${secret:cloudflare-dns-token}", "0400")]
    assert not any("${secret:" in value for _, value in traefik.env)
    assert "cloudflare-dns-token" in {s.name for s in plan.secrets}


def test_one_dns_record_per_public_hostname_in_its_zone(prod):
    records = {r.name: r.zone for r in prod.dns_records}
    expected_4lb = {f"{sub}.4lb.ca" for sub in ("ai", "llm", "code", "grafana", "prometheus", "traefik")}
    assert records == {**{h: "4lb.ca" for h in expected_4lb},
                       "jsr-solutions.ca": "jsr-solutions.ca",
                       "www.jsr-solutions.ca": "jsr-solutions.ca"}


def test_dev_has_only_the_jsr_sites_on_the_network_prod_declares_for_it(dev, prod):
    assert {c.name for c in dev.containers} == {"jsr-dev", "jsr-solutions"}
    assert [(n.name, n.external) for n in dev.networks] == [("edge-stack-dev", True)]
    assert ("edge-stack-dev", False) in [(n.name, n.external) for n in prod.networks]
    assert "edge-stack-dev" in prod.container("traefik").networks
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan
    alone = build_plan(parse_stack_config("prod", dict(StackFile("prod", PROJECT).values)), "prod")
    assert "edge-stack-dev" not in alone.container("traefik").networks, "only for a stack it serves"
    assert not dev.volumes and not dev.secrets
    assert set(dev.container("jsr-dev").public_hostnames) == {"jsr.4lb.ca"}
    dev_hosts = set(dev.public_hostnames)
    assert all(h.endswith(".4lb.ca") for h in dev_hosts)
    assert not dev_hosts & set(prod.public_hostnames)
    assert {r.zone for r in dev.dns_records} == {"4lb.ca"}


def test_local_stack_uses_localhost_names_no_dns_and_no_acme(local):
    assert local.public_hostnames and all(h.endswith(".localhost") for h in local.public_hostnames)
    assert not local.dns_records
    static = traefik_file(local, STATIC_FILE)
    assert "certificatesResolvers" not in static
    for container in local.containers:
        assert not any(k.endswith("certresolver") for k, _ in container.labels)


def test_no_secret_value_or_placeholder_in_labels(prod):
    for container in prod.containers:
        for key, value in container.labels:
            assert not secret_names_in(value), (container.name, key)


def test_databases_stop_first_with_time_to_shut_down(prod):
    for name in ("postgres", "redis", "chromadb"):
        container = prod.container(name)
        assert container.update_order == "stop-first"
        assert container.stop_grace_s >= 30
    for name in ("jsr-solutions-prod", "ai-orchestrator-frontend", "ai-orchestrator-backend"):
        assert prod.container(name).update_order == "start-first"
        assert prod.container(name).healthcheck is not None


def test_every_container_is_hardened(prod):
    for container in prod.containers:
        assert container.restart == "unless-stopped"
        assert "no-new-privileges=true" in container.security_opts
        assert container.memory_mb > 0 and container.log_max_size


def test_a_client_site_is_a_few_lines_of_config():
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan

    values = dict(StackFile("prod", PROJECT).values)
    values["zones"] = values["zones"] + ["toilettage.ca"]
    values["sites"] = {**values["sites"], "toilettage": {
        "image": "toilettage-web:1.0.0", "hostnames": ["toilettage.ca", "www.toilettage.ca"]}}
    plan = build_plan(parse_stack_config("prod", values), "prod")
    site = plan.container("toilettage")
    assert set(site.public_hostnames) == {"toilettage.ca", "www.toilettage.ca"}
    assert {r.name: r.zone for r in plan.dns_records}["www.toilettage.ca"] == "toilettage.ca"
    # its own network with Traefik, and nothing else
    assert site.networks == ("edge-toilettage",)
    assert [c.name for c in plan.containers if "edge-toilettage" in c.networks] == ["traefik", "toilettage"]
    assert {n.name: n.internal for n in plan.networks}["edge-toilettage"] is True


def test_a_site_image_without_wget_can_bring_its_own_health_check():
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan

    values = dict(StackFile("prod", PROJECT).values)
    values["sites"] = {"api-docs": {"image": "docs:2.0", "hostnames": ["docs.4lb.ca"], "port": 3000,
                                    "healthcheck": ["/app/healthcheck", "--port", "3000"]}}
    site = build_plan(parse_stack_config("prod", values), "prod").container("api-docs")
    assert site.healthcheck.test == ("CMD", "/app/healthcheck", "--port", "3000")
    default = build_plan(parse_stack_config("prod", dict(StackFile("prod", PROJECT).values)), "prod")
    assert default.container("jsr-solutions-prod").healthcheck.test[-1] == "http://127.0.0.1:80/"


def _router_names(plan, name):
    return {k.split(".")[3] for k, _ in plan.container(name).labels if k.startswith("traefik.http.routers.")}


def test_a_changed_label_value_renames_a_start_first_router():
    """Old and new container coexist during an update: they must not define one
    router name two different ways, or Traefik drops both."""
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan

    values = dict(StackFile("dev", PROJECT).values)
    base = build_plan(parse_stack_config("dev", values), "dev")
    self_signed = build_plan(parse_stack_config("dev", {**values, "tls": "self-signed"}), "dev")
    assert _router_names(base, "jsr-dev").isdisjoint(_router_names(self_signed, "jsr-dev"))
    sites = {**values["sites"], "jsr-dev": {**values["sites"]["jsr-dev"],
                                            "contentSecurityPolicy": "default-src 'self'"}}
    with_csp = build_plan(parse_stack_config("dev", {**values, "sites": sites}), "dev")
    assert _router_names(base, "jsr-dev").isdisjoint(_router_names(with_csp, "jsr-dev"))
    # an unrelated site keeps its router
    assert _router_names(base, "jsr-solutions") == _router_names(with_csp, "jsr-solutions")


def test_secrets_reach_containers_as_files_but_for_the_listed_exceptions():
    from core.catalog import SECRETS_IN_ENV
    from core.model import secret_names_in

    _, plan = load_plan("prod")
    in_env = {(c.name, key) for c in plan.containers for key, value in c.env if secret_names_in(value)}
    assert in_env == set(SECRETS_IN_ENV), sorted(in_env ^ set(SECRETS_IN_ENV))
    as_files = {(c.name, u.path) for c in plan.containers for u in c.uploads
                if secret_names_in(u.content) and u.path.startswith("/run/secrets/")}
    assert {("postgres", "/run/secrets/postgres-password"),
            ("grafana", "/run/secrets/grafana-admin-password"),
            ("code-server", "/run/secrets/code-server-password"),
            ("crowdsec", "/run/secrets/traefik-bouncer-key"),
            ("traefik", "/run/secrets/crowdsec-bouncer-key")} <= as_files


def test_the_edge_image_holds_the_pinned_bouncer_and_traefik_starts_without_a_download(prod):
    from core import catalog, traefik as edge
    dockerfile = (PROJECT / "edge" / "Dockerfile").read_text()
    assert f"\nFROM {catalog.TRAEFIK_IMAGE}\n" in dockerfile
    source = f"{edge.CROWDSEC_PLUGIN.replace('github.com/', 'https://github.com/')}.git#{edge.CROWDSEC_PLUGIN_COMMIT}"
    assert source in dockerfile and f"/plugins-local/src/{edge.CROWDSEC_PLUGIN}" in dockerfile
    static = traefik_file(prod, STATIC_FILE)
    assert static["experimental"] == {"localPlugins": {"bouncer": {"moduleName": edge.CROWDSEC_PLUGIN}}}
    # the writer of its files runs the stock image: nothing else to pull or build
    assert prod.container("traefik-config").image == catalog.TRAEFIK_IMAGE
    assert prod.container("traefik-config").build_context is None


def test_the_bouncer_never_locks_everyone_out_unless_told_to(prod):
    """What happens while CrowdSec's API does not answer cannot run here (the
    plugin's source is fetched when the edge image is built), so its settings are
    asserted against the plugin's code (v1.4.2, bouncer.go): in stream mode the
    cache answers each request, and updateMaxFailure -1 never marks the stream
    unhealthy, the state in which every request is refused."""
    from config import parse_stack_config
    from config.loading import StackFile
    from core.build import build_plan

    def bouncer(plan):
        files = {u.path: u.content for u in plan.files_of("traefik")}
        middlewares = yaml.safe_load(files["/etc/traefik/dynamic/middlewares.yml"])["http"]["middlewares"]
        return middlewares["crowdsec"]["plugin"]["bouncer"]

    default = bouncer(prod)
    assert (default["crowdsecMode"], default["updateMaxFailure"]) == ("stream", -1)
    assert default["updateIntervalSeconds"] == 15
    # the key is a file of Traefik's, not in the directory its writer fills
    assert "crowdsecLapiKey" not in default
    (key_file,) = [u for u in prod.container("traefik").uploads if u.path == default["crowdsecLapiKeyFile"]]
    assert key_file.content == "${secret:crowdsec-bouncer-key}" and key_file.mode == "0400"
    values = {**StackFile("prod", PROJECT).values, "crowdsecFailClosedAfterSeconds": 60}
    closed = bouncer(build_plan(parse_stack_config("prod", values), "prod"))
    assert closed["updateMaxFailure"] == 4  # 4 failed updates, 15 s apart


def test_an_image_the_stack_names_is_run_as_named_not_built():
    """The project builds the edge and backup images only when the stack names
    no image of its own for them: a named one is the image to run (pulled, or
    present on the host), never a build of edge/ or backup/ tagged with its name."""
    built = prod_plan()
    assert built.container("traefik").build_context == "edge"
    assert built.container("backup").build_context == "backup"
    named = prod_plan(services={"traefik": {"image": "registry.example/edge:7"},
                                "backup": {"image": "registry.example/backup:7"}})
    assert named.container("traefik").image == "registry.example/edge:7"
    assert named.container("traefik").build_context is None
    assert named.container("backup").build_context is None


def test_the_project_builds_its_images_for_the_hosts_cpu():
    """Built for the Docker host's platform, not the deployer's: from an ARM laptop
    an amd64 host would otherwise get an edge that cannot start (exec format error)."""
    assert {c.name: c.build_platform for c in prod_plan().containers if c.build_context} == {
        "traefik": "linux/amd64", "backup": "linux/amd64"}
    arm = prod_plan(hostPlatform="linux/arm64")
    assert arm.container("traefik").build_platform == "linux/arm64"
    with pytest.raises(StackConfigError) as refused:
        prod_plan(hostPlatform="arm64")
    assert "fourlb:hostPlatform" in str(refused.value)


def _another(value):
    """A different value of the same shape, for any field of a Container."""
    if value is None:
        return "x"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return value + ("x",)
    if dataclasses.is_dataclass(value):
        first = dataclasses.fields(value)[0].name
        return dataclasses.replace(value, **{first: _another(getattr(value, first))})
    raise AssertionError(f"no other value for {value!r}")


@pytest.mark.parametrize("name", ["prometheus", "grafana", "ai-orchestrator-frontend"])
def test_every_field_that_reaches_a_replacing_input_draws_a_new_instance_name(prod, name):
    """A start-first container is created beside the one it replaces: a changed
    input that replaces it (entrypoint, user, security options, log options, tmpfs,
    a health check: all but NOT_REPLACING_FIELDS) must give it another name."""
    from core.traefik import NOT_REPLACING_FIELDS, instance_suffix
    container = prod.container(name)
    for field in dataclasses.fields(container):
        changed = dataclasses.replace(container, **{field.name: _another(getattr(container, field.name))})
        if field.name == "connected_networks":
            continue  # it changes created_on too; a connection alone is covered below
        assert (instance_suffix(changed) != instance_suffix(container)) == \
            (field.name not in NOT_REPLACING_FIELDS), field.name
    connected = dataclasses.replace(container, networks=container.networks + ("x",),
                                    connected_networks=("x",))
    assert instance_suffix(connected) == instance_suffix(container)


def test_plan_diff_sees_which_containers_a_rotated_secret_replaces(tmp_path):
    """Without reading any secret: the stack file's encrypted value changes, and
    the containers whose env or files carry that secret (or its bcrypt hash) are
    replaced, as the Docker provider replaces them."""
    from config.loading import StackFile
    from core.edge import load_plan
    from plan.diff import diff_documents
    from plan.document import plan_document, secret_versions

    committed = yaml.safe_load((PROJECT / "Pulumi.local.yaml").read_text())

    def document(ciphertext: str):
        stack_file = dict(committed)
        stack_file["config"] = {**committed["config"], "fourlb:adminPassword": {"secure": ciphertext}}
        (tmp_path / "Pulumi.local.yaml").write_text(yaml.safe_dump(stack_file))
        config, plan = load_plan("local", tmp_path)
        return plan_document(config, plan, secret_versions(StackFile("local", tmp_path)))

    diff = diff_documents(document("v1:first"), document("v1:second"), "local", "before", "after")
    assert {(c.subject, c.kind) for c in diff.containers} == {("traefik-config", "replaced")}
    [field] = [f for c in diff.containers for f in c.fields]
    assert (field.field, field.names) == ("secret_versions", ("admin-password-bcrypt",))
    assert "v1:" not in json.dumps(document("v1:first"))  # only fingerprints are written
