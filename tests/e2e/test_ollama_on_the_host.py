"""Open WebUI and the AI backend reach the Ollama of the host (fourlb:ollama.runsOn
host, the default): the address their /etc/hosts gives host.docker.internal is
one where, from their own network namespace, an Ollama API on the host answers.

The test's Docker daemon has no default bridge, so its host-gateway is the
address .ci/start-dockerd gives it (--host-gateway-ip); on a real host it is the
default bridge's gateway. The stand-in listens on that address only, as the
README tells the owner's Ollama to.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.ollama import CLIENTS, HOST_NAME

from .declared import Declared
from .ollama_standin import MODEL, OllamaStandIn, hosts_entry, ollama_url
from .platform import Platform

GET_FROM_NAMESPACE = """
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
    print(json.dumps(json.load(answer)))
"""


@pytest.mark.parametrize("client", CLIENTS)
def test_the_ai_service_reaches_the_ollama_of_the_host(platform: Platform, stacks: dict[str, Declared],
                                                       host_ollama: OllamaStandIn, client: str) -> None:
    url = ollama_url(stacks, client)
    assert url.hostname == HOST_NAME
    container = stacks["prod"].container(client).name
    address = hosts_entry(platform, container)
    assert address == host_ollama.address
    pid = platform.engine.inspect(container)["State"]["Pid"]
    done = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", GET_FROM_NAMESPACE,
         f"http://{address}:{url.port}/api/tags"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{client}: {done.stderr}"
    assert [m["name"] for m in json.loads(done.stdout)["models"]] == [MODEL]
    assert ("GET", "/api/tags") in host_ollama.requests
