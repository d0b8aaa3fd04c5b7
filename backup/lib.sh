# Shared by the backup scripts (sourced, never run): settings, logging, run
# names, checksums, the status file and the off-site repository.
#
# Settings come from the environment, and from $BACKUP_CONFIG (default
# /etc/backup/backup.env, written by the fourlb program) when it exists:
#   BACKUP_DIR            where runs are kept on this host
#   VOLUMES_DIR           one directory per volume to archive (snapshot-volumes)
#   METRICS_DIR           node-exporter textfile directory for the status file
#   LOCAL_RETENTION_DAYS, REMOTE_RETENTION_DAYS
#   PGHOST PGPORT PGUSER PGPASSFILE    the PostgreSQL server (libpq variables)
#   RESTIC_REPOSITORY RESTIC_PASSWORD_FILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
#   S3_REGION BACKUP_HOST              the off-site copy (restic)

load_config() {
    config=${BACKUP_CONFIG:-/etc/backup/backup.env}
    if [ -r "$config" ]; then
        set -a
        # shellcheck disable=SC1090
        . "$config"
        set +a
    fi
    # run names, restic's --time and cron all speak UTC
    TZ=UTC
    export TZ
}

need() {  # VARIABLE...: dies naming the first one that is unset or empty
    for variable in "$@"; do
        eval "value=\${$variable:-}"
        [ -n "$value" ] || die "$variable is not set (see $config)"
    done
}

log() {
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${0##*/}" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# A run is named after the UTC second it started, e.g. 20250131T031500Z, so
# that names sort by time. A failed run keeps its name with ".failed" added.
# shellcheck disable=SC2034  # used by the scripts that source this file
RUN_NAME_GLOB='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z'

run_name_at() {  # EPOCH_SECONDS
    date -u -d "@$1" +%Y%m%dT%H%M%SZ
}

run_epoch() {  # RUN_NAME -> epoch seconds (GNU and busybox date both read "YYYY-MM-DD hh:mm:ss")
    date -u -d "$(printf '%s\n' "$1" |
        sed 's/^\([0-9]\{4\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)T\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)Z$/\1-\2-\3 \4:\5:\6/')" +%s
}

write_checksum() {  # FILE -> FILE.sha256, naming FILE relatively so that it checks in place
    (cd "$(dirname "$1")" && sha256sum "$(basename "$1")" > "$(basename "$1").sha256")
}

verify_checksum() {  # FILE: dies unless FILE.sha256 exists and matches
    [ -r "$1.sha256" ] || die "no checksum beside $1 (expected $1.sha256)"
    (cd "$(dirname "$1")" && sha256sum -c "$(basename "$1").sha256" >/dev/null 2>&1) ||
        die "checksum mismatch: $1 is not the file that was backed up"
}

# The status file Prometheus reads through node-exporter's textfile collector.
STATUS_FILE_NAME=fourlb_backup.prom

previous_success() {
    file="${METRICS_DIR:-}/$STATUS_FILE_NAME"
    [ -r "$file" ] || return 0
    sed -n 's/^fourlb_backup_last_success_timestamp_seconds \([0-9][0-9]*\)$/\1/p' "$file"
}

write_status() {  # OK(1|0) STARTED ENDED [SIZE_BYTES]
    if [ -z "${METRICS_DIR:-}" ]; then
        log "METRICS_DIR is not set: no status for Prometheus"
        return 0
    fi
    mkdir -p "$METRICS_DIR"
    last_success=$(previous_success)
    [ "$1" -eq 1 ] && last_success=$3
    # written aside then renamed: node-exporter never reads half a file
    tmp="$METRICS_DIR/.$STATUS_FILE_NAME.tmp"
    {
        echo "# HELP fourlb_backup_last_run_status 1 if the last backup run succeeded, 0 if it failed."
        echo "# TYPE fourlb_backup_last_run_status gauge"
        echo "fourlb_backup_last_run_status $1"
        echo "# HELP fourlb_backup_last_run_timestamp_seconds When the last backup run ended."
        echo "# TYPE fourlb_backup_last_run_timestamp_seconds gauge"
        echo "fourlb_backup_last_run_timestamp_seconds $3"
        echo "# HELP fourlb_backup_last_run_duration_seconds How long the last backup run took."
        echo "# TYPE fourlb_backup_last_run_duration_seconds gauge"
        echo "fourlb_backup_last_run_duration_seconds $(($3 - $2))"
        if [ -n "$last_success" ]; then
            echo "# HELP fourlb_backup_last_success_timestamp_seconds When the last successful backup run ended."
            echo "# TYPE fourlb_backup_last_success_timestamp_seconds gauge"
            echo "fourlb_backup_last_success_timestamp_seconds $last_success"
        fi
        if [ -n "${4:-}" ]; then
            echo "# HELP fourlb_backup_last_size_bytes Size of the last successful run on this host."
            echo "# TYPE fourlb_backup_last_size_bytes gauge"
            echo "fourlb_backup_last_size_bytes $4"
        fi
    } > "$tmp"
    mv "$tmp" "$METRICS_DIR/$STATUS_FILE_NAME"
}

remote_configured() {
    [ -n "${RESTIC_REPOSITORY:-}" ]
}

restic_repo() {  # restic with the stack's region option, when there is one
    if [ -n "${S3_REGION:-}" ]; then
        restic -o "s3.region=$S3_REGION" "$@"
    else
        restic "$@"
    fi
}
