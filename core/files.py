"""Configuration files the program writes into containers (as `Upload`s)."""

from __future__ import annotations

from typing import Any

import yaml

from .catalog import REDIS_CONF
from .model import Upload, secret
from .traefik import ACCESS_LOG, DYNAMIC_DIR, STATIC_FILE


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def traefik_files(static: dict, dynamic: dict) -> tuple[Upload, ...]:
    return (
        Upload(STATIC_FILE, to_yaml(static)),
        # holds the bouncer key and the basic-auth hash; Traefik reads it as root
        Upload(f"{DYNAMIC_DIR}/middlewares.yml", to_yaml(dynamic), mode="0600"),
    )


def redis_files() -> tuple[Upload, ...]:
    conf = "\n".join([
        "appendonly yes",
        "appendfsync everysec",
        "save 900 1",
        f"requirepass {secret('redis-password')}",
        "",
    ])
    # Uploads belong to root and the image runs redis-server as user redis (999),
    # which must read its configuration, password included: readable by all in a
    # container that runs nothing else (Redis reads no password file).
    return (Upload(REDIS_CONF, conf, mode="0444"),)


def crowdsec_files() -> tuple[Upload, ...]:
    acquisition = to_yaml({"filenames": [ACCESS_LOG], "labels": {"type": "traefik"}})
    return (Upload("/etc/crowdsec/acquis.d/traefik.yaml", acquisition),)
