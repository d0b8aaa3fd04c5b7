"""Monitoring generated from the plan: Prometheus scrapes what the inventory
exposes (checked by promtool), Alertmanager sends email (checked by amtool and
by a real Alertmanager delivering to a local SMTP server), Grafana is
provisioned with valid dashboards."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

import yaml

from core import catalog
from core.edge import load_plan
from core.model import SECRET_PLACEHOLDER, Container, Plan
from tests.processes import stop
from tests.plans import prod_plan, served

PROJECT = Path(__file__).resolve().parent.parent
SMTP = {"host": "smtp.4lb.ca", "port": 587, "fromAddress": "alerts@4lb.ca",
        "to": ["ops@4lb.ca", "admin@4lb.ca"], "username": "alerts@4lb.ca"}


def tool(*names: str, package: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"{names[0]} is not installed (Debian package: {package})")


def upload(container: Container, path: str) -> str:
    found = [u.content for u in container.uploads if u.path == path]
    assert len(found) == 1, f"{container.name} has {len(found)} uploads at {path}"
    return found[0]


def uploads_under(container: Container, directory: str) -> dict[str, str]:
    return {u.path: u.content for u in container.uploads
            if PurePosixPath(u.path).is_relative_to(directory)}


def write_uploads(container: Container, root: Path) -> None:
    """The container's files under `root`, secrets replaced as the program would."""
    for item in container.uploads:
        target = root / item.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(SECRET_PLACEHOLDER.sub(lambda m: f"value-of-{m.group(1)}", item.content))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Prometheus ---------------------------------------------------------------

@pytest.mark.parametrize("stack", ["prod", "local", "swarm"])
def test_prometheus_config_is_valid_for_promtool_with_its_rules(tmp_path, stack):
    promtool = tool("promtool", package="prometheus")
    write_uploads(served(load_plan(stack, PROJECT)[1], "prometheus"), tmp_path)
    result = subprocess.run([promtool, "check", "config", "etc/prometheus/prometheus.yml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS: 1 rule files found" in output


def scrape_targets(plan: Plan) -> dict[str, str]:
    config = yaml.safe_load(upload(served(plan, "prometheus"), "/etc/prometheus/prometheus.yml"))
    return {job["job_name"]: f'{job["static_configs"][0]["targets"][0]}{job["metrics_path"]}'
            for job in config["scrape_configs"]}


def test_prometheus_scrapes_the_platform_and_itself():
    plan = prod_plan()
    traefik_static = yaml.safe_load(upload(served(plan, "traefik"), "/etc/traefik/traefik.yml"))
    ops_address = traefik_static["entryPoints"][traefik_static["metrics"]["prometheus"]["entryPoint"]][
        "address"]
    listen = [a for a in plan.container("prometheus").command if a.startswith("--web.listen-address=")]
    assert listen == ["--web.listen-address=prometheus-api:9090"]
    assert scrape_targets(plan) == {
        "traefik": f"{ops_address}/metrics",  # where Traefik's static config serves metrics
        "cadvisor": "cadvisor:8080/metrics",
        "node-exporter": "node-exporter:9100/metrics",
        # the only address it listens on, the one its command names
        "prometheus": "prometheus-api:9090/metrics",
        "alertmanager": "alertmanager:9093/metrics",
    }


def test_on_a_swarm_prometheus_finds_every_task_of_each_service_by_dns():
    """A service's name answers its virtual IP (any one task per scrape); tasks.<name>
    answers each task's own address, one per node for a global service."""
    plan = load_plan("swarm", PROJECT)[1]
    config = yaml.safe_load(upload(served(plan, "prometheus"), "/etc/prometheus/prometheus.yml"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"traefik", "cadvisor", "node-exporter", "prometheus", "alertmanager"}
    for name, job in jobs.items():
        assert "static_configs" not in job, name
        assert job["dns_sd_configs"] == [{"names": [f"tasks.{name}"], "type": "A",
                                          "port": plan.container(name).port}], name
        # Prometheus resolves that name where it shares a network with the service
        assert set(plan.container(name).networks) & set(plan.container("prometheus").networks), name
    # one host keeps its static targets
    one_host = yaml.safe_load(upload(served(prod_plan(), "prometheus"), "/etc/prometheus/prometheus.yml"))
    assert all("static_configs" in job and "dns_sd_configs" not in job
               for job in one_host["scrape_configs"])


def test_a_service_the_catalog_marks_as_exposing_metrics_is_scraped(monkeypatch):
    grafana = catalog.SERVICES_BY_NAME["grafana"]
    monkeypatch.setitem(catalog.SERVICES_BY_NAME, "grafana", replace(grafana, metrics_path="/metrics"))
    assert scrape_targets(prod_plan())["grafana"] == "grafana:3000/metrics"


def test_a_disabled_service_is_not_scraped():
    targets = scrape_targets(prod_plan(services={"cadvisor": {"enabled": False},
                                                 "alertmanager": {"enabled": False}}))
    assert "cadvisor" not in targets and "alertmanager" not in targets


def test_prometheus_sends_alerts_to_alertmanager_when_there_is_one():
    def alerting(plan: Plan):
        return yaml.safe_load(upload(served(plan, "prometheus"), "/etc/prometheus/prometheus.yml")).get("alerting")

    assert alerting(prod_plan()) == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert alerting(prod_plan(services={"alertmanager": {"enabled": False}})) is None


def test_backup_status_reaches_prometheus_through_node_exporter():
    plan = prod_plan()
    exporter, backup = plan.container("node-exporter"), plan.container("backup")
    flags = dict(arg.split("=", 1) for arg in exporter.command if "=" in arg)
    textfile_dir = flags["--collector.textfile.directory"]
    read = [m for m in exporter.mounts if m.target == textfile_dir]
    assert len(read) == 1 and read[0].read_only and read[0].volume
    settings = dict(line.split("=", 1) for line in upload(backup, "/etc/backup/backup.env").splitlines()
                    if "=" in line and not line.startswith("#"))
    written = [m for m in backup.mounts if m.volume == read[0].volume]
    assert [m.target for m in written] == [settings["METRICS_DIR"].strip("'")]
    assert not written[0].read_only


def test_prometheus_shares_a_network_with_each_target_and_only_alertmanager_gets_out():
    plan = prod_plan()
    networks = {n.name: n for n in plan.networks}
    prometheus = plan.container("prometheus")
    for name in ("alertmanager", "grafana", "cadvisor", "node-exporter", "traefik"):
        shared = set(plan.container(name).networks) & set(prometheus.networks)
        assert shared and all(networks[n].internal for n in shared), name
    # each target on its own network with Prometheus: no target reaches another;
    # Traefik's writer asks its ops port whether it loaded the files (live_config)
    for name, writer in (("cadvisor", None), ("node-exporter", None), ("traefik", "traefik-config")):
        others = {c.name for c in plan.containers
                  if f"scrape-{name}-net" in c.networks} - {name, "prometheus", writer}
        assert not others, (name, others)
    egress = [n for n in plan.container("alertmanager").networks if not networks[n].internal]
    assert egress == ["alerting-net"]
    assert [c.name for c in plan.containers if "alerting-net" in c.networks] == ["alertmanager"]


# --- Alertmanager ---------------------------------------------------------------

def alertmanager_files(plan: Plan) -> tuple[dict, dict[str, str]]:
    container = served(plan, "alertmanager")
    uploads = {u.path: u.content for u in container.uploads}
    return yaml.safe_load(uploads.pop("/etc/alertmanager/alertmanager.yml")), uploads


@pytest.mark.parametrize("smtp", [SMTP, None], ids=["email", "no-email"])
def test_alertmanager_config_is_valid_for_amtool(tmp_path, smtp):
    amtool = tool("amtool", package="prometheus-alertmanager")
    plan = prod_plan(alerting={"smtp": smtp} if smtp else {})
    write_uploads(served(plan, "alertmanager"), tmp_path)
    result = subprocess.run([amtool, "check-config", "etc/alertmanager/alertmanager.yml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_smtp_password_is_a_provided_secret_kept_in_its_own_file():
    plan = prod_plan(alerting={"smtp": SMTP})
    config, others = alertmanager_files(plan)
    assert "smtp_auth_password" not in config["global"]
    assert not SECRET_PLACEHOLDER.search(json.dumps(config))
    password_file = config["global"]["smtp_auth_password_file"]
    assert SECRET_PLACEHOLDER.fullmatch(others[password_file])
    spec = {s.name: s for s in plan.secrets}[SECRET_PLACEHOLDER.fullmatch(others[password_file]).group(1)]
    assert (spec.config_key, spec.generated) == ("smtpPassword", False)
    # a relay that needs no login needs no password
    no_login = prod_plan(alerting={"smtp": {k: v for k, v in SMTP.items() if k != "username"}})
    assert spec.name not in {s.name for s in no_login.secrets}
    assert "smtp_auth_password_file" not in alertmanager_files(no_login)[0]["global"]


class _Mailbox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode(errors="replace")))
        return "250 OK"


def test_an_alert_reaches_the_mailbox_through_smtp_with_the_password_file(tmp_path):
    """A real Alertmanager with the generated files, a local SMTP server that
    only accepts the login and password the stack provides."""
    binary = tool("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    smtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is not installed (PyPI)")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    smtp_port, web_port = free_port(), free_port()
    plan = prod_plan(alerting={"smtp": {**SMTP, "host": "127.0.0.1", "port": smtp_port,
                                        "requireTls": False}})
    container = served(plan, "alertmanager")
    write_uploads(container, tmp_path)
    config_file = tmp_path / "etc/alertmanager/alertmanager.yml"
    config = yaml.safe_load(config_file.read_text())
    password_file = config["global"]["smtp_auth_password_file"]
    expected_password = (tmp_path / password_file.lstrip("/")).read_text()
    # the only changes: where the file lies here, and no half-minute wait before sending
    config["global"]["smtp_auth_password_file"] = str(tmp_path / password_file.lstrip("/"))
    config["route"].update(group_wait="1s", group_interval="1s")
    config_file.write_text(yaml.safe_dump(config))

    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server, session, envelope, mechanism, data):
        if isinstance(data, LoginPassword):
            logins.append((data.login, data.password))
            return AuthResult(success=(data.login, data.password)
                              == (SMTP["username"].encode(), expected_password.encode()))
        return AuthResult(success=False)

    mailbox = _Mailbox()
    # PLAIN only: aiosmtpd's LOGIN prompts ("User Name") are not the usual "Username:"
    server = smtpd.Controller(mailbox, hostname="127.0.0.1", port=smtp_port,
                              authenticator=authenticate, auth_require_tls=False,
                              auth_exclude_mechanism=["LOGIN"])
    server.start()
    process = subprocess.Popen(
        [binary, f"--config.file={config_file}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web_port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "wb"))
    try:
        base = f"http://127.0.0.1:{web_port}"
        _wait_until(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200, 20)
        alert = [{"labels": {"alertname": "BackupFailed", "severity": "critical", "stack": "prod"},
                  "annotations": {"summary": "The last backup run failed"}}]
        request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alert).encode(),
                                         headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=5).status == 200
        _wait_until(lambda: mailbox.messages, 30)
    except TimeoutError:
        pytest.fail("no email arrived; logins tried: %r\n%s" % (
            logins, (tmp_path / "alertmanager.log").read_text()[-3000:]))
    finally:
        stop(process)
        server.stop()
    sender, recipients, content = mailbox.messages[0]
    assert sender == SMTP["fromAddress"]
    assert sorted(recipients) == sorted(SMTP["to"])
    assert "BackupFailed" in content
    assert logins and logins[-1] == (SMTP["username"].encode(), expected_password.encode())


def _wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError


# --- Grafana -----------------------------------------------------------------------

def grafana_provisioning(plan: Plan) -> tuple[dict, dict, dict[str, dict]]:
    grafana = served(plan, "grafana")
    datasources = [yaml.safe_load(c) for c in
                   uploads_under(grafana, "/etc/grafana/provisioning/datasources").values()]
    providers = [yaml.safe_load(c) for c in
                 uploads_under(grafana, "/etc/grafana/provisioning/dashboards").values()]
    assert len(datasources) == 1 and len(providers) == 1
    provider = providers[0]["providers"][0]
    dashboards = {path: json.loads(content) for path, content in
                  uploads_under(grafana, provider["options"]["path"]).items()}
    return datasources[0], provider, dashboards


def panels(dashboards: dict[str, dict]):
    for path, dashboard in dashboards.items():
        for panel in dashboard["panels"]:
            yield path, panel


def test_grafana_gets_prometheus_as_its_data_source_and_three_dashboards():
    datasource_file, provider, dashboards = grafana_provisioning(prod_plan())
    (datasource,) = datasource_file["datasources"]
    assert (datasource["type"], datasource["url"], datasource["isDefault"]) == (
        "prometheus", "http://prometheus-api:9090", True)
    assert provider["type"] == "file"
    assert sorted(d["title"] for d in dashboards.values()) == ["Containers", "Host", "Traefik"]
    assert len({d["uid"] for d in dashboards.values()}) == 3
    for path, panel in panels(dashboards):
        assert panel["datasource"]["uid"] == datasource["uid"], (path, panel["title"])
        assert panel["targets"], (path, panel["title"])
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], (path, panel["title"])


def test_dashboard_panels_have_ids_and_never_overlap():
    for path, dashboard in grafana_provisioning(prod_plan())[2].items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path
        cells = set()
        for panel in dashboard["panels"]:
            box = panel["gridPos"]
            assert box["x"] + box["w"] <= 24, (path, panel["title"])
            area = {(x, y) for x in range(box["x"], box["x"] + box["w"])
                    for y in range(box["y"], box["y"] + box["h"])}
            assert not cells & area, (path, panel["title"])
            cells |= area


def test_every_panel_query_is_valid_promql(tmp_path):
    promtool = tool("promtool", package="prometheus")
    dashboards = grafana_provisioning(prod_plan())[2]
    # as recording rules, promtool parses each one; Grafana's window is a duration
    rules = [{"record": f"panel:query{index}", "expr": target["expr"].replace("$__rate_interval", "5m")}
             for index, target in enumerate(t for _, p in panels(dashboards) for t in p["targets"])]
    assert len(rules) >= 12
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", "panels.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# Metric names the exporters publish (node-exporter 1.9, cAdvisor 0.52, Traefik 3)
# and the backup job writes: a panel on any other name would stay empty.
PUBLISHED = {
    "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    "node_uname_info",
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_load1", "node_load5",
    "node_load15", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
    "container_network_receive_bytes_total", "container_start_time_seconds",
    "container_last_seen",
    "traefik_service_requests_total", "traefik_service_request_duration_seconds_bucket",
    "traefik_tls_certs_not_after", "traefik_entrypoint_requests_total",
    "fourlb_backup_last_success_timestamp_seconds", "fourlb_backup_last_run_status",
    # and the restore check (backup/verify-latest; tests/test_backup.py reads them)
    "fourlb_backup_verify_success", "fourlb_backup_verify_last_run_timestamp_seconds",
}


@pytest.mark.parametrize("stack", ["prod", "swarm"])
def test_panels_and_alerts_use_metrics_that_exist(stack):
    plan = load_plan(stack, PROJECT)[1]
    dashboards = grafana_provisioning(plan)[2]
    expressions = [t["expr"] for _, p in panels(dashboards) for t in p["targets"]]
    rules = yaml.safe_load(upload(served(plan, "prometheus"), "/etc/prometheus/rules/fourlb.yml"))
    expressions += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for expr in expressions
            for name in re.findall(r"\b((?:node|container|traefik|fourlb)_[A-Za-z0-9_]+)", expr)}
    used -= {n for n in used if n.startswith("container_label_")}  # label names, not metrics
    assert used and used <= PUBLISHED, used - PUBLISHED
