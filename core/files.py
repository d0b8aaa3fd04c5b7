"""Configuration files the program writes into containers (as `Upload`s)."""

from __future__ import annotations

from typing import Any, Iterable

import yaml

from .model import Container, Upload, secret
from .traefik import ACCESS_LOG, DYNAMIC_DIR, SECRETS_DIR, STATIC_FILE


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def traefik_files(static: dict, dynamic: dict) -> tuple[Upload, ...]:
    return (
        Upload(STATIC_FILE, to_yaml(static)),
        Upload(f"{DYNAMIC_DIR}/middlewares.yml", to_yaml(dynamic), mode="0600"),
        Upload(f"{SECRETS_DIR}/crowdsec-bouncer-key", secret("crowdsec-bouncer-key"), mode="0400"),
    )


def redis_files() -> tuple[Upload, ...]:
    conf = "\n".join([
        "appendonly yes",
        "appendfsync everysec",
        "save 900 1",
        f"requirepass {secret('redis-password')}",
        "",
    ])
    return (Upload("/usr/local/etc/redis/redis.conf", conf, mode="0600"),)


def crowdsec_files() -> tuple[Upload, ...]:
    acquisition = to_yaml({"filenames": [ACCESS_LOG], "labels": {"type": "traefik"}})
    return (Upload("/etc/crowdsec/acquis.d/traefik.yaml", acquisition),)


def prometheus_files(scraped: Iterable[Container], metrics_paths: dict[str, str]) -> tuple[Upload, ...]:
    """Scrape every container that exposes metrics, by its stable network alias."""
    jobs = [
        {
            "job_name": container.name,
            "metrics_path": metrics_paths[container.name],
            "static_configs": [{"targets": [f"{container.name}:{container.port}"]}],
        }
        for container in sorted(scraped, key=lambda c: c.name)
    ]
    config = {"global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
              "scrape_configs": jobs}
    return (Upload("/etc/prometheus/prometheus.yml", to_yaml(config)),)
