"""The stand-in image: every container of the plan runs it instead of its real image.

`FROM scratch` with the static busybox only: nothing to pull. The container
listens on its service port and answers every request with its own Docker name,
so a test can tell which container Traefik reached. The port and the name come
from one extra file, `/standin/listen` (`<port> <name>`), written with the
container's uploads; env, command and labels stay the program's own.

The program's health checks run unchanged: busybox provides `wget`, and the
other tools they call (`curl`, `traefik healthcheck`, `cscli`, `pg_isready`,
`redis-cli`, `bash -c '... /dev/tcp/...'`) are small scripts that ask the
stand-in's own port, the same question the real tool asks its own server.
A check calling a tool not provided here (e.g. `pgrep`) fails and leaves its
container unhealthy: only containers Traefik routes must be healthy, and the
tests assert that they are.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Optional

TAG = "fourlb-e2e-standin:latest"
LISTEN_FILE = "/standin/listen"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin
ENTRYPOINT ["/standin/serve"]
"""

_SELF_URL = 'read -r port name < /standin/listen; url="http://127.0.0.1:$port"'

SCRIPTS: dict[str, str] = {
    # Grafana's image starts with /run.sh, and so does the program's start script
    # of Grafana (core/passwords.py) once it is done: here it starts the stand-in
    "run.sh": """\
#!/bin/sh
exec /standin/serve "$@"
""",
    # Open WebUI's image: the program's start script (core/passwords.py) runs its
    # admin step with the image's python3, then `bash start.sh` in the image's
    # WORKDIR (here the stand-in's, /): the step has nothing to set up here
    "usr/local/bin/python3": """\
#!/bin/sh
cat >/dev/null
""",
    "start.sh": """\
#!/bin/sh
exec /standin/serve "$@"
""",
    # nc forks one `respond` per connection (-ll: keep listening); the
    # container's command, if any, arrives as arguments and is ignored.
    # Port 0: a service that listens nowhere (a scheduler): just stay up.
    "standin/serve": """\
#!/bin/sh
read -r port name < /standin/listen
if [ "$port" = 0 ]; then
    trap 'exit 0' TERM INT
    while :; do sleep 3600 & wait $!; done
fi
# SIGTERM (what `docker stop` and pulumi-docker's delete send): drain as a web
# server does on a graceful stop (nginx's SIGQUIT): close the listener so new
# connections are refused (Traefik's retry moves them to another server), give
# the exchanges already accepted (a few ms each) a second to finish, then exit.
nc -ll -p "$port" -e /standin/respond &
listener=$!
trap 'kill $listener; sleep 1; exit 0' TERM INT
wait $listener
""",
    # One HTTP/1.1 exchange: read the request head, answer 200 with our name.
    "standin/respond": """\
#!/bin/sh
read -r port name < /standin/listen
cr=$(printf '\\r')
IFS= read -r -t 10 request || exit 0
method=${request%% *}
target=${request#* }
target=${target%% *}
while IFS= read -r -t 10 line; do
    case $line in ""|"$cr") break ;; esac
done
body="$name"
# a scrape target (Prometheus's job of a service not installable here): one valid
# sample, or the series a test wrote to /standin/metrics
if [ "$target" = /metrics ]; then
    body="standin_up 1"
    [ -f /standin/metrics ] && body=$(cat /standin/metrics)
fi
printf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n' $((${#body} + 1))
printf 'X-Standin: %s\\r\\nConnection: close\\r\\n\\r\\n' "$name"
[ "$method" = HEAD ] || printf '%s\\n' "$body"
""",
    # curl -fsS -o /dev/null URL
    "usr/local/bin/curl": """\
#!/bin/sh
for arg; do case $arg in http://*|https://*) url=$arg ;; esac; done
exec wget -q -O /dev/null "$url"
""",
    # traefik healthcheck --ping: GET /ping on the ops entrypoint
    "usr/local/bin/traefik": f"""\
#!/bin/sh
{_SELF_URL}
exec wget -q -O /dev/null "$url/ping"
""",
    # cscli lapi status: the LAPI answers
    "usr/local/bin/cscli": f"""\
#!/bin/sh
{_SELF_URL}
exec wget -q -O /dev/null "$url/"
""",
    # pg_isready: the server accepts connections
    "usr/local/bin/pg_isready": f"""\
#!/bin/sh
{_SELF_URL}
exec wget -q -O /dev/null "$url/"
""",
    # redis-cli ping: prints PONG when the server answers
    "usr/local/bin/redis-cli": f"""\
#!/bin/sh
{_SELF_URL}
wget -q -O /dev/null "$url/" && echo PONG
""",
    # bash -c 'cat < /dev/null > /dev/tcp/HOST/PORT': a TCP connect to HOST:PORT
    "bin/bash": """\
#!/bin/sh
if [ "$1" = -c ]; then
    case $2 in
    */dev/tcp/*)
        target=${2##*/dev/tcp/}
        host=${target%%/*}
        port=${target#*/}
        port=${port%% *}
        exec wget -q -O /dev/null "http://$host:$port/" ;;
    esac
fi
exec /bin/sh "$@"
""",
}


def busybox_path() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    raise FileNotFoundError("no static busybox (apt-get install busybox-static)")


def _is_static(path: Path) -> bool:
    """A 64-bit little-endian ELF with no PT_INTERP header needs no loader in `scratch`."""
    data = path.read_bytes()[:1 << 16]
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # PT_INTERP


def applets(busybox: Path) -> list[str]:
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True,
                            timeout=10).stdout.split()
    return sorted(set(listed) - {"busybox"})


def write_context(directory: Path) -> Path:
    """The build context in `directory`: Dockerfile and rootfs/ (busybox, its
    applet links, the scripts). Returns `directory`."""
    busybox = busybox_path()
    rootfs = directory / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in applets(busybox):
        link = rootfs / "bin" / applet
        if not link.exists() and f"bin/{applet}" not in SCRIPTS:
            link.symlink_to("busybox")
    for relative, text in SCRIPTS.items():
        path = rootfs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    (rootfs / "tmp").mkdir(exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return directory


def context_tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def listen_file(port: Optional[int], name: str) -> tuple[str, str, str]:
    """The extra upload that tells the stand-in its port (0: none) and name: (path, content, mode)."""
    return LISTEN_FILE, f"{port or 0} {name}\n", "0444"
