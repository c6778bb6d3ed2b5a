"""Object metadata and the small shared shapes: owner references, label
selectors, object references, conditions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from corral.api.kinds.base import Int64, KubeModel, Time, TypedObject


class OwnerReference(KubeModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: Int64 | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    deletion_grace_period_seconds: Int64 | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = None

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with controller=true, if any."""
        return next((r for r in self.owner_references or [] if r.controller), None)


class KubeObject(TypedObject):
    """A top-level object of a kind the API serves."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str] | None = None


class LabelSelector(KubeModel):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


class ObjectReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class Condition(KubeModel):
    """A status condition. One shape for every kind: each kind uses the subset of
    timestamps Kubernetes gives it (Pods lastProbeTime, Nodes lastHeartbeatTime,
    Deployments lastUpdateTime)."""

    type: str
    status: str  # "True", "False", "Unknown"
    reason: str | None = None
    message: str | None = None
    last_transition_time: Time | None = None
    last_probe_time: Time | None = None
    last_heartbeat_time: Time | None = None
    last_update_time: Time | None = None
    observed_generation: Int64 | None = None
