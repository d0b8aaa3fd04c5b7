#!/bin/sh
# What /entrypoint.sh of the traefik:v3.6 image does (traefik/traefik-library-image
# v3.6/alpine/entrypoint.sh; tests/engine/contracts.py TRAEFIK): options alone run
# traefik with them, a Traefik subcommand runs through traefik, anything else runs
# as a command (the writer traefik-config replaces this entrypoint altogether).
set -e

case $1 in
    -*) set -- traefik "$@" ;;
esac

if traefik "$1" --help >/dev/null 2>&1; then
    set -- traefik "$@"
else
    echo "= '$1' is not a Traefik command: assuming shell execution." 1>&2
fi

exec "$@"
