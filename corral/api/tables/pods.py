"""The pod table: NAME READY STATUS RESTARTS AGE (wide: IP NODE NOMINATED NODE
READINESS GATES), with STATUS and RESTARTS worked out as Kubernetes' pod
printer does (container waiting/terminated reasons, Init:x/y, Terminating,
"3 (5m ago)")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.api.tables.age import age
from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, name_of
from corral.api.tables.selectors import NONE
from corral.objects import parse_time, status

COLUMNS = (
    NAME,
    Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", "The aggregate status of the containers in this pod."),
    Column("Restarts", "The number of times the containers in this pod have been restarted "
           "and when the last container in this pod has restarted."),
    AGE,
    Column("IP", "IP address allocated to the pod.", priority=1),
    Column("Node", "The node the pod is bound to.", priority=1),
    Column("Nominated Node", "The node the scheduler nominated for this pod when it "
           "preempted others.", priority=1),
    Column("Readiness Gates", "Readiness gates that are true, of all the pod's gates.",
           priority=1),
)

_NODE_UNREACHABLE = "NodeLost"


@dataclass
class _Tally:
    """What the container statuses add up to."""

    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    # Restarts of sidecars (init containers that keep running) also count
    # once the pod is initialized; those of ordinary init containers do not.
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None

    def restarted(self, status: dict[str, Any], sidecar: bool = False) -> None:
        count = int(status.get("restartCount") or 0)
        finished = parse_time(_last_terminated(status).get("finishedAt"))
        self.restarts += count
        self.last_restart = _later(self.last_restart, finished)
        if sidecar:
            self.sidecar_restarts += count
            self.sidecar_last_restart = _later(self.sidecar_last_restart, finished)

    def only_sidecar_restarts(self) -> None:
        self.restarts, self.last_restart = self.sidecar_restarts, self.sidecar_last_restart


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None or (current is not None and current >= candidate):
        return current
    return candidate


def pod_cells(pod: Object, now: datetime) -> list[Cell]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    tally = _tally(pod)
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({age(tally.last_restart.isoformat(), now)} ago)"
    total = len(spec.get("containers") or []) + sum(
        1 for c in spec.get("initContainers") or [] if _is_sidecar(c))
    return [
        name_of(pod), f"{tally.ready}/{total}", tally.reason, restarts,
        age(pod.get("metadata", {}).get("creationTimestamp"), now),
        _pod_ip(status) or NONE, spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE, _readiness_gates(spec, status),
    ]


def _tally(pod: Object) -> _Tally:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    tally = _Tally(status.get("reason") or phase)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"
    initializing = _count_init_containers(spec, status, tally)
    if not initializing or _condition_true(status, "Initialized"):
        _count_containers(status, tally)
    deleting = bool(pod.get("metadata", {}).get("deletionTimestamp"))
    if deleting and status.get("reason") == _NODE_UNREACHABLE:
        tally.reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        tally.reason = "Terminating"
    return tally


def _count_init_containers(spec: dict[str, Any], status: dict[str, Any],
                           tally: _Tally) -> bool:
    """Add init containers to the tally; True while initialization is under way
    (or failed), with the reason saying how far it got."""
    sidecars = {c.get("name") for c in spec.get("initContainers") or [] if _is_sidecar(c)}
    statuses = status.get("initContainerStatuses") or []
    for index, container in enumerate(statuses):
        sidecar = container.get("name") in sidecars
        tally.restarted(container, sidecar)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if sidecar and container.get("started"):
            tally.ready += 1 if container.get("ready") else 0
            continue
        if terminated:
            tally.reason = "Init:" + _terminated_reason(terminated)
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            tally.reason = "Init:" + waiting["reason"]
        else:
            tally.reason = f"Init:{index}/{len(spec.get('initContainers') or [])}"
        return True
    return False


def _count_containers(status: dict[str, Any], tally: _Tally) -> None:
    # Kubernetes walks the containers from the last, so the first one's reason wins.
    tally.only_sidecar_restarts()
    has_running = False
    for container in reversed(status.get("containerStatuses") or []):
        tally.restarted(container)
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            tally.reason = waiting["reason"]
        elif terminated is not None:
            tally.reason = _terminated_reason(terminated)
        elif container.get("ready") and state.get("running") is not None:
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        tally.reason = "Running" if _condition_true(status, "Ready") else "NotReady"


def _terminated_reason(terminated: dict[str, Any]) -> str:
    if terminated.get("reason"):
        return str(terminated["reason"])
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _last_terminated(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("lastState") or {}).get("terminated") or {}


def _is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def _condition_true(status: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _pod_ip(status: dict[str, Any]) -> str:
    ips = status.get("podIPs") or []
    if ips and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return str(status.get("podIP") or "")


def _readiness_gates(spec: dict[str, Any], status: dict[str, Any]) -> str:
    gates = spec.get("readinessGates") or []
    if not gates:
        return NONE
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


def pod_conditions(pod: Object) -> list[dict[str, str]]:
    """A finished pod's row carries the Completed condition, as in Kubernetes."""
    phase = status(pod).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


PODS = Printer(COLUMNS, pod_cells, pod_conditions)
