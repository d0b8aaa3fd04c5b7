"""Properties of the plan for any valid stack settings, and of the refusal of
any invalid ones (hypothesis). At the end, prints how many cases each ran."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Callable, Iterable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy import Secret

from config import StackConfigError, parse_stack_config
from config.errors import MISSING
from config.loading import PROJECT_DIR as PROJECT
from config.loading import StackFile
from core.build import build_plan
from core.edge import load_plan, shared_edge_problems
from core.model import Container, Plan, secret_names_in
from core.traefik import DYNAMIC_DIR
from policy import rules
from tests.strategies import (BAD_CSPS, BAD_ENV, BAD_HOSTNAMES, BAD_IMAGES, BAD_NAMES, BAD_PORTS,
                              MISTAKES, SOCKET_PATHS, Broken, broken_stacks, stack_pairs, stacks)
from tests.test_policy import Options, Resource
from tests.plans import served

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
RAN: Counter[str] = Counter()

ROUTER_KEY = re.compile(r"^traefik\.http\.routers\.(?P<name>[^.]+)\.(?P<option>.+)$")
SERVICE_KEY = re.compile(r"^traefik\.http\.services\.(?P<name>[^.]+)\.")
MIDDLEWARE_KEY = re.compile(r"^traefik\.http\.middlewares\.(?P<name>[^.]+)\.")
WELL_FORMED_KEY = re.compile(
    r"^(fourlb\.[a-z0-9.-]+|traefik\.enable|traefik\.docker\.network"
    r"|traefik\.http\.(routers|services|middlewares)\.[a-z0-9-]+\.[a-z0-9]+(\.[a-z0-9]+)*)$")
MATCHER = re.compile(r"(Host|PathPrefix)\(`[^`]+`\)")


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        return
    with capture.global_and_fixture_disabled():
        width = max(map(len, RAN), default=0)
        print("\nhypothesis cases run:")
        for name, count in sorted(RAN.items()):
            print(f"  {name:<{width}}  {count}")
        print(f"  {'total':<{width}}  {sum(RAN.values())}")


def count(name: str) -> None:
    RAN[name] += 1


# ---- reading a plan --------------------------------------------------------

def plan_of(values: dict[str, Any], stack: str) -> Plan:
    return build_plan(parse_stack_config(stack, values), stack)


def stack_name(values: dict[str, Any]) -> str:
    return "prod" if values["role"] == "platform" else "dev"


def routers(container: Container) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for key, value in container.labels:
        match = ROUTER_KEY.match(key)
        if match:
            found.setdefault(match["name"], {})[match["option"]] = value
    return found


def defined(container: Container, pattern: re.Pattern) -> set[str]:
    return {m["name"] for key, _ in container.labels if (m := pattern.match(key))}


def file_middlewares(plan: Plan) -> dict[str, Any]:
    """The middlewares of the file provider, read from what Traefik is given."""
    edge = served(plan, "traefik")
    found: dict[str, Any] = {}
    for upload in edge.uploads:
        if upload.path.startswith(DYNAMIC_DIR + "/"):
            found.update((yaml.safe_load(upload.content).get("http") or {}).get("middlewares") or {})
    return found


_PROD_EDGE: dict[str, Any] = {}


def prod_file_middlewares() -> dict[str, Any]:
    if not _PROD_EDGE:
        _PROD_EDGE.update(file_middlewares(load_plan("prod")[1]))
    return _PROD_EDGE


def is_v3_rule(rule: str) -> bool:
    """Each matcher takes one backticked argument; `||`, `&&` and balanced
    parentheses around them, nothing else."""
    reduced = MATCHER.sub("M", rule)
    if "`" in reduced:
        return False
    previous = None
    while previous != reduced:
        previous = reduced
        reduced = re.sub(r"M (\|\||&&) M", "M", reduced).replace("(M)", "M")
    return reduced == "M"


def all_routers(plans: Iterable[Plan]) -> list[tuple[str, str, dict[str, str]]]:
    return [(c.name, name, options) for plan in plans for c in plan.containers
            for name, options in routers(c).items()]


# ---- valid settings --------------------------------------------------------

@SETTINGS
@given(stacks())
def test_router_service_and_middleware_names_are_valid_for_traefik(values):
    count("names and label keys are well formed")
    plan = plan_of(values, stack_name(values))
    for container in plan.containers:
        for key, value in container.labels:
            assert WELL_FORMED_KEY.match(key), (container.name, key)
            assert not re.search(r"[\x00-\x1f\x7f]", value), (container.name, key, value)
    names = [name.lower() for _, name, _ in all_routers([plan])]
    assert len(names) == len(set(names)), names
    for kind in (SERVICE_KEY, MIDDLEWARE_KEY):
        owners = [name.lower() for c in plan.containers for name in defined(c, kind)]
        assert len(owners) == len(set(owners)), owners


@SETTINGS
@given(stacks())
def test_rules_are_traefik_v3_and_name_exactly_the_route_hostnames(values):
    count("v3 rule syntax")
    plan = plan_of(values, stack_name(values))
    for container in plan.containers:
        rules_by_router = {name: options["rule"] for name, options in routers(container).items()}
        assert len(rules_by_router) == len(container.routes)
        for route in container.routes:
            [rule] = [r for name, r in rules_by_router.items() if name.startswith(route.name)
                      and sorted(re.findall(r"Host\(`([^`]*)`\)", r)) == sorted(route.hostnames)
                      and (route.path_prefix is None or f"PathPrefix(`{route.path_prefix}`)" in r)]
            assert is_v3_rule(rule), rule
            assert not re.search(r"Host\(`[^`]*`\s*,", rule), rule


@SETTINGS
@given(stacks())
def test_every_referenced_middleware_and_service_is_defined(values):
    count("middlewares and services defined")
    plan = plan_of(values, stack_name(values))
    from_file = file_middlewares(plan) if values["role"] == "platform" else prod_file_middlewares()
    for container in plan.containers:
        own_middlewares = defined(container, MIDDLEWARE_KEY)
        own_services = defined(container, SERVICE_KEY)
        for name, options in routers(container).items():
            for reference in options["middlewares"].split(","):
                middleware, _, provider = reference.partition("@")
                assert provider in ("file", "docker"), reference
                known = from_file if provider == "file" else own_middlewares
                assert middleware in known, (container.name, name, reference)
            service = options["service"]
            assert service.endswith("@internal") or service in own_services, (name, service)


def expected_certresolver(values: dict[str, Any]) -> bool:
    return values.get("tls", "letsencrypt") == "letsencrypt"


@SETTINGS
@given(stacks())
def test_every_router_is_https_with_security_headers_then_crowdsec(values):
    count("tls, websecure, crowdsec, headers")
    plan = plan_of(values, stack_name(values))
    for container in plan.containers:
        labels = dict(container.labels)
        for name, options in routers(container).items():
            assert options["tls"] == "true" and options["entrypoints"] == "websecure", name
            assert ("tls.certresolver" in options) == expected_certresolver(values), name
            chain = options["middlewares"].split(",")
            # headers first (refusals carry them too), CrowdSec right after
            assert chain[1] == "crowdsec@file", chain
            headers = [m for m in chain if m == "security-headers@file" or m.endswith("-headers@docker")]
            assert len(headers) == 1 and chain[0] == headers[0], chain
            if headers[0].endswith("@docker"):
                middleware = headers[0].removesuffix("@docker")
                sts = labels[f"traefik.http.middlewares.{middleware}.headers.stsseconds"]
                assert int(sts) >= 31536000
                csp = labels.get(f"traefik.http.middlewares.{middleware}.headers.contentsecuritypolicy")
                assert csp == container.headers.csp
            admin = "admin-auth@file" in chain
            # on every admin router, whether a list is set or not: setting one changes no label
            assert ("admin-allowlist@file" in chain) == admin
            if not admin:
                continue
            allowed = file_middlewares(plan)["admin-allowlist"]["ipAllowList"]["sourceRange"]
            assert allowed == (values.get("adminAllowIps") or ["0.0.0.0/0", "::/0"])


@SETTINGS
@given(stacks())
def test_only_traefik_publishes_host_ports_and_only_80_443(values):
    count("only traefik publishes ports")
    plan = plan_of(values, stack_name(values))
    published = {c.name: sorted(p.external for p in c.published_ports)
                 for c in plan.containers if c.published_ports}
    assert published == ({"traefik": [80, 443]} if values["role"] == "platform" else {})


@SETTINGS
@given(stacks())
def test_user_text_only_ever_lands_in_label_values(values):
    count("user text stays in label values")
    plan = plan_of(values, stack_name(values))
    for name, site in values.get("sites", {}).items():
        container = plan.container(name)
        csp_labels = [v for k, v in container.labels if k.endswith(".headers.contentsecuritypolicy")]
        assert csp_labels == ([site["contentSecurityPolicy"]] if "contentSecurityPolicy" in site else [])
        for key, value in container.labels:
            if not key.endswith(".headers.contentsecuritypolicy"):
                for hostname in site["hostnames"]:
                    assert f"`{hostname}`" not in value or key.endswith(".rule"), (key, value)
        assert dict(container.env) == site.get("env", {})
        assert not container.secret_names(), "a site's settings cannot reach platform secrets"


def as_resources(plan: Plan) -> list[Resource]:
    """The plan as the policy sees it after components/service.py and
    components/volume.py (env values and files with a secret are secrets)."""
    def maybe_secret(text: str) -> Any:
        return Secret(text) if secret_names_in(text) else text

    resources = [Resource(rules.VOLUME, {"name": v.name}, v.name,
                          Options(protect=v.protected, retain_on_delete=v.protected))
                 for v in plan.volumes]
    for c in plan.containers:
        resources.append(Resource(rules.CONTAINER, {
            "labels": [{"label": k, "value": v} for k, v in c.labels],
            "ports": [{"internal": p.internal, "external": p.external, "protocol": p.protocol}
                      for p in c.published_ports],
            "volumes": [{"containerPath": m.target, "readOnly": m.read_only,
                         **({"hostPath": m.host_path} if m.host_path else {"volumeName": m.volume})}
                        for m in c.mounts],
            "envs": [maybe_secret(f"{k}={v}") for k, v in c.env],
            "uploads": [{"file": u.path, "content": maybe_secret(u.content)} for u in c.uploads],
            "tmpfs": {path: "ro,size=64k" for path in c.tmpfs},
        }, c.name))
    return resources


@SETTINGS
@given(stacks())
def test_every_plan_passes_the_policy_pack(values):
    count("plan passes the policy pack")
    plan = plan_of(values, stack_name(values))
    found = {r.name: rules.violations(r) for r in as_resources(plan)}
    found = {name: v for name, v in found.items() if v}
    public_self_signed = values.get("tls") == "self-signed" and values["platformDomain"] != "localhost"
    if public_self_signed:
        # a public hostname served without a certificate resolver: the pack
        # refuses what the stack settings allow (see the report in policy/rules.py)
        messages = [m for v in found.values() for ms in v.values() for m in ms]
        assert all("no tls.certresolver" in m for m in messages), messages
    else:
        assert found == {}


@settings(SETTINGS, max_examples=80)
@given(stack_pairs())
def test_a_platform_and_a_sites_stack_share_one_traefik_safely(pair):
    count("prod+dev pair")
    platform_values, sites_values = pair
    platform, sites = plan_of(platform_values, "prod"), plan_of(sites_values, "dev")
    refused = shared_edge_problems(parse_stack_config("dev", sites_values), sites, {"prod": platform})
    if refused:
        # the program stops such a pair before declaring anything; it must say why
        assert all(p.key.startswith(("fourlb:sites.", "fourlb:services.")) for p in refused)
        shared = {c.name for c in platform.containers} & {c.name for c in sites.containers}
        assert shared or set(platform.public_hostnames) & set(sites.public_hostnames)
        return
    names = [name.lower() for _, name, _ in all_routers([platform, sites])]
    assert len(names) == len(set(names)), names
    for kind in (SERVICE_KEY, MIDDLEWARE_KEY):
        owners = [n.lower() for p in (platform, sites) for c in p.containers for n in defined(c, kind)]
        assert len(owners) == len(set(owners)), owners
    assert not set(platform.public_hostnames) & set(sites.public_hostnames)
    from_file = file_middlewares(platform)
    for container, name, options in all_routers([sites]):
        for reference in options["middlewares"].split(","):
            if reference.endswith("@file"):
                assert reference.removesuffix("@file") in from_file, (container, name, reference)


# ---- invalid settings ------------------------------------------------------

def load_then_plan(values: dict[str, Any], stack: str,
                   planner: Callable[..., Plan]) -> Plan:
    """What __main__.py does before the first resource: load, then plan."""
    return planner(parse_stack_config(stack, values), stack)


@pytest.mark.parametrize("mistake", MISTAKES)
@settings(SETTINGS, max_examples=25)
@given(data=st.data())
def test_invalid_settings_are_refused_naming_the_key_before_any_plan(mistake, data):
    broken: Broken = data.draw(broken_stacks(mistake), label="broken")
    count(f"invalid settings refused: {mistake}")
    planned: list[Plan] = []
    calls: list[str] = []

    def planner(config, stack):
        calls.append(stack)
        plan = build_plan(config, stack)
        planned.append(plan)
        return plan

    with pytest.raises(StackConfigError) as caught:
        load_then_plan(broken.values, stack_name(broken.values), planner)
    keys = [problem.key for problem in caught.value.problems]
    if broken.duplicate:
        assert any(p.value == broken.duplicate and ".hostnames." in p.key
                   for p in caught.value.problems), caught.value.problems
    else:
        assert any(k == broken.key or k.startswith(broken.key + ".") for k in keys), keys
    for problem in caught.value.problems:  # a key of the stack file, shown with its value
        assert problem.key.startswith("fourlb:"), problem
        assert problem.value is not MISSING or problem.allowed == "required", problem
    assert planned == []  # no plan exists, so nothing can be declared
    assert calls == ([] if broken.stage == "load" else [stack_name(broken.values)])


def _listed_attacks() -> list[tuple[str, dict[str, Any], str]]:
    site = "fourlb:sites.shop"
    return ([(name, {}, f"fourlb:sites.{name}") for name in BAD_NAMES]
            + [("shop", {"hostnames": [h]}, f"{site}.hostnames.0") for h in BAD_HOSTNAMES]
            + [("shop", {"port": p}, f"{site}.port") for p in BAD_PORTS]
            + [("shop", {"image": i}, f"{site}.image") for i in BAD_IMAGES]
            + [("shop", {"contentSecurityPolicy": c}, f"{site}.contentSecurityPolicy")
               for c in BAD_CSPS]
            + [("shop", {"env": {k: v}}, f"{site}.env") for k, v in BAD_ENV]
            + [("shop", {"bindMounts": [{"hostPath": h, "target": "/s"}]},
                f"{site}.bindMounts.0.hostPath") for h in SOCKET_PATHS])


@pytest.mark.parametrize("name,site,key", _listed_attacks())
def test_every_listed_attack_is_refused_on_the_prod_settings(name, site, key):
    values = dict(StackFile("prod", PROJECT).values)
    values["sites"] = {**values.get("sites", {}),
                       name: {"image": "nginx:1.27-alpine", "hostnames": ["shop.4lb.ca"], **site}}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config("prod", values)
    assert key in [problem.key for problem in caught.value.problems]


# ---- the real program with a few of them (under mocks) ---------------------

@pytest.mark.parametrize("site_name,site,key", [
    ("`) || Host(`evil.com", {"hostnames": ["shop.4lb.ca"]}, "fourlb:sites.`) || Host(`evil.com"),
    ("shop", {"hostnames": ["shop.4lb.ca`) || Host(`evil.com"]}, "fourlb:sites.shop.hostnames.0"),
    ("shop", {"hostnames": ["shop.4lb.ca"], "contentSecurityPolicy": "x\ntraefik.enable=true"},
     "fourlb:sites.shop.contentSecurityPolicy"),
    ("shop", {"hostnames": ["shop.4lb.ca"], "env": {"X": "${secret:postgres-password}"}},
     "fourlb:sites.shop.env"),
    ("shop", {"hostnames": ["shop.4lb.ca"], "bindMounts": [{"hostPath": "//var/run/docker.sock",
                                                              "target": "/s"}]},
     "fourlb:sites.shop.bindMounts.0.hostPath"),
    ("shop", {"hostnames": ["evil.attacker.invalid"]}, "fourlb:sites.shop.hostnames.0"),
])
def test_the_program_declares_nothing_for_invalid_settings(deploy, site_name, site, key):
    sites = {site_name: {"image": "nginx:1.27-alpine", **site}}
    run = deploy("prod", overrides={"fourlb:sites": json.dumps(sites)})
    assert run.error is not None and key in str(run.error), run.error
    assert run.resources == []
