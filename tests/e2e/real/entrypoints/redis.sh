#!/bin/sh
# What the entrypoint of redis:7-alpine does (contracts.REDIS): started as root
# with `redis-server ...`, it gives the working directory (/data, the volume) to
# the redis user, then runs the server as that user, with umask 0077.
set -e
case $1 in
    -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    # su-exec in the image; Debian has gosu, which does the same (setuid, setgid, exec)
    exec gosu redis "$0" "$@"
fi
if [ "$(umask)" = 0022 ]; then
    umask 0077
fi
exec "$@"
