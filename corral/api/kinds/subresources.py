"""Bodies of subresource and delete requests, and the Status the API answers
errors with: Binding, Scale, Eviction, DeleteOptions, Status."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, KubeModel, TypedObject
from corral.api.kinds.meta import KubeObject, ObjectReference


class Binding(KubeObject):
    """POST pods/{name}/binding: assign the pod to target.name (a node)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    target: ObjectReference = Field(default_factory=ObjectReference)


class ScaleSpec(KubeModel):
    replicas: Int32 | None = None


class ScaleStatus(KubeModel):
    replicas: Int32 = 0
    selector: str | None = None  # label selector in string form, "app=web"


class Scale(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("autoscaling/v1",)
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus | None = None


class Preconditions(KubeModel):
    uid: str | None = None
    resource_version: str | None = None


class DeleteOptions(TypedObject):
    """Sent with any group's apiVersion (kubectl uses the resource's), so any is
    accepted."""

    grace_period_seconds: Int64 | None = None
    propagation_policy: str | None = None  # Orphan, Background, Foreground
    preconditions: Preconditions | None = None
    dry_run: list[str] | None = None
    orphan_dependents: bool | None = None
    ignore_store_read_error_with_cluster_breaking_potential: bool | None = None


class Eviction(KubeObject):
    """POST pods/{name}/eviction."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("policy/v1", "policy/v1beta1")
    delete_options: DeleteOptions | None = None


class StatusCause(KubeModel):
    reason: str | None = None
    message: str | None = None
    field: str | None = None


class StatusDetails(KubeModel):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retry_after_seconds: Int32 | None = None


class Status(TypedObject):
    metadata: dict[str, Any] | None = None
    status: str | None = None  # Success, Failure
    message: str | None = None
    reason: str | None = None
    details: StatusDetails | None = None
    code: Int32 | None = None
