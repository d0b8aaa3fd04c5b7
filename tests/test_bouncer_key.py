"""CrowdSec's start script for Traefik's bouncer key (core/bouncer_key.py), run by
sh against a `cscli` of the test's that answers `bouncers list -o raw` from a
file, in the CSV cscli writes (cmd/crowdsec-cli bouncers: name, ip, revoked,
last_pull, type, version, auth_type; the ip empty until the bouncer's first
request, as Debian's cscli 1.4.6 shows for a bouncer just added). The real CrowdSec registers,
refuses and deletes keys in the engine suite (tests/engine: the bouncer key)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from pathlib import Path

from core.bouncer_key import CROWDSEC_KEY_FILE, CROWDSEC_START, RETIRE_POLL_S
from core.edge import load_plan

KEY = "a-new-bouncer-key-0123456789"
CURRENT = "traefik-" + hashlib.sha256(KEY.encode()).hexdigest()[:12]
HEADER = "name,ip,revoked,last_pull,type,version,auth_type"

FAKE_CSCLI = """#!/bin/sh
echo "$*" >> "$STATE.calls"
case "$*" in
    "bouncers list -o raw") cat "$STATE" ;;
    "bouncers delete "*) echo "$3" >> "$STATE.deleted" ;;
    *) exit 1 ;;
esac
"""

# the script polls until the current bouncer pulled: the test's command waits
# (bounded) for the deletions a test expects, or for three polls when it expects
# none, so that "nothing deleted" is seen after several
WAIT_FOR_POLLS = """
count() { cat "$1" 2>/dev/null | grep -c "$2" || true; }
i=0
while [ $i -lt 100 ]; do
    if [ "$EXPECTED" -gt 0 ]; then [ "$(count "$STATE.deleted" .)" -ge "$EXPECTED" ] && break
    else [ "$(count "$STATE.calls" list)" -ge 3 ] && break; fi
    sleep 0.1; i=$((i + 1))
done
"""


def run_start(tmp_path: Path, listed: list[str], expected: int = 0) -> tuple[str, list[str], Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "traefik-bouncer-key").write_text(KEY)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cscli").write_text(FAKE_CSCLI)
    (bin_dir / "cscli").chmod(0o755)
    state = tmp_path / "bouncers.csv"
    state.write_text("\n".join([HEADER, *listed]) + "\n")
    script = (CROWDSEC_START.script.replace(CROWDSEC_KEY_FILE, str(secrets / "traefik-bouncer-key"))
              .replace("/run/secrets/", f"{secrets}/")
              .replace(f"while sleep {RETIRE_POLL_S}", "while sleep 0.1"))
    assert script != CROWDSEC_START.script
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state),
           "EXPECTED": str(expected)}
    output = tmp_path / "output"
    # the retiring loop outlives the command (as it runs beside CrowdSec): its
    # process group is ended once the command is done
    with output.open("w") as out:
        process = subprocess.Popen(["sh", "-c", script, "start", "sh", "-c", WAIT_FOR_POLLS + 'echo "image: $0"'],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert process.wait(timeout=30) == 0, output.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):  # the loop may be done
                os.killpg(process.pid, signal.SIGKILL)
    deleted = Path(f"{state}.deleted")
    return output.read_text(), deleted.read_text().split() if deleted.exists() else [], secrets


def test_the_key_is_registered_under_its_digest_for_the_images_entrypoint(tmp_path):
    output, _, secrets = run_start(tmp_path, [])
    registered = secrets / f"BOUNCER_KEY_{CURRENT}"
    assert registered.read_text() == KEY and oct(registered.stat().st_mode & 0o777) == "0o400"
    assert output.strip().splitlines()[-1] == "image: sh"  # then the image's entrypoint runs


def test_earlier_keys_stay_valid_until_the_new_one_is_used(tmp_path):
    """Unused: no address recorded, whatever last_pull says (CrowdSec 1.4 sets it
    when the bouncer is added, 1.6 leaves it empty)."""
    for last_pull in ("", "2026-12-07T10:05:00Z"):
        run_dir = tmp_path / (last_pull or "empty")
        run_dir.mkdir()
        _, deleted, _ = run_start(run_dir, [
            "KEY_traefik,172.18.0.5,validated,2026-12-07T10:00:00Z,Crowdsec-Bouncer,v1.4.2,api-key",
            f"KEY_{CURRENT},,validated,{last_pull},,,api-key"])
        assert deleted == [], last_pull


def test_once_the_new_key_is_used_only_the_earlier_traefik_keys_are_deleted(tmp_path):
    _, deleted, _ = run_start(tmp_path, [
        "KEY_traefik,172.18.0.5,validated,2026-12-07T10:00:00Z,Crowdsec-Bouncer,v1.4.2,api-key",
        "traefik-0123456789ab,172.18.0.5,validated,2026-12-07T10:00:00Z,,,api-key",
        "firewall,10.0.0.1,validated,2026-12-07T10:00:00Z,cs-firewall-bouncer,v0.0.28,api-key",
        "traefik-admin,10.0.0.2,validated,2026-12-07T10:00:00Z,,,api-key",
        f"KEY_{CURRENT},172.18.0.6,validated,2026-12-07T10:05:00Z,Crowdsec-Bouncer,v1.4.2,api-key"],
        expected=2)
    assert deleted == ["KEY_traefik", "traefik-0123456789ab"]


def test_crowdsec_starts_through_the_script_with_the_images_entrypoint():
    _, plan = load_plan("prod")
    crowdsec = plan.container("crowdsec")
    assert crowdsec.entrypoint == (CROWDSEC_START.path,)
    # crowdsecurity/crowdsec's Dockerfile: ENTRYPOINT ["/bin/bash", "/docker_start.sh"]
    assert crowdsec.command == ("/bin/bash", "/docker_start.sh")
    # Traefik is created once CrowdSec is healthy, i.e. its new key registered
    assert "crowdsec" in plan.container("traefik").starts_after
    names = [c.name for c in plan.containers]
    assert names.index("crowdsec") < names.index("traefik")
