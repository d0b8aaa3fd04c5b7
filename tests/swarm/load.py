"""Run inside the lab's client namespace: HTTPS requests to one edge node's
address for one hostname (SNI and Host), in a loop bounded in count and time,
until a stop file appears. Prints one JSON object: every answer, in order (the
task that answered, from the stand-in's X-Standin header, or the error).

usage: load.py ADDRESS HOSTNAME PATH STOP_FILE MAX_SECONDS [MAX_REQUESTS [INTERVAL_S [USER:PASSWORD]]]
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import sys
import time

TIMEOUT_S = 5


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to `address` for `hostname`: the name in SNI and Host, whatever DNS says."""

    def __init__(self, address: str, hostname: str):
        super().__init__(hostname, 443, timeout=TIMEOUT_S, context=ssl._create_unverified_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, 443), timeout=TIMEOUT_S)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def ask(address: str, hostname: str, path: str, auth: str = "") -> tuple[str, dict[str, str]]:
    """What answered (a task's name, an HTTP status, or the error) and its headers."""
    connection = _Pinned(address, hostname)
    headers = {"Connection": "close"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        headers = dict(response.getheaders())
        if response.status != 200:
            return f"HTTP {response.status}", headers
        return "task " + (response.getheader("X-Standin") or "?"), headers
    except OSError as error:
        return f"{type(error).__name__}: {error}", {}
    finally:
        connection.close()


def main() -> None:
    address, hostname, path, stop_file, max_seconds = sys.argv[1:6]
    max_requests = int(sys.argv[6]) if len(sys.argv) > 6 else 5000
    interval_s = float(sys.argv[7]) if len(sys.argv) > 7 else 0.02
    auth = sys.argv[8] if len(sys.argv) > 8 else ""
    deadline = time.monotonic() + float(max_seconds)
    answers: list[str] = []
    headers: dict[str, str] = {}
    while (not os.path.exists(stop_file) and time.monotonic() < deadline
           and len(answers) < max_requests):
        answer, headers = ask(address, hostname, path, auth)
        answers.append(answer)
        time.sleep(interval_s)
    print(json.dumps({"answers": answers, "last_headers": headers}))


if __name__ == "__main__":
    main()
