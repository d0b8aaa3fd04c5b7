#!/bin/sh
# What docker_start.sh of crowdsecurity/crowdsec does (contracts.CROWDSEC), for
# the settings the program uses. It runs as root, at every start:
# - an empty /etc/crowdsec (a new volume) gets the image's default configuration;
# - the local agent gets LAPI credentials (`cscli machines add --auto --force`);
# - COLLECTIONS are installed from the hub (here: Debian's offline copy of it);
# - each bouncer key of BOUNCER_KEY_<name> (env) or /run/secrets/BOUNCER_KEY_<name>
#   (file) is registered, unless a bouncer of that name exists (its key is kept);
# then crowdsec runs in the foreground.
set -eu
CONFIG=/etc/crowdsec/config.yaml

if [ ! -f "$CONFIG" ]; then
    cp -a /staging/etc/crowdsec/. /etc/crowdsec/
fi
mkdir -p /var/lib/crowdsec/data

cscli machines add localhost --auto --force --error -f /etc/crowdsec/local_api_credentials.yaml

HUB=/var/lib/crowdsec/hub

# `cscli collections install` downloads each item; Debian's offline hub enables an
# item by a link from /etc/crowdsec/<type>/[<stage>/]<name>.yaml to the hub's copy
enable_item() {  # TYPE VENDOR/NAME
    for source in "$HUB/$1"/*/"$2".yaml "$HUB/$1/$2".yaml; do
        [ -f "$source" ] || continue
        stage=${source#"$HUB/$1/"}
        stage=${stage%"$2.yaml"}
        stage=${stage%/}
        target=/etc/crowdsec/$1${stage:+/$stage}/${2#*/}.yaml
        [ -e "$target" ] && return
        mkdir -p "${target%/*}"
        ln -s "$source" "$target"
        [ "$1" = collections ] || return
        # a collection's own items: "<type>:" then "  - vendor/name" lines
        awk '/^[a-z]+:/ { type = $1; sub(":", "", type); next }
             /^ *- / && type ~ /^(parsers|scenarios|postoverflows|collections)$/ { print type, $2 }' \
            "$source" | while read -r type item; do enable_item "$type" "$item"; done
        return
    done
    echo "$1 $2: not in the hub" >&2
    return 1
}

for collection in ${COLLECTIONS:-}; do
    enable_item collections "$collection"
done

bouncer_exists() {
    cscli bouncers list -o json | grep -q "\"name\": *\"$1\""
}

register_bouncer() {
    name=$1
    key=$2
    if bouncer_exists "$name"; then
        return
    fi
    if cscli bouncers add "$name" -k "$key" >/dev/null; then
        echo "Registered bouncer for $name"
    else
        echo "Failed to register bouncer for $name" >&2
    fi
}

# as docker_start.sh names them: BOUNCER_KEY_<name> gives <name> (fields 3- of
# the variable's name split at "_"); a file /run/secrets/BOUNCER_KEY_<name>
# gives fields 2- of the file's name, i.e. KEY_<name> (crowdsec#4301)
env | sed -n 's/^\([^=]*[Bb][Oo][Uu][Nn][Cc][Ee][Rr]_[Kk][Ee][Yy][^=]*\)=.*/\1/p' | while read -r variable; do
    eval "key=\${$variable}"
    register_bouncer "$(printf '%s' "$variable" | cut -d_ -f3-)" "$key"
done
for file in /run/secrets/bouncer_key* /run/secrets/BOUNCER_KEY*; do
    [ -f "$file" ] || continue
    register_bouncer "$(echo "$file" | awk -F / '{printf $NF}' | cut -d_ -f2-)" "$(cat "$file")"
done

exec crowdsec -c "$CONFIG"
