"""Where Open WebUI and the AI backend find Ollama (`fourlb:ollama`).

Open WebUI's image looks for Ollama at host.docker.internal when it is given no
OLLAMA_BASE_URL (Open WebUI 0.6.5 config.py), a name Docker on Linux resolves
only when the container is given it. Each client gets the URL:

- `runsOn: host` (the default, the seed's case): Ollama is installed on the
  Docker host. The clients get host.docker.internal as an extra /etc/hosts line
  naming Docker's host-gateway address, and reach it through their network that
  leads out of the host (an internal network has no route, not even to the
  host). Ollama must listen on that address and the host's firewall let the
  Docker networks in (README).
- `runsOn: service`: the plan runs Ollama's image (catalog `ollama`), on a
  network of its own with the clients and one that leads out for `ollama pull`.

The AI backend is the platform's own software: it reads OLLAMA_BASE_URL, the
name Open WebUI reads, so that one URL serves both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from config.models import StackConfig

from . import catalog
from .model import Container, with_env_default

SERVICE = "ollama"
CLIENTS = ("open-webui", "ai-orchestrator-backend")
URL_ENV = "OLLAMA_BASE_URL"
HOST_NAME = "host.docker.internal"
# Docker's name for the host's address as seen from its containers (the default
# bridge's gateway, or the daemon's --host-gateway-ip)
HOST_GATEWAY = "host-gateway"
SERVICE_PORT = 11434


def in_plan(config: StackConfig) -> bool:
    """Whether the plan runs Ollama itself."""
    return config.ollama.runs_on == "service"


def base_url(config: StackConfig) -> str:
    if in_plan(config):
        return f"http://{SERVICE}:{SERVICE_PORT}"
    return f"http://{HOST_NAME}:{config.ollama.host_port}"


def with_ollama(containers: Iterable[Container], config: StackConfig) -> list[Container]:
    """The clients told where Ollama is; the service given its GPUs."""
    return [_client(c, config) if c.name in CLIENTS
            else replace(c, gpus=config.ollama.gpus) if c.name == SERVICE
            else c for c in containers]


def _client(container: Container, config: StackConfig) -> Container:
    container = with_env_default(container, URL_ENV, base_url(config))
    if in_plan(config):
        return replace(container, networks=container.networks + (catalog.OLLAMA_NET,))
    if not container.egress:
        # every client of the catalog leads out of the host; one that did not
        # could not reach the host's address either
        raise ValueError(f"{container.name}: Ollama on the host needs a network that leads "
                         "out of the host (ServiceSpec.egress)")
    return replace(container, extra_hosts=container.extra_hosts + ((HOST_NAME, HOST_GATEWAY),))
