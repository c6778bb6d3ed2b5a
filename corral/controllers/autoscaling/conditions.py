"""An HPA's status as one reconcile builds it: its conditions (AbleToScale,
ScalingActive, ScalingLimited, in the order they are first set) and the fields
kube-controller-manager writes (setStatus / setCondition in horizontal.go)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from corral.objects import Obj, meta, rfc3339

ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"


class StatusDraft:
    """The status being computed for one HPA, starting from the stored one."""

    def __init__(self, hpa: Obj, now: datetime) -> None:
        self.old: Obj = copy.deepcopy(hpa.get("status") or {})
        self.generation = meta(hpa).get("generation")
        self.now = now
        self.conditions: list[dict[str, Any]] = copy.deepcopy(self.old.get("conditions") or [])

    def condition(self, type_: str, status: str, reason: str, message: str) -> None:
        """setCondition: the transition time moves only when the status changes."""
        found = next((c for c in self.conditions if c.get("type") == type_), None)
        if found is None:
            found = {"type": type_}
            self.conditions.append(found)
        if found.get("status") != status:
            found["lastTransitionTime"] = rfc3339(self.now)
        found.update(status=status, reason=reason, message=message)

    def build(self, current: int, desired: int | None, metrics: list[Obj] | None,
              rescaled: bool) -> Obj:
        """setStatus; ``desired`` None keeps the last desiredReplicas (a failed
        round), ``current`` None keeps the counts as they were."""
        status: Obj = {
            "observedGeneration": self.generation,
            "currentReplicas": current,
            "desiredReplicas": self.old.get("desiredReplicas", 0) if desired is None
            else desired,
        }
        last = rfc3339(self.now) if rescaled else self.old.get("lastScaleTime")
        if last:
            status["lastScaleTime"] = last
        if metrics:
            status["currentMetrics"] = metrics
        if self.conditions:
            status["conditions"] = self.conditions
        return status

    def conditions_only(self) -> Obj:
        """The stored status with only the conditions changed (a target that
        cannot be read yields no counts)."""
        status = copy.deepcopy(self.old)
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
        status["conditions"] = self.conditions
        return status
