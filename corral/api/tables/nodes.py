"""The node table: NAME STATUS ROLES AGE VERSION (wide: INTERNAL-IP EXTERNAL-IP
OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of
from corral.api.tables.selectors import NONE
from corral.objects import spec, status

COLUMNS = (
    NAME,
    Column("Status", "The status of the node"),
    Column("Roles", "The roles of the node"),
    AGE,
    Column("Version", "Kubelet Version reported by the node."),
    Column("Internal-IP", "List of addresses reachable to the node.", priority=1),
    Column("External-IP", "List of addresses reachable to the node.", priority=1),
    Column("OS-Image", "OS Image reported by the node.", priority=1),
    Column("Kernel-Version", "Kernel Version reported by the node.", priority=1),
    Column("Container-Runtime", "ContainerRuntime Version reported by the node.", priority=1),
)

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"
_UNKNOWN = "<unknown>"


def node_cells(node: Object, now: datetime) -> list[Cell]:
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    return [
        name_of(node), node_status(node), ",".join(node_roles(node)) or NONE,
        age_of(node, now), info.get("kubeletVersion", ""),
        _address(status, "InternalIP"), _address(status, "ExternalIP"),
        info.get("osImage") or _UNKNOWN, info.get("kernelVersion") or _UNKNOWN,
        info.get("containerRuntimeVersion") or _UNKNOWN,
    ]


def node_status(node: Object) -> str:
    """Ready, NotReady (Ready condition False or Unknown) or Unknown (no Ready
    condition), with ",SchedulingDisabled" for a cordoned node."""
    ready = [c for c in status(node).get("conditions") or []
             if c.get("type") == "Ready"]
    if not ready:
        parts = ["Unknown"]
    else:
        parts = ["Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if spec(node).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Object) -> list[str]:
    roles: set[str] = set()
    for key, value in (node.get("metadata", {}).get("labels") or {}).items():
        if key.startswith(_ROLE_PREFIX) and key != _ROLE_PREFIX:
            roles.add(key.removeprefix(_ROLE_PREFIX))
        elif key == _ROLE_LABEL and value:
            roles.add(value)
    return sorted(roles)


def _address(status: dict[str, Any], kind: str) -> str:
    for address in status.get("addresses") or []:
        if address.get("type") == kind and address.get("address"):
            return str(address["address"])
    return NONE


NODES = Printer(COLUMNS, node_cells)
