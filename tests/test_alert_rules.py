"""The alert rules Prometheus loads: valid for promtool, and each alert fires on
series that should fire it and stays quiet on series that should not.

The series and the expected alerts are written by hand in tests/promtool/*.yml
(and below for ContainerDown, whose rule depends on the stack's containers);
only the rules come from the program.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from core.edge import load_plan
from core.model import Plan
from tests.plans import prod_plan, served

PROJECT = Path(__file__).resolve().parent.parent
UNIT_TESTS = PROJECT / "tests" / "promtool"
RUNBOOK = PROJECT / "docs" / "runbook.md"
# the thresholds tests/promtool/custom_thresholds.yml is written for
CUSTOM = {"cpuPercent": 50, "diskPercent": 80, "certDays": 30, "serverErrorRatio": 0.01,
          "backupMaxAgeHours": 12}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package: prometheus)")
    return path


def rules_text(plan: Plan) -> str:
    """The rules file that prometheus.yml's rule_files points at."""
    prometheus = served(plan, "prometheus")
    uploads = {PurePosixPath(u.path): u.content for u in prometheus.uploads}
    config_path = next(p for p in uploads if p.name == "prometheus.yml")
    patterns = yaml.safe_load(uploads[config_path])["rule_files"]
    matched = [path for path in uploads for pattern in patterns
               if fnmatch.fnmatch(str(path), str(config_path.parent / pattern))]
    assert len(matched) == 1, f"rule_files {patterns} match {matched}"
    return uploads[matched[0]]


def firing_logic_only(text: str) -> str:
    """The rules without annotations: promtool compares annotations too, and the
    wording of a message is not what these tests are about."""
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(rules)


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def promtool_test(promtool: str, tmp_path: Path, rules: str, unit: str, unit_name: str = "unit.yml"):
    (tmp_path / "rules.yml").write_text(firing_logic_only(rules))
    (tmp_path / unit_name).write_text(unit)
    return run(promtool, "test", "rules", unit_name, cwd=tmp_path)


@pytest.mark.parametrize("stack", ["prod", "local", "swarm"])
def test_the_rules_file_is_valid_for_promtool(promtool, tmp_path, stack):
    rules = tmp_path / "fourlb.yml"
    rules.write_text(rules_text(load_plan(stack, PROJECT)[1]))
    result = run(promtool, "check", "rules", str(rules), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout + result.stderr)


@pytest.mark.parametrize("unit", ["host.yml", "edge.yml", "backup.yml", "backup_verify.yml",
                                  "containers.yml", "reloads.yml"])
def test_alerts_fire_and_stay_quiet_as_written(promtool, tmp_path, unit):
    result = promtool_test(promtool, tmp_path, rules_text(prod_plan()),
                           (UNIT_TESTS / unit).read_text(), unit)
    assert result.returncode == 0, result.stdout + result.stderr


def test_on_a_swarm_alerts_fire_for_each_node(promtool, tmp_path):
    result = promtool_test(promtool, tmp_path, rules_text(load_plan("swarm", PROJECT)[1]),
                           (UNIT_TESTS / "swarm_nodes.yml").read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_hosts_rules_name_no_node_and_find_no_target_gone():
    """One host scrapes static targets, which answer `up == 0` when down; its
    node-exporter's hostname is its container's, which names no node."""
    assert "MetricsTargetGone" not in alert_names(prod_plan())
    assert "MetricsTargetGone" in alert_names(load_plan("swarm", PROJECT)[1])
    host = [r for g in yaml.safe_load(rules_text(prod_plan()))["groups"] if g["name"] == "host"
            for r in g["rules"]]
    assert host and not any("node_uname_info" in r["expr"] for r in host)


def test_thresholds_come_from_the_stack_configuration(promtool, tmp_path):
    unit = (UNIT_TESTS / "custom_thresholds.yml").read_text()
    custom = prod_plan(alerting=CUSTOM)
    result = promtool_test(promtool, tmp_path, rules_text(custom), unit)
    assert result.returncode == 0, result.stdout + result.stderr
    # the same series with the default thresholds: every one of those alerts stays quiet
    defaults = promtool_test(promtool, tmp_path, rules_text(prod_plan()), unit)
    assert defaults.returncode != 0
    for alert in ("HostCpuHigh", "FilesystemAlmostFull", "CertificateExpiringSoon",
                  "ServerErrorRatioHigh", "BackupTooOld"):
        assert f"alertname: {alert}" in defaults.stdout + defaults.stderr, alert


def _verify_overdue_unit(last_check_hours_ago: int) -> str:
    """Series of a restore check that passed, `last_check_hours_ago` before the evaluation."""
    end = last_check_hours_ago + 10
    return yaml.safe_dump({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1h",
        "tests": [{
            "interval": "1h",
            "input_series": [
                {"series": 'fourlb_backup_verify_success{job="node-exporter"}', "values": f"1x{end}"},
                {"series": 'fourlb_backup_verify_last_run_timestamp_seconds{job="node-exporter"}',
                 "values": f"{10 * 3600}x{end}"}],
            "alert_rule_test": [{"eval_time": f"{end}h", "alertname": "BackupVerifyTooOld",
                                 "exp_alerts": [{"exp_labels": {"severity": "warning",
                                                                "job": "node-exporter"}}]}],
        }],
    })


@pytest.mark.parametrize("schedule, overdue, on_time", [
    ("45 4 * * 0", 175, 173),     # weekly: 168 hours between checks, plus 6
    ("45 4 * * *", 31, 29),       # daily: 24 + 6
    ("0 5 1 * *", 751, 749),      # monthly: the longest month, 31 days, + 6
])
def test_a_restore_check_is_overdue_after_its_schedules_longest_gap_plus_slack(
        promtool, tmp_path, schedule, overdue, on_time):
    rules = rules_text(prod_plan(backup={"verifySchedule": schedule}))
    fired = promtool_test(promtool, tmp_path, rules, _verify_overdue_unit(overdue))
    assert fired.returncode == 0, fired.stdout + fired.stderr
    quiet = promtool_test(promtool, tmp_path, rules, _verify_overdue_unit(on_time))
    assert quiet.returncode != 0 and "BackupVerifyTooOld" in quiet.stdout + quiet.stderr


def _last_seen(stack: str, service: str, docker_name: str) -> dict:
    labels = (f'container_label_fourlb_stack="{stack}",container_label_fourlb_service="{service}",'
              f'name="{docker_name}"')
    return {"series": f"container_last_seen{{{labels}}}", "values": "1x20"}


def test_container_down_names_the_missing_container_of_this_stack(promtool, tmp_path):
    plan = prod_plan()
    names = [c.name for c in plan.containers]
    assert "redis" in names and "jsr-solutions-prod" in names
    series = [_last_seen("prod", name, name) for name in names if name not in ("redis", "jsr-solutions-prod")]
    # a start-first container runs under its name plus a suffix: still itself
    series.append(_last_seen("prod", "jsr-solutions-prod", "jsr-solutions-prod-3fa9c1"))
    # another stack's redis on the same host does not stand in for this one's
    series.append(_last_seen("dev", "redis", "redis"))
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ContainerDown", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "ContainerDown", "exp_alerts": [{"exp_labels": {
                    "severity": "critical", "container_label_fourlb_stack": "prod",
                    "container_label_fourlb_service": "redis"}}]},
            ],
        }],
    }
    result = promtool_test(promtool, tmp_path, rules_text(plan), yaml.safe_dump(unit))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_container_running_keeps_container_down_quiet(promtool, tmp_path):
    plan = prod_plan()
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [_last_seen("prod", c.name, c.name) for c in plan.containers],
            "alert_rule_test": [{"eval_time": "15m", "alertname": "ContainerDown", "exp_alerts": []}],
        }],
    }
    result = promtool_test(promtool, tmp_path, rules_text(plan), yaml.safe_dump(unit))
    assert result.returncode == 0, result.stdout + result.stderr


def alert_names(plan: Plan) -> set[str]:
    rules = yaml.safe_load(rules_text(plan))
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_only_what_the_stack_runs_is_watched():
    everything = alert_names(prod_plan())
    assert {"HostCpuHigh", "FilesystemAlmostFull", "ContainerDown", "ContainerRestartLoop",
            "ContainerMetricsBlind",
            "CertificateExpiringSoon", "ServerErrorRatioHigh", "BackupFailed",
            "BackupTooOld", "BackupStatusMissing", "BackupVerifyFailed", "BackupVerifyTooOld",
            "BackupVerifyStatusMissing", "MetricsTargetDown", "PrometheusConfigReloadFailed",
            "AlertmanagerConfigReloadFailed"} == everything
    without = alert_names(prod_plan(services={
        "node-exporter": {"enabled": False}, "cadvisor": {"enabled": False},
        "backup": {"enabled": False}}))
    assert without == {"CertificateExpiringSoon", "ServerErrorRatioHigh", "MetricsTargetDown",
                       "PrometheusConfigReloadFailed", "AlertmanagerConfigReloadFailed"}


@pytest.mark.parametrize("stack", ["prod", "swarm"])
def test_every_alert_has_its_runbook_section(stack):
    headings = {line[4:].strip() for line in RUNBOOK.read_text().splitlines() if line.startswith("### ")}
    rules = yaml.safe_load(rules_text(load_plan(stack, PROJECT)[1]))
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] in headings, f"docs/runbook.md has no '### {rule['alert']}'"
            assert rule["annotations"]["runbook"] == f"docs/runbook.md#{rule['alert'].lower()}"
