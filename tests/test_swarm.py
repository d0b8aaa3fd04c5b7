"""The platform on Docker Swarm (core.swarm, components/swarm.py): the same plan,
declared as services placed on nodes. Pure checks of the swarm plan, then the
real __main__.py under mocks for the example stack (Pulumi.swarm.yaml)."""

from __future__ import annotations

import base64
import re
import json
from dataclasses import replace

import pytest

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.build import build_plan
from core.edge import load_plan
from core.model import secret_names_in
from core.networks import reachability
from core.socket_proxy import TEMPLATE_PATH
from core.swarm import swarm_plan
from policy.rules import haproxy_allows as allows
from tests.mocks import EDGE_ADDRESSES, GENERATED_PREFIX, PROVIDED_PREFIX, plain

SERVICE = "docker:index/service:Service"
CONTAINER = "docker:index/container:Container"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
STATEFUL = ("postgres", "redis", "chromadb", "grafana", "prometheus", "alertmanager", "crowdsec",
            "open-webui", "code-server", "backup-data", "backup-ai")


def swarm_config(values_change=None):
    """The swarm stack's settings, changed by `values_change` (a function of the values)."""
    values = json.loads(json.dumps(StackFile("swarm").values))
    if values_change:
        values_change(values)
    return parse_stack_config("swarm", values)


def swarm(values_change=None):
    config = swarm_config(values_change)
    return swarm_plan(config, build_plan(config, "swarm"))


@pytest.fixture(scope="module")
def planned():
    config, plan = load_plan("swarm")
    return swarm_plan(config, plan)


def test_stateful_services_are_pinned_to_the_node_that_holds_their_volume(planned):
    for name in STATEFUL:
        service = planned.service(name)
        assert service.stateful and service.replicas == 1, name
        assert service.constraints[0].startswith("node.labels.fourlb.role=="), name
        assert service.update_order == "stop-first" and not service.rollback, name
    assert planned.service("postgres").node_role == "data"
    assert planned.service("open-webui").node_role == "ai"


def test_sites_roll_start_first_with_rollback_over_two_replicas(planned):
    site = planned.service("jsr-solutions-prod")
    assert (site.replicas, site.node_role, site.constraints) == (2, None, ())
    assert site.update_order == "start-first" and site.rollback
    assert site.update_delay_s >= 2 * 2  # Traefik polls every 2 s: two polls per task


def test_the_edge_publishes_on_the_edge_nodes_and_reads_the_api_on_a_manager(planned):
    assert planned.service("traefik").node_role == "edge"
    proxy = planned.service("docker-socket-proxy")
    assert "node.role==manager" in proxy.constraints
    # what Traefik's swarm provider reads, besides what its docker provider does
    template = next(f.content for f in proxy.files if f.target == TEMPLATE_PATH)
    for read in ("/v1.41/services", "/v1.41/tasks", "/v1.41/networks", "/v1.41/nodes/abc123"):
        assert allows(template, "GET", read), read
    assert not allows(template, "GET", "/v1.41/secrets")


def test_prometheus_on_a_swarm_listens_on_every_address_of_its_task(planned):
    """Its alias would resolve to the service's virtual IP, which no task can bind."""
    prometheus = planned.service("prometheus").container
    assert [a for a in prometheus.command if a.startswith("--web.listen-address=")] == [
        "--web.listen-address=:9090"]
    assert prometheus.healthcheck.test[-1] == "http://127.0.0.1:9090/-/healthy"
    # no alias of its own: its writer and Grafana ask for it by its service name
    assert dict(planned.service("prometheus-config").container.env)["RELOAD_URL"] == (
        "http://prometheus:9090/-/reload")
    assert [s.container.name for s in planned.services if s.container.listen_on] == []


def test_the_plan_says_that_a_swarm_prometheus_is_reached_on_each_of_its_networks(planned):
    """One host binds its API to prometheus-net alone; a swarm task binds them all,
    none of them published nor leading out."""
    _, one_host = load_plan("prod")
    on_one_host, on_a_swarm = reachability(one_host.containers), reachability(planned.plan.containers)
    for target, network in (("cadvisor", "scrape-cadvisor-net"), ("alertmanager", "alertmanager-net")):
        assert not on_one_host[(target, "prometheus", network)], target
        assert on_a_swarm[(target, "prometheus", network)], target
    networks = {n.name: n for n in planned.plan.networks}
    assert all(networks[n].internal for n in planned.service("prometheus").container.networks)
    assert not planned.service("prometheus").container.published_ports


def test_node_exporter_and_cadvisor_run_one_task_on_every_node(planned):
    """What they measure is their node: global, on every node whatever its role,
    and named after it (node-exporter's node_uname_info then names the node)."""
    for name in ("node-exporter", "cadvisor"):
        service = planned.service(name)
        assert (service.mode, service.replicas, service.node_role, service.constraints) == (
            "global", None, None, ()), name
        assert service.hostname == "{{.Node.Hostname}}", name
        # they bind host paths, which every node has: no node role needed
        assert any(m.host_path for m in service.container.mounts), name
    replicated = [s.container.name for s in planned.services if s.mode == "replicated"]
    assert "prometheus" in replicated and "node-exporter" not in replicated


def test_replicas_of_a_service_that_runs_on_each_node_are_refused():
    def doubled(values):
        values["swarm"]["replicas"] = {"node-exporter": 2}
    with pytest.raises(StackConfigError) as refused:
        swarm(doubled)
    assert ("fourlb:swarm.replicas.node-exporter = 2: allowed: unset; node-exporter runs one task "
            "on each node (global mode)") in str(refused.value)


def test_a_writer_runs_on_the_nodes_of_the_service_whose_files_it_writes():
    """Its files go into that service's volume, which is local to its node."""
    def moved(values):
        values["swarm"]["nodes"] = {"prometheus": "monitoring"}
    planned = swarm(moved)
    assert planned.service("prometheus").node_role == "monitoring"
    assert planned.service("prometheus-config").node_role == "monitoring"
    assert planned.service("alertmanager-config").node_role == "data"


def test_a_host_bind_of_a_service_that_may_run_on_any_node_is_a_plan_error():
    site = next(iter(StackFile("swarm").values["sites"]))

    def bound(values):
        values["sites"][site]["bindMounts"] = [{"hostPath": "/srv/shop", "target": "/data"}]
    with pytest.raises(StackConfigError) as refused:
        swarm(bound)
    assert f"fourlb:swarm.nodes.{site}" in str(refused.value)

    def pinned(values):
        bound(values)
        values["swarm"].setdefault("nodes", {})[site] = "data"
    assert swarm(pinned).service(site).node_role == "data"


def test_a_stateful_service_with_no_node_role_is_a_plan_error():
    def unplaced(values):
        values["swarm"]["placement"] = {k: v for k, v in values["swarm"]["placement"].items()
                                        if k != "data"}
    with pytest.raises(StackConfigError) as refused:
        swarm(unplaced)
    assert "fourlb:swarm.nodes.postgres" in str(refused.value)


def test_replicas_of_a_stateful_service_are_refused():
    def doubled(values):
        values["swarm"]["replicas"] = {"postgres": 2}
    with pytest.raises(StackConfigError) as refused:
        swarm(doubled)
    assert "fourlb:swarm.replicas.postgres = 2" in str(refused.value)


def test_an_unknown_container_in_the_swarm_settings_is_refused():
    def typo(values):
        values["swarm"]["nodes"] = {"postgress": "data"}
    with pytest.raises(StackConfigError) as refused:
        swarm(typo)
    assert "fourlb:swarm.nodes.postgress" in str(refused.value)


def test_files_are_named_by_their_content_and_a_change_makes_a_new_one():
    before = {f.target: f.name for f in swarm().service("prometheus-config").files}

    def stricter(values):
        values["alerting"] = {**values.get("alerting", {}), "cpuPercent": 75}
    after = {f.target: f.name for f in swarm(stricter).service("prometheus-config").files}
    assert set(before) == set(after)
    changed = [t for t in before if before[t] != after[t]]
    assert changed == ["/etc/prometheus/rules/fourlb.yml"], changed


def test_config_and_secret_names_are_what_the_swarm_accepts(planned):
    import re
    names = [f.name for s in planned.services for f in s.files]
    # swarmkit: at most 64 of [a-zA-Z0-9-_.], starting and ending with a letter or digit
    valid = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$")
    assert names and all(valid.match(n) for n in names), [n for n in names if not valid.match(n)]
    assert len(set(names)) == len(names)


def test_env_secrets_become_secret_files(planned):
    backend = planned.service("ai-orchestrator-backend")
    assert not any(secret_names_in(v) for _, v in backend.container.env)
    env = dict(backend.container.env)
    files = {f.target: f for f in backend.files}
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET_KEY"):
        assert files[env[f"{name}_FILE"]].secret, name


TWO_EDGES = ["1.2.3.4", "1.2.3.5"]


def over_two_edge_nodes(challenge=None, tls=None):
    """The swarm stack's settings with two edge addresses, and this ACME challenge or tls."""
    def change(values):
        values["swarm"]["edgeAddresses"] = list(TWO_EDGES)
        if challenge:
            values["acme"] = {**values["acme"], "challenge": challenge}
        if tls:
            values["tls"] = tls
            values.pop("acme")
    return change


def test_one_a_record_per_edge_address_and_hostname():
    _, plan = load_plan("swarm")
    planned = swarm(over_two_edge_nodes(challenge="cloudflare-dns"))
    by_name: dict[str, set] = {}
    for record in planned.dns_records:
        by_name.setdefault(record.name, set()).add(record.content)
    assert set(by_name) == set(plan.public_hostnames)
    assert all(contents == set(TWO_EDGES) for contents in by_name.values())


def test_traefik_runs_one_task_on_each_edge_node_and_its_writer_beside_it(planned):
    """As many Traefiks as A records, each with its node's certificates volume; its
    writer installs the middlewares into each edge node's volume."""
    for name in ("traefik", "traefik-config"):
        service = planned.service(name)
        assert (service.mode, service.replicas, service.node_role) == ("global", None, "edge"), name
        assert service.constraints == ("node.labels.fourlb.role==edge",), name
    traefik = planned.service("traefik").container
    dynamic = next(m.volume for m in traefik.mounts if m.target == "/etc/traefik/dynamic")
    assert dynamic in {m.volume for m in planned.service("traefik-config").container.mounts}
    assert "traefik_certs" in {m.volume for m in traefik.mounts}


def test_the_http_challenge_with_more_than_one_edge_address_is_refused():
    """Each Traefik keeps its own ACME store: Let's Encrypt's HTTP request may
    reach another edge node than the one that asked."""
    with pytest.raises(StackConfigError) as refused:
        swarm(over_two_edge_nodes())
    message = str(refused.value)
    assert "fourlb:acme.challenge = 'http': allowed: cloudflare-dns" in message
    assert "fourlb:swarm.edgeAddresses" in message and "(2 here)" in message


def test_a_dns_challenge_or_no_acme_serves_more_than_one_edge_address():
    assert swarm(over_two_edge_nodes(challenge="cloudflare-dns")).service("traefik").mode == "global"
    assert swarm(over_two_edge_nodes(tls="self-signed")).service("traefik").mode == "global"

    def one_edge(values):
        values["swarm"]["edgeAddresses"] = TWO_EDGES[:1]
    assert swarm(one_edge).service("traefik").node_role == "edge"


# --- the program under mocks --------------------------------------------------------------

@pytest.fixture(scope="module")
def swarm_run(deploy):
    run = deploy("swarm")
    assert run.error is None, run.error
    return run


def test_every_container_of_the_plan_is_a_service_and_nothing_a_container(swarm_run, planned):
    services = {r.name: plain(r.inputs) for r in swarm_run.of_type(SERVICE)}
    assert set(services) == {s.container.name for s in planned.services}
    assert not swarm_run.of_type(CONTAINER) and not swarm_run.of_type(VOLUME)
    for service in planned.services:
        declared = services[service.container.name]
        constraints = declared["taskSpec"].get("placement", {}).get("constraints") or []
        assert constraints == list(service.constraints), service.container.name
        if service.mode == "global":
            assert declared["mode"] == {"global": True}, service.container.name
        else:
            assert declared["mode"] == {"replicated": {"replicas": service.replicas}}
        assert declared["taskSpec"]["containerSpec"].get("hostname") == service.hostname
        assert declared["updateConfig"]["order"] == service.update_order
    assert all(n.inputs["driver"] == "overlay" for n in swarm_run.of_type(NETWORK))


def test_each_tasks_container_carries_the_labels_cadvisor_reports(swarm_run, planned):
    """ContainerDown looks for container_label_fourlb_stack and _service: labels of
    the containers, which a service's own labels do not reach."""
    services = {r.name: plain(r.inputs) for r in swarm_run.of_type(SERVICE)}
    for service in planned.services:
        name = service.container.name
        labels = {label["label"]: label["value"]
                  for label in services[name]["taskSpec"]["containerSpec"].get("labels") or []}
        assert labels["fourlb.service"] == name and labels["fourlb.stack"] == "swarm", name
        assert not any(key.startswith("traefik.") for key in labels), name


def test_the_program_declares_a_traefik_per_edge_node_only_with_a_dns_challenge(deploy):
    values = StackFile("swarm").values
    two_edges = json.dumps({**values["swarm"], "edgeAddresses": TWO_EDGES})
    refused = deploy("swarm", overrides={"fourlb:swarm": two_edges})
    # stopped before any resource is declared
    assert "fourlb:acme.challenge = 'http'" in str(refused.error) and not refused.resources
    served = deploy("swarm", overrides={
        "fourlb:swarm": two_edges,
        "fourlb:acme": json.dumps({**values["acme"], "challenge": "cloudflare-dns"})},
        secrets={"fourlb:cloudflareDnsToken": "cf-dns-token-for-tests-0123456789"})
    assert served.error is None, served.error
    traefik = served.one(SERVICE, "traefik").inputs
    assert plain(traefik)["mode"] == {"global": True}
    assert plain(traefik)["taskSpec"]["placement"]["constraints"] == ["node.labels.fourlb.role==edge"]


def test_a_new_mode_replaces_a_service_and_the_old_one_goes_first(swarm_run):
    """Docker refuses to change a service's mode, and two services of one name."""
    for resource in swarm_run.of_type(SERVICE):
        options = swarm_run.options[(SERVICE, resource.name)]
        assert options.replace_on_changes == ["mode.global"], resource.name
        assert options.delete_before_replace is True, resource.name


def test_no_secret_in_a_label_an_env_value_or_a_config(swarm_run):
    def leaks(text: str) -> bool:
        return GENERATED_PREFIX in text or PROVIDED_PREFIX in text
    for resource in swarm_run.of_type(SERVICE):
        inputs = plain(resource.inputs)
        spec = inputs["taskSpec"]["containerSpec"]
        assert not any(leaks(v) for v in (spec.get("env") or {}).values()), resource.name
        assert not any(leaks(label["value"]) for label in inputs.get("labels") or []), resource.name
    for config in swarm_run.of_type(CONFIG):
        assert not leaks(base64.b64decode(plain(config.inputs)["data"]).decode()), config.name
    secrets = swarm_run.of_type(SECRET)
    assert secrets and all(base64.b64decode(plain(s.inputs)["data"]) for s in secrets)


def test_the_prometheus_service_binds_no_alias(swarm_run):
    prometheus = {r.name: plain(r.inputs) for r in swarm_run.of_type(SERVICE)}["prometheus"]
    assert "--web.listen-address=:9090" in prometheus["taskSpec"]["containerSpec"]["args"]
    assert {tuple(n["aliases"]) for n in prometheus["taskSpec"]["networksAdvanceds"]} == {("prometheus",)}


def test_traefik_reads_services_through_the_swarm_provider(swarm_run, planned):
    site = {r.name: plain(r.inputs) for r in swarm_run.of_type(SERVICE)}["jsr-solutions-prod"]
    labels = {label["label"]: label["value"] for label in site["labels"]}
    assert labels["traefik.swarm.network"] == "edge-slot-1"  # Pulumi.swarm.yaml: edgeSlot 1
    assert not any("@docker" in v for v in labels.values())
    port_keys = [k for k in labels if k.endswith(".loadbalancer.server.port")]
    assert port_keys and all(labels[k] == "80" for k in port_keys)
    files = {f.target: f for f in planned.service("traefik").files}
    static = files["/etc/traefik/traefik.yml"].content
    assert "swarm:" in static and "refreshSeconds: 2" in static and "docker:" not in static


def test_plan_diff_says_what_a_change_rolls_on_a_swarm():
    from plan.diff import diff_documents
    from plan.document import plan_document

    def document(change=None):
        config = swarm_config(change)
        return plan_document(config, build_plan(config, "swarm"))

    def release(values):
        values["sites"]["jsr-solutions-prod"]["image"] = "jsr-solutions-frontend:1.0.1"
        values["swarm"]["replicas"] = {"jsr-solutions-prod": 3}
    diff = diff_documents(document(), document(release), "swarm", "base", "head")
    by_subject = {c.subject: c for c in diff.containers}
    site = by_subject["jsr-solutions-prod"]
    assert site.kind == "rolled" and "start-first over 3 task(s)" in site.note
    placement = by_subject["jsr-solutions-prod (placement)"]
    assert [(f.field, f.before, f.after) for f in placement.fields] == [("replicas", "2", "3")]


def test_a_site_added_on_a_swarm_takes_an_edge_slot_and_leaves_the_edge_alone():
    """A network attachment is ForceNew in the provider's service schema: the edge
    joins its slot networks in advance, and a new site takes a free one."""
    from plan.diff import diff_documents
    from plan.document import plan_document

    def document(change=None):
        config = swarm_config(change)
        return plan_document(config, build_plan(config, "swarm"))

    def added(values, egress=False):
        values["sites"]["shop"] = {"image": "shop:1.0.0", "hostnames": ["shop.4lb.ca"], "port": 80,
                                   "edgeSlot": 2, "egress": egress}
    diff = diff_documents(document(), document(added), "swarm", "b", "h")
    changed = {c.subject: c.kind for c in diff.containers}
    # Prometheus's files roll with the new site's probe; the edge stays as it is
    assert changed == {"shop": "added", "prometheus-config": "rolled"}, changed
    assert not diff.networks
    head = document(added)
    assert head["containers"]["shop"]["networks"] == ["edge-slot-2"]
    assert head["networks"]["edge-slot-2"]["internal"] is True
    assert {f"edge-slot-{k}" for k in range(1, 9)} <= set(head["containers"]["traefik"]["networks"])

    # a way out: a network of the site's own, the slot stays internal
    out = document(lambda values: added(values, egress=True))
    assert out["containers"]["shop"]["networks"] == ["edge-slot-2", "shop-out"]
    assert out["networks"]["shop-out"]["internal"] is False

    # more slots: a new network for the edge, which is replaced (deleted, then created)
    def more(values):
        values["swarm"]["edgeSlots"] = 9
    by_subject = {c.subject: c for c in diff_documents(document(), document(more), "swarm", "b", "h").containers}
    assert by_subject["traefik"].kind == "replaced" and "removed, then created again" in by_subject["traefik"].note


@pytest.mark.parametrize("slot, wanted", [
    (None, "fourlb:sites.shop.edgeSlot = (missing): required on a swarm: a slot of 1-8 (fourlb:swarm.edgeSlots), "
           "one site each; free: 2, 3, 4, 5, 6, 7, 8"),
    (1, "fourlb:sites.shop.edgeSlot = 1: allowed: a slot no other site takes (jsr-solutions-prod has it"),
    (9, "fourlb:sites.shop.edgeSlot = 9: allowed: 1-8 (fourlb:swarm.edgeSlots); free: 2, 3"),
])
def test_a_swarm_site_needs_a_slot_of_its_own(slot, wanted):
    def added(values):
        values["sites"]["shop"] = {"image": "shop:1.0.0", "hostnames": ["shop.4lb.ca"],
                                   **({"edgeSlot": slot} if slot else {})}
    with pytest.raises(StackConfigError) as refused:
        swarm(added)
    assert wanted in str(refused.value)


def test_services_are_deleted_before_replaced_and_secrets_created_first(swarm_run):
    """Their names are fixed, so a replaced service must go first (and its host
    ports with it); a secret's name changes with its value, so the new one comes
    first and the old one, still in use until the service moved, goes last."""
    for service in swarm_run.of_type(SERVICE):
        assert service.options.delete_before_replace is True, service.name
    for secret in swarm_run.of_type(SECRET):
        assert secret.options.delete_before_replace is False, secret.name


def test_plan_diff_says_a_service_whose_mode_changes_is_replaced(monkeypatch):
    from core import catalog
    from plan.diff import diff_documents
    from plan.document import plan_document

    def document():
        config = swarm_config()
        return plan_document(config, build_plan(config, "swarm"))
    head = document()
    exporter = catalog.SERVICES_BY_NAME["node-exporter"]
    monkeypatch.setitem(catalog.SERVICES_BY_NAME, "node-exporter", replace(exporter, on_each_node=None))
    replicated = document()
    for base, after, before in ((replicated, head, "replicated"), (head, replicated, "global")):
        by_subject = {c.subject: c for c in diff_documents(base, after, "swarm", "b", "h").containers}
        switched = by_subject["node-exporter"]
        assert switched.kind == "replaced" and "deleted, then created again" in switched.note
        assert _placement_fields(by_subject["node-exporter (placement)"])["mode"] == (
            before, "global" if before == "replicated" else "replicated")
        assert [s for s, c in by_subject.items() if c.kind == "replaced"] == ["node-exporter"]


def test_plan_diff_reads_a_swarm_plan_of_format_3_as_all_replicated():
    """Before format 4 every swarm service was replicated and had no `mode`."""
    from plan.diff import diff_documents
    from plan.document import plan_document
    config = swarm_config()
    head = plan_document(config, build_plan(config, "swarm"))
    base = json.loads(json.dumps(head))
    global_ = {name for name, service in head["swarm"].items() if service["mode"] == "global"}
    for name, service in base["swarm"].items():
        del service["mode"]
        if name in global_:
            service.update(replicas=1, node="data", constraints=["node.labels.fourlb.role==data"])
    changes = diff_documents(base, head, "swarm", "b", "h").containers
    assert {"node-exporter", "cadvisor"} <= global_
    assert {c.subject for c in changes if c.kind == "replaced"} == global_
    assert {c.subject for c in changes} == global_ | {f"{name} (placement)" for name in global_}


def _placement_fields(change) -> dict:
    return {f.field: (f.before, f.after) for f in change.fields}


def test_a_new_secret_value_is_a_new_docker_secret_under_the_same_resource(swarm_run, deploy):
    """A docker secret cannot change in place: the name carries a digest of the
    rendered value, so the new one is created before the old one is deleted."""
    rotated = deploy("swarm", secrets={"fourlb:aiJwtSecret": "a-rotated-jwt-signing-secret-0123456789"})
    assert rotated.error is None, rotated.error

    def names(run) -> dict[str, str]:
        return {s.name: plain(s.inputs)["name"] for s in run.of_type(SECRET)}
    before, after = names(swarm_run), names(rotated)
    assert set(before) == set(after)
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == ["ai-orchestrator-backend-secrets-env-jwt-secret-key"], changed
    assert all(len(n) <= 64 for n in after.values())


def test_every_task_names_its_image_by_the_digest_the_manager_pulled(swarm_run, planned):
    """A worker pulls the image its task names and never pulls a local image ID: a
    task names `repo@sha256:...`, the pulled or pushed image's repo_digest."""
    images = {r.name: plain(r.inputs) for r in swarm_run.of_type("docker:index/remoteImage:RemoteImage")}
    for service in swarm_run.of_type(SERVICE):
        image = plain(service.inputs)["taskSpec"]["containerSpec"]["image"]
        assert re.fullmatch(r"[a-z0-9./:-]+@sha256:[0-9a-f]{64}", image), (service.name, image)
        container = planned.service(service.name).container
        if not container.build_context:
            assert images[service.name]["name"] == container.image


def test_the_images_the_program_builds_are_pushed_to_the_stack_registry(swarm_run, planned):
    built = {r.name: plain(r.inputs) for r in swarm_run.of_type("docker:index/image:Image")}
    assert set(built) == {"traefik", "backup"}
    registry = StackFile("swarm").values["swarm"]["registry"]
    for name, inputs in built.items():
        assert inputs["imageName"].startswith(f"{registry}/"), inputs["imageName"]
        assert not inputs.get("skipPush"), name
        # the services that run it: the edge, every node's backup
        running = [s.container.name for s in planned.services if s.container.build_context
                   and s.build_name == name]
        assert running, name
        for service in running:
            image = plain(swarm_run.one(SERVICE, service).inputs)["taskSpec"]["containerSpec"]["image"]
            assert image.startswith(inputs["imageName"].rpartition(":")[0] + "@sha256:"), (service, image)


def test_a_swarm_that_builds_an_image_needs_a_registry():
    def unset(values):
        del values["swarm"]["registry"]
    with pytest.raises(StackConfigError) as refused:
        swarm(unset)
    assert "fourlb:swarm.registry" in str(refused.value)

    def pushed_elsewhere(values):
        unset(values)
        values.setdefault("services", {}).update({
            "traefik": {"image": "registry.4lb.ca/fourlb-edge:3.6.1"},
            "backup": {"image": "registry.4lb.ca/fourlb-backup:1"}})
    assert swarm(pushed_elsewhere).service("traefik").container.image == "registry.4lb.ca/fourlb-edge:3.6.1"


@pytest.mark.parametrize("value", ["https://registry.4lb.ca", "registry.4lb.ca/team", "Registry.4lb.ca",
                                   "registry.4lb.ca:0", "registry"])
def test_the_registry_setting_is_a_host_and_port(value):
    def bad(values):
        values["swarm"]["registry"] = value
    with pytest.raises(StackConfigError) as refused:
        swarm(bad)
    assert "fourlb:swarm.registry" in str(refused.value) and "registry.4lb.ca:5000" in str(refused.value)


def test_the_endpoint_mode_is_the_stacks(deploy):
    """dnsrr works for every service: on a swarm nothing binds or is reached by a
    network alias, which the swarm's DNS answers only in vip mode (core.build)."""
    def dnsrr(values):
        values["swarm"]["endpointMode"] = "dnsrr"
    planned = swarm(dnsrr)
    assert planned.endpoint_mode == "dnsrr"
    assert not [s.container.name for s in planned.services if s.container.listen_on]
    run = deploy("swarm", overrides={"fourlb:swarm": json.dumps(
        {**StackFile("swarm").values["swarm"], "endpointMode": "dnsrr", "edgeAddresses": list(EDGE_ADDRESSES)})})
    assert run.error is None, run.error
    assert {plain(s.inputs)["endpointSpec"]["mode"] for s in run.of_type(SERVICE)} == {"dnsrr"}


def test_a_service_declares_what_docker_reads_back_so_a_preview_after_up_is_empty(swarm_run):
    """The restart window and attempts as Docker returns them (left out, the provider
    sees a change at every preview, pulumi/pulumi-docker#1285, and each `up` rolls
    every service), and the platforms the Docker client sets from the image's
    manifest when it creates a service: the stack's host platform."""
    for service in swarm_run.of_type(SERVICE):
        task = plain(service.inputs)["taskSpec"]
        assert task["restartPolicy"] == {"condition": "any", "delay": "5s", "window": "0s", "maxAttempts": 0}
        assert task["placement"]["platforms"] == [{"os": "linux", "architecture": "amd64"}], service.name


def test_up_waits_for_replicated_services_only(swarm_run, planned):
    """The provider refuses converge_config beside a global mode ("mode.0.global:
    conflicts with converge_config", found by the real engine)."""
    for service in swarm_run.of_type(SERVICE):
        inputs = plain(service.inputs)
        is_global = planned.service(service.name).mode == "global"
        assert ("convergeConfig" in inputs) is not is_global, service.name
        assert ("global" in inputs["mode"]) is is_global, service.name


def test_plan_diff_says_a_network_whose_purpose_changes_is_made_again():
    """The purpose is the network's label fourlb.purpose, ForceNew in the provider's
    schema: the real engine replaced a slot network whose purpose named its site."""
    from plan.diff import diff_documents
    from plan.document import plan_document
    config = swarm_config()
    base = plan_document(config, build_plan(config, "swarm"))
    head = json.loads(json.dumps(base))
    head["networks"]["edge-slot-2"]["purpose"] = "another purpose"
    [change] = diff_documents(base, head, "swarm", "b", "h").networks
    assert (change.subject, change.kind) == ("edge-slot-2", "changed") and "fourlb.purpose" in change.note


def test_a_service_waits_long_enough_to_be_removed(swarm_run):
    """The provider deletes a service, then waits its stop grace period at most for
    the manager's containers of it to be removed, and fails past it: the real
    engine's `pulumi destroy` failed on a writer's 1 s."""
    from components.durations import service_duration
    from components.swarm import REMOVAL_WAIT_S
    for service in swarm_run.of_type(SERVICE):
        grace = plain(service.inputs)["taskSpec"]["containerSpec"]["stopGracePeriod"]
        assert grace in {service_duration(s) for s in range(REMOVAL_WAIT_S, 121)}, (service.name, grace)


def test_what_the_labs_dnsrr_hides_is_covered_by_tests_that_exist():
    """tests/swarm/changes.DNSRR_HIDES names, for each check the lab cannot make, the
    plan-level test that makes it instead: each named test exists."""
    import ast
    from pathlib import Path
    from tests.swarm.changes import DNSRR_HIDES
    here = Path(__file__).resolve().parent
    defined = {node.name for path in (here / "test_swarm.py", here / "test_monitoring.py")
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
    named = {name for text in DNSRR_HIDES.values() for name in re.findall(r"\btest_\w+", text)
             if not text.count(f"{name}.py")}
    assert named and named <= defined, named - defined


def test_a_service_is_created_after_what_it_starts_after(swarm_run, planned):
    """Swarm has no start order: the program's is Pulumi's. A service whose writer puts
    its files in place is created once the writer's tasks converged (healthy): created
    beside its writer, Prometheus started on the image's own configuration."""
    for service in planned.services:
        options = swarm_run.options[(SERVICE, service.container.name)]
        after = sorted(dependency._name for dependency in options.depends_on or [])
        assert after == sorted(service.container.starts_after), service.container.name
    assert "prometheus-config" in planned.service("prometheus").container.starts_after
