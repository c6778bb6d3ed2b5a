"""scheduling.k8s.io/v1: PriorityClass, a named priority band. Its fields sit at
the top level; there is no spec."""

from __future__ import annotations

from typing import ClassVar

from corral.api.kinds.base import Int32
from corral.api.kinds.meta import KubeObject


class PriorityClass(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("scheduling.k8s.io/v1",)
    value: Int32 = 0
    global_default: bool | None = None
    preemption_policy: str | None = None  # PreemptLowerPriority, Never
    description: str | None = None
