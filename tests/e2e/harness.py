"""The running test edge: Traefik's ports, its API and log, and requests through it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from . import client
from .changes import Here
from .polling import poll
from .traefik_process import Traefik

LogFilter = Callable[[dict[str, Any]], bool]
PROBLEM_LEVELS = ("error", "fatal", "panic")
# keys by which Traefik ties a log line to dynamic configuration
CONFIG_KEYS = ("routerName", "serviceName", "middlewareName", "entryPointName", "container")


@dataclass
class Edge:
    traefik: Traefik
    here: Here
    admin: tuple[str, str]  # user, password
    version: str
    dashboard_host: str  # the router to api@internal
    # log lines a test provoked on purpose (see test_broken_label)
    provoked: list[LogFilter] = field(default_factory=list)

    # --- requests --------------------------------------------------------------

    def get(self, host: str, path: str = "/", auth: Optional[tuple[str, str]] = None) -> client.Response:
        return client.https_get(self.here.websecure_port, host, path, auth=auth)

    def get_plain(self, host: str, path: str = "/") -> client.Response:
        return client.http_get(self.here.web_port, host, path)

    def api(self, path: str) -> Any:
        """Traefik's API, through the dashboard's own router and credentials."""
        response = self.get(self.dashboard_host, f"/api/{path}", auth=self.admin)
        assert response.status == 200, f"GET /api/{path}: {response.status} {response.text[:200]}"
        return json.loads(response.body)

    def wait_for(self, what: str, condition: Callable[[], Any], timeout_s: float,
                 interval_s: float = 0.5) -> Any:
        return poll(what, condition, timeout_s, interval_s,
                    detail=lambda: "traefik log tail:\n" + self.traefik.log_tail())

    def docker_routers(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.api("http/routers?per_page=1000") if r.get("provider") == "docker"}

    def wait_routers(self, names: Iterable[str], timeout_s: float) -> None:
        wanted = {f"{name}@docker" for name in names}

        def ready() -> bool:
            routers = self.docker_routers()
            return all(routers.get(name, {}).get("status") == "enabled" for name in wanted)

        self.wait_for(f"routers {sorted(wanted)} enabled", ready, timeout_s)

    # --- log -------------------------------------------------------------------

    def acme_unreachable(self, entry: dict[str, Any]) -> bool:
        """The ACME client failing to reach the refused CA of changes.TRAEFIK_CHANGES."""
        return (entry.get("level") == "error" and entry.get("providerName") == "le.acme"
                and self.here.acme_ca in str(entry.get("error", "")))

    def problems(self) -> list[dict[str, Any]]:
        """Log lines that are errors, or warnings tied to routing configuration,
        other than the expected ACME ones and those a test provoked."""
        found = []
        for entry in self.traefik.log_entries():
            level = entry.get("level")
            serious = level in PROBLEM_LEVELS or level == "unparsed" or (
                level == "warn" and any(key in entry for key in CONFIG_KEYS))
            if serious and not self.acme_unreachable(entry) and not any(f(entry) for f in self.provoked):
                found.append(entry)
        return found
