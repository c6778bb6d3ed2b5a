"""What the proxy is told: plain descriptions of Service ports and their backends.

The API-facing side (Service and Endpoints watches) turns Kubernetes objects into
these; the data plane (`table.ProxyTable`, `dns.DnsServer`) only ever sees them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds (3 hours).
DEFAULT_AFFINITY_TIMEOUT = 10800.0


class Algorithm(enum.StrEnum):
    """How a new connection picks among the ready backends."""

    ROUND_ROBIN = "round-robin"  # each new connection goes to the next backend in turn
    LEAST_CONNECTIONS = "least-connections"  # the backend with fewest open connections


@dataclass(frozen=True)
class ServicePortKey:
    """One port of one Service; `port_name` is "" for an unnamed single port."""

    namespace: str
    service: str
    port_name: str = ""


@dataclass(frozen=True)
class Backend:
    """One endpoint address of a Service port: where the pod really listens."""

    ip: str
    port: int
    ready: bool = True

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)


@dataclass(frozen=True)
class ClientIPAffinity:
    """sessionAffinity: ClientIP — a client keeps its backend until idle this long."""

    timeout_seconds: float = DEFAULT_AFFINITY_TIMEOUT


@dataclass(frozen=True)
class ServiceProxySpec:
    """How one Service port is exposed on a node.

    `cluster_ip` None means headless: nothing is proxied, DNS answers instead.
    """

    cluster_ip: str | None
    port: int
    protocol: str = "TCP"
    node_port: int | None = None
    session_affinity: ClientIPAffinity | None = None
    algorithm: Algorithm = Algorithm.ROUND_ROBIN

    @property
    def headless(self) -> bool:
        return self.cluster_ip in (None, "", "None")


@dataclass(frozen=True)
class ServiceDnsRecord:
    """What DNS knows of one Service: its clusterIP, or (headless) its ready IPs
    and the pods among them that have a hostname under it (hostname, IP)."""

    namespace: str
    name: str
    cluster_ip: str | None
    ready_ips: tuple[str, ...] = field(default=())
    hosts: tuple[tuple[str, str], ...] = field(default=())

    @property
    def headless(self) -> bool:
        return self.cluster_ip in (None, "", "None")

    @property
    def addresses(self) -> tuple[str, ...]:
        if self.headless:
            return self.ready_ips
        assert self.cluster_ip is not None
        return (self.cluster_ip,)
