"""discovery.k8s.io/v1: EndpointSlice, a Service's endpoints in pieces of at
most a hundred or so, each piece with one address type and one set of ports
(the API Kubernetes has used for service discovery since 1.21)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel
from corral.api.kinds.meta import KubeObject, ObjectReference


class EndpointConditions(KubeModel):
    ready: bool | None = None  # serving and not terminating
    serving: bool | None = None  # passes its readiness checks, terminating or not
    terminating: bool | None = None


class ForZone(KubeModel):
    name: str


class ForNode(KubeModel):
    name: str


class EndpointHints(KubeModel):
    for_zones: list[ForZone] | None = None
    for_nodes: list[ForNode] | None = None


class Endpoint(KubeModel):
    addresses: list[str] = Field(default_factory=list)
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    deprecated_topology: dict[str, str] | None = None
    node_name: str | None = None
    zone: str | None = None
    hints: EndpointHints | None = None


class EndpointPort(KubeModel):
    name: str | None = None
    protocol: str | None = None
    port: Int32 | None = None  # none: every port
    app_protocol: str | None = None


class EndpointSlice(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("discovery.k8s.io/v1",)
    address_type: str | None = None  # IPv4, IPv6, FQDN; required, immutable
    endpoints: list[Endpoint] = Field(default_factory=list)
    ports: list[EndpointPort] | None = None
