"""Runs the real `__main__.py` under Pulumi mocks and records what it declares."""

from __future__ import annotations

import hashlib
import json
import runpy
from unittest import mock
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from config.loading import StackFile
from core.edge import load_plan

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Values the mocks hand back for generated and provided secrets: a test can then
# look for them where they must never appear.
GENERATED_PREFIX = "generated-secret-"
CLOUDFLARE_TOKEN = "cf-token-for-tests-0123456789"
PROVIDED_PREFIX = "provided-secret-"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how mocks mark a secret input
# What a user sets before deploying and the committed stack files do not carry
# (core.deploy_checks): the host's public address and the Docker host.
TARGET_IPV4 = "1.2.3.4"
# the swarm stack's edge node (Pulumi.swarm.yaml: one, with the HTTP challenge;
# more than one needs a DNS challenge, core.swarm)
EDGE_ADDRESSES = ("1.2.3.4",)
DOCKER_HOST = "ssh://deploy@platform-host.test"


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    options: Optional[pulumi.ResourceOptions] = None  # as the program passed them


@dataclass
class Run:
    stack: str
    resources: list[Declared] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)
    error: Optional[BaseException] = None
    options: dict[tuple[str, str], pulumi.ResourceOptions] = field(default_factory=dict)
    # (type, logical name) -> URN, of every resource the program registered
    urns: dict[tuple[str, str], str] = field(default_factory=dict)
    # stack outputs: name -> (value, whether it is a secret), once resolved
    exports: dict[str, tuple[Any, bool]] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str) -> Declared:
        found = [r for r in self.resources if r.typ == typ and r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {len(found)}"
        return found[0]

    @property
    def containers(self) -> dict[str, Declared]:
        return {r.name: r for r in self.of_type("docker:index/container:Container")}


def repo_digest(image: str) -> str:
    """`repo@sha256:<hex>`, as the Docker provider reads a pulled or pushed image's
    digest (the tag dropped); here a digest of the name, so one name, one digest."""
    repository = image.split("@")[0]
    head, _, tail = repository.rpartition(":")
    if head and "/" not in tail:
        repository = head
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class RecordingMocks(pulumi.runtime.Mocks):
    """`image_ids` stands for the engine's local images: tag -> the ID it resolves to
    (default: one derived from the tag)."""

    def __init__(self, run: Run, image_ids: Optional[dict[str, str]] = None,
                 redraw: frozenset[str] = frozenset()):
        self.run = run
        self.image_ids = image_ids or {}
        self.redraw = redraw  # RandomIds drawn again, as `pulumi up --replace <urn>` does

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        options = self.run.options.get((args.typ, args.name))
        self.run.resources.append(Declared(args.typ, args.name, dict(args.inputs), options))
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED_PREFIX + args.name
            state["bcryptHash"] = "$2a$10$" + "h" * 53
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            name = args.inputs.get("name", args.name)
            state["imageId"] = self.image_ids.get(name, "sha256:" + name)
            state["repoDigest"] = repo_digest(name)
        elif args.typ == "random:index/randomId:RandomId":
            # as random_id: a new value whenever a keeper changes (here a digest of
            # them, so that runs with equal keepers agree, as one stack's state would)
            keepers = json.dumps([plain(args.inputs.get("keepers", {})), args.name in self.redraw],
                                 sort_keys=True)
            state["hex"] = hashlib.sha256(keepers.encode()).hexdigest()[:6]
        elif args.typ == "docker:index/image:Image":
            image = args.inputs.get("imageName", args.name)
            # pushed: the registry's digest; built on the host only: the local image ID
            state["repoDigest"] = "sha256:" + image if args.inputs.get("skipPush") else repo_digest(image)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.run.calls.append((args.token, dict(args.args)))
        if args.token == "cloudflare:index/getZone:getZone":
            name = args.args["filter"]["name"]
            return {"zoneId": f"zone-id-{name}", "name": name}
        if args.token == "docker:index/getRegistryImage:getRegistryImage":
            name = args.args["name"]
            return {"name": name, "sha256Digest": self.image_ids.get(name, "sha256:registry-" + name)}
        return {}


def stack_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """The stack file's plain settings as the engine passes them (JSON for objects),
    plus the secrets a user would have set with --secret."""
    stack_file = StackFile(stack, PROJECT_DIR)
    config = {f"fourlb:{key}": value if isinstance(value, str) else json.dumps(value)
              for key, value in stack_file.values.items()}
    secrets = {}
    dns = json.loads(config.get("fourlb:dns", "{}"))
    if dns.get("provider", "cloudflare") == "cloudflare":
        secrets["cloudflare:apiToken"] = CLOUDFLARE_TOKEN
        config["fourlb:dns"] = json.dumps({**dns, "targetIpv4": TARGET_IPV4})
        if "swarm" in stack_file.values:
            config["fourlb:swarm"] = json.dumps({**stack_file.values["swarm"],
                                                 "edgeAddresses": list(EDGE_ADDRESSES)})
    if stack_file.values.get("platformDomain") != "localhost":
        config["docker:host"] = DOCKER_HOST
    # the secrets a user must provide (never generated) for what the stack enables
    _, plan = load_plan(stack, PROJECT_DIR)
    for spec in plan.secrets:
        if not spec.generated:
            secrets[f"fourlb:{spec.config_key}"] = PROVIDED_PREFIX + spec.name
    config.update(secrets)
    return config, list(secrets)


def plain(value: Any) -> Any:
    """The value without Pulumi's secret wrappers, at any depth."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def run_program(stack: str, config: dict[str, str], secret_keys: list[str],
                image_ids: Optional[dict[str, str]] = None, redraw: frozenset[str] = frozenset()) -> Run:
    run = Run(stack)
    pulumi.runtime.set_mocks(RecordingMocks(run, image_ids, redraw), project="fourlb", stack=stack,
                             preview=False)
    pulumi.runtime.set_all_config(config, secret_keys=secret_keys)
    main = str(PROJECT_DIR / "__main__.py")

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        # mocks never see resource options; a stack transformation sees exactly
        # what the program passed (protect, retain_on_delete, delete_before_replace)
        run.options[(args.type_, args.name)] = args.opts
        registered[(args.type_, args.name)] = args.resource  # its urn is set after this
        return None

    exported: dict[str, pulumi.Output] = {}
    registered: dict[tuple[str, str], pulumi.Resource] = {}

    def program() -> None:
        pulumi.runtime.register_stack_transformation(record_options)
        # the mocks' monitor drops stack outputs: record them on the way
        with mock.patch.object(pulumi, "export", lambda name, value: exported.setdefault(
                name, pulumi.Output.from_input(value))):
            runpy.run_path(main, run_name="__main__")

    try:
        _sync_await(run_pulumi_func(program))
        run.exports = {name: (_sync_await(output.future()), _sync_await(output.is_secret()))
                       for name, output in exported.items()}
        run.urns = {key: _sync_await(resource.urn.future()) for key, resource in registered.items()}
    except Exception as error:  # recorded: tests about bad config assert on it
        run.error = error
    return run
