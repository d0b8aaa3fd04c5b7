#!/bin/bash
# linuxserver/code-server's start for the settings the program uses, in one
# script where the image has s6-overlay's /init and its services
# (root/etc/s6-overlay/s6-rc.d/ of linuxserver/docker-code-server and the
# base image's init-envfile): as root, each FILE__<NAME> becomes <NAME> with
# the file's content; /config gets its directories, owned by abc; code-server
# runs as abc with the image's arguments.
set -e

for variable in $(compgen -e); do
    case "$variable" in
        FILE__*) export "${variable#FILE__}"="$(cat "${!variable}")" ;;
    esac
done

mkdir -p /config/{extensions,data,workspace,.ssh}
find /config -path /config/workspace -prune -o -exec chown abc:abc {} +
chown abc:abc /config/workspace

if [[ -n "${PASSWORD}" ]] || [[ -n "${HASHED_PASSWORD}" ]]; then
    AUTH="password"
else
    AUTH="none"
    echo "starting with no password"
fi

# --disable-update-check: a difference of the test (contracts.py), not the image's
exec gosu abc /app/code-server/bin/code-server \
    --bind-addr 0.0.0.0:8443 \
    --user-data-dir /config/data \
    --extensions-dir /config/extensions \
    --disable-telemetry \
    --disable-update-check \
    --auth "${AUTH}" \
    --app-name "${PWA_APPNAME:-code-server}" \
    "${DEFAULT_WORKSPACE:-/config/workspace}"
