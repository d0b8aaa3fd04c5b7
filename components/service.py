"""One plan container -> its image and Docker container."""

from __future__ import annotations

import hashlib
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random

from config.loading import PROJECT_DIR
from core.model import SECRET_PLACEHOLDER, Container
from core.traefik import instance_suffix

from .connection import connect
from .durations import container_duration

# How long `pulumi up` waits for a new container to become healthy before it
# gives up (and, for start-first updates, before it would remove the old one).
HEALTH_WAIT_S = 180
# the empty, read-only tmpfs laid over paths of a host bind (Container.tmpfs)
TMPFS_KIB = 64
# Inputs the Docker provider neither forces a replacement for nor updates: a new
# value would sit in the state and never reach Docker (a changed field of a health
# check is no replacement, as the list itself is the only ForceNew; tmpfs is not
# ForceNew; the update applies neither). A change replaces the container.
REPLACED_ON_CHANGE = ("healthcheck", "tmpfs")
# memory + swap, as a multiple of the memory limit
MEMORY_SWAP_FACTOR = 2


def render(text: str, secrets: Mapping[str, pulumi.Output[str]]) -> pulumi.Input[str]:
    """Replace `${secret:NAME}` placeholders; the result stays a secret Output."""
    names = sorted(set(SECRET_PLACEHOLDER.findall(text)))
    if not names:
        return text
    values = [secrets[name] for name in names]

    def substitute(resolved: list[str]) -> str:
        lookup = dict(zip(names, resolved))
        return SECRET_PLACEHOLDER.sub(lambda m: lookup[m.group(1)], text)

    return pulumi.Output.secret(pulumi.Output.all(*values).apply(substitute))


def docker_name(container: Container, image_id: pulumi.Input[str],
                secrets: Mapping[str, pulumi.Output[str]],
                opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
    """Stop-first containers keep their exact name. Start-first ones need a name
    Docker can hold twice for a moment: the stable name plus a random suffix
    drawn again whenever a replacing input changes (the spec, a secret's value,
    the image ID a tag resolves to). Redeploying an unchanged container means
    replacing this suffix (`pulumi up --replace <its URN>`): the container follows."""
    if container.update_order == "stop-first":
        return container.name
    names = sorted(container.secret_names())

    def secrets_digest(values: list[str]) -> str:
        # a digest of the values, never the values: keepers are stored in plain text
        return hashlib.sha256("\0".join(values).encode()).hexdigest()

    keepers: dict[str, pulumi.Input[str]] = {"spec": instance_suffix(container), "image": image_id}
    if names:
        keepers["secrets"] = pulumi.Output.unsecret(
            pulumi.Output.all(*[secrets[n] for n in names]).apply(secrets_digest))
    suffix = random.RandomId(f"{container.name}-instance", byte_length=3, keepers=keepers, opts=opts)
    return pulumi.Output.concat(container.name, "-", suffix.hex)


def built_image(container: Container, opts: pulumi.ResourceOptions, *, push: bool,
                name: Optional[str] = None) -> docker.Image:
    """The image built from the project; pushed to the registry its name starts
    with when `push` (a swarm's nodes pull it), else kept on the host. `name`: the
    resource's, when not the container's (one build several services run)."""
    assert container.build_context
    return docker.Image(
        name or container.name,
        image_name=container.image,
        # the host's CPU: the provider would build for the deployer's
        build=docker.DockerBuildArgs(context=str(PROJECT_DIR / container.build_context),
                                     platform=container.build_platform),
        skip_push=not push,
        opts=opts,
    )


def pulled_image(container: Container, opts: pulumi.ResourceOptions) -> docker.RemoteImage:
    """The image of the container's name, pulled where the provider's Docker runs.

    A followed tag is pulled by its digest (`<tag>@sha256:...`), asked of the
    registry on every deployment: the Docker provider takes a local image of the
    name it is given and pulls nothing, so the tag alone (or a pull trigger,
    which only replaces the resource) would keep the first image for ever. A
    moved digest is a new name: the resource is replaced, pulls, and the
    container follows its new image ID. Any other tag is the local image of
    that name (`pulumi up --refresh` reads its current ID, e.g. after a build
    on the host)."""
    name: pulumi.Input[str] = container.image
    if container.follow_tag:
        digest = docker.get_registry_image_output(
            name=container.image, opts=pulumi.InvokeOptions(parent=opts.parent)).sha256_digest
        name = pulumi.Output.concat(container.image, "@", digest)
    return docker.RemoteImage(container.name, name=name, keep_locally=True, opts=opts)


def image_of(container: Container, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The image ID the container runs: pulled, or built from the project (its
    `repo_digest` is the local image ID when nothing is pushed): a rebuild or a
    new pull replaces the container."""
    if container.build_context:
        return built_image(container, opts, push=False).repo_digest
    return pulled_image(container, opts).image_id


class Service(pulumi.ComponentResource):
    def __init__(self, container: Container, *, secrets: Mapping[str, pulumi.Output[str]],
                 networks: Mapping[str, pulumi.Input[str]], volumes: Mapping[str, pulumi.Input[str]],
                 after: Sequence[pulumi.Resource] = (), opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("fourlb:docker:Service", container.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image_id = image_of(container, child)
        start_first = container.update_order == "start-first"
        healthcheck = container.healthcheck
        self.container = docker.Container(
            container.name,
            name=docker_name(container, image_id, secrets, child),
            image=image_id,
            envs=[render(f"{key}={value}", secrets) for key, value in container.env],
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in container.labels],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=networks[n], aliases=aliases(container, n))
                for n in container.created_on
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    container_path=m.target,
                    volume_name=volumes[m.volume] if m.volume else None,
                    host_path=m.host_path,
                    read_only=m.read_only,
                )
                for m in container.mounts
            ],
            uploads=[
                docker.ContainerUploadArgs(file=u.path, content=render(u.content, secrets),
                                           permissions=u.mode)
                for u in container.uploads
            ],
            tmpfs={path: f"ro,size={TMPFS_KIB}k" for path in container.tmpfs} or None,
            hosts=[docker.ContainerHostArgs(host=name, ip=address)
                   for name, address in container.extra_hosts] or None,
            gpus=container.gpus,
            ports=[docker.ContainerPortArgs(internal=p.internal, external=p.external,
                                            protocol=p.protocol)
                   for p in container.published_ports],
            command=list(container.command) or None,
            entrypoints=list(container.entrypoint) or None,
            user=container.user,
            # a container on no network of the plan gets none at all (not Docker's bridge)
            network_mode=None if container.created_on else "none",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=list(healthcheck.test),
                interval=container_duration(healthcheck.interval_s),
                timeout=container_duration(healthcheck.timeout_s),
                retries=healthcheck.retries,
                start_period=container_duration(healthcheck.start_period_s),
            ) if healthcheck else None,
            wait=healthcheck is not None,
            wait_timeout=HEALTH_WAIT_S if healthcheck else None,
            restart=container.restart,
            memory=container.memory_mb,
            # Docker's own default (twice the memory), set: the provider's in-place
            # update sends memory_swap only when the program sets it, and Docker
            # refuses a memory limit above the swap limit it set at creation
            memory_swap=MEMORY_SWAP_FACTOR * container.memory_mb if container.memory_mb else None,
            security_opts=list(container.security_opts),
            log_driver="json-file",
            log_opts={"max-size": container.log_max_size,
                      "max-file": str(container.log_max_files)},
            destroy_grace_seconds=container.stop_grace_s,
            # stop-first: the old container must free its name, host ports and
            # data volume before the new one exists
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=not start_first,
                                        depends_on=list(after),
                                        replace_on_changes=list(REPLACED_ON_CHANGE)),
        )
        self.connections = {
            network: connect(f"{container.name}-on-{network}", self.container.id, networks[network],
                             pulumi.ResourceOptions(parent=self))
            for network in container.connected_networks}
        if container.settle_s:
            # Pulumi replaces start-first: create the new container (healthy,
            # wait=True), update what depends on it, then delete the old one.
            # This dependent, replaced with every new container, holds that
            # deletion back until Traefik routes to the new one.
            command.local.Command(
                f"{container.name}-settle",
                create=f"sleep {container.settle_s}",
                triggers=[self.container.id],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"name": self.container.name})


def aliases(container: Container, network: str) -> list[str]:
    """The stable name resolves on every network, whatever the suffix; the name
    it listens under (Container.listen_on) only on that network."""
    extra = [container.listen_on[1]] if container.listen_on and container.listen_on[0] == network else []
    return [container.name, *extra]
