"""HTTP(S) to the test Traefik on 127.0.0.1, with the SNI and Host of a public name.

Certificates are not verified: Traefik serves its default self-signed one here.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Optional

LOOPBACK = "127.0.0.1"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer_certificate: Optional[bytes] = None  # DER

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class _SniConnection(http.client.HTTPSConnection):
    def __init__(self, port: int, sni: str, timeout: float):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(LOOPBACK, port, timeout=timeout, context=context)
        self._sni = sni
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._sni)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _exchange(connection: http.client.HTTPConnection, host: str, path: str,
              auth: Optional[tuple[str, str]]) -> Response:
    headers = {"Host": host, "User-Agent": "fourlb-e2e", "Connection": "close"}
    if auth:
        headers["Authorization"] = _basic(*auth)
    try:
        connection.request("GET", path, headers=headers)
        certificate = None
        if isinstance(connection.sock, ssl.SSLSocket):  # before the response closes it
            certificate = connection.sock.getpeercert(binary_form=True)
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body, certificate)
    finally:
        connection.close()


def https_get(port: int, host: str, path: str = "/", auth: Optional[tuple[str, str]] = None,
              timeout: float = TIMEOUT_S) -> Response:
    return _exchange(_SniConnection(port, host, timeout), host, path, auth)


def http_get(port: int, host: str, path: str = "/", timeout: float = TIMEOUT_S) -> Response:
    return _exchange(http.client.HTTPConnection(LOOPBACK, port, timeout=timeout), host, path, None)
