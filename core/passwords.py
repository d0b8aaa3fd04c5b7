"""Passwords a service takes only when it creates its data, set again at every start.

PostgreSQL's image gives POSTGRES_USER its password only when initdb makes the
database, and Grafana gives its admin the password of GF_SECURITY_ADMIN_PASSWORD
only when it creates that user: a new `fourlb:postgresPassword` would reach the
clients (the AI backend's URL, the backup's pgpass) and never the role, so both
would stop logging in. Each of the two starts through a script of the program's
that sets the password from its file, the service's own way, then runs the
image's entrypoint. The password file is an upload, and an upload is
replace-forcing: a new password replaces the container, and its start applies it.

Redis and code-server read their password at every start (their configuration
file), so a replaced container is enough for them.
"""

from __future__ import annotations

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

START_SCRIPTS = {"postgres": POSTGRES_START, "grafana": GRAFANA_START}
