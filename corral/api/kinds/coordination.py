"""coordination.k8s.io/v1: Lease, used for node heartbeats and leader election."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel, MicroTime
from corral.api.kinds.meta import KubeObject


class LeaseSpec(KubeModel):
    holder_identity: str | None = None
    lease_duration_seconds: Int32 | None = None
    acquire_time: MicroTime | None = None
    renew_time: MicroTime | None = None
    lease_transitions: Int32 | None = None
    strategy: str | None = None
    preferred_holder: str | None = None


class Lease(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("coordination.k8s.io/v1",)
    spec: LeaseSpec = Field(default_factory=LeaseSpec)
