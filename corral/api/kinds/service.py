"""Service and Endpoints: a stable address for a set of pods, and the pods'
addresses behind it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, IntOrString, KubeModel, Opaque
from corral.api.kinds.meta import Condition, KubeObject, ObjectReference


class ServicePort(KubeModel):
    port: Int32
    name: str | None = None
    protocol: str | None = None  # TCP, UDP, SCTP
    target_port: IntOrString | None = None
    node_port: Int32 | None = None
    app_protocol: str | None = None


class ServiceSpec(KubeModel):
    type: str | None = None  # ClusterIP, NodePort, LoadBalancer, ExternalName
    selector: dict[str, str] | None = None
    ports: list[ServicePort] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    external_name: str | None = None
    session_affinity: str | None = None  # None, ClientIP
    session_affinity_config: Opaque | None = None
    publish_not_ready_addresses: bool | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_source_ranges: list[str] | None = None
    load_balancer_class: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    health_check_node_port: Int32 | None = None
    ip_families: list[str] | None = Field(default=None, alias="ipFamilies")
    ip_family_policy: str | None = Field(default=None, alias="ipFamilyPolicy")
    allocate_load_balancer_node_ports: bool | None = None
    traffic_distribution: str | None = None


class LoadBalancerIngress(KubeModel):
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: list[Opaque] | None = None


class LoadBalancerStatus(KubeModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(KubeModel):
    load_balancer: LoadBalancerStatus | None = None
    conditions: list[Condition] | None = None


class Service(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None


class EndpointAddress(KubeModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(KubeModel):
    port: Int32
    name: str | None = None
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSubset(KubeModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    subsets: list[EndpointSubset] | None = None
