"""One swarm service of the plan (core.swarm) -> its configs, secrets and
docker.Service. The image, the secrets' rendering and the health check are the
one-host component's (components/service.py): only how they are declared differs."""

from __future__ import annotations

import base64
import hashlib
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from core.swarm import DIGEST, SwarmFile, SwarmService

from .durations import service_duration
from .service import HEALTH_WAIT_S, TMPFS_KIB, aliases, built_image, pulled_image, render

# The provider's deletion of a service waits this long at most for each of its
# containers on the manager to be removed, and fails past it: a shorter grace
# period (a writer's 1 s) made `pulumi destroy` fail. A task that stops on
# SIGTERM is gone well before.
REMOVAL_WAIT_S = 10
STOP_ON_FAILURE_MONITOR_S = 15  # how long a new task must stay up for an update to count
# Docker cannot change a service's mode (swarmkit: "service mode change is not
# allowed"). The provider's schema marks `mode` ForceNew as a whole block, which
# its SDK applies only when the block appears or goes (as with a container's
# health check, components/service.py): a switch replicated <-> global would be an
# update Docker refuses, or, replaced, a new service created beside the old one,
# which a swarm refuses too (one name per service). So a change of `mode.global`
# replaces the service, and the old one is deleted first: its name is what the
# other services, Traefik and Prometheus's DNS discovery (tasks.<name>) know it by,
# so a name that changed with the mode would break them. On every service,
# whichever mode it leaves; a replica count (mode.replicated.replicas) still
# updates in place, and nothing else replaces a service (its name never
# changes, `auth` is not used). The task is down from the deletion until the new
# service converges: `python -m plan diff` says "replaced".
REPLACED_WHEN_CHANGED = ["mode.global"]


def _mode(service: SwarmService) -> docker.ServiceModeArgs:
    if service.mode == "global":
        return docker.ServiceModeArgs(global_=True)
    return docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=service.replicas))


def _encoded(file: SwarmFile, secrets: Mapping[str, pulumi.Output[str]]) -> pulumi.Input[str]:
    content = render(file.content, secrets)
    if isinstance(content, str):
        return base64.b64encode(content.encode()).decode()
    return pulumi.Output.secret(content.apply(lambda text: base64.b64encode(text.encode()).decode()))


def _secret_name(file: SwarmFile, secrets: Mapping[str, pulumi.Output[str]]) -> pulumi.Input[str]:
    """The secret's name with a digest of its rendered content (never the content):
    a new value is a new name, so the new secret exists before the service moves
    to it and the old one goes after (a docker secret cannot be changed in place)."""
    content = pulumi.Output.from_input(render(file.content, secrets))
    return pulumi.Output.unsecret(content.apply(
        lambda text: f"{file.name}-{hashlib.sha256(text.encode()).hexdigest()[:DIGEST]}"))


def task_image(service: SwarmService, opts: pulumi.ResourceOptions,
               built: dict[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    """The image a task names: `name@sha256:...`, the digest the registry gave the
    manager. Any node pulls that reference (it never pulls a local image ID), and a
    new digest is a new task spec: the service rolls to it. A built image is pushed
    to the stack's registry first (core.swarm), by the first service that runs it:
    `built` holds the digests of the builds declared so far, by build name, so the
    services that share one (the nodes' backups) run the very same image."""
    container = service.container
    if container.build_context:
        if service.build_name not in built:
            built[service.build_name] = built_image(
                container, opts, push=True, name=service.build_name).repo_digest
        return built[service.build_name]
    return pulled_image(container, opts).repo_digest


class SwarmServiceResource(pulumi.ComponentResource):
    def __init__(self, service: SwarmService, *, secrets: Mapping[str, pulumi.Output[str]],
                 networks: Mapping[str, pulumi.Input[str]], endpoint_mode: str, platform: str,
                 built: dict[str, pulumi.Output[str]],
                 after: Sequence[pulumi.Resource] = (),
                 opts: Optional[pulumi.ResourceOptions] = None):
        container = service.container
        super().__init__("fourlb:swarm:Service", container.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        configs, secret_refs = [], []
        for file in service.files:
            # immutable: the digest is in the name, so a change is a new resource,
            # created before the service moves to it and the old one is deleted
            if file.secret:
                # the provider asks for a secret with a given name to be deleted before
                # its replacement is made, which Docker refuses while the service uses
                # it: the name changes with the value, so the new one can come first
                made = docker.Secret(file.name, name=_secret_name(file, secrets),
                                     data=_encoded(file, secrets),
                                     opts=pulumi.ResourceOptions.merge(
                                         child, pulumi.ResourceOptions(delete_before_replace=False)))
                secret_refs.append(docker.ServiceTaskSpecContainerSpecSecretArgs(
                    secret_id=made.id, secret_name=made.name, file_name=file.target,
                    file_mode=int(file.mode, 8)))
            else:
                made = docker.ServiceConfig(file.name, name=file.name, data=_encoded(file, secrets),
                                            opts=child)
                configs.append(docker.ServiceTaskSpecContainerSpecConfigArgs(
                    config_id=made.id, config_name=made.name, file_name=file.target,
                    file_mode=int(file.mode, 8)))
        check = container.healthcheck
        update = docker.ServiceUpdateConfigArgs(
            parallelism=1, order=service.update_order, delay=service_duration(service.update_delay_s),
            failure_action="rollback" if service.rollback else "pause",
            monitor=service_duration(STOP_ON_FAILURE_MONITOR_S))
        self.service = docker.Service(
            container.name,
            name=container.name,
            labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in container.labels],
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=task_image(service, child, built),
                    env=dict(container.env) or None,
                    commands=list(container.entrypoint) or None,
                    args=list(container.command) or None,
                    user=container.user,
                    hostname=service.hostname,
                    labels=[docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
                            for k, v in service.task_labels] or None,
                    hosts=[docker.ServiceTaskSpecContainerSpecHostArgs(host=name, ip=address)
                           for name, address in container.extra_hosts] or None,
                    mounts=[docker.ServiceTaskSpecContainerSpecMountArgs(
                        target=m.target, type="volume" if m.volume else "bind",
                        source=m.volume or m.host_path, read_only=m.read_only)
                        for m in container.mounts] + [
                        # as on one host (Container.tmpfs): empty and read-only, laid
                        # over the host's socket directories under a bind of its root
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=path, type="tmpfs", read_only=True,
                            tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                                size_bytes=TMPFS_KIB * 1024))
                        for path in container.tmpfs],
                    configs=configs or None,
                    secrets=secret_refs or None,
                    healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=list(check.test), interval=service_duration(check.interval_s),
                        timeout=service_duration(check.timeout_s), retries=check.retries,
                        start_period=service_duration(check.start_period_s)) if check else None,
                    stop_grace_period=service_duration(max(container.stop_grace_s, REMOVAL_WAIT_S)),
                ),
                placement=docker.ServiceTaskSpecPlacementArgs(
                    constraints=list(service.constraints) or None,
                    platforms=[docker.ServiceTaskSpecPlacementPlatformArgs(
                        os=platform.partition("/")[0], architecture=platform.partition("/")[2])]),
                networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(
                    id=networks[n], aliases=aliases(container, n)) for n in container.networks],
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                        memory_bytes=container.memory_mb * 1024 * 1024)),
                # window and attempts as Docker reads them back: left out, the provider
                # sees a change at every preview (pulumi/pulumi-docker#1285) and every
                # `up` would roll every service
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                    condition="any", delay="5s", window="0s", max_attempts=0),
                log_driver=docker.ServiceTaskSpecLogDriverArgs(
                    name="json-file", options={"max-size": container.log_max_size,
                                               "max-file": str(container.log_max_files)}),
            ),
            mode=_mode(service),
            update_config=update,
            rollback_config=docker.ServiceRollbackConfigArgs(
                parallelism=1, order=service.update_order, monitor=service_duration(STOP_ON_FAILURE_MONITOR_S)),
            # host mode: each edge node answers on its own address, with the client's address
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode=endpoint_mode, ports=[
                docker.ServiceEndpointSpecPortArgs(target_port=p.internal, published_port=p.external,
                                                   protocol=p.protocol, publish_mode="host")
                for p in container.published_ports] or None),
            # `pulumi up` waits until every task runs (healthy) or the update rolled back
            # (replicated services only: the provider refuses converge_config with a
            # global mode, whose tasks `up` then does not wait for)
            converge_config=docker.ServiceConvergeConfigArgs(delay="2s", timeout=f"{HEALTH_WAIT_S}s")
            if service.mode != "global" else None,
            # a change the provider cannot update (plan.diff.SERVICE_REPLACING_FIELDS,
            # a new mode) replaces the service: its name is fixed and its ports are
            # the host's, so the old one must be gone before the new one is created
            # created once what it starts after has converged (its writer: the files in
            # place, its health check passed), as depends_on orders containers on one host
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=list(after),
                                        replace_on_changes=REPLACED_WHEN_CHANGED),
        )
        self.register_outputs({"name": self.service.name})

