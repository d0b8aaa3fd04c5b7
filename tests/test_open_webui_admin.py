"""Open WebUI's start script (core/passwords.py) run with the real Open WebUI
0.6.5 (PyPI, .ci/install-real-programs) on a database of its own: the admin is
created on a database without users, gets the file's password at every start,
and a database with admins of its own is left alone. What the server then
lets in is tested in the end-to-end suite (tests/e2e/test_real_programs.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.passwords import OPEN_WEBUI_START
from tests.e2e.real.contracts import OPEN_WEBUI_VENV

PYTHON = Path(OPEN_WEBUI_VENV) / "bin" / "python3"
EMAIL = "owner@4lb.ca"

# Open WebUI's own check of a password (what its sign-in does: routers/auths.py)
AUTHENTICATES = """
import sys
from open_webui.models.auths import Auths
print("yes" if Auths.authenticate_user(sys.argv[1], sys.argv[2]) else "no")
"""
ADD_USER = """
import sys
from open_webui.models.auths import Auths
from open_webui.utils.auth import get_password_hash
Auths.insert_new_auth(email=sys.argv[1], password=get_password_hash("theirs"), name="x", role=sys.argv[2])
"""


@pytest.fixture
def open_webui(tmp_path: Path) -> dict[str, str]:
    if not PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PYTHON} is missing: .ci/install-real-programs installs it")
        pytest.skip(f"Open WebUI is not installed at {OPEN_WEBUI_VENV} (.ci/install-real-programs)")
    (tmp_path / "data").mkdir()
    # the image's start.sh, which the test does not run: a script of the test's
    (tmp_path / "start.sh").write_text('echo "image start.sh $*"\n')
    # as in the image: the virtualenv's python3 first on PATH
    return {"PATH": f"{PYTHON.parent}:/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data"),
            "WEBUI_SECRET_KEY": "a-key", "ENV": "prod", "OFFLINE_MODE": "true",
            "HOME": str(tmp_path), "WEBUI_ADMIN_EMAIL": EMAIL,
            "WEBUI_ADMIN_PASSWORD_FILE": str(tmp_path / "password")}


def start(env: dict[str, str], password: str) -> subprocess.CompletedProcess[str]:
    directory = Path(env["DATA_DIR"]).parent
    Path(env["WEBUI_ADMIN_PASSWORD_FILE"]).write_text(password + "\n")
    script = directory / "fourlb-open-webui-start"
    script.write_text(OPEN_WEBUI_START.script)
    return subprocess.run(["sh", str(script)], env=env, cwd=directory, capture_output=True,
                          text=True, timeout=120)


def python(env: dict[str, str], code: str, *args: str) -> str:
    done = subprocess.run([str(PYTHON), "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(env["DATA_DIR"]).parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_new_database_gets_the_admin_and_each_start_its_password(open_webui) -> None:
    first = start(open_webui, "first-password")
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"fourlb: created the admin {EMAIL}" in first.stdout
    assert first.stdout.strip().endswith("image start.sh")  # then the image's own start
    assert python(open_webui, AUTHENTICATES, EMAIL, "first-password") == "yes"
    second = start(open_webui, "second-password")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "is the one of WEBUI_ADMIN_PASSWORD_FILE" in second.stdout
    assert python(open_webui, AUTHENTICATES, EMAIL, "second-password") == "yes"
    assert python(open_webui, AUTHENTICATES, EMAIL, "first-password") == "no"


def test_a_database_with_admins_of_its_own_is_left_alone(open_webui) -> None:
    start(open_webui, "ignored")  # migrates; then the database is emptied of that admin
    python(open_webui, "from open_webui.models.users import Users; "
                       "Users.delete_user_by_id(Users.get_user_by_email('owner@4lb.ca').id); print('ok')")
    python(open_webui, ADD_USER, "someone@4lb.ca", "admin")
    taken_over = start(open_webui, "ours")
    assert taken_over.returncode == 0, taken_over.stderr[-2000:]
    assert "is no admin of this database" in taken_over.stderr
    assert python(open_webui, AUTHENTICATES, EMAIL, "ours") == "no"
    assert python(open_webui, AUTHENTICATES, "someone@4lb.ca", "theirs") == "yes"


def test_a_password_bcrypt_cannot_take_stops_the_start(open_webui) -> None:
    refused = start(open_webui, "x" * 73)
    assert refused.returncode != 0
    assert "1 to 72 bytes" in refused.stderr
    assert "image start.sh" not in refused.stdout
