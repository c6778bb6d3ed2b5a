"""Pod status from what runs: a pure function of the containers' views.

    ContainerView (per container, from the worker)    ──► containerStatuses
       current instance's runtime state,                   state / lastState /
       last terminated one, waiting reason,                ready / started /
       ready, will it restart                              restartCount
                    all views ──► phase, conditions

Phase rules (Kubernetes'):
    Failed     an init container failed and will not be restarted, or every
               container has terminated for good and one of them failed
    Succeeded  every container has terminated for good with exit code 0
    Running    initialized, and a container runs or is restarting
    Pending    otherwise (init containers running, containers being created)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from corral.agent.runtime.base import ContainerState
from corral.objects import Obj, rfc3339

CONTAINER_ID_SCHEME = "corral://"


class PodPhase(str, Enum):
    # Accepted by the node; init containers run or containers are being created.
    PENDING = "Pending"
    # Bound and initialized; at least one container runs or is restarting.
    RUNNING = "Running"
    # Every container exited 0 and none will restart (terminal).
    SUCCEEDED = "Succeeded"
    # Every container terminated for good, at least one in failure (terminal).
    FAILED = "Failed"


# Phases a pod moves between (Pending → Running → terminal; never back).
PHASE_TRANSITIONS: dict[PodPhase, frozenset[PodPhase]] = {
    PodPhase.PENDING: frozenset({PodPhase.RUNNING, PodPhase.SUCCEEDED, PodPhase.FAILED}),
    PodPhase.RUNNING: frozenset({PodPhase.SUCCEEDED, PodPhase.FAILED}),
    PodPhase.SUCCEEDED: frozenset(),
    PodPhase.FAILED: frozenset(),
}


@dataclass
class ContainerView:
    name: str
    image: str
    restart_count: int
    current: ContainerState | None  # the latest instance, None before the first start
    last_terminated: ContainerState | None  # the one before it, for lastState
    waiting: tuple[str, str] | None = None  # (reason, message) while not running
    ready: bool = False
    started: bool = False
    will_restart: bool = False  # the current instance exited and will be started again

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.running

    @property
    def done_for_good(self) -> bool:
        return self.current is not None and not self.current.running and not self.will_restart

    @property
    def succeeded(self) -> bool:
        return self.done_for_good and self.current is not None and self.current.exit_code == 0


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def terminated(state: ContainerState) -> Obj:
    body = {"exitCode": state.exit_code if state.exit_code is not None else 0,
            "signal": state.signal, "reason": state.reason, "message": state.message,
            "startedAt": _time(state.started_at), "finishedAt": _time(state.finished_at),
            "containerID": CONTAINER_ID_SCHEME + state.container_id}
    return {"terminated": {k: v for k, v in body.items() if v is not None}}


def _waiting(reason: str, message: str = "") -> Obj:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def _state_and_last(view: ContainerView) -> tuple[Obj, Obj]:
    cur = view.current
    last = terminated(view.last_terminated) if view.last_terminated else {}
    if cur is None or (cur.running and cur.started_at is None):
        reason, message = view.waiting or ("ContainerCreating", "")
        return _waiting(reason, message), last
    if cur.running:
        return {"running": {"startedAt": _time(cur.started_at)}}, last
    if view.waiting is not None:  # exited, to be started again
        return _waiting(*view.waiting), terminated(cur)
    return terminated(cur), last


def container_status(view: ContainerView) -> Obj:
    state, last = _state_and_last(view)
    status: Obj = {"name": view.name, "image": view.image, "imageID": "",
                   "ready": view.ready and view.running, "restartCount": view.restart_count,
                   "started": view.started and view.running, "state": state,
                   "lastState": last}
    if view.current is not None:
        status["containerID"] = CONTAINER_ID_SCHEME + view.current.container_id
    return status


def pod_phase(inits: list[ContainerView], mains: list[ContainerView]) -> PodPhase:
    if any(v.done_for_good and not v.succeeded for v in inits):
        return PodPhase.FAILED
    if not all(v.succeeded for v in inits):
        return PodPhase.PENDING
    if mains and all(v.done_for_good for v in mains):
        return PodPhase.SUCCEEDED if all(v.succeeded for v in mains) else PodPhase.FAILED
    if any(v.current is not None and (v.running or v.will_restart) for v in mains):
        return PodPhase.RUNNING
    return PodPhase.PENDING


def _cond(type_: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": type_, "status": "True" if ok else "False"}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_conditions(phase: PodPhase, inits: list[ContainerView],
                   mains: list[ContainerView]) -> list[Obj]:
    initialized = all(v.succeeded for v in inits)
    not_init = [v.name for v in inits if not v.succeeded]
    unready = [v.name for v in mains if not (v.ready and v.running)]
    terminal = phase in (PodPhase.SUCCEEDED, PodPhase.FAILED)
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    message = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
    ready = not unready and not terminal
    return [
        _cond("PodScheduled", True),
        _cond("Initialized", initialized, "ContainersNotInitialized",
              f"containers with incomplete status: [{' '.join(not_init)}]"),
        _cond("ContainersReady", ready, reason, message),
        _cond("Ready", ready, reason, message),
    ]


def stamp_conditions(conditions: list[Obj], previous: list[Obj] | None, now: str) -> list[Obj]:
    """lastTransitionTime: kept while a condition's status is unchanged."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for cond in conditions:
        old = before.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"]
        since = (old or {}).get("lastTransitionTime") if same else None
        out.append({**cond, "lastTransitionTime": since or now})
    return out
