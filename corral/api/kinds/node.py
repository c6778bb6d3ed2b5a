"""The Node kind: a machine an agent runs on, its taints and its capacity."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel, Opaque, Quantity, Time
from corral.api.kinds.meta import Condition, KubeObject


class Taint(KubeModel):
    key: str
    effect: str  # NoSchedule, PreferNoSchedule, NoExecute
    value: str | None = None
    time_added: Time | None = None


class NodeSpec(KubeModel):
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: list[str] | None = Field(default=None, alias="podCIDRs")
    provider_id: str | None = Field(default=None, alias="providerID")
    config_source: Opaque | None = None
    external_id: str | None = Field(default=None, alias="externalID")


class NodeAddress(KubeModel):
    type: str  # InternalIP, ExternalIP, Hostname, ...
    address: str


class DaemonEndpoint(KubeModel):
    port: Int32 = Field(alias="Port")


class NodeDaemonEndpoints(KubeModel):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeStatus(KubeModel):
    capacity: dict[str, Quantity] | None = None
    allocatable: dict[str, Quantity] | None = None
    phase: str | None = None
    conditions: list[Condition] | None = None
    addresses: list[NodeAddress] | None = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: dict[str, Any] | None = None
    images: list[Opaque] | None = None
    volumes_in_use: list[str] | None = None
    volumes_attached: list[Opaque] | None = None
    config: Opaque | None = None
    runtime_handlers: list[Opaque] | None = None
    features: Opaque | None = None


class Node(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None
