"""What a deployment needs beyond a valid plan: settings that only the machine
being deployed to can supply, checked before any resource is declared.

The offline plan (`python -m plan`) works without them; `pulumi up` does not.
"""

from __future__ import annotations

from typing import Mapping, Optional

from config.errors import MISSING, Problem
from config.models import StackConfig

DNS_TARGET_KEY = "fourlb:dns.targetIpv4"
EDGE_ADDRESSES_KEY = "fourlb:swarm.edgeAddresses"
DOCKER_HOST_KEY = "docker:host"
# set by GitHub Actions and most CI services
CI_MARKERS = ("CI", "GITHUB_ACTIONS")


def is_local_stack(config: StackConfig) -> bool:
    """The local stack serves *.localhost only: it runs on the machine at hand."""
    return config.platform_domain == "localhost"


def running_in_ci(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name, "").lower() in ("1", "true", "yes") for name in CI_MARKERS)


def deploy_problems(stack: str, config: StackConfig, docker_host: Optional[str],
                    environ: Mapping[str, str]) -> list[Problem]:
    """`docker_host` is the Docker provider's `docker:host` setting, or None."""
    problems = []
    if config.swarm is not None:
        if config.dns.provider == "cloudflare" and not config.swarm.edge_addresses:
            problems.append(Problem(EDGE_ADDRESSES_KEY, MISSING, (
                "required to deploy: the public IPv4 address of each edge node, the content of "
                "the A records; set them with: pulumi config set --path "
                f"'{EDGE_ADDRESSES_KEY}[0]' <address> --stack {stack}")))
    elif config.dns.provider == "cloudflare" and config.dns.target_ipv4 is None:
        problems.append(Problem(DNS_TARGET_KEY, MISSING, (
            "required to deploy: the host's public IPv4 address, the content of every A record; "
            f"set it with: pulumi config set --path {DNS_TARGET_KEY} <address> --stack {stack}")))
    target = docker_host or environ.get("DOCKER_HOST")
    if not target and not is_local_stack(config):
        where = ("from CI the Docker provider would deploy onto the CI runner's own daemon"
                 if running_in_ci(environ) else
                 "without it the Docker provider deploys onto this machine's own daemon")
        problems.append(Problem(DOCKER_HOST_KEY, MISSING, (
            f"required to deploy stack {stack}: the Docker host it runs on, e.g. "
            f"ssh://deploy@<host> ({where}); set it with: pulumi config set docker:host "
            f"ssh://deploy@<host> --stack {stack}, or export DOCKER_HOST (the workflows do, "
            "with bin/deploy-ssh-setup); on the host itself: unix:///var/run/docker.sock")))
    return problems
