"""core/v1 ReplicationController: the ReplicaSet's predecessor, still served by
Kubernetes (kubectl cluster-info dump lists it). Its selector is a plain label map;
the ReplicaSet controller runs it (corral/controllers/replicaset.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.apps import ReplicaSetStatus
from corral.api.kinds.base import Int32, KubeModel
from corral.api.kinds.meta import KubeObject, LabelSelector
from corral.api.kinds.pod import PodTemplateSpec


class ReplicationControllerSpec(KubeModel):
    replicas: Int32 | None = None
    min_ready_seconds: Int32 | None = None
    selector: dict[str, str] | None = None  # defaults to the template's labels
    template: PodTemplateSpec | None = None

    def label_selector(self) -> LabelSelector:
        return LabelSelector(match_labels=dict(self.selector or {}))


class ReplicationController(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: ReplicationControllerSpec = Field(default_factory=ReplicationControllerSpec)
    status: ReplicaSetStatus | None = None  # the same fields as a ReplicaSet's
