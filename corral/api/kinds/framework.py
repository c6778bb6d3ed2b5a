"""corral.dev/v1 Framework: a Mesos framework registered with the master.

A framework subscribes through the Mesos v1 scheduler API (corral/offers/); the
master persists it here so that its id, its roles and its failover timeout
survive a master failover, and so that `kubectl get frameworks` lists it. The
name is the framework id the master handed out (or the one the framework
re-subscribed with); ``spec`` is its FrameworkInfo, ``status`` what the leading
master records about its connection and what it holds. Allocs a framework's
accepted offers became are owned by it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel, Time
from corral.api.kinds.meta import KubeObject


class FrameworkSpec(KubeModel):
    name: str | None = None  # FrameworkInfo.name (free text)
    user: str | None = None
    roles: list[str] | None = None  # FrameworkInfo.roles (or its one legacy role)
    failover_timeout: float | None = None  # seconds the master waits for a reconnect
    capabilities: list[str] | None = None  # FrameworkInfo.capabilities[].type
    hostname: str | None = None
    principal: str | None = None
    webui_url: str | None = None
    checkpoint: bool | None = None


class FrameworkStatus(KubeModel):
    phase: str | None = None  # Subscribed, Disconnected, Removed
    registered_time: Time | None = None
    reregistered_time: Time | None = None
    disconnected_time: Time | None = None  # when its stream ended (failover starts)
    unregistered_time: Time | None = None  # torn down, or its failover timeout ran out
    message: str | None = None  # why it was removed
    dominant_share: float | None = None  # DRF, by the leading master's allocator
    tasks: Int32 | None = None  # tasks not yet terminal
    allocs: Int32 | None = None


class Framework(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("corral.dev/v1",)
    spec: FrameworkSpec = Field(default_factory=FrameworkSpec)
    status: FrameworkStatus | None = None
