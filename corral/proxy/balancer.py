"""Choosing a backend for each new connection of one Service port.

A `Balancer` holds the ready backends, how many proxied connections each has
open, and (with ClientIP affinity) which backend each client last used. It never
does I/O: the forwarder asks it for an ordered list of candidates, tries them in
order, and reports each attempt (`opened`), its end (`closed`) and the winner
(`stick`).

Every method is synchronous, so `set_backends` swaps the whole set within one
event-loop step: no connection ever sees half of an update.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from corral.client.clock import Clock, RealClock
from corral.proxy.model import Algorithm, Backend, ClientIPAffinity

Address = tuple[str, int]


class Balancer:
    def __init__(self, algorithm: Algorithm = Algorithm.ROUND_ROBIN,
                 affinity: ClientIPAffinity | None = None,
                 clock: Clock | None = None) -> None:
        self.algorithm = algorithm
        self.affinity = affinity
        self._clock = clock or RealClock()
        self._backends: list[Address] = []
        self._next = 0  # round-robin cursor into _backends
        # Open connections per backend address, kept for addresses that left the
        # set too, so a returning backend's in-flight connections still count.
        self._open: dict[Address, int] = {}
        # client ip -> (backend, last use); oldest use first, so expiry pops the front.
        self._sticky: OrderedDict[str, tuple[Address, float]] = OrderedDict()

    # -- configuration ------------------------------------------------------

    def configure(self, algorithm: Algorithm, affinity: ClientIPAffinity | None) -> None:
        if affinity != self.affinity:
            self._sticky.clear()
        self.algorithm = algorithm
        self.affinity = affinity

    def set_backends(self, backends: Iterable[Backend]) -> None:
        """Replace the set with the ready ones of `backends` (order kept, no duplicates)."""
        ready = list(dict.fromkeys(b.address for b in backends if b.ready))
        if ready != self._backends:
            self._backends = ready
            self._next = self._next % len(ready) if ready else 0

    @property
    def backends(self) -> list[Address]:
        return list(self._backends)

    def open_connections(self, address: Address) -> int:
        return self._open.get(address, 0)

    # -- per connection -----------------------------------------------------

    def candidates(self, client_ip: str) -> list[Address]:
        """Every ready backend, best first: the sticky one, then by the algorithm."""
        order = self._by_algorithm()
        sticky = self._sticky_backend(client_ip)
        if sticky is not None and sticky in order:
            order.remove(sticky)
            order.insert(0, sticky)
        return order

    def opened(self, address: Address) -> None:
        """A connection to `address` is being made (counted until `closed`).

        Counted from the connect attempt, not its success, so a burst of clients
        arriving together does not all pick the same least-loaded backend.
        """
        self._open[address] = self._open.get(address, 0) + 1

    def closed(self, address: Address) -> None:
        left = self._open.get(address, 0) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)

    def stick(self, client_ip: str, address: Address) -> None:
        """`client_ip` reached `address`: with ClientIP affinity it comes back here."""
        if self.affinity is not None:
            self._sticky[client_ip] = (address, self._clock.monotonic())
            self._sticky.move_to_end(client_ip)

    # -- internals ----------------------------------------------------------

    def _by_algorithm(self) -> list[Address]:
        if not self._backends:
            return []
        start = self._next
        self._next = (self._next + 1) % len(self._backends)
        rotated = self._backends[start:] + self._backends[:start]
        if self.algorithm is Algorithm.LEAST_CONNECTIONS:
            # sorted() is stable: ties keep round-robin order, so idle backends share.
            rotated.sort(key=self.open_connections)
        return rotated

    def _sticky_backend(self, client_ip: str) -> Address | None:
        if self.affinity is None:
            return None
        self._expire_sticky()
        entry = self._sticky.get(client_ip)
        return entry[0] if entry is not None else None

    def _expire_sticky(self) -> None:
        assert self.affinity is not None
        oldest_kept = self._clock.monotonic() - self.affinity.timeout_seconds
        while self._sticky:
            client, (_, used) = next(iter(self._sticky.items()))
            if used > oldest_kept:
                break
            del self._sticky[client]
