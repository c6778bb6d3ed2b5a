"""The node's proxy table: desired Service ports in, running listeners out.

`apply(services, endpoints)` is the whole interface of the data plane. It diffs
what is asked for against what runs:

    new Service port        → a Balancer, listeners on clusterIP:port and node_ip:nodePort
    existing Service port   → backends swapped in place, listeners added/removed per address
    removed Service port    → its listeners stop accepting; their connections drain

Every backend set is swapped before the first await of `apply`, so all of an
update takes effect within one event-loop step. A listener that fails to bind
is logged and retried by the next `apply`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.client.clock import Clock
from corral.proxy.balancer import Address, Balancer
from corral.proxy.forwarder import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, Listener
from corral.proxy.model import Backend, ServicePortKey, ServiceProxySpec

log = logging.getLogger(__name__)


@dataclass
class _ServicePort:
    """What runs for one Service port: one balancer shared by all its listeners."""

    spec: ServiceProxySpec
    balancer: Balancer
    listeners: dict[Address, Listener] = field(default_factory=dict)


def _describe(key: ServicePortKey) -> str:
    name = f"{key.namespace}/{key.service}"
    return f"{name}:{key.port_name}" if key.port_name else name


def proxied(spec: ServiceProxySpec) -> bool:
    """Only TCP ports of Services with a clusterIP get listeners (UDP is not proxied)."""
    return spec.protocol.upper() == "TCP" and not spec.headless


class ProxyTable:
    def __init__(self, node_ip: str | None = None, *,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 clock: Clock | None = None) -> None:
        self.node_ip = node_ip
        self.connect_timeout = connect_timeout
        self.max_attempts = max_attempts
        self._clock = clock
        self._ports: dict[ServicePortKey, _ServicePort] = {}
        self._draining: list[Listener] = []  # stopped listeners with connections left
        self._lock = asyncio.Lock()

    async def apply(self, services: Mapping[ServicePortKey, ServiceProxySpec],
                    endpoints: Mapping[ServicePortKey, Sequence[Backend]]) -> None:
        async with self._lock:
            wanted = {key: spec for key, spec in services.items() if proxied(spec)}
            for key in [key for key in self._ports if key not in wanted]:
                self._drain(self._ports.pop(key).listeners.values())
            for key, spec in wanted.items():
                self._update(key, spec, endpoints.get(key, ()))
            # Stops before starts, so an address moving between Services is free.
            for port in self._ports.values():
                self._stop_unwanted(port)
            for key, port in self._ports.items():
                await self._start_missing(key, port)
            self._draining = [lis for lis in self._draining if lis.connections]

    def balancer(self, key: ServicePortKey) -> Balancer | None:
        port = self._ports.get(key)
        return port.balancer if port is not None else None

    def listening(self, key: ServicePortKey) -> list[Address]:
        """The addresses a Service port is being served on right now."""
        port = self._ports.get(key)
        return sorted(port.listeners) if port is not None else []

    async def close(self) -> None:
        """Stop every listener, cancel every connection and wait for them all."""
        async with self._lock:
            listeners = [lis for port in self._ports.values() for lis in port.listeners.values()]
            listeners += self._draining
            self._ports.clear()
            self._draining = []
            await asyncio.gather(*(lis.close() for lis in listeners))

    # -- steps of apply -------------------------------------------------------

    def _update(self, key: ServicePortKey, spec: ServiceProxySpec,
                backends: Sequence[Backend]) -> None:
        port = self._ports.get(key)
        if port is None:
            balancer = Balancer(spec.algorithm, spec.session_affinity, self._clock)
            port = self._ports[key] = _ServicePort(spec, balancer)
        port.spec = spec
        port.balancer.configure(spec.algorithm, spec.session_affinity)
        port.balancer.set_backends(backends)

    def _addresses(self, spec: ServiceProxySpec) -> set[Address]:
        assert spec.cluster_ip is not None
        wanted = {(spec.cluster_ip, spec.port)}
        if spec.node_port and self.node_ip:
            wanted.add((self.node_ip, spec.node_port))
        return wanted

    def _stop_unwanted(self, port: _ServicePort) -> None:
        wanted = self._addresses(port.spec)
        gone = [address for address in port.listeners if address not in wanted]
        self._drain(port.listeners.pop(address) for address in gone)

    async def _start_missing(self, key: ServicePortKey, port: _ServicePort) -> None:
        for host, number in sorted(self._addresses(port.spec) - port.listeners.keys()):
            listener = Listener(host, number, port.balancer, name=_describe(key),
                                connect_timeout=self.connect_timeout,
                                max_attempts=self.max_attempts)
            try:
                await listener.start()
            except OSError as err:
                log.warning("proxy cannot listen service=%s address=%s:%d error=%s",
                            _describe(key), host, number, err)
                continue
            port.listeners[(host, number)] = listener

    def _drain(self, listeners: Iterable[Listener]) -> None:
        for listener in listeners:
            listener.stop_accepting()
            self._draining.append(listener)
