"""The offline plan CLI (`python -m plan`), run as CI and people run it: in a
subprocess, from the stack files alone. Diffs against a git ref run in a
throw-away copy of the project committed into its own repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plan.diff import diff_documents

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PARTS = ("config", "core", "plan", "backup")
COMMENT_MARKER = "<!-- fourlb-plan-diff -->"
# A value no output may contain: env values are reported by name only.
SENTINEL_VALUE = "do-not-print-7f3a9c"


def run_plan(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run([sys.executable, "-m", "plan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=fourlb-test", "-c", "user.email=test@4lb.ca",
                    "-c", "commit.gpgsign=false", *args],
                   cwd=cwd, check=True, capture_output=True)


def copy_project(target: Path, parts: tuple[str, ...] = PROJECT_PARTS) -> None:
    for part in parts:
        shutil.copytree(ROOT / part, target / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for stack_file in ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, target / stack_file.name)


def commit_all(repo: Path, message: str = "base") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project, committed as HEAD, ready to be modified."""
    copy_project(tmp_path)
    git(tmp_path, "init", "-q")
    commit_all(tmp_path)
    return tmp_path


def edit_stack(project: Path, stack: str, change) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data["config"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def diff_json(project: Path, *args: str) -> tuple[int, dict]:
    result = run_plan("diff", *args, "--format", "json", cwd=project)
    assert result.returncode in (0, 1), result.stderr
    (diff,) = json.loads(result.stdout)
    return result.returncode, diff


def by_subject(changes: list[dict]) -> dict[str, dict]:
    return {change["subject"]: change for change in changes}


# The plan


def expected_prod_routes() -> set[tuple[str, str, int | None]]:
    """(hostname, container, port) as the prod stack file and the platform's
    known subdomains say, written out here rather than computed by the core."""
    config = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    domain = config["fourlb:platformDomain"]
    platform = {
        ("ai", "ai-orchestrator-frontend", 80),
        ("ai", "ai-orchestrator-backend", 8001),  # under /api
        ("llm", "open-webui", 8080),
        ("code", "code-server", 8443),
        ("grafana", "grafana", 3000),
        ("prometheus", "prometheus", 9090),
        ("traefik", "traefik", None),  # the dashboard: Traefik's own api@internal
    }
    routes = {(f"{sub}.{domain}", container, port) for sub, container, port in platform}
    for name, site in config.get("fourlb:sites", {}).items():
        routes |= {(host, name, site.get("port", 80)) for host in site["hostnames"]}
    return routes


def test_prod_plan_routes_every_public_hostname_to_its_container_and_port():
    result = run_plan("prod", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    routed = {(r["hostname"], r["container"], r["port"]) for r in plan["routes"]}
    assert routed == expected_prod_routes()
    api = [r for r in plan["routes"] if r["container"] == "ai-orchestrator-backend"]
    assert [r["path_prefix"] for r in api] == ["/api"]
    assert {r["tls_resolver"] for r in plan["routes"]} == {"le"}


def test_prod_plan_has_a_dns_record_in_its_zone_for_every_hostname():
    plan = json.loads(run_plan("prod", "--format", "json").stdout)
    records = {(zone, r["name"]) for zone, rs in plan["dns"].items() for r in rs}
    for hostname, _, _ in expected_prod_routes():
        zone = "4lb.ca" if hostname.endswith("4lb.ca") else "jsr-solutions.ca"
        assert (zone, hostname) in records


def test_plan_json_is_identical_across_runs_and_canonical():
    first, second = run_plan("prod", "--format", "json"), run_plan("prod", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout == json.dumps(json.loads(first.stdout), sort_keys=True, indent=2) + "\n"


def test_plan_json_never_holds_env_values_or_file_contents():
    plan = json.loads(run_plan("prod", "--format", "json").stdout)
    traefik = plan["containers"]["traefik"]
    assert all(v.startswith("sha256:") for c in plan["containers"].values()
               for v in c["env"].values())
    assert all(u["content"].startswith("sha256:") for u in traefik["uploads"].values())
    assert "${secret:" not in json.dumps(plan)


def test_markdown_plan_shows_routes_dns_containers_and_volume_protection():
    result = run_plan("prod")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for heading in ("## Routes", "## DNS records", "### Zone `jsr-solutions.ca`",
                    "## Containers", "## Volumes", "## Networks"):
        assert heading in text
    assert "| `jsr-solutions.ca` |  | jsr-solutions-prod:80 |" in text
    assert "| `postgres_data` | PostgreSQL data | protected | postgres |" in text


def test_plan_of_an_unknown_stack_exits_2_naming_the_file():
    result = run_plan("staging")
    assert result.returncode == 2
    assert "Pulumi.staging.yaml" in result.stderr and result.stdout == ""


def test_plan_cli_imports_no_pulumi_module():
    script = (
        "import contextlib, io, sys\n"
        "from plan.cli import main\n"
        "runs = [['prod', '--format', 'json'], ['dev'], ['diff', 'prod', 'dev', '--format', 'md']]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(args) for args in runs]\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi'))\n"
        "print(codes, loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0, 0, 1] []"


def test_plan_entry_point_imports_no_pulumi_module():
    # -X importtime lists every module the real `python -m plan` imports
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "plan", "prod",
                             "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "plan.cli" in imported
    assert [m for m in imported if m.startswith("pulumi")] == []


# Diffs against a git ref


def test_no_change_exits_0(project: Path):
    result = run_plan("diff", "prod", "dev", "--base", "HEAD", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout


def test_a_changed_label_replaces_the_container(project: Path):
    # a site's own Content-Security-Policy only reaches Docker as labels
    edit_stack(project, "prod", lambda c: c["fourlb:sites"]["jsr-solutions-prod"].update(
        contentSecurityPolicy="default-src 'self'"))
    code, diff = diff_json(project, "prod", "--base", "HEAD")
    assert code == 1
    (change,) = diff["containers"]
    assert change["subject"] == "jsr-solutions-prod" and change["kind"] == "replaced"
    (labels,) = change["fields"]
    assert labels["field"] == "labels"
    # named without the instance suffix that renames every router on replacement
    assert ("traefik.http.middlewares.jsr-solutions-prod-headers.headers.contentsecuritypolicy"
            in labels["names"])
    assert {c["kind"] for c in diff["routes"]} == {"changed"}  # its own headers middleware
    assert diff["dns"] == [] and diff["volumes"] == []


def test_a_removed_site_removes_its_routes_and_dns_records(project: Path):
    edit_stack(project, "prod", lambda c: c.pop("fourlb:sites"))
    code, diff = diff_json(project, "prod", "--base", "HEAD")
    assert code == 1
    removed_hosts = {"jsr-solutions.ca", "www.jsr-solutions.ca"}
    assert {c["subject"]: c["kind"] for c in diff["routes"]} == dict.fromkeys(removed_hosts,
                                                                             "removed")
    assert {c["subject"]: c["kind"] for c in diff["dns"]} == {
        f"{host} A": "removed" for host in removed_hosts}
    assert by_subject(diff["containers"])["jsr-solutions-prod"]["kind"] == "removed"


def test_a_new_site_port_re_points_its_hostnames(project: Path):
    edit_stack(project, "prod", lambda c: c["fourlb:sites"]["jsr-solutions-prod"].update(port=8080))
    _, diff = diff_json(project, "prod", "--base", "HEAD")
    route = by_subject(diff["routes"])["jsr-solutions.ca"]
    assert route["kind"] == "re-pointed"
    assert (route["before"], route["after"]) == ("jsr-solutions-prod:80", "jsr-solutions-prod:8080")


def test_an_env_change_replaces_the_container_and_prints_only_the_name(project: Path):
    edit_stack(project, "dev", lambda c: c["fourlb:sites"]["jsr-dev"].update(
        env={"FEATURE_FLAG": SENTINEL_VALUE}))
    code, diff = diff_json(project, "dev", "--base", "HEAD")
    assert code == 1
    change = by_subject(diff["containers"])["jsr-dev"]
    assert change["kind"] == "replaced"
    assert {"field": "env", "names": ["FEATURE_FLAG"], "before": None, "after": None} in (
        change["fields"])
    for output in ("text", "md", "json"):
        assert SENTINEL_VALUE not in run_plan("diff", "dev", "--base", "HEAD", "--format", output,
                                              cwd=project).stdout


def test_an_image_change_shows_both_tags(project: Path):
    edit_stack(project, "prod", lambda c: c["fourlb:services"]["ai-orchestrator-backend"].update(
        image="ai-orchestrator-backend:5.2"))
    result = run_plan("diff", "prod", "--base", "HEAD", cwd=project)
    assert result.returncode == 1
    assert ("ai-orchestrator-backend replaced: image: ai-orchestrator-backend:5.1 -> "
            "ai-orchestrator-backend:5.2\n") in result.stdout
    # its routers get a new instance suffix, which follows from the image: not listed
    _, diff = diff_json(project, "prod", "--base", "HEAD")
    (change,) = diff["containers"]
    assert [f["field"] for f in change["fields"]] == ["image"]


def test_a_removed_volume_is_flagged_as_data_at_risk(project: Path):
    edit_stack(project, "prod", lambda c: c["fourlb:services"].update(grafana={"enabled": False}))
    code, diff = diff_json(project, "prod", "--base", "HEAD")
    assert code == 1
    assert diff["volumes_at_risk"] == ["grafana_data"]  # not its generated dashboards
    text = run_plan("diff", "prod", "--base", "HEAD", cwd=project).stdout
    assert "DATA AT RISK: volume grafana_data" in text
    markdown = run_plan("diff", "prod", "--base", "HEAD", "--format", "md", cwd=project).stdout
    assert "**Data at risk**: volume `grafana_data`" in markdown


def test_pull_request_comment_starts_with_the_marker_and_names_changed_hostnames(project: Path):
    edit_stack(project, "dev", lambda c: c["fourlb:sites"]["jsr-dev"].update(
        hostnames=["jsr-next.4lb.ca"]))
    # the command the pull-request workflow runs
    result = run_plan("diff", "prod", "dev", "--base", "HEAD", "--format", "md", cwd=project)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == COMMENT_MARKER and result.stdout.count(COMMENT_MARKER) == 1
    assert "### `prod`: `HEAD` → `working tree`" in result.stdout
    assert "| `jsr-next.4lb.ca` | added |" in result.stdout
    assert "| `jsr.4lb.ca` | removed |" in result.stdout
    assert "| `jsr.4lb.ca A` | removed |" in result.stdout


def test_a_stack_missing_at_the_base_is_compared_with_an_empty_plan(project: Path):
    shutil.copy(project / "Pulumi.dev.yaml", project / "Pulumi.qa.yaml")
    # a stack of its own on the same host: its own hostnames and container names
    edit_stack(project, "qa", lambda c: c.__setitem__("fourlb:sites", {
        f"{name}-qa": {**site, "hostnames": [h.replace(".4lb.ca", "-qa.4lb.ca") for h in site["hostnames"]]}
        for name, site in c["fourlb:sites"].items()}))
    code, diff = diff_json(project, "qa", "--base", "HEAD")
    assert code == 1
    assert {c["kind"] for c in diff["routes"] + diff["containers"]} == {"added"}


def test_a_base_without_the_plan_package_is_compared_with_an_empty_plan(tmp_path: Path):
    copy_project(tmp_path, parts=("config", "core", "backup"))
    git(tmp_path, "init", "-q")
    commit_all(tmp_path)
    copy_project(tmp_path, parts=("plan",))
    code, diff = diff_json(tmp_path, "dev", "--base", "HEAD")
    assert code == 1
    assert {c["subject"] for c in diff["routes"]} == {"jsr.4lb.ca", "jsr-solutions-dev.4lb.ca"}
    assert diff["notes"] == ["HEAD has no plan of this stack: everything shows as added"]


def test_a_bad_stack_file_exits_2_with_the_config_error(project: Path):
    edit_stack(project, "prod", lambda c: c["fourlb:sites"]["jsr-solutions-prod"].update(port=0))
    result = run_plan("diff", "prod", "--base", "HEAD", cwd=project)
    assert result.returncode == 2
    assert "stack 'prod' has an invalid configuration" in result.stderr
    assert "fourlb:sites.jsr-solutions-prod.port = 0" in result.stderr


def test_an_unknown_ref_exits_2(project: Path):
    result = run_plan("diff", "prod", "--base", "no-such-branch", cwd=project)
    assert result.returncode == 2
    assert "unknown git ref 'no-such-branch'" in result.stderr


# Diffs between two stacks


def test_two_stacks_compare_without_flagging_data_at_risk():
    same = run_plan("diff", "prod", "prod")
    assert same.returncode == 0, same.stderr
    code_and_diff = run_plan("diff", "prod", "dev", "--format", "json")
    assert code_and_diff.returncode == 1
    (diff,) = json.loads(code_and_diff.stdout)
    assert by_subject(diff["routes"])["jsr.4lb.ca"]["kind"] == "added"
    assert by_subject(diff["volumes"])["postgres_data"]["kind"] == "removed"
    assert diff["volumes_at_risk"] == []


def test_diff_needs_two_stacks_or_a_base():
    assert run_plan("diff", "prod").returncode == 2


# The comparison itself


def container_document(**labels: str) -> dict:
    return {"image": "nginx:1.27-alpine", "labels": labels, "env": {}, "memory_mb": 128}


def test_only_in_place_settings_update_a_container_without_replacing_it():
    base = {"format": 1, "containers": {"web": container_document(a="1")}}
    relabeled = {"format": 1, "containers": {"web": container_document(a="2")}}
    resized = {"format": 1, "containers": {"web": {**container_document(a="1"), "memory_mb": 256}}}
    (label_change,) = diff_documents(base, relabeled, "s", "a", "b").containers
    (memory_change,) = diff_documents(base, resized, "s", "a", "b").containers
    assert (label_change.kind, label_change.fields[0].names) == ("replaced", ("a",))
    assert (memory_change.kind, memory_change.fields[0].after) == ("updated", "256")


def test_a_volume_given_another_docker_name_is_flagged_as_data_at_risk(project: Path):
    """Once deployed, a new fourlb:volumeNames entry points the plan at another Docker
    volume: the provider would replace the protected one (refused) and the service
    would start on an empty volume."""
    edit_stack(project, "prod", lambda c: c.update({"fourlb:volumeNames": {"redis_data": "ai-tools_redis_data"}}))
    code, diff = diff_json(project, "prod", "--base", "HEAD")
    assert code == 1
    assert diff["volumes_at_risk"] == ["redis_data"]
    text = run_plan("diff", "prod", "--base", "HEAD", cwd=project).stdout
    assert "redis_data renamed: Docker volume redis_data -> Docker volume ai-tools_redis_data" in text
    assert "DATA AT RISK: volume redis_data" in text


def test_the_plan_shows_each_hostnames_response_headers():
    result = run_plan("prod", "--format", "json")
    routes = json.loads(result.stdout)["routes"]
    (site,) = [r for r in routes if r["hostname"] == "jsr-solutions.ca"]
    assert site["headers"]["X-Frame-Options"] == "DENY"
    assert site["headers"]["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"
    assert "frame-ancestors 'none'" in site["headers"]["Content-Security-Policy"]
    text = run_plan("prod").stdout
    assert "Response headers on every answer" in text and "| X-Frame-Options | `DENY` |" in text


def test_the_swarm_plan_shows_each_services_mode_in_its_placement():
    result = run_plan("swarm")
    assert result.returncode == 0, result.stderr
    placement = result.stdout.split("## Swarm placement", 1)[1]
    rows = {cells[0].strip("`"): cells[1:] for line in placement.splitlines() if line.startswith("| `")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert rows["node-exporter"][:3] == ["every node", "global", "one per node"]
    assert rows["postgres"][:3] == ["data", "replicated", "1"]
    document = json.loads(run_plan("swarm", "--format", "json").stdout)
    assert document["swarm"]["cadvisor"]["mode"] == "global"
    assert document["swarm"]["cadvisor"]["replicas"] is None
