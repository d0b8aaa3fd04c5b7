"""Passwords a service takes only when it creates its data, set again at every start.

PostgreSQL's image gives POSTGRES_USER its password only when initdb makes the
database, and Grafana gives its admin the password of GF_SECURITY_ADMIN_PASSWORD
only when it creates that user: a new `fourlb:postgresPassword` would reach the
clients (the AI backend's URL, the backup's pgpass) and never the role, so both
would stop logging in. Each of the two starts through a script of the program's
that sets the password from its file, the service's own way, then runs the
image's entrypoint. The password file is an upload, and an upload is
replace-forcing: a new password replaces the container, and its start applies it.

Open WebUI creates no admin from its env at all: its start script creates one
on a database without users and sets that admin's password at every start.

Redis and code-server read their password at every start (their configuration
file), so a replaced container is enough for them.
"""

from __future__ import annotations

from typing import Iterable

from config.models import StackConfig

from .model import Container, with_env_default
from .start_scripts import StartScript


# The server is not running yet: single-user mode changes the role with nothing
# listening. `-j`: a statement ends at ";" and an empty line, so a password may
# hold a newline. A failed statement does not change the exit status of single-
# user mode, hence the check of its output.
POSTGRES_START = StartScript("/usr/local/bin/fourlb-postgres-start", r"""#!/bin/sh
# PostgreSQL's image sets the password of POSTGRES_USER only when it creates the
# database: on one that exists, set it from POSTGRES_PASSWORD_FILE, then start as
# the image does (docker-entrypoint.sh).
set -eu
[ $# -gt 0 ] || set -- postgres
if [ -s "$PGDATA/PG_VERSION" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ "$(id -u)" = 0 ]; then
    # as the image's entrypoint does before it starts the server
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    chmod 00700 "$PGDATA"
    # a string literal: quotes doubled (standard_conforming_strings is on)
    literal=$(sed "s/'/''/g" "$POSTGRES_PASSWORD_FILE")
    # Alpine's image has su-exec, Debian's gosu
    if command -v su-exec >/dev/null 2>&1; then as_user=su-exec; else as_user=gosu; fi
    output=$(printf 'ALTER ROLE "%s" PASSWORD '"'"'%s'"'"';\n\n' "$POSTGRES_USER" "$literal" |
             "$as_user" postgres postgres --single -j -D "$PGDATA" postgres 2>&1) || status=$?
    case "${status:-0}:$output" in
        0:*ERROR:*|0:*FATAL:*|[1-9]*)
            echo "fourlb: could not set the password of role $POSTGRES_USER:" >&2
            echo "$output" | grep -E 'ERROR|FATAL|HINT|DETAIL' >&2
            exit 1 ;;
    esac
    echo "fourlb: the password of role $POSTGRES_USER is the one of $POSTGRES_PASSWORD_FILE"
fi
exec docker-entrypoint.sh "$@"
""", command=("postgres",))

# Grafana's CLI changes the admin's (user 1) password in its database, read
# from stdin (pkg/cmd/grafana-cli/commands/reset_password_command.go); the image
# runs as uid 472 with group root, which reads the 0440 password file.
GRAFANA_START = StartScript("/usr/local/bin/fourlb-grafana-start", r"""#!/bin/sh
# Grafana sets its admin's password only when it creates that user: on a
# database that exists, set it from GF_SECURITY_ADMIN_PASSWORD__FILE, then start
# as the image does (/run.sh).
set -eu
data=${GF_PATHS_DATA:-/var/lib/grafana}
if [ -s "$data/grafana.db" ] && [ -n "${GF_SECURITY_ADMIN_PASSWORD__FILE:-}" ]; then
    grafana cli --homepath "${GF_PATHS_HOME:-/usr/share/grafana}" \
        --config "${GF_PATHS_CONFIG:-/etc/grafana/grafana.ini}" \
        admin reset-admin-password --password-from-stdin <"$GF_SECURITY_ADMIN_PASSWORD__FILE" >/dev/null
    echo "fourlb: the admin's password is the one of $GF_SECURITY_ADMIN_PASSWORD__FILE"
fi
exec /run.sh "$@"
""", command=())

# Open WebUI 0.6.5 refuses every signup while ENABLE_SIGNUP is false, the first
# one too (routers/auths.py), and takes no admin from its env: its admin is set
# with Open WebUI's own functions before the server starts. Importing its config
# migrates the database, as the server's start would. The image's CMD is
# `bash start.sh` in WORKDIR /app/backend, where `open_webui` is importable.
OPEN_WEBUI_ADMIN_EMAIL_ENV = "WEBUI_ADMIN_EMAIL"
OPEN_WEBUI_START = StartScript("/usr/local/bin/fourlb-open-webui-start", r"""#!/bin/sh
# Open WebUI lets nobody sign up (ENABLE_SIGNUP=false), not even the first user:
# on a database without users, create the admin WEBUI_ADMIN_EMAIL; at every
# start, give that admin the password of WEBUI_ADMIN_PASSWORD_FILE. Then start
# as the image does (start.sh).
set -eu
if [ -n "${WEBUI_ADMIN_EMAIL:-}" ] && [ -n "${WEBUI_ADMIN_PASSWORD_FILE:-}" ]; then
    python3 - <<'PYTHON'
import os
import sys

import open_webui.config  # noqa: F401  (migrates the database, as the server's start does)
from open_webui.models.auths import Auths
from open_webui.models.users import Users
from open_webui.utils.auth import get_password_hash

email = os.environ["WEBUI_ADMIN_EMAIL"].strip().lower()
with open(os.environ["WEBUI_ADMIN_PASSWORD_FILE"], encoding="utf-8") as handle:
    password = handle.read().rstrip("\r\n")
if not password or len(password.encode()) > 72:
    sys.exit("fourlb: the admin password of Open WebUI must be 1 to 72 bytes (bcrypt)")
user = Users.get_user_by_email(email)
if user is None and Users.get_num_users() == 0:
    if not Auths.insert_new_auth(email=email, password=get_password_hash(password),
                                 name="Admin", role="admin"):
        sys.exit(f"fourlb: Open WebUI did not create the admin {email}")
    print(f"fourlb: created the admin {email}")
elif user is not None and user.role == "admin":
    if not Auths.update_user_password_by_id(user.id, get_password_hash(password)):
        sys.exit(f"fourlb: Open WebUI did not change the password of {email}")
    print(f"fourlb: the password of the admin {email} is the one of WEBUI_ADMIN_PASSWORD_FILE")
else:
    # a database taken over with admins of its own: nobody is added or changed
    print(f"fourlb: {email} is no admin of this database; its users are left as they are",
          file=sys.stderr)
PYTHON
fi
exec bash start.sh "$@"
""", command=())

START_SCRIPTS = {"postgres": POSTGRES_START, "grafana": GRAFANA_START, "open-webui": OPEN_WEBUI_START}


def admin_email(config: StackConfig) -> str:
    return config.admin_email or f"admin@{config.platform_domain}"


def with_admin_email(containers: Iterable[Container], config: StackConfig) -> list[Container]:
    """Open WebUI told who its admin is (its password is a file: catalog)."""
    return [with_env_default(c, OPEN_WEBUI_ADMIN_EMAIL_ENV, admin_email(config))
            if c.name == "open-webui" else c for c in containers]
