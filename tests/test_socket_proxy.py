"""The Docker socket proxy's configuration (core/socket_proxy.py) and the policy
that refuses a proxy reading inside containers (policy/rules.py).

The policy reads HAProxy's `http-request` rules itself; its reading is checked
against HAProxy (Debian's, the program of the engine suite's proxy): for every
request below, the program's configuration and the image's own answer as the
policy says. The engine suite sends them to the deployed proxy, in front of the
real Docker socket (tests/engine: Traefik routes through it, the archive of a
secret file is refused)."""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from core.edge import load_plan
from core.socket_proxy import TEMPLATE_PATH, haproxy_template
from policy import rules
from policy.rules import FORBIDDEN_REQUESTS, haproxy_allows
from tests.test_policy import Resource, container

IMAGE_TEMPLATE = Path(__file__).parent / "engine" / "socket_proxy" / "haproxy.cfg.template"
# what Traefik's docker provider and cAdvisor send (core/socket_proxy.py)
NEEDED = (("HEAD", "/_ping"), ("GET", "/_ping"), ("GET", "/v1.51/version"), ("GET", "/v1.41/info"),
          ("GET", "/v1.51/containers/json"), ("GET", "/v1.51/containers/3f2a9c/json"),
          ("GET", "/v1.51/containers/grafana/json"), ("GET", "/v1.51/events"))
# near misses of what is needed
OTHERS = (("GET", "/v1.51/containers/3f2a9c/json/../archive"), ("GET", "/v1.51/containers/../json"),
          ("GET", "/v1.51/containers/3f2a9c/top"), ("GET", "/v1.51/containers/3f2a9c/stats"),
          ("GET", "/v1.51/images/json"), ("GET", "/v1.51/networks"), ("GET", "/v1.51/volumes"),
          ("DELETE", "/v1.51/containers/3f2a9c"), ("POST", "/v1.51/containers/3f2a9c/kill"),
          ("PUT", "/v1.51/containers/3f2a9c/archive"), ("GET", "/v1.51/services"))


def proxy_container(uploads: list[dict]) -> Resource:
    return container("docker-socket-proxy", uploads=uploads)


def test_the_program_uploads_a_configuration_that_passes_the_policy():
    _, plan = load_plan("prod")
    proxy = plan.container("docker-socket-proxy")
    uploads = [{"file": u.path, "content": u.content} for u in proxy.uploads]
    assert rules.check_socket_proxy(proxy_container(uploads)) == []
    assert not [e for e in proxy.env if e[0] in ("CONTAINERS", "EXEC", "POST")]


def test_the_images_own_configuration_is_refused():
    refused = rules.check_socket_proxy(proxy_container([]))
    assert refused and "image's own configuration" in refused[0]
    uploaded = rules.check_socket_proxy(proxy_container(
        [{"file": TEMPLATE_PATH, "content": IMAGE_TEMPLATE.read_text()}]))
    assert "docker-socket-proxy: its configuration lets GET /v1.41/containers/postgres/archive through" \
        in uploaded


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands for the Docker socket: 200 to anything HAProxy passes on."""

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def haproxy_answers(template: str, backend_port: int, tmp_path: Path,
                    requests: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], int]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed (.ci/install-system-packages)")
        pytest.skip("haproxy is not installed (Debian package: haproxy)")
    port = _free_port()
    config = tmp_path / "haproxy.cfg"
    # what the image's entrypoint does with the template: the bind line
    config.write_text(template.replace("${BIND_CONFIG}", f"127.0.0.1:{port}")
                      .replace("errorfile", "# errorfile"))
    env = {**os.environ, "SOCKET_PATH": f"127.0.0.1:{backend_port}", "LOG_LEVEL": "info",
           # the image's switches, all on: the worst case the policy assumes
           **{switch: "1" for switch in ("CONTAINERS", "EVENTS", "EXEC", "POST", "IMAGES", "INFO",
                                         "NETWORKS", "PING", "SECRETS", "SERVICES", "VERSION",
                                         "VOLUMES", "ALLOW_RESTARTS")}}
    process = subprocess.Popen([haproxy, "-db", "-f", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "haproxy did not listen within 10 s"
                time.sleep(0.05)
        statuses = {}
        for method, path in requests:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(method, path)
            statuses[(method, path)] = connection.getresponse().status
            connection.close()
        return statuses
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("which", ["program", "image"])
def test_the_policy_reads_the_configuration_as_haproxy_does(which, backend, tmp_path):
    template = haproxy_template() if which == "program" else IMAGE_TEMPLATE.read_text()
    requests = NEEDED + OTHERS + FORBIDDEN_REQUESTS
    statuses = haproxy_answers(template, backend, tmp_path, requests)
    assert {r: statuses[r] in (200, 404) for r in requests} == {
        r: haproxy_allows(template, *r) for r in requests}
    if which == "program":
        assert all(statuses[r] == 200 for r in NEEDED), statuses
        assert all(statuses[r] == 403 for r in OTHERS + FORBIDDEN_REQUESTS), statuses
