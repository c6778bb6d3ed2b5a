"""Host ports for containerPorts, as Borg and Nomad hand them out.

Processes share the host's network, so two pods cannot both listen on 8080. The
agent gives every declared containerPort a free host port on its own bind address
(each local agent has its own 127.0.1.N) and passes it in the environment:
``PORT`` (the first port) and ``PORT_<NAME>`` (named ports, upper-cased, "-" → "_").

Ports come from a range below Linux's ephemeral range (32768-60999) so outgoing
connections never take them, and below the NodePort range (30000-32767): in
nftables mode a NodePort answers on every local address, so a pod listening on
the same number would never see its own traffic. A port counts as free when no pod on this node holds
it and a test bind (with SO_REUSEADDR, as servers bind) succeeds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from corral.port_probe import bind_error

DEFAULT_RANGE = (20000, 29999)


class PortsExhausted(Exception):
    """Raised when no free port is left in the range (or a fixed hostPort is
    taken); retrying helps only once other pods release theirs."""


@dataclass(frozen=True)
class PortRequest:
    container_port: int
    name: str | None = None
    protocol: str = "TCP"
    host_port: int | None = None  # a fixed hostPort from the spec, else allocated


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    name: str | None
    protocol: str
    host_ip: str
    host_port: int


def port_env(bindings: list[PortBinding]) -> dict[str, str]:
    """PORT for the first binding, PORT_<NAME> for each named one."""
    env: dict[str, str] = {}
    if bindings:
        env["PORT"] = str(bindings[0].host_port)
    for b in bindings:
        if b.name:
            env[f"PORT_{b.name.upper().replace('-', '_')}"] = str(b.host_port)
    return env


class PortAllocator:
    """Allocations per pod on one bind address; the agent restores them after a
    restart from the pods it adopts (``restore``)."""

    def __init__(self, bind_address: str, port_range: tuple[int, int] = DEFAULT_RANGE) -> None:
        self.bind_address = bind_address
        self.low, self.high = port_range
        self._by_pod: dict[str, list[PortBinding]] = {}

    def _taken(self) -> set[tuple[int, str]]:
        return {(b.host_port, b.protocol) for bs in self._by_pod.values() for b in bs}

    def allocate(self, pod_uid: str, requests: list[PortRequest]) -> list[PortBinding]:
        """Bindings for all the pod's ports; the same ones again if it has them."""
        if pod_uid in self._by_pod:
            return list(self._by_pod[pod_uid])
        taken = self._taken()
        bindings: list[PortBinding] = []
        for request in requests:
            protocol = request.protocol.upper()
            port = self._pick(request, protocol, taken)
            taken.add((port, protocol))
            bindings.append(PortBinding(request.container_port, request.name, protocol,
                                        self.bind_address, port))
        self._by_pod[pod_uid] = bindings
        return list(bindings)

    def _pick(self, request: PortRequest, protocol: str, taken: set[tuple[int, str]]) -> int:
        if request.host_port is not None:
            port = request.host_port
            if (port, protocol) in taken or bind_error(self.bind_address, port, protocol) is not None:
                raise PortsExhausted(f"hostPort {port}/{protocol} on {self.bind_address} "
                                     "is in use")
            return port
        size = self.high - self.low + 1
        start = random.randrange(size)  # spread pods out; fewer retries after restarts
        for offset in range(size):
            port = self.low + (start + offset) % size
            if (port, protocol) not in taken and bind_error(self.bind_address, port, protocol) is None:
                return port
        raise PortsExhausted(f"no free {protocol} port in {self.low}-{self.high} "
                             f"on {self.bind_address}")

    def restore(self, pod_uid: str, bindings: list[PortBinding]) -> None:
        self._by_pod[pod_uid] = list(bindings)

    def release(self, pod_uid: str) -> None:
        self._by_pod.pop(pod_uid, None)

    def bindings(self, pod_uid: str) -> list[PortBinding]:
        return list(self._by_pod.get(pod_uid, []))
