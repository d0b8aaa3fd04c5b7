"""Constrained value types shared by the stack configuration models.

Each type carries the rule a user has to satisfy, written so that the error
message tells them what is allowed, not only that the value is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})+$")

# A name that ends up inside Traefik router, service and middleware names and
# inside Docker container names: Traefik forbids `.`, `@`, `[`, `]` there and
# backticks would break out of a rule, so only lowercase words and dashes.
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

# docker reference: [registry[:port]/]path[:tag][@sha256:digest]
_IMAGE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


# The patterns are applied with fullmatch: with `match`, `$` also matches before a
# trailing newline, and "shop\n" would reach a label key.
def _check_hostname(value: str) -> str:
    if value == "localhost":  # the zone of the local stack
        return value
    if value != value.lower() or not _HOSTNAME.fullmatch(value) or len(value) > 253:
        raise ValueError(
            "allowed: a lowercase DNS name with at least two labels of letters, digits "
            "and inner dashes, e.g. ai.4lb.ca"
        )
    return value


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value) or len(value) > 40:
        raise ValueError(
            "allowed: 1-40 lowercase letters, digits and single inner dashes, starting "
            "with a letter (no '.', '@', '_', backticks or spaces)"
        )
    return value


def _check_registry_host(value: str) -> str:
    host, _, port = value.partition(":")
    if (value != value.lower() or not _HOSTNAME.fullmatch(host)
            or port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError("allowed: a registry's DNS name with an optional port, "
                         "e.g. registry.4lb.ca or registry.4lb.ca:5000 (no scheme, no path)")
    return value


def _check_image(value: str) -> str:
    match = _IMAGE.fullmatch(value)
    if not match:
        raise ValueError("allowed: a Docker image reference such as nginx:1.27-alpine")
    if not match.group("tag") and not match.group("digest"):
        raise ValueError("allowed: an image pinned to a tag or digest, e.g. redis:7-alpine")
    if match.group("tag") == "latest" and not match.group("digest"):
        raise ValueError("allowed: a pinned tag; ':latest' changes under your feet")
    return value


Hostname = Annotated[str, AfterValidator(_check_hostname)]
Name = Annotated[str, AfterValidator(_check_name)]
Image = Annotated[str, AfterValidator(_check_image)]
RegistryHost = Annotated[str, AfterValidator(_check_registry_host)]
Port = Annotated[int, Field(ge=1, le=65535)]
MemoryMb = Annotated[int, Field(ge=16, le=65536)]


def is_within_zone(hostname: str, zone: str) -> bool:
    return hostname == zone or hostname.endswith("." + zone)
