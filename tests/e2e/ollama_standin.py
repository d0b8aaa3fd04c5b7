"""An Ollama API on the test host: no model can run here, so a server answers
the few calls a client of Ollama makes, with one small model, and records
each request path so that a test can tell who asked what.

`/api/tags` and `/api/version` are what Open WebUI and the AI backend ask to list
models; `/api/chat` answers with one streamed message, as Ollama streams
(newline-delimited JSON, the last object with `"done": true`).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from core.ollama import CLIENTS, HOST_NAME, URL_ENV

if TYPE_CHECKING:
    from .declared import Declared
    from .platform import Platform

MODEL = "fourlb-test:0.1b"
ANSWER = "The stand-in Ollama of the fourlb tests answers."
_TAGS = {"models": [{
    "name": MODEL, "model": MODEL, "modified_at": "2026-01-01T00:00:00Z", "size": 1000,
    "digest": "0" * 64,
    "details": {"format": "gguf", "family": "test", "families": ["test"],
                "parameter_size": "0.1B", "quantization_level": "Q4_0", "parent_model": ""},
}]}


@dataclass
class OllamaStandIn:
    address: str
    port: int
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


def _handler(record: OllamaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the requests are recorded
            pass

        def _json(self, body: object, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            record.requests.append(("GET", self.path))
            if self.path == "/api/tags":
                self._json(_TAGS)
            elif self.path == "/api/version":
                self._json({"version": "0.17.4"})
            elif self.path == "/":
                self._json("Ollama is running")
            else:
                self._json({"error": f"not served by the stand-in: {self.path}"}, 404)

        def do_POST(self) -> None:
            record.requests.append(("POST", self.path))
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/api/chat":
                self._json({"error": f"not served by the stand-in: {self.path}"}, 404)
                return
            lines = [{"model": request.get("model", MODEL), "created_at": "2026-01-01T00:00:00Z",
                      "message": {"role": "assistant", "content": ANSWER}, "done": False},
                     {"model": request.get("model", MODEL), "created_at": "2026-01-01T00:00:01Z",
                      "message": {"role": "assistant", "content": ""}, "done": True,
                      "done_reason": "stop", "total_duration": 1, "eval_count": 1}]
            if request.get("stream", True) is False:
                self._json({**lines[0], "done": True, "done_reason": "stop"})
                return
            data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def serving(address: str, port: int) -> Iterator[OllamaStandIn]:
    """A generator for a fixture: the stand-in listens on `address:port` until closed."""
    record = OllamaStandIn(address, port)
    server = ThreadingHTTPServer((address, port), _handler(record))
    thread = threading.Thread(target=server.serve_forever, name="ollama-standin", daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def ollama_url(stacks: "dict[str, Declared]", client: str) -> urllib.parse.ParseResult:
    """Where the plan tells `client` (a prod container) Ollama is."""
    return urllib.parse.urlparse(stacks["prod"].container(client).env(URL_ENV))


def hosts_entry(platform: "Platform", container: str) -> str:
    """The address the container's /etc/hosts gives host.docker.internal."""
    hosts = Path(platform.engine.inspect(container)["HostsPath"]).read_text()
    found = [line.split()[0] for line in hosts.splitlines() if HOST_NAME in line.split()[1:]]
    assert found, f"{container}: no {HOST_NAME} in its /etc/hosts:\n{hosts}"
    return found[-1]


def on_the_host_gateway(platform: "Platform", stacks: "dict[str, Declared]") -> Iterator[OllamaStandIn]:
    """The stand-in where prod's AI services look for the host's Ollama: the
    host-gateway address of their /etc/hosts, the port of their URL."""
    url = ollama_url(stacks, CLIENTS[0])
    address = hosts_entry(platform, stacks["prod"].container(CLIENTS[0]).name)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise AssertionError(
            f"host-gateway resolved to {address!r}: this Docker daemon has no host gateway (no "
            "default bridge, no --host-gateway-ip); start it with .ci/start-dockerd") from None
    yield from serving(address, url.port or 80)
