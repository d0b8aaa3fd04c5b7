"""The start scripts that give PostgreSQL and Grafana their current password
(core/passwords.py). PostgreSQL's runs for real in the engine suite
(tests/engine: the password changed, the old one refused). Grafana has no
package here: its script runs against a recording `grafana` on PATH, whose
arguments and stdin are what Grafana's CLI takes
(pkg/cmd/grafana-cli/commands/reset_password_command.go: a line of stdin with
--password-from-stdin, for user 1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from core.edge import load_plan
from core.passwords import GRAFANA_START, POSTGRES_START

RECORDER = """#!/bin/sh
printf '%s\\n' "$*" > "$RECORD.args"
cat > "$RECORD.stdin"
"""


def run_grafana_start(tmp_path: Path, with_database: bool) -> tuple[Path, str]:
    data = tmp_path / "data"
    data.mkdir()
    if with_database:
        (data / "grafana.db").write_bytes(b"SQLite format 3\0")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grafana").write_text(RECORDER)
    (bin_dir / "grafana").chmod(0o755)
    password = tmp_path / "password"
    password.write_text("new-admin-password")
    # the image's /run.sh, which the test cannot write: a script of the test's
    image_entrypoint = tmp_path / "run.sh"
    image_entrypoint.write_text("#!/bin/sh\necho image-entrypoint \"$@\"\n")
    image_entrypoint.chmod(0o755)
    script = tmp_path / "start"
    script.write_text(GRAFANA_START.script.replace("exec /run.sh", f"exec {image_entrypoint}"))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path / "grafana"),
           "GF_PATHS_DATA": str(data), "GF_SECURITY_ADMIN_PASSWORD__FILE": str(password)}
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return tmp_path / "grafana", result.stdout


def test_grafana_resets_its_admins_password_from_the_file_when_its_database_exists(tmp_path):
    record, output = run_grafana_start(tmp_path, with_database=True)
    args = Path(f"{record}.args").read_text().split()
    assert args[-3:] == ["admin", "reset-admin-password", "--password-from-stdin"]
    assert Path(f"{record}.stdin").read_text() == "new-admin-password"
    assert output.splitlines()[-1] == "image-entrypoint"  # then starts as the image does


def test_a_new_grafana_takes_its_password_from_the_image_not_the_script(tmp_path):
    record, output = run_grafana_start(tmp_path, with_database=False)
    assert not Path(f"{record}.args").exists()
    assert output.splitlines() == ["image-entrypoint"]


def test_postgresql_and_grafana_start_through_their_script():
    _, plan = load_plan("prod")
    for name, start in (("postgres", POSTGRES_START), ("grafana", GRAFANA_START)):
        container = plan.container(name)
        assert container.entrypoint == (start.path,)
        assert any(u.path == start.path and u.mode == "0755" for u in container.uploads)
    assert plan.container("postgres").command == ("postgres",)  # the image's CMD, dropped with its entrypoint
