"""Everyday changes, while requests run through the real Traefik: each reaches the
running edge or monitoring by replacing only its writer (core/live_config.py),
never the service. The program runs under mocks with the change; its new writer
replaces the old one the way `pulumi up` does (stop-first), and then:

- a rate limit: 0 failed requests on another hostname, Traefik's process is the
  same one, the new limit is in force (429 at the new threshold);
- an admin allow-list and a new admin password: 0 failed requests elsewhere, the
  admin hostnames refuse what the new rules refuse;
- a client site and an alert threshold: Prometheus is not restarted, and its
  loaded rules are the new ones.

Then Traefik itself is replaced (an image bump or a static change): the seconds
of refused connections are printed. Everything is put back afterwards.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from typing import Optional

from config.loading import StackFile
from core.catalog import PROMETHEUS_NET
from core.live_config import writer_name

from . import changes
from .conftest import FACTS, provided_secrets
from .declared import Declared, DeclaredContainer, declared, dynamic_writer, traefik_files
from .harness import Edge
from .load import Load
from .platform import Platform

STACK = "prod"
LOAD_HOST = "jsr.4lb.ca"  # dev's site: no setting changed here touches it
API_HOST, API_PATH = "ai.4lb.ca", "/api/reload-probe"
ADMIN_HOST, ADMIN_PATH = "prometheus.4lb.ca", "/-/healthy"  # a page only Prometheus serves
RELOADED_WITHIN_S = 20
REFUSED_PROBES = 3000  # connection attempts while Traefik is replaced, 10 ms apart at most


def _changed(deploy, secrets: Optional[dict[str, str]] = None, **change) -> Declared:
    """What the program declares with `change` (deploy's overrides) and these secrets
    on top of the suite's own."""
    return declared(deploy(STACK, secrets={**(provided_secrets(STACK) or {}), **(secrets or {})},
                           **change))


def _writer(deploy, service: str, **change) -> DeclaredContainer:
    return _changed(deploy, **change).container(writer_name(service))


def _edge_writer(deploy, edge: Edge, **change) -> DeclaredContainer:
    """traefik-config as the changed program declares it, with the changes for here."""
    run = _changed(deploy, **change)
    tree = changes.rewrite_for_here(changes.production_tree(*traefik_files(run)), edge.here)
    return dynamic_writer(run, tree)


class _Running:
    """The writer of a service currently running, put back at the end."""

    def __init__(self, platform: Platform, original: DeclaredContainer):
        self.platform, self.original, self.current = platform, original, original

    def become(self, writer: DeclaredContainer) -> None:
        self.platform.replace(self.current, writer)
        self.current = writer

    def restore(self) -> None:
        if self.current is not self.original:
            self.become(self.original)


def _under_load(edge: Edge, host: str, work) -> Load:
    load = Load(edge, host)
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()
    try:
        edge.wait_for(f"{host} answering", lambda: len(load.answers) >= 20, 15)
        work()
        time.sleep(1)
    finally:
        load.stop.set()
        worker.join(timeout=10)
    return load


def _burst(edge: Edge, count: int) -> list[int]:
    return [edge.get(API_HOST, API_PATH).status for _ in range(count)]


def test_edge_settings_reload_without_a_restart(platform: Platform, stacks: dict[str, Declared],
                                                 edge: Edge, deploy) -> None:
    running = _Running(platform, _edge_writer(deploy, edge))
    pid = edge.traefik.process.pid
    try:
        # a rate limit: the AI API's, down to 6 a minute with a burst of 1
        limited = _edge_writer(deploy, edge, overrides={"fourlb:rateLimits": json.dumps(
            {"aiApiPerMinute": 6, "defaultPerMinute": 600})})
        load = _under_load(edge, LOAD_HOST, lambda: running.become(limited))
        edge.wait_for("the new AI API limit in force",
                      lambda: _burst(edge, 3)[1:] == [429, 429], RELOADED_WITHIN_S, interval_s=2)
        FACTS["reload, rate limit"] = f"{len(load.failures)} failed of {len(load.answers)} requests"
        assert not load.failures and len(load.answers) >= 50, load.failures[:5]

        # an allow-list that excludes this machine, and a new admin password
        allowed = {"fourlb:adminAllowIps": json.dumps(["149.56.10.0/24"])}
        locked = _edge_writer(deploy, edge, overrides=allowed,
                              secrets={"fourlb:adminPassword": "a-new-admin-password"})
        load = _under_load(edge, LOAD_HOST, lambda: running.become(locked))
        edge.wait_for(f"{ADMIN_HOST} refusing 127.0.0.1",
                      lambda: edge.get(ADMIN_HOST, ADMIN_PATH, auth=edge.admin).status == 403,
                      RELOADED_WITHIN_S, interval_s=1)
        FACTS["reload, allow-list and password"] = f"{len(load.failures)} failed of {len(load.answers)} requests"
        assert not load.failures, load.failures[:5]
        # the password alone: the old one refused, the new one accepted
        renewed = _edge_writer(deploy, edge, secrets={"fourlb:adminPassword": "a-new-admin-password"})
        running.become(renewed)
        edge.wait_for(f"{ADMIN_HOST} with the new password",
                      lambda: edge.get(ADMIN_HOST, ADMIN_PATH, auth=(edge.admin[0], "a-new-admin-password")).status
                      == 200, RELOADED_WITHIN_S, interval_s=1)
        assert edge.get(ADMIN_HOST, ADMIN_PATH, auth=edge.admin).status == 401
        assert edge.traefik.process.pid == pid and edge.traefik.running(), "Traefik was restarted"
    finally:
        running.restore()
    edge.wait_for(f"{ADMIN_HOST} with the original password",
                  lambda: edge.get(ADMIN_HOST, ADMIN_PATH, auth=edge.admin).status == 200, RELOADED_WITHIN_S)
    print(f"\nreloads: rate limit {FACTS['reload, rate limit']}; allow-list and password "
          f"{FACTS['reload, allow-list and password']}; Traefik pid {pid} throughout")


def _prometheus_rules(platform: Platform) -> str:
    """The queries of the rules Prometheus has loaded, one per line."""
    address = platform.address("prometheus", PROMETHEUS_NET)
    with urllib.request.urlopen(f"http://{address}:9090/api/v1/rules", timeout=10) as response:
        groups = json.loads(response.read())["data"]["groups"]
    return "\n".join(rule["query"] for group in groups for rule in group["rules"])


def test_monitoring_changes_reload_prometheus_without_a_restart(
        platform: Platform, stacks: dict[str, Declared], deploy) -> None:
    prometheus = stacks[STACK].container("prometheus")
    running = _Running(platform, stacks[STACK].container("prometheus-config"))
    started_at = platform.engine.inspect(prometheus.name)["State"]["StartedAt"]
    values = StackFile(STACK).values
    try:
        sites = {**values["sites"], "toilettage": {
            "image": "toilettage-web:1.0.0", "hostnames": ["shop.jsr-solutions.ca"]}}
        running.become(_writer(deploy, "prometheus", overrides={"fourlb:sites": json.dumps(sites)}))
        platform.wait_healthy([prometheus], 30)
        # the site's container is now expected: ContainerDown names it
        poll_rules(platform, lambda text: "toilettage" in text)

        alerting = {**values["alerting"], "cpuPercent": 75}
        running.become(_writer(deploy, "prometheus", overrides={"fourlb:alerting": json.dumps(alerting)}))
        poll_rules(platform, lambda text: "> 75" in text and "toilettage" not in text)
        code, output = platform.engine.exec(prometheus.name, [
            "promtool", "check", "rules", "/etc/prometheus/rules/fourlb.yml"])
        assert code == 0, output
        assert b"SUCCESS" in output
    finally:
        running.restore()
    assert platform.engine.inspect(prometheus.name)["State"]["StartedAt"] == started_at, \
        "Prometheus was restarted"


def poll_rules(platform: Platform, condition) -> None:
    deadline = time.monotonic() + RELOADED_WITHIN_S
    text = ""
    while time.monotonic() < deadline:
        text = _prometheus_rules(platform)
        if condition(text):
            return
        time.sleep(1)
    raise AssertionError(f"Prometheus's loaded rules did not change within {RELOADED_WITHIN_S}s: {text[:500]}")


def _refused_seconds(edge: Edge, replace) -> tuple[float, int]:
    """Seconds between the first refused connection to the HTTPS port and the
    first accepted one after it, while `replace` runs; and how many were refused."""
    first_refused = None
    refused = 0
    thread = threading.Thread(target=replace)
    thread.start()
    try:
        for _ in range(REFUSED_PROBES):
            try:
                with socket.create_connection(("127.0.0.1", edge.here.websecure_port), timeout=1):
                    if first_refused is not None:
                        return time.monotonic() - first_refused, refused
            except OSError:
                refused += 1
                first_refused = first_refused or time.monotonic()
            time.sleep(0.01)
    finally:
        thread.join(timeout=60)
    raise AssertionError("Traefik did not come back within the probes")


def test_replacing_traefik_itself_is_measured(edge: Edge, run_dir) -> None:
    """One host cannot run two Traefiks on 80/443: the old one stops, the new one
    starts (stop-first). The gap is the new process's start, with the image
    already on the host (pulumi pulls or builds it before replacing)."""
    def replace() -> None:
        edge.traefik.stop()
        edge.traefik.start(pid_file=run_dir / "traefik.pid")

    seconds, refused = _refused_seconds(edge, replace)
    edge.traefik.wait_ping(timeout_s=15)
    edge.wait_for(f"{LOAD_HOST} served again", lambda: edge.get(LOAD_HOST).status == 200, 30)
    FACTS["traefik replaced"] = f"{seconds:.2f}s of refused connections ({refused} refused probes)"
    print(f"\nTraefik replaced: {FACTS['traefik replaced']}")
    assert refused, "no connection was refused: the measurement did not see the gap"
