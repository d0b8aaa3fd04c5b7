#!/bin/sh
# What the entrypoint of postgres:16-alpine does (contracts.POSTGRES), for the
# settings the program uses:
# - POSTGRES_PASSWORD, _USER, _DB, _INITDB_ARGS may come from `<NAME>_FILE`; the
#   file is read in the first pass, as root, and the value exported for the
#   second pass, as postgres (a root-only file is enough);
# - as root: the data directory and the socket directory go to postgres, then
#   the script runs itself again as postgres;
# - only when the data directory holds no database: initdb with that user and
#   password, `host all all all scram-sha-256` appended to pg_hba.conf, the
#   database POSTGRES_DB created through a server listening on the socket only;
#   on every later start these variables are ignored.
set -eu

file_env() {
    var=$1
    file_var="${var}_FILE"
    eval "value=\${$var:-}"
    eval "file=\${$file_var:-}"
    if [ -n "$value" ] && [ -n "$file" ]; then
        echo "error: both $var and $file_var are set (but are exclusive)" >&2
        exit 1
    fi
    if [ -n "$file" ]; then
        value=$(cat "$file")
    fi
    export "$var=$value"
    unset "$file_var"
}

case $1 in
    -*) set -- postgres "$@" ;;
esac
[ "$1" = postgres ] || exec "$@"

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export POSTGRES_USER POSTGRES_DB

mkdir -p "$PGDATA" /var/run/postgresql
if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    chmod 00700 "$PGDATA"
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
    chmod 03775 /var/run/postgresql
    exec gosu postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        exit 1
    fi
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" ${POSTGRES_INITDB_ARGS:-}
    rm -f "$password_file"
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
    PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres \
            -c "CREATE DATABASE \"$POSTGRES_DB\";"
    fi
    PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
else
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
fi
exec "$@"
