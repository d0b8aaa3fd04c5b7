"""An SMTP server for the alert test: aiosmtpd on 127.0.0.1 inside the network
namespace it is started in (the alertmanager container's, through nsenter), so
that Alertmanager reaches it at 127.0.0.1 as it would a relay on its own host.

Accepts AUTH PLAIN with exactly the login and password given, and appends each
message, as one JSON line, to the output file.

    python smtp_sink.py PORT OUTPUT LOGIN PASSWORD_FILE
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    port, output, login, password_file = sys.argv[1:5]
    password = Path(password_file).read_bytes()

    def authenticate(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (login.encode(), password)
        return AuthResult(success=ok)

    class Mailbox:
        async def handle_DATA(self, server, session, envelope):
            with open(output, "a") as handle:
                handle.write(json.dumps({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                         "content": envelope.content.decode(errors="replace")}) + "\n")
            return "250 OK"

    controller = Controller(Mailbox(), hostname="127.0.0.1", port=int(port), authenticator=authenticate,
                            auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    print("ready", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait(600)  # bounded: never outlives a test run
    controller.stop()


if __name__ == "__main__":
    main()
