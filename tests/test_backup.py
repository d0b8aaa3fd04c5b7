"""Backups that are proven to restore.

The scripts run exactly as in the backup container: the container's uploads
(scripts, settings file, password files) are written under a scratch root, and
every container path in the settings is taken relative to that root. Around
them: real PostgreSQL servers (Debian's), restic, and an S3-compatible server
on 127.0.0.1 (moto). When busybox is installed, the scripts' core tools are
busybox's, as in the image's Alpine base.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import tarfile
import threading
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional

import pytest


from config.loading import StackFile, parse_stack_config
from core.backup import WAITING_RESTIC_DIR
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
BUSYBOX_TOOLS = ("awk", "basename", "cat", "chmod", "chown", "cmp", "cut", "date", "dirname", "du",
                 "find", "grep", "gzip", "head", "id", "ls", "mkdir", "mv", "od", "rm", "sed",
                 "sha256sum", "sort", "stat", "tail", "timeout", "touch", "tr", "wc")


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

    def run(self, script: str, *args: str, timeout: float = 120,
            first_in_path: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`first_in_path`: container directories put before the rest of PATH, as a
        crontab line may (core.backup.crontab)."""
        # container paths in the settings file, rebased under the root
        rebased = self.root / "rebased.env"
        rebased.write_text("".join(
            f"{key}='{self.path(value) if value.startswith('/') else value}'\n"
            for key, value in self.settings.items()))
        path = [str(self.path(directory)) for directory in first_in_path]
        path += [str(self.tools)] if self.tools else []
        path += [str(PG_BINDIRS[0])] if PG_BINDIRS else []
        path.append(os.environ.get("PATH", "/usr/bin:/bin"))
        env = {"PATH": os.pathsep.join(path), "HOME": str(self.root), "BACKUP_CONFIG": str(rebased)}
        return subprocess.run([str(self.path(f"/opt/backup/{script}")), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def runs(self) -> list[str]:
        return sorted(p.name for p in self.dir("BACKUP_DIR").iterdir() if not p.name.startswith("."))

    def status(self, file: str = "fourlb_backup.prom") -> dict[str, float]:
        text = (self.dir("METRICS_DIR") / file).read_text()
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line and not line.startswith("#")}

    def verify_status(self) -> dict[str, float]:
        return self.status("fourlb_backup_verify.prom")


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
    sqlite_database(grafana / "grafana.db", "delete")
    (grafana / "grafana.db").chmod(0o640)
    (grafana / "plugins cache.db").write_bytes(os.urandom(20000))  # named .db, not SQLite
    (grafana / "empty").touch()
    if os.geteuid() == 0:
        os.chown(grafana, 472, 472)
        os.chown(grafana / "grafana.db", 472, 0)
    webui = volumes / "open_webui_data"
    (webui / "vector db").mkdir(parents=True)
    sqlite_database(webui / "webui.db", "wal")  # closed: no -wal file left
    sqlite_database(webui / "vector db" / "state", "delete", rows=200)  # SQLite, no extension
    chroma = volumes / "chromadb_data"
    segment = chroma / "3f1c0e2a-6d9b-4c7e-9a51-0b8e2d4f7c13"
    segment.mkdir(parents=True)
    sqlite_database(chroma / "chroma.sqlite3", "wal")
    for name, size in (("data_level0.bin", 40000), ("header.bin", 100), ("length.bin", 400),
                       ("link_lists.bin", 0), ("index_metadata.pickle", 700)):
        (segment / name).write_bytes(os.urandom(size))


def sqlite_database(path: Path, journal_mode: str, rows: int = 3000) -> None:
    """A real SQLite database of a few hundred pages."""
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA journal_mode={journal_mode}")
        db.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT NOT NULL, data TEXT)")
        db.executemany("INSERT INTO dashboard (title, data) VALUES (?, ?)",
                       [(f"dashboard {n}", "panel " * 30 + str(n)) for n in range(rows)])
        db.execute("CREATE INDEX dashboard_title ON dashboard (title)")
    db.close()


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(16) == b"SQLite format 3\0"


def sqlite_content(path: Path) -> str:
    """A database's content as SQL; opened immutable, so nothing is written beside it."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    finally:
        db.close()


def tree(directory: Path) -> dict[str, tuple]:
    """Every entry under `directory`: type, mode, owner and content (or link target).
    A SQLite database's content is its rows and schema: an online backup copies
    them, not the very bytes."""
    entries = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            what = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            what = ("dir",)
        elif info.st_size > 99 and is_sqlite(path):
            what = ("sqlite", sqlite_content(path))
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
                "db-orchestrator.tables", "db-postgres.tables", "db-toilettage.tables",
                "volume-chromadb_data.tar.gz", "volume-grafana_data.tar.gz",
                "volume-open_webui_data.tar.gz", "volume-redis_data.tar.gz",
                # the SQLite databases each archive holds as online backups
                "volume-chromadb_data.sqlite", "volume-grafana_data.sqlite",
                "volume-open_webui_data.sqlite"]
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
    for volume in ("redis_data", "grafana_data", "open_webui_data", "chromadb_data"):
        target = box.root / "restored" / volume
        ok(box.run("restore-volume", box.in_backups(f"{run}/volume-{volume}.tar.gz"),
                   str(target)))
        assert tree(target) == tree(box.dir("VOLUMES_DIR") / volume)
        refused = box.run("restore-volume",
                          box.in_backups(f"{run}/volume-{volume}.tar.gz"), str(target))
        assert refused.returncode != 0 and "--replace" in refused.stderr


@contextlib.contextmanager
def run_lost_and_fetched(box, run: str) -> Iterator[None]:
    """The host loses its local copy of `run`; `fetch-remote latest` brings every
    file of it back into /fetched. The local copy is put back afterwards."""
    lost = box.root / "lost"
    shutil.move(box.dir("BACKUP_DIR") / run, lost)
    try:
        ok(box.run("fetch-remote", "latest", box.at("/fetched")))
        fetched = box.path("/fetched") / run
        assert sorted(p.name for p in fetched.iterdir()) == sorted(p.name for p in lost.iterdir())
        yield
    finally:
        shutil.move(lost, box.dir("BACKUP_DIR") / run)


def test_the_off_site_copy_restores_when_this_host_has_lost_everything(drill, source_db, target_db):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    point_at(box, target_db)
    with run_lost_and_fetched(box, run):
        ok(box.run("restore-db", box.at(f"/fetched/{run}/db-orchestrator.dump"), "orchestrator_offsite"))
        assert fingerprint(target_db, "orchestrator_offsite", "conversations") == fingerprint(
            source_db, "orchestrator")
        ok(box.run("restore-volume", box.at(f"/fetched/{run}/volume-redis_data.tar.gz"),
                   box.at("/offsite/redis_data")))
        assert tree(box.path("/offsite/redis_data")) == tree(box.dir("VOLUMES_DIR") / "redis_data")


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


# --- consistent SQLite snapshots ---------------------------------------------------

def archive_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_sqlite_databases_are_found_by_their_header_and_archived_as_online_backups(drill):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    run_dir = box.dir("BACKUP_DIR") / run
    listed = {volume: (run_dir / f"volume-{volume}.sqlite").read_text().splitlines()
              for volume in ("grafana_data", "open_webui_data", "chromadb_data")}
    # by header: "plugins cache.db" is no SQLite, "vector db/state" is one
    assert listed == {"grafana_data": ["./grafana.db"],
                      "open_webui_data": ["./vector db/state", "./webui.db"],
                      "chromadb_data": ["./chroma.sqlite3"]}
    assert not (run_dir / "volume-redis_data.sqlite").exists()
    members = archive_members(run_dir / "volume-grafana_data.tar.gz")
    assert {"./grafana.db", "./plugins cache.db", "./empty"} <= set(members)
    database = members["./grafana.db"]
    live = (box.dir("VOLUMES_DIR") / "grafana_data" / "grafana.db").stat()
    assert (database.mode, database.uid, database.gid, database.mtime) == (
        0o640, live.st_uid, live.st_gid, int(live.st_mtime))
    assert "changed while they were archived" not in result.stderr


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_a_database_written_during_the_snapshot_is_copied_at_one_commit(scratch, journal_mode):
    """A writer commits batches of 50 rows while the volume is archived: the copy
    holds whole batches only, and at least every batch committed before it began
    (a copy of the main file alone would miss those still in the -wal)."""
    box = BackupRoot(scratch / f"live-{journal_mode}", backup_container(), None)
    volume = box.dir("VOLUMES_DIR") / "grafana_data"
    volume.mkdir()
    live = volume / "grafana.db"
    sqlite_database(live, journal_mode, rows=0)
    # keep the database open, so that its -wal and -shm stay beside it
    holder = sqlite3.connect(live)
    holder.execute("SELECT count(*) FROM dashboard").fetchone()
    stop_writing = threading.Event()
    committed = [0]

    def write() -> None:
        db = sqlite3.connect(live, timeout=30)
        db.execute("PRAGMA wal_autocheckpoint=0")  # committed rows stay in the -wal
        while not stop_writing.is_set():
            with db:
                db.executemany("INSERT INTO dashboard (title, data) VALUES (?, ?)",
                               [("batch", os.urandom(300).hex()) for _ in range(50)])
            committed[0] += 50
            time.sleep(0.003)
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while committed[0] < 2000:
            time.sleep(0.01)
        before = committed[0]
        if journal_mode == "wal":  # those rows are in the -wal, not yet in the file
            assert (volume / "grafana.db-wal").stat().st_size > 100_000
        out = box.root / "out"
        out.mkdir()
        result = ok(box.run("snapshot-volumes", str(out)))
    finally:
        stop_writing.set()
        writer.join()
        holder.close()
    members = archive_members(out / "volume-grafana_data.tar.gz")
    assert not {"./grafana.db-wal", "./grafana.db-shm", "./grafana.db-journal"} & set(members)
    with tarfile.open(out / "volume-grafana_data.tar.gz") as tar:
        tar.extract("./grafana.db", box.root / "extracted")
    copy = sqlite3.connect(box.root / "extracted" / "grafana.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # restored, it is opened in the journal mode the live database had
        assert copy.execute("PRAGMA journal_mode").fetchone() == (journal_mode,)
        (rows,) = copy.execute("SELECT count(*) FROM dashboard").fetchone()
    finally:
        copy.close()
    assert rows % 50 == 0 and before <= rows <= committed[0], (before, rows, committed[0])
    assert "changed while they were archived" not in result.stderr


# --- the restore check --------------------------------------------------------------

def verify_timed(box: BackupRoot) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = box.run("verify-latest", timeout=300)
    return result, time.monotonic() - started


def alert_fires(status: dict[str, float], alert: str = "BackupVerifyFailed") -> bool:
    """Whether `alert` fires on Prometheus' copy of these metrics (the plan's rules)."""
    from tests.plans import prod_plan
    from tests.test_alert_rules import promtool_test, rules_text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package: prometheus)")
    series = [{"series": f'{name}{{job="node-exporter"}}', "values": f"{status[name]:g}x6"}
              for name in ("fourlb_backup_verify_success",
                           "fourlb_backup_verify_last_run_timestamp_seconds")]
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [{"eval_time": "5m", "alertname": alert, "exp_alerts": [
            {"exp_labels": {"severity": "critical", "job": "node-exporter"}}]}]}]}
    with tempfile.TemporaryDirectory() as directory:
        result = promtool_test(promtool, Path(directory), rules_text(prod_plan()),
                               json.dumps(unit))
    return result.returncode == 0


def test_the_dump_records_its_tables_and_their_rows(drill):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    lines = (box.dir("BACKUP_DIR") / run / "db-orchestrator.tables").read_text().splitlines()
    assert lines[0].startswith("#") and lines[1:] == ["public.conversations\t2000"]
    toilettage = (box.dir("BACKUP_DIR") / run / "db-toilettage.tables").read_text()
    assert "public.appointments\t500\n" in toilettage


def test_a_good_backup_passes_the_restore_check(drill, capsys):
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    checked, seconds = verify_timed(box)
    ok(checked)
    status = box.verify_status()
    assert status["fourlb_backup_verify_success"] == 1
    assert abs(status["fourlb_backup_verify_last_run_timestamp_seconds"] - time.time()) < 60
    assert status["fourlb_backup_verify_run_timestamp_seconds"] == datetime.strptime(
        run, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    artifacts = {k: v for k, v in status.items() if k.startswith("fourlb_backup_verify_artifact")}
    assert len(artifacts) == 14 and set(artifacts.values()) == {1}
    log = checked.stderr
    assert "database orchestrator: 1 table(s) present, 1 counted (2000 rows), as recorded" in log
    assert "volume open_webui_data: " in log and "2 SQLite database(s) checked" in log
    # nothing left behind: no scratch directory, no server
    assert [p.name for p in box.dir("BACKUP_DIR").iterdir() if p.name.startswith(".verifying-")] == []
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(box.dir("BACKUP_DIR") / ".verifying-") not in processes
    assert not alert_fires(status)
    promtool = shutil.which("promtool")
    if promtool:
        text = (box.dir("METRICS_DIR") / "fourlb_backup_verify.prom").read_text()
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    with capsys.disabled():
        phases = [line.split(": ", 1)[1] for line in log.splitlines() if " took " in line]
        print(f"\nrestore check of the drill's run: {seconds:.2f}s wall clock ({'; '.join(phases)})")


def rewrite_checksum(path: Path) -> None:
    path.with_name(path.name + ".sha256").write_text(f"{sha256_of(path)}  {path.name}\n")


def assert_the_check_fails(drill, damage, message: str, artifact: str) -> None:
    """The restore check of a copy of the drill's (good) run, damaged by
    `damage(run_dir)`, named a minute later so that it is the newest run: it fails
    with `message`, on `artifact` alone, and the alert fires."""
    box, result, _, _ = drill
    ok(result)
    (run,) = box.runs()
    newer = (datetime.strptime(run, "%Y%m%dT%H%M%SZ") + timedelta(minutes=1)).strftime(
        "%Y%m%dT%H%M%SZ")
    copy = box.dir("BACKUP_DIR") / newer
    shutil.copytree(box.dir("BACKUP_DIR") / run, copy)
    try:
        damage(copy)
        checked, seconds = verify_timed(box)
    finally:
        shutil.rmtree(copy)
    print(f"restore check of a damaged run: {seconds:.2f}s")
    assert checked.returncode != 0, checked.stderr
    status = box.verify_status()
    assert status["fourlb_backup_verify_success"] == 0
    assert alert_fires(status)
    assert message in checked.stderr, checked.stderr
    assert failed_artifacts(status) == {artifact}


def failed_artifacts(status: dict) -> set[str]:
    return {key.split('"')[1] for key, value in status.items()
            if key.startswith("fourlb_backup_verify_artifact_success") and value == 0}


def test_a_truncated_dump_fails_the_restore_check(drill):
    def truncate(run_dir: Path) -> None:
        dump = run_dir / "db-orchestrator.dump"
        dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
        rewrite_checksum(dump)  # truncated before its checksum was taken: pg_restore must notice
    assert_the_check_fails(drill, truncate, "FAILED: db-orchestrator.dump: pg_restore failed",
                           "db-orchestrator.dump")


def test_a_row_count_unlike_the_dumps_fails_the_restore_check(drill):
    def miscount(run_dir: Path) -> None:
        tables = run_dir / "db-toilettage.tables"
        tables.write_text(tables.read_text().replace("public.appointments\t500", "public.appointments\t499"))
        rewrite_checksum(tables)
    assert_the_check_fails(drill, miscount, "FAILED: db-toilettage.dump: table public.appointments "
                           "has 500 rows after the restore, the dump recorded 499", "db-toilettage.dump")


def test_a_torn_sqlite_snapshot_fails_the_restore_check(drill):
    def tear(run_dir: Path) -> None:
        archive = run_dir / "volume-grafana_data.tar.gz"
        unpacked = run_dir.parent / ".unpacked"
        unpacked.mkdir()
        try:
            subprocess.run(["tar", "-xzf", str(archive), "-C", str(unpacked)], check=True)
            database = unpacked / "grafana.db"
            data = bytearray(database.read_bytes())
            page = int.from_bytes(data[16:18], "big")
            middle = (len(data) // page // 2) * page
            data[middle:middle + page] = os.urandom(page)  # one page, half-way, overwritten
            database.write_bytes(bytes(data))
            subprocess.run(["tar", "-czf", str(archive), "--numeric-owner", "-C", str(unpacked), "."],
                           check=True)
        finally:
            shutil.rmtree(unpacked)
        rewrite_checksum(archive)  # torn while it was copied, as tar used to copy it
    assert_the_check_fails(drill, tear, "FAILED: volume-grafana_data.tar.gz: SQLite database "
                           "./grafana.db fails PRAGMA integrity_check", "volume-grafana_data.tar.gz")


def test_a_wrong_checksum_fails_the_restore_check(drill):
    def wrong_sum(run_dir: Path) -> None:
        (run_dir / "volume-redis_data.tar.gz.sha256").write_text(
            f"{hashlib.sha256(b'another file').hexdigest()}  volume-redis_data.tar.gz\n")
    assert_the_check_fails(drill, wrong_sum, "FAILED: volume-redis_data.tar.gz: checksum mismatch",
                           "volume-redis_data.tar.gz")


def test_no_run_to_check_fails_the_restore_check(scratch):
    box = BackupRoot(scratch / "nothing-yet", backup_container(), None)
    checked = box.run("verify-latest")
    assert checked.returncode != 0 and "FAILED: run: no complete backup run" in checked.stderr
    assert box.verify_status()["fourlb_backup_verify_success"] == 0


def test_row_counts_are_taken_in_the_snapshot_the_dump_holds(scratch, source_db, target_db):
    """Rows keep arriving while the databases are dumped: the recorded counts are
    still exactly the dump's (the restore check demands equality)."""
    source_db.sql("postgres", "CREATE DATABASE busy")
    source_db.sql("busy", "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    writer = subprocess.Popen(
        [str(PG_BINDIRS[0] / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(source_db.port),
         "-U", "fourlb", "-d", "busy", "-c",
         "DO $$ BEGIN FOR i IN 1..200000 LOOP INSERT INTO events DEFAULT VALUES; COMMIT; "
         "PERFORM pg_sleep(0.0005); END LOOP; END $$"],
        env={**os.environ, "PGPASSWORD": PG_PASSWORD}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    box = BackupRoot(scratch / "busy", backup_container(), source_db)
    out = box.root / "out"
    out.mkdir()
    try:
        while int(source_db.sql("busy", "SELECT count(*) FROM events")) < 500:
            time.sleep(0.05)
        ok(box.run("dump-databases", str(out)))
        after = int(source_db.sql("busy", "SELECT count(*) FROM events"))
    finally:
        stop(writer)
        # the loop runs on in the server without its client: FORCE ends it
        source_db.sql("postgres", "DROP DATABASE busy WITH (FORCE)")
    recorded = dict(line.split("\t") for line in (out / "db-busy.tables").read_text().splitlines()
                    if not line.startswith("#"))
    point_at(box, target_db)
    ok(box.run("restore-db", str(out / "db-busy.dump"), "busy_restored"))
    restored = int(target_db.sql("busy_restored", "SELECT count(*) FROM events"))
    assert int(recorded["public.events"]) == restored
    assert 500 <= restored < after  # the writer kept going during the dump


# --- a swarm: one backup per node role, one repository --------------------------------

NODES = ("backup-data", "backup-ai")


def node_backup_container(name: str) -> Container:
    """A node's backup of the swarm stack, uploading off-site."""
    values = json.loads(json.dumps(StackFile("swarm", PROJECT).values))
    values["backup"] = {"remote": {"endpoint": "https://s3.example.com", "bucket": "fourlb-nodes"}}
    return build_plan(parse_stack_config("swarm", values), "swarm").container(name)


def archived_volumes(container: Container) -> list[str]:
    return sorted(m.volume for m in container.mounts if m.target.startswith("/volumes/"))


def restic_env(repository: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
            "RESTIC_REPOSITORY": repository,
            "RESTIC_PASSWORD": TEST_SECRETS["backup-restic-password"]}


@pytest.fixture(scope="module")
def node_drill(scratch) -> tuple[dict[str, BackupRoot], str]:
    """The data node's and the AI node's backups, each run once (as their crontab
    runs it) into one repository; each node's volumes hold files that name the node."""
    if shutil.which("restic") is None:
        pytest.skip("restic is not installed (Debian package: restic)")
    # a repository both reach, as they reach the bucket (the swarm stack's S3 is not here)
    repository = f"local:{scratch / 'nodes-repository'}"
    boxes = {}
    for name in NODES:
        container = node_backup_container(name)
        box = BackupRoot(scratch / name, container, None)
        box.set(RESTIC_REPOSITORY=repository, PGHOST="")  # volumes only: no database here
        for volume in archived_volumes(container):
            (box.dir("VOLUMES_DIR") / volume).mkdir()
            (box.dir("VOLUMES_DIR") / volume / "owner").write_text(f"{name}'s {volume}\n")
        ok(box.run("run", first_in_path=(WAITING_RESTIC_DIR,)))
        boxes[name] = box
    return boxes, repository


def test_each_nodes_restore_finds_its_own_nodes_snapshot(node_drill):
    boxes, _ = node_drill
    for name, box in boxes.items():
        (run,) = box.runs()
        with run_lost_and_fetched(box, run):
            for volume in archived_volumes(node_backup_container(name)):
                target = box.at(f"/restored/{volume}")
                ok(box.run("restore-volume", box.at(f"/fetched/{run}/volume-{volume}.tar.gz"), target))
                assert (Path(target) / "owner").read_text() == f"{name}'s {volume}\n"
    listed = ok(boxes["backup-data"].run("list")).stdout
    assert "4lb.ca/data" in listed and "4lb.ca/ai" not in listed


def test_a_nodes_backup_waits_for_the_lock_another_nodes_backup_holds(node_drill):
    boxes, repository = node_drill
    data = boxes["backup-data"]
    data.set(RESTIC_LOCK_PAUSE_SECONDS="1")
    locks = Path(repository.removeprefix("local:")) / "locks"
    # another node's upload, holding the repository's lock while it reads its input
    holder = subprocess.Popen(["restic", "backup", "--quiet", "--stdin", "--stdin-filename", "held",
                               "--host", "4lb.ca/ai", "--tag", "held"],
                              stdin=subprocess.PIPE, env=restic_env(repository),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not any(locks.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(locks.iterdir()), "the other node's restic took no lock"
        # restic alone gives up: forget --prune needs the repository for itself
        refused = data.run("prune")
        assert refused.returncode != 0 and "repository is already locked" in refused.stderr
        def finish_the_upload() -> None:
            holder.stdin.write(b"the other node's run\n")
            holder.stdin.close()
        release = threading.Timer(3, finish_the_upload)
        release.start()
        started = time.monotonic()
        waited = ok(data.run("prune", first_in_path=(WAITING_RESTIC_DIR,)))
        release.join()
        assert time.monotonic() - started >= 3
        assert "another backup holds the repository; trying again" in waited.stderr
    finally:
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
