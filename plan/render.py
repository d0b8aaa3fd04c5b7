"""The plan document as a readable Markdown page (`python -m plan STACK`)."""

from __future__ import annotations

import json
from typing import Any

from core.networks import DEFAULT_POOL_NETWORKS

from .document import UNSET_TARGET
from .markdown import code, table


def plan_markdown(document: dict[str, Any]) -> str:
    lines = [f"# Plan of stack {code(document['stack'])}", ""]
    lines.append(f"Role: {document['role']}. Served by the Traefik of stack "
                 f"{code(document['edge'])}.")
    sections = (("Routes", _routes), ("DNS records", _dns), ("Containers", _containers),
                ("Volumes", _volumes), ("Networks", _networks), ("Secrets", _secrets))
    if "ollama" in document:
        sections += (("Ollama", _ollama),)
    if "swarm" in document:
        sections += (("Swarm placement", _swarm), ("Backups per node", _backups))
    for title, render in sections:
        lines += ["", f"## {title}", ""] + render(document)
    return "\n".join(lines) + "\n"


def _ollama(document: dict[str, Any]) -> list[str]:
    ollama = document["ollama"]
    where = ("runs on the Docker host (fourlb:ollama.runsOn host): reached through Docker's "
             "host-gateway address" if ollama["runs_on"] == "host"
             else "runs as the container `ollama` (fourlb:ollama.runsOn service)")
    clients = ", ".join(ollama["clients"]) or "no AI service of this stack"
    return [f"Ollama {where}, at {code(ollama['url'])}, for {clients}."]


def _routes(document: dict[str, Any]) -> list[str]:
    rows = [(
        code(r["hostname"]),
        code(r["path_prefix"]) if r["path_prefix"] else "",
        f"{r['container']} ({r['service']})" if r["service"] else f"{r['container']}:{r['port']}",
        ", ".join(r["middlewares"]),
        r["tls_resolver"] or "default certificate",
    ) for r in document["routes"]]
    return table(("Hostname", "Path prefix", "Target", "Middlewares", "TLS resolver"), rows) + \
        _headers(document)


def _headers(document: dict[str, Any]) -> list[str]:
    """Each hostname's response headers, once per distinct set."""
    by_set: dict[str, list[str]] = {}
    for route in document["routes"]:
        own = {name: None for name in route.get("application_headers", ())}
        key = json.dumps({**route["headers"], **own}, sort_keys=True)
        host = route["hostname"] + (route["path_prefix"] or "")
        if host not in by_set.setdefault(key, []):
            by_set[key].append(host)
    lines = ["", "Response headers on every answer (refusals included):"]
    for key, hosts in by_set.items():
        lines += ["", ", ".join(code(h) for h in hosts) + ":", ""]
        lines += table(("Header", "Value"), [
            (name, code(value) if value is not None else "_the application's own_")
            for name, value in json.loads(key).items()])
    return lines


def _dns(document: dict[str, Any]) -> list[str]:
    if not document["dns"]:
        return ["No DNS records are managed by this stack."]
    lines: list[str] = []
    for zone, records in sorted(document["dns"].items()):
        rows = [(code(r["name"]), r["type"], r["content"] or UNSET_TARGET, "yes" if r["proxied"] else "no")
                for r in records]
        lines += [f"### Zone {code(zone)}", ""] + table(("Name", "Type", "Content", "Proxied"), rows)
        lines.append("")
    return lines[:-1]


def _containers(document: dict[str, Any]) -> list[str]:
    rows = [(
        code(name), code(c["image"]), c["role"], _networks_of(c),
        ", ".join(c["volumes"]), c["update_order"], c["memory_mb"],
    ) for name, c in sorted(document["containers"].items())]
    return table(("Container", "Image", "Role", "Networks", "Volumes", "Update order",
                  "Memory (MB)"), rows)


def _networks_of(container: dict[str, Any]) -> str:
    joined = ", ".join(container["networks"])
    connected = container.get("connected_networks") or ()
    return joined + (f"; connected once running: {', '.join(connected)}" if connected else "")


def _volumes(document: dict[str, Any]) -> list[str]:
    rows = [(
        code(name), v["purpose"], "protected" if v["protected"] else "**not protected**",
        ", ".join(v["used_by"]),
    ) for name, v in sorted(document["volumes"].items())]
    return table(("Volume", "Holds", "Protection", "Used by"), rows)


def _networks(document: dict[str, Any]) -> list[str]:
    def kind(n: dict[str, Any]) -> str:
        if n["external"]:
            return "joined (owned by the edge stack)"
        return "internal" if n["internal"] else "with egress"
    rows = [(code(name), kind(n), n["purpose"]) for name, n in sorted(document["networks"].items())]
    declared = sum(1 for n in document["networks"].values() if not n["external"])
    return table(("Network", "Kind", "Purpose"), rows) + [
        "", f"{declared} declared here, one per routed container among them; Docker's default "
        f"address pools hold {DEFAULT_POOL_NETWORKS} besides docker0 for all stacks of the host "
        "(README, \"Networks\").",
        "", "Who reaches whom (a container reaches another only where they share a network; "
        "the other stacks of the host add theirs on the networks they share):", "",
        *_reached_by(document)]


def _reached_by(document: dict[str, Any]) -> list[str]:
    rows = [(code(f"{name}:{document['containers'][name]['port']}"), ", ".join(sources) or "_nothing_")
            for name, sources in sorted(document.get("reached_by", {}).items())]
    return table(("Listening", "Reached by"), rows)


def _secrets(document: dict[str, Any]) -> list[str]:
    if not document["secrets"]:
        return ["_none_"]
    return [", ".join(code(name) for name in document["secrets"])]


def _swarm(document: dict[str, Any]) -> list[str]:
    rows = [(code(name), s["node"] or ("every node" if _is_global(s) else "any"),
             s.get("mode", "replicated"), "one per node" if _is_global(s) else s["replicas"],
             _keeps_data(s),
             s["update"] + (", rolled back on failure" if s["rollback"] else "")
             + (f", {s['update_delay_s']} s between tasks" if s["update_delay_s"] else ""),
             len(s["files"]))
            for name, s in sorted(document["swarm"].items())]
    return ["Node roles are the label fourlb.role of each node. A global service runs one task "
            "on each node of its role (on every node without one); replicated, that many tasks.",
            ""] + table(("Service", "Node role", "Mode", "Tasks", "Keeps data", "Update",
                         "Configs and secrets"), rows)


def _is_global(service: dict[str, Any]) -> bool:
    return service.get("mode") == "global"


def _keeps_data(service: dict[str, Any]) -> str:
    if not service["stateful"]:
        return "no"
    if _is_global(service):
        return "yes (each task its own node's volume)"
    return "yes (pinned: its volume is on that node)"


def _backups(document: dict[str, Any]) -> list[str]:
    backups = document.get("backups", {})
    if not backups:
        return ["_none_: this stack runs no backup"]
    rows = [(code(name), b["node"] + (", each of its nodes" if b["on_each_node"] else ""),
             ", ".join(code(v) for v in b["archives"]) or "_nothing_",
             "yes" if b["dumps_databases"] else "no", "yes" if b["rotates_access_log"] else "no",
             code(b["snapshot_host"]))
            for name, b in sorted(backups.items())]
    repository = next(iter(backups.values()))["repository"]
    where = (f"into {code(repository)}, each node's snapshots under its own host"
             if repository else "on its node only (no fourlb:backup.remote)")
    return [f"A volume stays on its node: each node role that holds data backs it up there, at "
            f"the stack's schedule, {where}.", ""] + table(
        ("Backup", "Node role", "Archives", "Dumps the databases", "Rotates Traefik's access log",
         "Snapshot host"), rows)
