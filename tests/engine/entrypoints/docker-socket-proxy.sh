#!/bin/sh
# What docker-entrypoint.sh of tecnativa/docker-socket-proxy:0.3.0 does
# (tests/engine/contracts.py SOCKET_PROXY), at every start, as root:
# - the bind line: [::]:2375 for IPv4 and IPv6, or :2375 when DISABLE_IPV6 is
#   1, true or yes (any case);
# - the configuration is the image's template with that line, written where
#   the command reads it;
# - `haproxy ...` (or options alone) runs in the foreground, master-worker (-W -db).
# The env switches (CONTAINERS=1, POST=0, ...) are read by HAProxy itself, at
# every request (env(NAME) in the configuration).
set -e

case $(echo "${DISABLE_IPV6:-}" | tr '[:upper:]' '[:lower:]') in
    1|true|yes) BIND_CONFIG=":2375" ;;
    *) BIND_CONFIG="[::]:2375 v4v6" ;;
esac

sed "s/\${BIND_CONFIG}/$BIND_CONFIG/g" /usr/local/etc/haproxy/haproxy.cfg.template \
    > /usr/local/etc/haproxy/haproxy.cfg

case $1 in
    -*) set -- haproxy "$@" ;;
esac
if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi

exec "$@"
