"""Backups that are proven to restore.

The scripts run exactly as in the backup container: the container's uploads
(scripts, settings file, password files) are written under a scratch root, and
every container path in the settings is taken relative to that root. Around
them: real PostgreSQL servers (Debian's), restic, and an S3-compatible server
on 127.0.0.1 (moto). When busybox is installed, the scripts' core tools are
busybox's, as in the image's Alpine base.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional

import pytest


from config.loading import StackFile, parse_stack_config
from core.build import build_plan
from core.model import SECRET_PLACEHOLDER, Container
from tests.processes import stop

PROJECT = Path(__file__).resolve().parent.parent
PG_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PG_PASSWORD = "pg-test-password-7c1e"
TEST_SECRETS = {
    "postgres-password": PG_PASSWORD,
    "backup-restic-password": "restic-test-password",
    "backup-s3-access-key-id": "test-access-key",
    "backup-s3-secret-access-key": "test-secret-key",
}
# core tools the scripts use that busybox provides in the image (GNU tar and
# util-linux flock are installed there on purpose)
BUSYBOX_TOOLS = ("basename", "cat", "cut", "date", "dirname", "du", "find", "grep", "gzip",
                 "head", "ls", "mkdir", "mv", "rm", "sed", "sha256sum", "sort")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


# --- servers --------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A directory the postgres user may enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="fourlb-backup-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1 with password login for `fourlb`."""

    def __init__(self, bindir: Path, home: Path):
        self.bindir, self.home, self.port = bindir, home, free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> "Postgres":
        self.home.mkdir(mode=0o700)
        password_file = self.home / "password"
        password_file.write_text(PG_PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(self.home, "postgres")
            shutil.chown(password_file, "postgres")
        self._run("initdb", "-D", str(self.home / "data"), "-U", "fourlb", "-E", "UTF8",
                  "--locale=C.UTF-8", "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync")
        self._run("pg_ctl", "-D", str(self.home / "data"), "-l", str(self.home / "log"), "-w",
                  "-t", "30", "-o", f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off", "start")
        return self

    def stop(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.home / "data"),
                        "-m", "immediate", "-w", "stop"], capture_output=True, timeout=30)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run([*self.as_postgres, str(self.bindir / program), *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{program}: {result.stdout}{result.stderr}"

    def sql(self, database: str, query: str) -> str:
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "fourlb", "-d", database, "-c", query],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": PG_PASSWORD})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


def _postgres(scratch: Path, name: str) -> Iterator[Postgres]:
    if not PG_BINDIRS:
        pytest.skip("PostgreSQL server programs are not installed (Debian package: postgresql)")
    server = Postgres(PG_BINDIRS[0], scratch / name)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def source_db(scratch) -> Iterator[Postgres]:
    yield from _postgres(scratch, "source")


@pytest.fixture(scope="module")
def target_db(scratch) -> Iterator[Postgres]:
    yield from _postgres(scratch, "target")


@pytest.fixture(scope="module")
def s3_endpoint(scratch) -> Iterator[str]:
    if shutil.which("restic") is None:
        pytest.skip("restic is not installed (Debian package: restic)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (PyPI)")
    port = free_port()
    with open(scratch / "moto.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


# --- the backup container, laid out under a root --------------------------------

def backup_container(**backup_settings) -> Container:
    values = dict(StackFile("prod", PROJECT).values)
    values["backup"] = backup_settings
    return build_plan(parse_stack_config("prod", values), "prod").container("backup")


class BackupRoot:
    """The backup container's files under `root`; its paths are taken relative to it."""

    def __init__(self, root: Path, container: Container, postgres: Optional[Postgres]):
        self.root = root
        self.env_path = self.path("/etc/backup/backup.env")
        for item in container.uploads:
            content = SECRET_PLACEHOLDER.sub(lambda m: TEST_SECRETS[m.group(1)], item.content)
            if postgres and item.path == self.setting_of(container, "PGPASSFILE"):
                # the database answers here, not at postgres:5432
                host, port, rest = content.split(":", 2)
                content = f"127.0.0.1:{postgres.port}:{rest}"
            target = self.path(item.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(int(item.mode, 8))
        self.settings = self._read_settings()
        if postgres:
            self.set(PGHOST="127.0.0.1", PGPORT=str(postgres.port))
        for key in ("BACKUP_DIR", "VOLUMES_DIR", "METRICS_DIR"):
            self.path(self.settings[key]).mkdir(parents=True, exist_ok=True)
        self.tools = self._tool_dir()

    @staticmethod
    def setting_of(container: Container, key: str) -> Optional[str]:
        env = next(u.content for u in container.uploads if u.path == "/etc/backup/backup.env")
        for line in env.splitlines():
            if line.startswith(key + "="):
                return line.split("=", 1)[1].strip("'")
        return None

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def _read_settings(self) -> dict[str, str]:
        settings = {}
        for line in self.env_path.read_text().splitlines():
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                assert value.startswith("'") and value.endswith("'"), line
                settings[key] = value[1:-1]
        return settings

    def set(self, **changes: str) -> None:
        lines = [line for line in self.env_path.read_text().splitlines()
                 if line.split("=", 1)[0] not in changes]
        lines += [f"{key}='{value}'" for key, value in changes.items()]
        self.env_path.chmod(0o600)
        self.env_path.write_text("\n".join(lines) + "\n")
        self.settings = self._read_settings()

    def at(self, container_path: str) -> str:
        """A path as the scripts see it here (arguments are container paths too)."""
        return str(self.path(container_path))

    def in_backups(self, relative: str) -> str:
        return self.at(f"{self.settings['BACKUP_DIR']}/{relative}")

    def dir(self, key: str) -> Path:
        return self.path(self.settings[key])

    def _tool_dir(self) -> Optional[Path]:
        busybox = shutil.which("busybox")
        if busybox is None:
            return None
        tools = self.root / "busybox-tools"
        tools.mkdir()
        for name in BUSYBOX_TOOLS:
            (tools / name).symlink_to(busybox)
        return tools

    def run(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # container paths in the settings file, rebased under the root
        rebased = self.root / "rebased.env"
        rebased.write_text("".join(
            f"{key}='{self.path(value) if value.startswith('/') else value}'\n"
            for key, value in self.settings.items()))
        path = [str(self.tools)] if self.tools else []
        path += [str(PG_BINDIRS[0])] if PG_BINDIRS else []
        path.append(os.environ.get("PATH", "/usr/bin:/bin"))
        env = {"PATH": os.pathsep.join(path), "HOME": str(self.root), "BACKUP_CONFIG": str(rebased)}
        return subprocess.run([str(self.path(f"/opt/backup/{script}")), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def runs(self) -> list[str]:
        return sorted(p.name for p in self.dir("BACKUP_DIR").iterdir() if not p.name.startswith("."))

    def status(self) -> dict[str, float]:
        text = (self.dir("METRICS_DIR") / "fourlb_backup.prom").read_text()
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line and not line.startswith("#")}


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# --- what is backed up, and how it is compared ------------------------------------

SEED = {
    "orchestrator": [
        "CREATE TABLE conversations (id serial PRIMARY KEY, title text NOT NULL, "
        "body jsonb, created timestamptz DEFAULT now())",
        "INSERT INTO conversations (title, body) SELECT 'conversation ' || n, "
        "jsonb_build_object('n', n, 'text', repeat('é', n % 50)) FROM generate_series(1, 2000) n",
        "CREATE INDEX conversations_title ON conversations (title)",
        "CREATE VIEW recent AS SELECT id, title FROM conversations WHERE id > 1990",
    ],
    "toilettage": [
        "CREATE TABLE appointments (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "pet text, at date, price numeric(8,2))",
        "INSERT INTO appointments (pet, at, price) SELECT 'chien ' || n, "
        "date '2025-01-01' + n, n * 1.25 FROM generate_series(1, 500) n",
    ],
}
TABLES = {"orchestrator": "conversations", "toilettage": "appointments"}


def fingerprint(server: Postgres, database: str, table: str = "") -> tuple[int, str]:
    table = table or TABLES[database]
    count, digest = server.sql(database, f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) "
                                         f"FROM {table} t").split("|")
    return int(count), digest


def seed_volumes(volumes: Path) -> None:
    redis = volumes / "redis_data"
    (redis / "appendonlydir").mkdir(parents=True)
    (redis / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(os.urandom(4096))
    (redis / "appendonlydir" / "appendonly.aof.manifest").write_text("file appendonly.aof.1\n")
    (redis / "dump with spaces.rdb").write_bytes(b"REDIS0011" + os.urandom(100))
    os.symlink("appendonlydir/appendonly.aof.manifest", redis / "manifest-link")
    for path, mode, owner in (("appendonlydir", 0o750, (999, 1000)),
                              ("appendonlydir/appendonly.aof.1.incr.aof", 0o600, (999, 1000)),
                              ("appendonlydir/appendonly.aof.manifest", 0o640, (999, 999)),
                              ("dump with spaces.rdb", 0o644, (0, 0))):
        (redis / path).chmod(mode)
        if os.geteuid() == 0:
            os.chown(redis / path, *owner)
    redis.chmod(0o700)
    grafana = volumes / "grafana_data"
    grafana.mkdir()
    (grafana / "grafana.db").write_bytes(os.urandom(20000))
    (grafana / "grafana.db").chmod(0o640)
    (grafana / "empty").touch()
    if os.geteuid() == 0:
        os.chown(grafana, 472, 472)
        os.chown(grafana / "grafana.db", 472, 0)


def tree(directory: Path) -> dict[str, tuple]:
    """Every entry under `directory`: type, mode, owner and content (or link target)."""
    entries = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            what = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            what = ("dir",)
        else:
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        entries[str(path.relative_to(directory))] = (*what, stat.S_IMODE(info.st_mode),
                                                     info.st_uid, info.st_gid)
    return entries


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the drill --------------------------------------------------------------------

@pytest.fixture(scope="module")
def drill(scratch, source_db, s3_endpoint):
    """One real backup run of a seeded server and two volumes, uploaded off-site."""
    for database, statements in SEED.items():
        source_db.sql("postgres", f"CREATE DATABASE {database}")
        for statement in statements:
            source_db.sql(database, statement)
    container = backup_container(remote={"endpoint": s3_endpoint, "bucket": "fourlb-drill"})
    box = BackupRoot(scratch / "drill", container, source_db)
    seed_volumes(box.dir("VOLUMES_DIR"))
    before = time.time()
    result = box.run("run")
    after = time.time()
    return box, result, before, after


def test_a_run_succeeds_and_reports_success(drill):
    box, result, before, after = drill
    ok(result)
    status = box.status()
    assert status["fourlb_backup_last_run_status"] == 1
    assert int(before) <= status["fourlb_backup_last_success_timestamp_seconds"] <= after + 1
    promtool = shutil.which("promtool")
    if promtool:  # the textfile collector's format
        text = (box.dir("METRICS_DIR") / "fourlb_backup.prom").read_text()
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_every_database_and_volume_has_an_artifact_with_its_checksum(drill):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    artifacts = sorted(p.name for p in (box.dir("BACKUP_DIR") / run).iterdir())
    expected = ["db-orchestrator.dump", "db-postgres.dump", "db-toilettage.dump", "globals.sql",
                "volume-grafana_data.tar.gz", "volume-redis_data.tar.gz"]
    assert artifacts == sorted(expected + [name + ".sha256" for name in expected])
    for name in expected:
        artifact = box.dir("BACKUP_DIR") / run / name
        assert (box.dir("BACKUP_DIR") / run / (name + ".sha256")).read_text().split() == [
            sha256_of(artifact), name]
        if name.endswith(".dump"):
            assert artifact.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format


def point_at(box, server) -> None:
    """The restore scripts talk to `server` from now on (port and password file)."""
    box.set(PGPORT=str(server.port))
    pgpass = box.path(box.settings["PGPASSFILE"])
    pgpass.chmod(0o600)
    pgpass.write_text(f"127.0.0.1:{server.port}:*:fourlb:{PG_PASSWORD}\n")
    pgpass.chmod(0o400)


def test_databases_restore_into_a_fresh_server_row_for_row(drill, source_db, target_db):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    point_at(box, target_db)
    for database in TABLES:
        ok(box.run("restore-db", box.in_backups(f"{run}/db-{database}.dump")))
        assert fingerprint(target_db, database) == fingerprint(source_db, database)
    assert target_db.sql("orchestrator", "SELECT count(*) FROM recent") == "10"
    assert target_db.sql("orchestrator", "SELECT indexname FROM pg_indexes "
                                         "WHERE indexname = 'conversations_title'") == "conversations_title"


def test_a_restore_never_overwrites_a_database_unless_asked(drill, source_db, target_db):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    point_at(box, target_db)
    dump = box.in_backups(f"{run}/db-toilettage.dump")
    ok(box.run("restore-db", dump, "toilettage_copy"))
    target_db.sql("toilettage_copy", "DELETE FROM appointments WHERE id > 100")
    refused = box.run("restore-db", dump, "toilettage_copy")
    assert refused.returncode != 0 and "--replace" in refused.stderr
    assert target_db.sql("toilettage_copy", "SELECT count(*) FROM appointments") == "100"
    ok(box.run("restore-db", "--replace", dump, "toilettage_copy"))
    assert target_db.sql("toilettage_copy", "SELECT count(*) FROM appointments") == "500"


def test_a_damaged_dump_is_refused_before_anything_is_restored(drill, target_db):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    damaged_dir = box.dir("BACKUP_DIR") / "damaged"
    shutil.copytree(box.dir("BACKUP_DIR") / run, damaged_dir)
    dump = damaged_dir / "db-orchestrator.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    box.set(PGPORT=str(target_db.port))
    try:
        refused = box.run("restore-db", box.in_backups("damaged/db-orchestrator.dump"),
                          "orchestrator_damaged")
    finally:
        shutil.rmtree(damaged_dir)
    assert refused.returncode != 0 and "checksum" in refused.stderr
    assert target_db.sql("postgres", "SELECT count(*) FROM pg_database "
                                     "WHERE datname LIKE 'orchestrator_damaged%'") == "0"


def test_volumes_restore_with_their_files_modes_and_owners(drill):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    for volume in ("redis_data", "grafana_data"):
        target = box.root / "restored" / volume
        ok(box.run("restore-volume", box.in_backups(f"{run}/volume-{volume}.tar.gz"),
                   str(target)))
        assert tree(target) == tree(box.dir("VOLUMES_DIR") / volume)
        refused = box.run("restore-volume",
                          box.in_backups(f"{run}/volume-{volume}.tar.gz"), str(target))
        assert refused.returncode != 0 and "--replace" in refused.stderr


def test_the_off_site_copy_restores_when_this_host_has_lost_everything(drill, source_db, target_db):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    point_at(box, target_db)
    lost = box.root / "lost"
    shutil.move(box.dir("BACKUP_DIR") / run, lost)
    try:
        ok(box.run("fetch-remote", "latest", box.at("/fetched")))
        fetched = box.path("/fetched") / run
        assert sorted(p.name for p in fetched.iterdir()) == sorted(p.name for p in lost.iterdir())
        ok(box.run("restore-db", box.at(f"/fetched/{run}/db-orchestrator.dump"), "orchestrator_offsite"))
        assert fingerprint(target_db, "orchestrator_offsite", "conversations") == fingerprint(
            source_db, "orchestrator")
        ok(box.run("restore-volume", box.at(f"/fetched/{run}/volume-redis_data.tar.gz"),
                   box.at("/offsite/redis_data")))
        assert tree(box.path("/offsite/redis_data")) == tree(box.dir("VOLUMES_DIR") / "redis_data")
    finally:
        shutil.move(lost, box.dir("BACKUP_DIR") / run)


def test_a_failed_run_exits_non_zero_and_never_reports_success(scratch):
    box = BackupRoot(scratch / "failing", backup_container(), None)
    box.set(PGHOST="127.0.0.1", PGPORT=str(free_port()))  # nothing listens there
    status_file = box.dir("METRICS_DIR") / "fourlb_backup.prom"
    status_file.write_text("fourlb_backup_last_run_status 1\n"
                           "fourlb_backup_last_success_timestamp_seconds 1700000000\n")
    result = box.run("run")
    assert result.returncode != 0
    status = box.status()
    assert status["fourlb_backup_last_run_status"] == 0
    assert status["fourlb_backup_last_success_timestamp_seconds"] == 1700000000
    # nothing that looks like a complete run is left behind
    assert [name for name in box.runs() if not name.endswith(".failed")] == []


def test_a_failed_off_site_copy_fails_the_run(scratch, drill, s3_endpoint):
    """The local copy is complete, but a run that could not leave the host is no backup."""
    container = backup_container(remote={"endpoint": s3_endpoint, "bucket": "fourlb-drill"})
    box = BackupRoot(scratch / "wrong-key", container, None)
    box.set(PGHOST="")  # volumes only: this run must fail at the upload, nowhere else
    password_file = box.path(box.settings["RESTIC_PASSWORD_FILE"])
    password_file.chmod(0o600)
    password_file.write_text("not-the-repository-password")  # the drill's repository is there
    (box.dir("VOLUMES_DIR") / "grafana_data").mkdir()
    result = box.run("run")
    assert result.returncode != 0
    assert "upload: cannot open a repository" in result.stderr, result.stderr
    assert box.status()["fourlb_backup_last_run_status"] == 0
    assert "fourlb_backup_last_success_timestamp_seconds" not in box.status()
    assert len(box.runs()) == 1 and not box.runs()[0].endswith(".failed")  # kept on this host


# --- retention --------------------------------------------------------------------

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def run_name(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def test_retention_keeps_seven_days_here_and_thirty_off_site(scratch, s3_endpoint):
    container = backup_container(remote={"endpoint": s3_endpoint, "bucket": "fourlb-retention"})
    box = BackupRoot(scratch / "retention", container, None)
    assert (box.settings["LOCAL_RETENTION_DAYS"], box.settings["REMOTE_RETENTION_DAYS"]) == ("7", "30")
    newest = datetime.now(timezone.utc).replace(microsecond=0) - 2 * HOUR
    # ages relative to the newest run: daily runs over forty days, and runs an hour on
    # either side of each limit
    ages = [d * DAY for d in range(40) if d not in (7, 30)]
    ages += [7 * DAY - HOUR, 7 * DAY + HOUR, 30 * DAY - HOUR, 30 * DAY + HOUR]
    backups = box.dir("BACKUP_DIR")
    for age in ages:
        run = backups / run_name(newest - age)
        run.mkdir()
        (run / "globals.sql").write_text(f"-- {age}\n")
    (backups / (run_name(newest - 3 * DAY - 5 * HOUR) + ".failed")).mkdir()
    (backups / (run_name(newest - 20 * DAY) + ".failed")).mkdir()
    (backups / (".incomplete-" + run_name(newest - 35 * DAY))).mkdir()
    # off-site outlives local: a run this host no longer keeps, and the remote limit
    uploaded = [0 * DAY, 7 * DAY + HOUR, 30 * DAY - HOUR, 30 * DAY + HOUR]
    for age in sorted(uploaded, reverse=True):
        ok(box.run("upload", box.in_backups(run_name(newest - age))))

    ok(box.run("prune"))

    kept_here = {run_name(newest - age) for age in ages if age <= 7 * DAY}
    kept_here.add(run_name(newest - 3 * DAY - 5 * HOUR) + ".failed")
    assert set(box.runs()) == kept_here
    assert len([r for r in kept_here if not r.endswith(".failed")]) == 8  # days 0-6, and 7 days less an hour
    snapshots = _snapshots(box)
    kept_off_site = {run_name(newest - age) for age in uploaded if age <= 30 * DAY}
    assert {Path(s["paths"][0]).name for s in snapshots} == kept_off_site


def _snapshots(box: BackupRoot) -> list[dict]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(box.root),
           "RESTIC_REPOSITORY": box.settings["RESTIC_REPOSITORY"],
           "RESTIC_PASSWORD": TEST_SECRETS["backup-restic-password"],
           "AWS_ACCESS_KEY_ID": TEST_SECRETS["backup-s3-access-key-id"],
           "AWS_SECRET_ACCESS_KEY": TEST_SECRETS["backup-s3-secret-access-key"]}
    result = subprocess.run(["restic", "snapshots", "--json", "--no-cache"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
