"""Open WebUI and the AI backend reach the Ollama of the host (fourlb:ollama.runsOn
host, the default): the address their /etc/hosts gives host.docker.internal is
one where, from their own network namespace, an Ollama API on the host answers.

The test's Docker daemon has no default bridge, so its host-gateway is the
address .ci/start-dockerd gives it (--host-gateway-ip); on a real host it is the
default bridge's gateway. The stand-in listens on that address only, as the
README tells the owner's Ollama to.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Iterator

import pytest

from core.ollama import CLIENTS, HOST_NAME, URL_ENV

from .declared import Declared
from .ollama_standin import MODEL, OllamaStandIn, serving
from .platform import Platform

GET_FROM_NAMESPACE = """
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
    print(json.dumps(json.load(answer)))
"""


def _url(stacks: dict[str, Declared], client: str) -> urllib.parse.ParseResult:
    (url,) = [e.split("=", 1)[1] for e in stacks["prod"].container(client).envs
              if e.startswith(URL_ENV + "=")]
    return urllib.parse.urlparse(url)


def _hosts_entry(platform: Platform, container: str) -> str:
    hosts = Path(platform.engine.inspect(container)["HostsPath"]).read_text()
    found = [line.split()[0] for line in hosts.splitlines() if HOST_NAME in line.split()[1:]]
    assert found, f"{container}: no {HOST_NAME} in its /etc/hosts:\n{hosts}"
    return found[-1]


@pytest.fixture(scope="module")
def host_ollama(platform: Platform, stacks: dict[str, Declared]) -> Iterator[OllamaStandIn]:
    url = _url(stacks, CLIENTS[0])
    address = _hosts_entry(platform, stacks["prod"].container(CLIENTS[0]).name)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pytest.fail(f"host-gateway resolved to {address!r}: this Docker daemon has no host gateway "
                    "(no default bridge, no --host-gateway-ip); start it with .ci/start-dockerd")
    yield from serving(address, url.port or 80)


@pytest.mark.parametrize("client", CLIENTS)
def test_the_ai_service_reaches_the_ollama_of_the_host(platform: Platform, stacks: dict[str, Declared],
                                                       host_ollama: OllamaStandIn, client: str) -> None:
    url = _url(stacks, client)
    assert url.hostname == HOST_NAME
    container = stacks["prod"].container(client).name
    address = _hosts_entry(platform, container)
    assert address == host_ollama.address
    pid = platform.engine.inspect(container)["State"]["Pid"]
    done = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", GET_FROM_NAMESPACE,
         f"http://{address}:{url.port}/api/tags"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{client}: {done.stderr}"
    assert [m["name"] for m in json.loads(done.stdout)["models"]] == [MODEL]
    assert ("GET", "/api/tags") in host_ollama.requests
