"""The agent's Node object: what the machine offers and how it is doing.

    register_node ─► POST Node (labels, spec) ─AlreadyExists─► merge labels, PUT
                 └─► PUT nodes/<name>/status  (capacity, allocatable, conditions,
                                               addresses, daemonEndpoints, nodeInfo)

The isolation in force (cgroup v2 / v1 / rlimits, from the runtime) is stated
twice so nobody believes in limits that do not exist: the annotation
``corral.dev/isolation`` and the node condition ``Isolated`` (False with reason
RlimitsOnly when no cgroup is writable).
"""

from __future__ import annotations

import copy
import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

import corral
from corral.agent.config import AgentConfig
from corral.agent.runtime.base import Isolation
from corral.api.errors import AlreadyExists
from corral.api.quantity import format_bytes, format_cpu
from corral.client.http import Client
from corral.objects import Obj

ISOLATION_ANNOTATION = "corral.dev/isolation"
# Kubelet's default hard eviction thresholds decide the pressure conditions.
MEMORY_PRESSURE_BYTES = 100 * 1024 * 1024
DISK_PRESSURE_FRACTION = 0.10
PID_PRESSURE_FRACTION = 0.90
PRESSURE_TYPES = ("MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass(frozen=True)
class Capacity:
    cpu_millis: int
    memory_bytes: int
    ephemeral_storage_bytes: int
    pods: int

    def to_quantities(self) -> dict[str, str]:
        return {"cpu": format_cpu(self.cpu_millis), "memory": _kibibytes(self.memory_bytes),
                "ephemeral-storage": _kibibytes(self.ephemeral_storage_bytes),
                "pods": str(self.pods)}


def _kibibytes(n: int) -> str:
    # The kubelet reports memory in Ki; whole Ki keeps the figure exact enough.
    return format_bytes(max(n, 0) // 1024 * 1024)


def machine_capacity(cfg: AgentConfig) -> Capacity:
    """The real machine (psutil), or the slice the flags give this agent."""
    cpus = cfg.cpus if cfg.cpus is not None else float(psutil.cpu_count() or 1)
    memory = cfg.memory_bytes if cfg.memory_bytes is not None else psutil.virtual_memory().total
    disk = psutil.disk_usage(str(_existing(cfg.state_dir))).total
    return Capacity(int(cpus * 1000), int(memory), int(disk), cfg.max_pods)


def allocatable(capacity: Capacity, cfg: AgentConfig) -> Capacity:
    r = cfg.reservation
    return Capacity(max(capacity.cpu_millis - r.cpu_millis, 0),
                    max(capacity.memory_bytes - r.memory_bytes, 0),
                    max(capacity.ephemeral_storage_bytes - r.ephemeral_storage_bytes, 0),
                    capacity.pods)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def pressures(state_dir: Path) -> dict[str, bool]:
    """Each pressure condition: under pressure now? (kubelet's eviction thresholds)."""
    available = psutil.virtual_memory().available
    disk = psutil.disk_usage(str(_existing(state_dir)))
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return {
        "MemoryPressure": available < MEMORY_PRESSURE_BYTES,
        "DiskPressure": disk.free < DISK_PRESSURE_FRACTION * disk.total,
        "PIDPressure": len(psutil.pids()) > PID_PRESSURE_FRACTION * pid_max,
    }


# The kubelet's reasons and wording (under pressure, then not); no live figures,
# so an unchanged condition is unchanged text.
PRESSURE_TEXT = {
    "MemoryPressure": (("KubeletHasInsufficientMemory",
                        "kubelet has insufficient memory available"),
                       ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
    "DiskPressure": (("KubeletHasDiskPressure", "kubelet has disk pressure"),
                     ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
    "PIDPressure": (("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
                    ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
}


def _condition(type_: str, ok: bool, reason: str, message: str) -> Obj:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason,
            "message": message}


def node_conditions(isolation: Isolation, state_dir: Path) -> list[Obj]:
    """The conditions as measured now, without times (``stamp`` adds them)."""
    conditions = [_condition("Ready", True, "KubeletReady", "corral agent is posting ready status")]
    for type_, under in pressures(state_dir).items():
        reason, text = PRESSURE_TEXT[type_][0 if under else 1]
        conditions.append(_condition(type_, under, reason, text))
    isolated = isolation.mechanism != "rlimits"
    reason = {"cgroup-v2": "CgroupV2", "cgroup-v1": "CgroupV1"}.get(isolation.mechanism,
                                                                   "RlimitsOnly")
    conditions.append(_condition("Isolated", isolated, reason, isolation.reason))
    return conditions


def stamp(conditions: list[Obj], previous: list[Obj] | None, now: str) -> list[Obj]:
    """Add heartbeat times (now) and transition times (kept while unchanged)."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for cond in conditions:
        old = before.get(cond["type"])
        changed = old is None or old.get("status") != cond["status"]
        since = now if changed or old is None else old.get("lastTransitionTime") or now
        out.append({**cond, "lastHeartbeatTime": now, "lastTransitionTime": since})
    return out


def without_times(status: Obj) -> Obj:
    """The status minus what changes on every post, to tell a real change."""
    out = copy.deepcopy(status)
    for cond in out.get("conditions") or []:
        cond.pop("lastHeartbeatTime", None)
        cond.pop("lastTransitionTime", None)
    return out


def node_labels(cfg: AgentConfig) -> dict[str, str]:
    return {"kubernetes.io/hostname": cfg.name, "kubernetes.io/os": platform.system().lower(),
            "kubernetes.io/arch": _arch(), "beta.kubernetes.io/os": platform.system().lower(),
            "beta.kubernetes.io/arch": _arch()}


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def node_info(isolation: Isolation) -> Obj:
    uname = platform.uname()
    machine_id = _read_first(("/etc/machine-id", "/var/lib/dbus/machine-id"))
    return {"machineID": machine_id, "systemUUID": machine_id, "bootID": _boot_id(),
            "kernelVersion": uname.release, "osImage": _os_image(),
            "containerRuntimeVersion": f"corral-process://{isolation.mechanism}",
            "kubeletVersion": f"v1.32.0-corral.{corral.__version__}",
            "kubeProxyVersion": "", "operatingSystem": platform.system().lower(),
            "architecture": _arch()}


def _read_first(paths: tuple[str, ...]) -> str:
    for p in paths:
        try:
            return Path(p).read_text().strip()
        except OSError:
            continue
    return ""


def _boot_id() -> str:
    return _read_first(("/proc/sys/kernel/random/boot_id",))


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def node_status(cfg: AgentConfig, isolation: Isolation, port: int) -> Obj:
    """The Node status as measured now, without condition times."""
    capacity = machine_capacity(cfg)
    return {
        "capacity": capacity.to_quantities(),
        "allocatable": allocatable(capacity, cfg).to_quantities(),
        "conditions": node_conditions(isolation, cfg.state_dir),
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip},
                      {"type": "Hostname", "address": cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": node_info(isolation),
        "phase": "Running",
    }


def node_object(cfg: AgentConfig, isolation: Isolation) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": cfg.name, "labels": node_labels(cfg),
                         "annotations": {ISOLATION_ANNOTATION: isolation.mechanism,
                                         "corral.dev/agent-host": socket.gethostname(),
                                         "corral.dev/agent-pid": str(os.getpid())}},
            "spec": {}}


async def register_node(client: Client, cfg: AgentConfig, isolation: Isolation) -> Obj:
    """Create the Node, or adopt the existing one (labels and annotations merged,
    spec — cordon, taints — left as the cluster set it). Returns the object."""
    wanted = node_object(cfg, isolation)
    try:
        return await client.create(wanted)
    except AlreadyExists:
        pass
    current = await client.get("Node", cfg.name)
    meta = current.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **wanted["metadata"]["labels"]}
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           **wanted["metadata"]["annotations"]}
    return await client.update(current)
