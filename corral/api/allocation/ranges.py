"""The ranges Services draw from: cluster IPs from a CIDR inside 127.0.0.0/8 (every
address of it is local on Linux, so each node can listen on a Service's own
address) and node ports from a port range (Kubernetes' 30000-32767)."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_SERVICE_CIDR = "127.100.0.0/16"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class RangeError(ValueError):
    """A --service-cidr or --service-node-port-range the master cannot use."""


@dataclass(frozen=True)
class IpRange:
    network: ipaddress.IPv4Network

    @classmethod
    def parse(cls, cidr: str) -> IpRange:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as err:
            raise RangeError(f"service CIDR {cidr!r}: {err}") from None
        if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(_LOOPBACK):
            raise RangeError(f"service CIDR {cidr!r} must lie inside 127.0.0.0/8")
        if network.num_addresses < 4:
            raise RangeError(f"service CIDR {cidr!r} is too small")
        return cls(network)

    def __str__(self) -> str:
        return str(self.network)

    @property
    def size(self) -> int:
        """Usable addresses: the network and broadcast addresses are never handed out."""
        return self.network.num_addresses - 2

    def contains(self, value: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(value)
        except ValueError:
            return False
        return ip in self.network and ip not in (self.network.network_address,
                                                 self.network.broadcast_address)

    def random_values(self, count: int) -> Iterator[str]:
        base = int(self.network.network_address) + 1
        for offset in random.sample(range(self.size), min(count, self.size)):
            yield str(ipaddress.IPv4Address(base + offset))

    def all_values(self) -> Iterator[str]:
        return (str(ip) for ip in self.network.hosts())


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        low, sep, high = text.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise RangeError(f"node port range {text!r}: want LOW-HIGH, e.g. 30000-32767") \
                from None
        if not 1 <= first <= last <= 65535:
            raise RangeError(f"node port range {text!r} must lie within 1-65535, low first")
        return cls(first, last)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def contains(self, value: str) -> bool:
        return value.isdigit() and self.low <= int(value) <= self.high

    def random_values(self, count: int) -> Iterator[str]:
        for port in random.sample(range(self.low, self.high + 1), min(count, self.size)):
            yield str(port)

    def all_values(self) -> Iterator[str]:
        return (str(port) for port in range(self.low, self.high + 1))
