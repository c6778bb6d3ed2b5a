"""Core (v1) kinds without a module of their own: Namespace, Pod, ConfigMap,
Secret, ServiceAccount, ResourceQuota, LimitRange, Event."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel, MicroTime, Opaque, Quantity, Time
from corral.api.kinds.meta import Condition, KubeObject, ObjectReference
from corral.api.kinds.pod import LocalObjectReference, PodSpec, PodStatus


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = None


class NamespaceStatus(KubeModel):
    phase: str | None = None  # Active, Terminating
    conditions: list[Condition] | None = None


class Namespace(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None


class Pod(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus | None = None


class ConfigMap(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None  # base64
    immutable: bool | None = None


class Secret(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    data: dict[str, str] | None = None  # base64
    string_data: dict[str, str] | None = None  # write-only convenience, merged into data
    type: str | None = None
    immutable: bool | None = None


class ServiceAccount(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    secrets: list[ObjectReference] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    automount_service_account_token: bool | None = None


class ResourceQuotaSpec(KubeModel):
    hard: dict[str, Quantity] | None = None
    scopes: list[str] | None = None
    scope_selector: Opaque | None = None


class ResourceQuotaStatus(KubeModel):
    hard: dict[str, Quantity] | None = None
    used: dict[str, Quantity] | None = None


class ResourceQuota(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: ResourceQuotaSpec | None = None
    status: ResourceQuotaStatus | None = None


class LimitRangeItem(KubeModel):
    """One type's bounds: Container, Pod or PersistentVolumeClaim (at most once each)."""
    type: str = ""
    max: dict[str, Quantity] | None = None
    min: dict[str, Quantity] | None = None
    default: dict[str, Quantity] | None = None  # a container's limit when it names none
    default_request: dict[str, Quantity] | None = None  # its request when it names none
    max_limit_request_ratio: dict[str, Quantity] | None = None


class LimitRangeSpec(KubeModel):
    limits: list[LimitRangeItem] = Field(default_factory=list)


class LimitRange(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: LimitRangeSpec | None = None


class EventSource(KubeModel):
    component: str | None = None
    host: str | None = None


class EventSeries(KubeModel):
    count: Int32 | None = None
    last_observed_time: MicroTime | None = None


class Event(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    type: str | None = None  # Normal, Warning
    count: Int32 | None = None
    first_timestamp: Time | None = None
    last_timestamp: Time | None = None
    event_time: MicroTime | None = None
    source: EventSource | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None
