"""Durations written the way the Docker provider reads them back, so that an
unchanged program previews no change.

The provider sends what the program gives, and reads the running value back in
Go's form: a container's health check with `time.Duration.String()` ("60s" is
read back "1m0s"; kreuzwerker/terraform-provider-docker v4.6,
internal/provider/resource_docker_container_funcs.go, the Read of "healthcheck"),
a swarm service's durations with its `shortDur` (the same, "m0s" and "h0m"
trimmed: "1m", "1h"; resource_docker_service_structures.go). Any other spelling
("60s", "1m" for a container) is a change on every preview.
"""

from __future__ import annotations


def container_duration(seconds: int) -> str:
    """Go's time.Duration.String() of whole seconds: 15s, 1m0s, 1h0m0s."""
    if seconds < 0:
        raise ValueError(f"a duration is never negative: {seconds}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def service_duration(seconds: int) -> str:
    """The provider's shortDur for a swarm service: 15s, 1m, 1m30s, 1h."""
    text = container_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text
