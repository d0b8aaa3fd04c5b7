"""Where Open WebUI and the AI backend find Ollama (fourlb:ollama, core.ollama)."""

from __future__ import annotations

import json

import pytest

from config import StackConfigError, parse_stack_config
from config.loading import StackFile
from core.build import build_plan
from core.model import Plan
from plan.diff import diff_documents
from plan.document import plan_document
from plan.render import plan_markdown
from tests.plans import PROJECT, prod_plan

CLIENTS = ("open-webui", "ai-orchestrator-backend")


def env(plan: Plan, name: str) -> dict[str, str]:
    return dict(plan.container(name).env)


def joined_by(plan: Plan, network: str) -> set[str]:
    return {c.name for c in plan.containers if network in c.networks}


def leads_out(plan: Plan, container: str) -> bool:
    internal = {n.name: n.internal for n in plan.networks}
    return any(not internal[n] for n in plan.container(container).networks)


def test_by_default_the_clients_reach_the_ollama_of_the_host() -> None:
    plan = prod_plan()
    for name in CLIENTS:
        assert env(plan, name)["OLLAMA_BASE_URL"] == "http://host.docker.internal:11434"
        assert plan.container(name).extra_hosts == (("host.docker.internal", "host-gateway"),)
        # an internal network has no route, not even to the host's own address
        assert leads_out(plan, name), name
    assert "ollama" not in {c.name for c in plan.containers}
    assert not any(c.extra_hosts for c in plan.containers if c.name not in CLIENTS)


def test_the_port_of_the_hosts_ollama_is_a_setting() -> None:
    plan = prod_plan(ollama={"hostPort": 11500})
    assert env(plan, "open-webui")["OLLAMA_BASE_URL"] == "http://host.docker.internal:11500"


def test_as_a_service_ollama_shares_a_network_with_its_clients_only() -> None:
    plan = prod_plan(ollama={"runsOn": "service", "gpus": "all"})
    ollama = plan.container("ollama")
    assert ollama.gpus == "all"
    assert {m.volume for m in ollama.mounts} == {"ollama_data"}
    assert next(v for v in plan.volumes if v.name == "ollama_data").protected
    assert joined_by(plan, "ollama-net") == {"ollama", *CLIENTS}
    assert joined_by(plan, "ollama-pull-net") == {"ollama"}
    internal = {n.name: n.internal for n in plan.networks}
    assert internal["ollama-net"] and not internal["ollama-pull-net"]
    for name in CLIENTS:
        assert env(plan, name)["OLLAMA_BASE_URL"] == "http://ollama:11434"
        assert plan.container(name).extra_hosts == ()
    # models are pulled again, not backed up
    backup = plan.container("backup")
    assert "ollama_data" not in {m.volume for m in backup.mounts}


def test_an_url_the_owner_sets_wins() -> None:
    plan = prod_plan(services={"open-webui": {"env": {"OLLAMA_BASE_URL": "http://gpu-box:11434"}}})
    urls = [v for k, v in plan.container("open-webui").env if k == "OLLAMA_BASE_URL"]
    assert urls == ["http://gpu-box:11434"]


def test_a_changed_place_replaces_the_clients() -> None:
    def document(plan: Plan, **settings) -> dict:
        values = {**StackFile("prod", PROJECT).values, **settings}
        return json.loads(json.dumps(plan_document(parse_stack_config("prod", values), plan)))

    before = document(prod_plan())
    after = document(prod_plan(ollama={"runsOn": "service"}), ollama={"runsOn": "service"})
    changes = {c.subject: c for c in diff_documents(before, after, "prod", "host", "service").containers}
    assert changes["ollama"].kind == "added"
    for name in CLIENTS:
        assert changes[name].kind == "replaced"
        assert {"env", "extra_hosts", "networks"} <= {f.field for f in changes[name].fields}


def test_python_m_plan_says_where_ollama_runs() -> None:
    values = StackFile("prod", PROJECT).values
    config = parse_stack_config("prod", values)
    page = plan_markdown(plan_document(config, build_plan(config, "prod")))
    assert "## Ollama" in page
    assert "runs on the Docker host" in page and "`http://host.docker.internal:11434`" in page
    config = parse_stack_config("prod", {**values, "ollama": {"runsOn": "service"}})
    page = plan_markdown(plan_document(config, build_plan(config, "prod")))
    assert "runs as the container `ollama`" in page


@pytest.mark.parametrize("settings, key", [
    ({"ollama": {"gpus": "all"}}, "fourlb:ollama"),
    ({"ollama": {"runsOn": "service", "hostPort": 11500}}, "fourlb:ollama"),
    ({"ollama": {"runsOn": "service", "gpus": "some"}}, "fourlb:ollama.gpus"),
    ({"services": {"ollama": {"memoryMb": 16384}}}, "fourlb:services.ollama"),
    ({"ollama": {"runsOn": "service"}, "services": {"ollama": {"enabled": False}}},
     "fourlb:services.ollama.enabled"),
])
def test_settings_of_the_other_place_are_refused_by_name(settings, key) -> None:
    with pytest.raises(StackConfigError) as refused:
        prod_plan(**settings)
    assert key in str(refused.value)


def test_a_sites_stack_names_no_ollama() -> None:
    values = StackFile("dev", PROJECT).values
    with pytest.raises(StackConfigError) as refused:
        parse_stack_config("dev", {**values, "ollama": {"runsOn": "service"}})
    assert "ollama" in str(refused.value)


def test_the_program_gives_docker_the_extra_host_and_the_gpus(deploy) -> None:
    run = deploy("prod")
    assert run.error is None, run.error
    assert run.containers["open-webui"].inputs["hosts"] == [
        {"host": "host.docker.internal", "ip": "host-gateway"}]
    assert "hosts" not in run.containers["grafana"].inputs
    service = deploy("prod", overrides={"fourlb:ollama": json.dumps({"runsOn": "service",
                                                                    "gpus": "all"})})
    assert service.error is None, service.error
    assert service.containers["ollama"].inputs["gpus"] == "all"
    assert "hosts" not in service.containers["open-webui"].inputs
