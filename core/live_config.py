"""Configuration a running service re-reads, delivered without replacing it.

Docker container inputs are all replace-on-change: a file uploaded into a
long-lived container (Traefik's middlewares, Prometheus's rules) restarts it on
every change. Instead, such files are uploaded into a small writer container,
`<service>-config`, which checks them with the service's own tool, installs
them into a volume the service mounts read-only (each file renamed into place,
so a reader never sees half a file), asks the service to reload where it does
not watch its files, and then sleeps. A change replaces only the writer.

The writer runs the service's own image (its shell, its checker, its wget), so
nothing more is pulled.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Optional

from .model import WRITER_SUFFIX, Container, HealthCheck, Mount

TARGET = "/target"  # where the writer mounts the volume
LOADED_WITHIN_S = 30  # Traefik reloads a changed directory within a second or two
WRITTEN = "/tmp/fourlb-config-written"  # its health: the files are in place


@dataclass(frozen=True)
class LoadedCheck:
    """How a writer confirms that the running service loaded its files: it writes,
    last, a marker file declaring an object whose settings name the digest of the
    other files, then asks the service's API for that object until its answer
    names the digest. A service that refuses one file (Traefik keeps its previous
    configuration when a file of its directory cannot be loaded, and starts with
    none) never shows it: the writer puts the previous files back and stays
    unhealthy, so `pulumi up` stops."""
    marker: str  # the marker's file name, in the directory
    template: str  # its content, printf'd with the token (a prefix and the digest)
    prefix: str  # of the token
    ping_url: str  # answers while the service runs; none answering: a first deployment
    loaded_url: str  # the object; its answer names the token once loaded


@dataclass(frozen=True)
class LiveConfig:
    directory: str  # the service's configuration directory, mounted read-only from `volume`
    volume: str  # its purpose is in catalog.VOLUMES
    check: tuple[str, ...] = ()  # run in the writer on the staged files; refusal stops the deploy
    reload_url: Optional[str] = None  # POSTed once the files are in place
    network: Optional[str] = None  # where the writer reaches reload_url; none without one
    image: Optional[str] = None  # the writer's, when the service's is built on the host
    loaded: Optional[LoadedCheck] = None


# POSIX sh (busybox, alpine): the files arrive as uploads at their real paths under
# $LIVE_DIR, so a checker that follows references between them (prometheus.yml ->
# rules) finds them there. Temporary names end in .fourlb-new, which no service
# reads (Traefik takes .yml/.yaml/.toml, Grafana .json, Prometheus named files).
WRITER_SCRIPT = r"""set -eu
# it then idles, as the container's PID 1, which ignores a signal it has no
# handler for: without the trap a stop would wait out the grace period (and a
# swarm service's removal, which waits that long at most, would fail)
stay() { trap 'exit 0' TERM INT; sleep 2147483647 & wait $!; }
if [ -n "${CHECK:-}" ]; then
  echo "checking: $CHECK"
  eval "$CHECK"
fi
# SOURCE's files renamed into $TARGET one by one, then $TARGET's others removed
# (but the marker, rewritten below)
install_from() {
  cd "$1"
  find . -type f ! -name '*.fourlb-new' | while read -r file; do
    mkdir -p "$TARGET/$(dirname "$file")"
    cp -p "$file" "$TARGET/$file.fourlb-new"
    mv -f "$TARGET/$file.fourlb-new" "$TARGET/$file"
  done
  cd "$TARGET"
  find . -type f | while read -r file; do
    [ -e "$1/$file" ] || [ "$file" = "./${MARKER:-}" ] || { rm -f "$file"; echo "removed $file"; }
  done
}
if [ -n "${MARKER:-}" ]; then
  rm -rf /tmp/previous && mkdir /tmp/previous && cp -a "$TARGET/." /tmp/previous/
fi
install_from "$LIVE_DIR"
if [ -n "${MARKER:-}" ]; then
  digest=$(cd "$TARGET" && find . -type f ! -name "$MARKER" | sort | xargs cat | sha256sum | cut -c1-12)
  loaded=$MARKER_PREFIX$digest
  printf "$MARKER_TEMPLATE" "$loaded" > "$TARGET/$MARKER.fourlb-new"
  mv -f "$TARGET/$MARKER.fourlb-new" "$TARGET/$MARKER"
  if wget -q -O /dev/null "$PING_URL" 2>/dev/null; then
    tries=0
    until wget -q -O - "$LOADED_URL" 2>/dev/null | grep -q "$loaded"; do
      tries=$((tries + 1))
      if [ "$tries" -ge "$LOADED_WITHIN_S" ]; then
        echo "the service did not load the new files within $LOADED_WITHIN_S s (its log says why):" \
             "the previous ones are back, and this writer stays unhealthy" >&2
        install_from /tmp/previous
        [ -e "/tmp/previous/$MARKER" ] || rm -f "$TARGET/$MARKER"
        stay
      fi
      sleep 1
    done
    echo "loaded by the service: $loaded"
  else
    echo "no answer from $PING_URL (not running yet?): the service checks its files when it starts"
  fi
fi
if [ -n "${RELOAD_URL:-}" ]; then
  # absent on a first deployment: the service then reads the files when it starts
  if wget -q -O /dev/null --post-data= "$RELOAD_URL"; then echo "reloaded: $RELOAD_URL"
  else echo "no reload from $RELOAD_URL (not running yet?)"; fi
fi
touch "$WRITTEN"
echo "configuration in place"
stay
"""


def _loaded_check_env(check: Optional[LoadedCheck]) -> tuple[tuple[str, str], ...]:
    if check is None:
        return ()
    return (("MARKER", check.marker), ("MARKER_TEMPLATE", check.template),
            ("MARKER_PREFIX", check.prefix), ("PING_URL", check.ping_url),
            ("LOADED_URL", check.loaded_url), ("LOADED_WITHIN_S", str(LOADED_WITHIN_S)))


def writer_name(service: str) -> str:
    return service + WRITER_SUFFIX


def split(container: Container, live: LiveConfig) -> tuple[Container, Container]:
    """The service without the live files (it mounts them) and their writer."""
    prefix = live.directory.rstrip("/") + "/"
    live_uploads = tuple(u for u in container.uploads if u.path.startswith(prefix))
    service = replace(
        container,
        uploads=tuple(u for u in container.uploads if not u.path.startswith(prefix)),
        mounts=container.mounts + (Mount(target=live.directory, volume=live.volume, read_only=True),),
        starts_after=container.starts_after + (writer_name(container.name),),
    )
    writer = Container(
        name=writer_name(container.name),
        image=live.image or container.image,
        build_context=None if live.image else container.build_context,
        build_platform=None if live.image else container.build_platform,
        role=container.role,
        networks=(live.network,) if live.network else (),
        uploads=live_uploads,
        mounts=(Mount(target=TARGET, volume=live.volume),),
        entrypoint=("/bin/sh", "-c", WRITER_SCRIPT),
        # sh's $0; set, so that the image's own CMD is not appended as arguments
        command=("fourlb-config-writer",),
        # root whatever the image's user (prom/* run as nobody): it reads root-only
        # uploads and writes the volume; it runs nothing but this script
        user="0:0",
        env=(("LIVE_DIR", live.directory), ("TARGET", TARGET), ("WRITTEN", WRITTEN),
             ("CHECK", shlex.join(live.check)), ("RELOAD_URL", live.reload_url or ""),
             *_loaded_check_env(live.loaded)),
        healthcheck=HealthCheck(("CMD", "test", "-f", WRITTEN), interval_s=2, timeout_s=2,
                                retries=60, start_period_s=2),
        memory_mb=64,
        # no traffic and a fixed name: the old writer goes, the new one writes
        update_order="stop-first",
        stop_grace_s=1,
    )
    return service, writer
