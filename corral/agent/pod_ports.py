"""A pod's host ports: allocated once, kept on disk, published in pod status.

The runtime's PortAllocator hands out free ports on the node IP; this module
maps them to containers, writes them to ``<pod dir>/ports.json`` so a restarted
agent gives adopted pods the very ports their processes listen on, and renders
corral's ``status.portMappings`` extension (read by Endpoints and the proxy):

    [{containerName, name, containerPort, hostIP, hostPort, protocol}]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from corral.agent.runtime.ports import PortAllocator, PortBinding, PortRequest
from corral.objects import Obj, spec


def _requests(pod: Obj) -> list[tuple[str, PortRequest]]:
    out = []
    for container in spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            out.append((container["name"], PortRequest(
                int(port["containerPort"]), port.get("name"),
                str(port.get("protocol") or "TCP"), port.get("hostPort") or None)))
    return out


def mapping_of(container: str, b: PortBinding) -> Obj:
    mapping: Obj = {"containerName": container, "containerPort": b.container_port,
                    "hostIP": b.host_ip, "hostPort": b.host_port, "protocol": b.protocol}
    if b.name:
        mapping["name"] = b.name
    return mapping


def _binding(m: Obj) -> PortBinding:
    return PortBinding(int(m["containerPort"]), m.get("name"), str(m["protocol"]),
                       str(m["hostIP"]), int(m["hostPort"]))


class PodPorts:
    """The port mappings of one pod."""

    def __init__(self, allocator: PortAllocator, pod_uid: str, pod_dir: Path) -> None:
        self.allocator = allocator
        self.pod_uid = pod_uid
        self.file = pod_dir / "ports.json"
        self.mappings: list[Obj] = []

    def ensure(self, pod: Obj) -> list[Obj]:
        """Allocate (or restore from disk) every declared port; raises
        PortsExhausted when none is free."""
        if self.mappings:
            return self.mappings
        if self.file.exists():
            self.mappings = json.loads(self.file.read_text())
            self.allocator.restore(self.pod_uid, [_binding(m) for m in self.mappings])
            return self.mappings
        requests = _requests(pod)
        if not requests:
            return []
        bindings = self.allocator.allocate(self.pod_uid, [r for _, r in requests])
        self.mappings = [mapping_of(c, b) for (c, _), b in zip(requests, bindings, strict=True)]
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(".ports.json.tmp")
        tmp.write_text(json.dumps(self.mappings))
        os.replace(tmp, self.file)
        return self.mappings

    def env_for(self, container: str) -> dict[str, str]:
        """PORT (the container's first port) and PORT_<NAME> for its named ones."""
        own = [m for m in self.mappings if m["containerName"] == container]
        env: dict[str, str] = {}
        if own:
            env["PORT"] = str(own[0]["hostPort"])
        for m in own:
            if m.get("name"):
                env[f"PORT_{m['name'].upper().replace('-', '_')}"] = str(m["hostPort"])
        return env

    def host_port(self, container: str, port: int | str) -> int:
        """The host port of a containerPort given by number or name (probes);
        an undeclared number is taken as the host port itself."""
        for m in self.mappings:
            if m["containerName"] == container and port in (m["containerPort"], m.get("name")):
                return int(m["hostPort"])
        for m in self.mappings:
            if port in (m["containerPort"], m.get("name")):
                return int(m["hostPort"])
        if isinstance(port, str) and not port.isdigit():
            raise ValueError(f"no container port named {port!r}")
        return int(port)

    def release(self) -> None:
        self.allocator.release(self.pod_uid)
