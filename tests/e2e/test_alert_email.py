"""An alert fired by the real Prometheus reaches a mailbox through the real
Alertmanager: the program's configuration, rules and password file, with only
`changes.ALERT_CHAIN_CHANGES` applied, delivered by their writers to the
running services (which reload, and are not restarted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from core.catalog import scrape_net
from core.live_config import writer_name
from core.monitoring.alertmanager import CONFIG_FILE as ALERTMANAGER_FILE
from core.monitoring.prometheus import CONFIG_FILE as PROMETHEUS_FILE
from core.monitoring.prometheus import RULES_FILE

from . import changes
from .conftest import FACTS
from .declared import Declared, DeclaredContainer, DeclaredUpload, with_files
from .platform import Platform
from .polling import poll
from .traefik_process import free_port

SINK = Path(__file__).resolve().parent / "real" / "smtp_sink.py"
ALERTS = ("HostCpuHigh", "FilesystemAlmostFull")  # at least these, from the synthetic host
HEALTHY_WITHIN_S = 45
MAIL_WITHIN_S = 60


def _synthetic_host(template: DeclaredContainer) -> DeclaredContainer:
    """A stand-in where Prometheus scrapes node-exporter, serving `changes.SYNTHETIC_METRICS`."""
    network = scrape_net("node-exporter")
    return replace(template, service=changes.SYNTHETIC_HOST, name=changes.SYNTHETIC_HOST, image="e2e-standin",
                   labels={}, networks=((network, (changes.SYNTHETIC_HOST,)),), envs=(), command=(),
                   healthcheck=None, volumes=(), tmpfs={}, port=9100,
                   uploads=(DeclaredUpload("/standin/metrics", changes.SYNTHETIC_METRICS, "0444"),))


def _mails(mailbox: Path) -> list[dict]:
    if not mailbox.exists():
        return []
    return [json.loads(line) for line in mailbox.read_text().splitlines() if line.strip()]


def test_cpu_and_disk_alerts_arrive_by_email(platform: Platform, stacks: dict[str, Declared],
                                             tmp_path: Path) -> None:
    """The test's files reach the running Prometheus and Alertmanager the way a
    deployment's do: their writers are replaced and ask them to reload."""
    prod = stacks["prod"]
    prometheus, alertmanager = prod.container("prometheus"), prod.container("alertmanager")
    prometheus_files, manager_files = (prod.container(writer_name(c.service))
                                       for c in (prometheus, alertmanager))
    smtp_port = free_port()
    manager_config = yaml.safe_load(manager_files.upload(ALERTMANAGER_FILE).content)
    password_file = manager_config["global"]["smtp_auth_password_file"]
    expected_password = tmp_path / "smtp-password"
    expected_password.write_text(manager_files.upload(password_file).content)
    new_prometheus, new_rules, new_manager = changes.for_the_alert_test(
        yaml.safe_load(prometheus_files.upload(PROMETHEUS_FILE).content),
        yaml.safe_load(prometheus_files.upload(RULES_FILE).content), manager_config, smtp_port)
    test_prometheus = with_files(prometheus_files, {PROMETHEUS_FILE: new_prometheus, RULES_FILE: new_rules})
    test_manager = with_files(manager_files, {ALERTMANAGER_FILE: new_manager})
    synthetic = _synthetic_host(prod.container("cadvisor"))
    started_at = {c.name: platform.engine.inspect(c.name)["State"]["StartedAt"]
                  for c in (prometheus, alertmanager)}
    mailbox = tmp_path / "mailbox.jsonl"
    sink = None
    started = time.monotonic()
    try:
        pid = platform.engine.inspect(alertmanager.name)["State"]["Pid"]
        sink = subprocess.Popen(
            ["nsenter", "-t", str(pid), "-n", sys.executable, str(SINK), str(smtp_port), str(mailbox),
             manager_config["global"]["smtp_auth_username"], str(expected_password)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        platform.run(synthetic)
        platform.replace(manager_files, test_manager)
        platform.replace(prometheus_files, test_prometheus)

        def delivered() -> bool:
            contents = [m["content"] for m in _mails(mailbox)]
            return all(any(alert in content for content in contents) for alert in ALERTS)

        poll(f"emails naming {ALERTS}", delivered, MAIL_WITHIN_S, interval_s=1,
             detail=lambda: f"mails: {[m['content'][:300] for m in _mails(mailbox)]}")
        FACTS["alert email"] = (f"{', '.join(ALERTS)} by email {time.monotonic() - started:.0f}s after "
                                "the test's files reached the running Prometheus and Alertmanager")
    finally:
        if sink:
            sink.terminate()
            sink.wait(timeout=10)
        platform.remove(synthetic)
        platform.replace(test_prometheus, prometheus_files)
        platform.replace(test_manager, manager_files)
    mails = _mails(mailbox)
    recipients = manager_config["receivers"][0]["email_configs"][0]["to"]
    assert all(m["from"] == manager_config["global"]["smtp_from"] for m in mails)
    assert all(sorted(m["to"]) == sorted(r.strip() for r in recipients.split(",")) for m in mails)
    # reloaded, never restarted
    assert {c.name: platform.engine.inspect(c.name)["State"]["StartedAt"]
            for c in (prometheus, alertmanager)} == started_at


def test_the_alert_test_changes_are_explained() -> None:
    assert all(changes.ALERT_CHAIN_CHANGES.values())


@pytest.fixture(autouse=True)
def _needs_nsenter() -> None:
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter (util-linux) is missing")
