"""What changes between two plan documents, in the terms a reviewer cares
about: routes, DNS records, container replacements, volumes at risk."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from .document import UNSET_TARGET

# Docker cannot change these on a running container: Pulumi replaces it (the
# Docker provider updates only restart policy and resources in place).
REPLACING_FIELDS = ("image", "labels", "env", "networks", "mounts", "uploads", "command",
                    "entrypoint", "user", "published_ports", "healthcheck", "tmpfs", "logging",
                    "security_opts", "secret_versions", "extra_hosts", "gpus")
# A swarm service's inputs the Docker provider cannot update (ForceNew in its schema:
# a network attachment's id and aliases, task_spec.container_spec.hosts): the
# service is deleted, then created again (components.swarm), not rolled.
SERVICE_REPLACING_FIELDS = ("networks", "extra_hosts")
# the subject of a swarm service's new placement or replica count
PLACEMENT_SUFFIX = " (placement)"
# Values that may carry credentials or whole files: only their names are shown.
NAMES_ONLY_FIELDS = ("env", "uploads", "secret_versions")
# Short values a reviewer wants to read as before -> after.
SHOWN_FIELDS = ("image", "memory_mb", "restart", "update_order", "stop_grace_s", "port", "role", "user", "gpus")
# A route whose target changes is "re-pointed"; a new middleware chain or TLS
# resolver leaves the same container answering, and is only "changed".
ROUTE_TARGET_FIELDS = ("container", "port", "service")


@dataclass(frozen=True)
class FieldChange:
    field: str
    names: tuple[str, ...] = ()  # env names, upload paths, label keys, networks, mount targets
    before: Optional[str] = None
    after: Optional[str] = None


@dataclass(frozen=True)
class Change:
    subject: str  # a hostname (with path), a DNS record, a container, a volume, a network
    kind: str  # added | removed | re-pointed | changed | replaced | updated
    before: str = ""
    after: str = ""
    fields: tuple[FieldChange, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class StackDiff:
    stack: str
    base: str  # what the plan is compared with: a git ref or another stack
    head: str
    routes: tuple[Change, ...] = ()
    dns: tuple[Change, ...] = ()
    containers: tuple[Change, ...] = ()
    volumes: tuple[Change, ...] = ()
    networks: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    # True: one stack at two points in time, so a removed volume is deleted
    # data. False: two different stacks, where a removal is only a difference.
    same_stack: bool = True

    @property
    def is_empty(self) -> bool:
        return not (self.routes or self.dns or self.containers or self.volumes or self.networks)

    @property
    def volumes_at_risk(self) -> tuple[str, ...]:
        """Volumes whose data a deployment could delete or leave unprotected."""
        if not self.same_stack:
            return ()
        return tuple(c.subject for c in self.volumes if c.kind in ("removed", "unprotected", "renamed"))


def diff_documents(base: dict[str, Any], head: dict[str, Any], stack: str,
                   base_label: str, head_label: str, same_stack: bool = True) -> StackDiff:
    notes: tuple[str, ...] = ()
    if base.get("stack") is None:
        notes += (f"{base_label} has no plan of this stack: everything shows as added",)
    elif base.get("format") != head.get("format"):
        notes += (f"the base plan is in format {base.get('format')} and this one in format "
                  f"{head.get('format')}: some changes may only be the format's",)
    return StackDiff(
        stack=stack, base=base_label, head=head_label,
        routes=_keyed_changes(_routes_by_key(base), _routes_by_key(head), _route_change,
                              _route_target),
        dns=_keyed_changes(_records_by_key(base), _records_by_key(head), _record_change,
                           _record_value),
        containers=_on_swarm(
            _keyed_changes(base.get("containers", {}), head.get("containers", {}),
                           _container_change, lambda c: c["image"]),
            base.get("swarm", {}), head.get("swarm", {})),
        volumes=_keyed_changes(_data_volumes(base), _data_volumes(head),
                               _volume_change, _volume_state),
        networks=_keyed_changes(base.get("networks", {}), head.get("networks", {}),
                                _network_change, _network_kind),
        notes=notes,
        same_stack=same_stack,
    )


def _keyed_changes(base: dict[str, Any], head: dict[str, Any],
                   compare: Callable[[str, Any, Any], Optional[Change]],
                   describe: Callable[[Any], str]) -> tuple[Change, ...]:
    changes = []
    for key in sorted(base.keys() | head.keys()):
        if key not in head:
            changes.append(Change(key, "removed", before=describe(base[key])))
        elif key not in base:
            changes.append(Change(key, "added", after=describe(head[key])))
        elif base[key] != head[key]:
            change = compare(key, base[key], head[key])
            if change:
                changes.append(change)
    return tuple(changes)


# Routes


def _routes_by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {route["hostname"] + (route["path_prefix"] or ""): route
            for route in document.get("routes", [])}


def _route_target(route: dict[str, Any]) -> str:
    if route.get("service"):
        return f"{route['container']} ({route['service']})"
    return f"{route['container']}:{route['port']}"


def _route_change(key: str, before: dict[str, Any], after: dict[str, Any]) -> Change:
    fields = tuple(FieldChange(name, before=_short(before.get(name)), after=_short(after.get(name)))
                   for name in sorted(before.keys() | after.keys())
                   if before.get(name) != after.get(name))
    repointed = any(before.get(name) != after.get(name) for name in ROUTE_TARGET_FIELDS)
    return Change(key, "re-pointed" if repointed else "changed",
                  before=_route_target(before), after=_route_target(after), fields=fields)


# DNS records


def _records_by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{record['name']} {record['type']}": {**record, "zone": zone}
            for zone, records in document.get("dns", {}).items() for record in records}


def _record_value(record: dict[str, Any]) -> str:
    proxied = " (proxied)" if record["proxied"] else ""
    return f"{record['content'] or UNSET_TARGET}{proxied} in zone {record['zone']}"


def _record_change(key: str, before: dict[str, Any], after: dict[str, Any]) -> Change:
    fields = tuple(FieldChange(name, before=_short(before[name]), after=_short(after[name]))
                   for name in sorted(before) if before[name] != after.get(name))
    return Change(key, "changed", before=_record_value(before), after=_record_value(after),
                  fields=fields)


# Containers


def _container_change(name: str, before: dict[str, Any], after: dict[str, Any]) -> Change:
    fields = [_field_change(key, before.get(key), after.get(key))
              for key in sorted(before.keys() | after.keys())
              if key != "labels" and before.get(key) != after.get(key)]
    if before.get("labels") != after.get("labels"):
        labels = _labels_change(name, before.get("labels") or {}, after.get("labels") or {})
        # a new instance suffix alone follows from the other changes listed
        if labels.names or not any(f.field in REPLACING_FIELDS for f in fields):
            fields.append(labels)
    fields.sort(key=lambda f: f.field)
    replaced = any(f.field in REPLACING_FIELDS for f in fields)
    # stop-first: the old container goes before the new one starts (see core.model)
    downtime = replaced and after.get("update_order") == "stop-first"
    note = "stop-first: down until its replacement is healthy" if downtime else ""
    if not replaced and any(f.field == "connected_networks" for f in fields):
        note = "connected or disconnected while it runs: not restarted"
    return Change(name, "replaced" if replaced else "updated",
                  before=before["image"], after=after["image"], fields=tuple(fields), note=note)


def _on_swarm(changes: tuple[Change, ...], base: dict[str, Any],
              head: dict[str, Any]) -> tuple[Change, ...]:
    """On a swarm stack a service rolls its tasks instead of being replaced
    (core.swarm); a new placement or replica count updates it. The exceptions: a
    new mode, or a field the provider cannot update (SERVICE_REPLACING_FIELDS):
    the service is deleted, then created again (components/swarm.py)."""
    if not head:
        return changes
    switched = {name: (_mode(base[name]), _mode(head[name])) for name in sorted(base.keys() & head.keys())
                if _mode(base[name]) != _mode(head[name])}
    rolled = []
    for change in changes:
        service = head.get(change.subject)
        if change.subject in switched and change.kind in ("replaced", "updated"):
            change = replace(change, kind="replaced", note=MODE_SWITCH_NOTE)
        elif service and any(f.field in SERVICE_REPLACING_FIELDS for f in change.fields):
            change = replace(change, kind="replaced",
                             note="the service is removed, then created again: down until its new "
                                  "tasks are healthy")
        elif service and change.kind in ("replaced", "updated"):
            how = ("stop-first: its one task is down until the new one is healthy"
                   if service["update"] == "stop-first" else
                   f"start-first over {service['replicas']} task(s), one at a time, "
                   "rolled back if it fails")
            change = replace(change, kind="rolled", note=how)
        rolled.append(change)
    listed = {c.subject for c in changes}
    rolled += [Change(name, "replaced", before=before, after=after, note=MODE_SWITCH_NOTE)
               for name, (before, after) in switched.items() if name not in listed]
    for name in sorted(base.keys() & head.keys()):
        fields = tuple(FieldChange(key, before=_short(_placement(base[name], key)),
                                   after=_short(_placement(head[name], key)))
                       for key in ("mode", "node", "replicas", "constraints", "endpoint_mode")
                       if _placement(base[name], key) != _placement(head[name], key))
        if fields:
            rolled.append(Change(name + PLACEMENT_SUFFIX, "updated", fields=fields))
    return tuple(rolled)


def _mode(service: dict[str, Any]) -> str:
    # plans of format 3 and before had replicated services only
    return service.get("mode", "replicated")


def _placement(service: dict[str, Any], key: str) -> Any:
    """A placement setting as a reviewer reads it."""
    if key == "mode":
        return _mode(service)
    if key == "node":
        return service.get("node") or "any"
    if key == "replicas" and _mode(service) == "global":
        return "one per node"
    if key == "constraints":
        return service.get("constraints") or "none"
    return service.get(key)


MODE_SWITCH_NOTE = ("Docker cannot change a service's mode: the service is deleted, then created "
                    "again, and its tasks are down until the new ones run")


def _field_change(key: str, before: Any, after: Any) -> FieldChange:
    if key in SHOWN_FIELDS:
        return FieldChange(key, before=_short(before), after=_short(after))
    if key in NAMES_ONLY_FIELDS:
        return FieldChange(key, names=_changed_keys(before or {}, after or {}))
    if isinstance(before, dict) and isinstance(after, dict):
        return FieldChange(key, names=_changed_keys(before, after))
    if key == "mounts":
        return FieldChange(key, names=_changed_keys(_by_target(before), _by_target(after)))
    if key in ("networks", "connected_networks", "published_ports", "security_opts", "secrets",
               "volumes", "tmpfs"):
        return FieldChange(key, names=tuple(sorted(set(before or ()) ^ set(after or ()))))
    return FieldChange(key)


def _labels_change(name: str, before: dict[str, str], after: dict[str, str]) -> FieldChange:
    changed = _changed_keys(_without_instance_suffix(name, before),
                            _without_instance_suffix(name, after))
    return FieldChange("labels", names=changed)


def _without_instance_suffix(name: str, labels: dict[str, str]) -> dict[str, str]:
    """Labels with the instance suffix taken out of router and service names.

    A start-first container's routers and own middlewares are named
    `<name>-<6 hex>`, a hash of its inputs (core.traefik.instance_suffix): every
    replacement renames all of them, which would hide the one label that really
    changed.
    """
    router_key = re.compile(rf"^traefik\.http\.routers\.{re.escape(name)}-([0-9a-f]{{6}})\.rule$")
    suffixes = {match.group(1) for key in labels if (match := router_key.match(key))}
    if len(suffixes) != 1:
        return labels
    tag = "-" + suffixes.pop()
    return {key.replace(tag, ""): value.replace(tag, "") for key, value in labels.items()}


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))


def _by_target(mounts: Optional[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {mount["target"]: mount for mount in mounts or ()}


# Volumes and networks


def _data_volumes(document: dict[str, Any]) -> dict[str, Any]:
    """Volumes holding data; those a deployment rewrites (configuration written by a
    writer container) change with their writer, which the containers show."""
    return {name: v for name, v in document.get("volumes", {}).items() if v.get("holds_data", True)}


def _volume_state(volume: dict[str, Any]) -> str:
    return "protected" if volume["protected"] else "not protected"


def _volume_change(name: str, before: dict[str, Any], after: dict[str, Any]) -> Optional[Change]:
    # a volume's Docker name is replace-on-change: the protected volume would have to
    # be deleted (refused) and a new, empty one would be created under the new name
    old_name, new_name = before.get("docker_name", name), after.get("docker_name", name)
    if old_name != new_name:
        return Change(name, "renamed", before=f"Docker volume {old_name}",
                      after=f"Docker volume {new_name} (a different volume: its data is not moved)")
    if before["protected"] and not after["protected"]:
        return Change(name, "unprotected", before="protected", after="not protected")
    if before["protected"] != after["protected"]:
        return Change(name, "changed", before=_volume_state(before), after=_volume_state(after))
    return None  # a new purpose or user is a change of the containers, reported there


def _network_kind(network: dict[str, Any]) -> str:
    if network["external"]:
        return "joined"
    return "internal" if network["internal"] else "with egress"


def _network_change(name: str, before: dict[str, Any], after: dict[str, Any]) -> Optional[Change]:
    """Docker changes no network in place: a new kind, or a new purpose (its label
    fourlb.purpose), is a new network."""
    if _network_kind(before) != _network_kind(after):
        return Change(name, "changed", before=_network_kind(before), after=_network_kind(after))
    if before.get("purpose") != after.get("purpose"):
        return Change(name, "changed", before=before.get("purpose"), after=after.get("purpose"),
                      note="its label fourlb.purpose: Docker makes it again")
    return None


def _short(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
