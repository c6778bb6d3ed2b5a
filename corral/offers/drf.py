"""Dominant shares, kept as plain numbers (Mesos' DRFSorter): the allocator asks
for them once per candidate per node, so they are summed once per round and then
updated as offers are made, never recomputed from Resources.

A client is a (framework, role) pair; a role's holding is the sum of its
clients'. The dominant share is the largest fraction of the cluster's total cpus,
mem or disk held; ports do not count (Mesos sorts on scalars only).
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.offers.resources import Resources

Vector = tuple[float, float, float]  # cpus, mem, disk
Client = tuple[str, str]  # (framework id, role)
ZERO: Vector = (0.0, 0.0, 0.0)


def vector(resources: Resources) -> Vector:
    return (resources.cpus, resources.mem, resources.disk)


def _plus(a: Vector, b: Vector) -> Vector:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


class Sorter:
    def __init__(self, total: Resources, holdings: Iterable[tuple[Client, Resources]] = ()
                 ) -> None:
        # 1/total per scalar, 0 where the cluster has none (that scalar never dominates).
        self._inverse = tuple(1.0 / t if t > 0 else 0.0 for t in vector(total))
        self._clients: dict[Client, Vector] = {}
        self._roles: dict[str, Vector] = {}
        for client, resources in holdings:
            self.add(client, resources)

    def add(self, client: Client, resources: Resources) -> None:
        amount = vector(resources)
        self._clients[client] = _plus(self._clients.get(client, ZERO), amount)
        self._roles[client[1]] = _plus(self._roles.get(client[1], ZERO), amount)

    def _share(self, held: Vector) -> float:
        inv = self._inverse
        return max(held[0] * inv[0], held[1] * inv[1], held[2] * inv[2])

    def client_share(self, client: Client) -> float:
        return self._share(self._clients.get(client, ZERO))

    def role_share(self, role: str) -> float:
        return self._share(self._roles.get(role, ZERO))

    def framework_share(self, framework_id: str) -> float:
        held = ZERO
        for (fid, _), amount in self._clients.items():
            if fid == framework_id:
                held = _plus(held, amount)
        return self._share(held)

    def roles(self) -> list[str]:
        return list(self._roles)
