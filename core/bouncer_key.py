"""Traefik's CrowdSec bouncer key, and how a new one takes over without a gap.

Three facts make a plain key rotation disarm CrowdSec:
- CrowdSec's docker_start.sh registers a bouncer from /run/secrets/BOUNCER_KEY_<name>
  only when no bouncer of that name exists: a new key under the old name is never
  registered, and the old key stays valid;
- the bouncer plugin (v1.4.2, bouncer.go: the package's `ticker`) starts its
  decision stream once per Traefik process, with the key of the first middleware
  it builds: a reloaded middleware keeps streaming with the old key;
- so after the next restart of Traefik every stream call gets 403.

Here the bouncer's name comes from its key (`traefik-` and 12 hex digits of its
SHA-256), so a new key is a new bouncer, registered before CrowdSec's API
answers (its health check, which Traefik starts after). Traefik reads the key from
a file of its own, so a new key replaces Traefik, whose new process streams with
it. The bouncers of earlier keys stay valid until the new key has been used, and
are deleted then: the old key is refused once nothing uses it, and bans are
enforced all along. "Used" is the address CrowdSec records at a bouncer's first
request, empty until then: `last_pull` cannot tell, CrowdSec 1.4 sets it when
the bouncer is added.
"""

from __future__ import annotations

from .start_scripts import StartScript

# where each side reads the key: CrowdSec's file must not match BOUNCER_KEY_*,
# or docker_start.sh would register it under a fixed name
CROWDSEC_KEY_FILE = "/run/secrets/traefik-bouncer-key"
TRAEFIK_KEY_FILE = "/run/secrets/crowdsec-bouncer-key"
BOUNCER_PREFIX = "traefik"
DIGEST_HEX = 12
RETIRE_POLL_S = 10

CROWDSEC_START = StartScript("/usr/local/bin/fourlb-crowdsec-start", rf"""#!/bin/sh
# Registers Traefik's key as the bouncer {BOUNCER_PREFIX}-<digest of the key>, retires
# the bouncers of earlier keys once this one has been used, and starts
# CrowdSec as the image does (docker_start.sh). See core/bouncer_key.py.
set -eu
key_file={CROWDSEC_KEY_FILE}
digest=$(sha256sum "$key_file" | cut -c1-{DIGEST_HEX})
current={BOUNCER_PREFIX}-$digest
# docker_start.sh registers this file's key unless a bouncer of its name exists
# (it names it KEY_<name> in some releases: crowdsec#4301)
cp "$key_file" "/run/secrets/BOUNCER_KEY_$current"
chmod 0400 "/run/secrets/BOUNCER_KEY_$current"

# cscli's raw list: name,ip,revoked,last_pull,...; the ip is recorded at the
# bouncer's first request, empty until then
retire_earlier_keys() {{
    while sleep {RETIRE_POLL_S}; do
        list=$(cscli bouncers list -o raw 2>/dev/null) || continue
        used_from=$(printf '%s\n' "$list" | awk -F, -v n="$current" \
            '$1 == n || tolower($1) == "key_" n {{ print $2 }}')
        [ -n "$used_from" ] || continue
        printf '%s\n' "$list" | awk -F, -v n="$current" \
            'NR > 1 && $1 != n && tolower($1) != "key_" n &&
             tolower($1) ~ /^(key_)?{BOUNCER_PREFIX}(-[0-9a-f]+)?$/ {{ print $1 }}' |
        while read -r earlier; do
            if cscli bouncers delete "$earlier" >/dev/null; then
                echo "fourlb: bouncer $earlier deleted: $current is used (from $used_from)"
            fi
        done
        return 0
    done
}}
retire_earlier_keys &
exec "$@"
""", command=("/bin/bash", "/docker_start.sh"))

START_SCRIPTS = {"crowdsec": CROWDSEC_START}
