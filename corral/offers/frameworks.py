"""Frameworks as the leading master holds them, and as the store keeps them.

    FrameworkInfo (SUBSCRIBE) ─► framework_spec() ─► Framework object (corral.dev/v1)
    Framework object (a new leader) ─► Registered (disconnected, failover from now)

A framework is connected while its SUBSCRIBE stream is open. When the stream
ends it is disconnected, and it keeps everything for ``failover_timeout``
seconds (Mesos' FrameworkInfo field; 0 by default, so at once); re-subscribing
with its id within that time resumes it, tasks and all. After it, the framework
is removed: its tasks killed, its Allocs freed, its object kept with phase
Removed so that its id cannot be used again (as Mesos refuses a removed id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from corral.objects import Obj, name_of, spec, status
from corral.offers.auth import Principal
from corral.offers.protocol import CallError
from corral.offers.stream import Stream

API_VERSION = "corral.dev/v1"
SUBSCRIBED, DISCONNECTED, REMOVED = "Subscribed", "Disconnected", "Removed"
DEFAULT_ROLE = "*"


def new_framework_id() -> str:
    # A lowercase RFC 1123 name, so it can be the Framework object's name.
    return str(uuid.uuid4())


def framework_spec(info: Obj) -> Obj:
    """The Framework object's spec from a FrameworkInfo (already parsed as JSON)."""
    roles = info.get("roles")
    if not roles:
        roles = [info.get("role") or DEFAULT_ROLE]
    capabilities = [c.get("type") for c in info.get("capabilities") or ()
                    if isinstance(c, dict) and c.get("type")]
    out: Obj = {"name": info.get("name"), "user": info.get("user") or "",
                "roles": roles, "failoverTimeout": info.get("failover_timeout") or 0,
                "capabilities": capabilities}
    for wire, ours in (("hostname", "hostname"), ("principal", "principal"),
                       ("webui_url", "webuiUrl"), ("checkpoint", "checkpoint")):
        if info.get(wire) is not None:
            out[ours] = info[wire]
    return out


def check_info(info: Obj) -> None:
    """What Mesos checks of a FrameworkInfo before anything else."""
    if not isinstance(info.get("name"), str):
        raise CallError("Failed to validate scheduler::Call: Expecting "
                        "'framework_info.name' to be present")
    if not isinstance(info.get("user"), str):
        raise CallError("Failed to validate scheduler::Call: Expecting "
                        "'framework_info.user' to be present")
    roles = info.get("roles")
    if roles is not None and (not isinstance(roles, list)
                              or not all(isinstance(r, str) for r in roles)):
        raise CallError("'framework_info.roles' must be a list of strings")
    if info.get("role") is not None and roles:
        raise CallError("'framework_info.role' and 'framework_info.roles' are mutually "
                        "exclusive")
    timeout = info.get("failover_timeout")
    if timeout is not None and (not isinstance(timeout, (int, float))
                                or isinstance(timeout, bool)):
        raise CallError("'framework_info.failover_timeout' must be a number")


@dataclass
class Registered:
    """One framework the leading master knows (connected or within its failover)."""

    id: str
    obj: Obj  # the Framework object as last written or read
    stream: Stream | None = None
    disconnected_at: float | None = None  # monotonic, while disconnected
    suppressed: set[str] = field(default_factory=set)
    caller: Principal | None = None  # who made its latest call (authenticated)

    @property
    def roles(self) -> list[str]:
        return [str(r) for r in spec(self.obj).get("roles") or [DEFAULT_ROLE]]

    @property
    def failover_timeout(self) -> float:
        return float(spec(self.obj).get("failoverTimeout") or 0)

    @property
    def principal(self) -> str:
        return str(spec(self.obj).get("principal") or "")

    @property
    def user(self) -> str:
        """FrameworkInfo.user: whom its tasks run as unless CommandInfo.user says."""
        return str(spec(self.obj).get("user") or "")

    @property
    def capabilities(self) -> list[str]:
        return [str(c) for c in spec(self.obj).get("capabilities") or ()]

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def connected(self) -> bool:
        return self.stream is not None and not self.stream.closed

    @property
    def removed(self) -> bool:
        return status(self.obj).get("phase") == REMOVED

    def info(self) -> Obj:
        """The FrameworkInfo it is known by (for SUBSCRIBED and /master/state)."""
        s = spec(self.obj)
        out: Obj = {"id": {"value": self.id}, "name": s.get("name") or "",
                    "user": s.get("user") or "", "roles": self.roles,
                    "failover_timeout": self.failover_timeout,
                    "capabilities": [{"type": c} for c in self.capabilities]}
        for ours, wire in (("hostname", "hostname"), ("principal", "principal"),
                           ("webuiUrl", "webui_url"), ("checkpoint", "checkpoint")):
            if s.get(ours) is not None:
                out[wire] = s[ours]
        return out


def framework_object(framework_id: str, info: Obj) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "Framework",
            "metadata": {"name": framework_id}, "spec": framework_spec(info)}


def registered_from(obj: Obj) -> Registered:
    return Registered(name_of(obj), obj)
