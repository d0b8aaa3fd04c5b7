"""Every way the swarm suite differs from a production swarm, in one place (as
tests/e2e/changes.py does for one host). The stack is deployed by the real engine
(test_engine.py) from the committed Pulumi.swarm.yaml with ENGINE_SETTINGS; its
images are tests/engine/images.py's (IMAGE_CHANGES and the real programs'
contracts), pushed into the lab's registry, which answers for Docker Hub, ghcr.io,
lscr.io and gcr.io inside the lab (tests/swarm/lab.py: a registry mirror and
/etc/hosts of each node). Nothing else differs.
"""

from __future__ import annotations

from typing import Any

ENDPOINT_MODE = ("dnsrr: this kernel has no IPVS, so a service's virtual IP routes nowhere; "
                 "production keeps the default (vip). Traefik reaches task addresses either way")

# What the lab's dnsrr hides from a production swarm's vip mode, and the
# plan-level test that covers each instead
DNSRR_HIDES: dict[str, str] = {
    "a task binding its service's name or an alias, which vip resolves to the virtual IP no task "
    "can bind": "tests/test_swarm.py::test_prometheus_on_a_swarm_listens_on_every_address_of_its_task, "
                "test_the_prometheus_service_binds_no_alias, test_the_endpoint_mode_is_the_stacks "
                "(no service of a swarm plan listens on an alias)",
    "one scrape target per service, the virtual IP balancing over its tasks (every node's metrics "
    "mixed)": "tests/test_monitoring.py::test_on_a_swarm_prometheus_finds_every_task_of_each_service_by_dns "
              "(one target per task) and tests/promtool/swarm_nodes.yml (an alert per node)",
    "a peer reaching a service by its virtual IP, balanced by IPVS": "not covered: this kernel has "
    "no IPVS; the names peers use are the services' own (core.build), which both modes answer",
}

# The swarm stack under the real engine (test_engine.py): the committed
# Pulumi.swarm.yaml with these settings, each with why; nothing else differs but
# the images (tests/engine/images.py IMAGE_CHANGES, as for one host), which the
# lab's registry serves under the names the program gives them.
ENGINE_OFF = ("open-webui", "chromadb")
ENGINE_SETTINGS: dict[str, tuple[Any, str]] = {
    "tls": ("self-signed", "no ACME CA in the lab"),
    "acme": (None, "goes with tls: self-signed"),
    "dns": ({"provider": "none"}, "no Cloudflare in the lab; the edge node's address is known"),
    "swarm": ({"endpointMode": "dnsrr"}, ENDPOINT_MODE),
    "services": ({name: {"enabled": False} for name in ENGINE_OFF},
                 "their real programs (PyPI's open-webui and chromadb, 1.2 GB and 0.5 GB of "
                 "Python) are the one-host suites' heaviest, left out of the lab's registry and "
                 "its nodes at every run; their plan on a swarm is the other AI services' (the "
                 "AI node still runs a service with a volume: the code-server)"),
}
