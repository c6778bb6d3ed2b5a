"""What each node can offer frameworks, read the way the scheduler reads the cluster.

    Node informer ───────────────────► ClusterSnapshot (corral/scheduler/snapshot.py:
    Pod informer (bound, running) ───►   the scheduler's own accounting — requests,
    Alloc informer (bound, running) ─►   pod slots, host ports — of every pod and
        as pod views                      Alloc view on each node)
                                                │
                     free(node) = allocatable − what Pods and non-framework Allocs hold
                                  (Allocs owned by a Framework are the allocator's to
                                  count: it subtracts them from track_used)
                     ports      = the framework port range − host ports in use

A node offers nothing unless it is Ready, not cordoned, free of NoSchedule and
NoExecute taints (an Alloc placed by offer carries no tolerations), and has a
pod slot left for one more Alloc.

The snapshot is also what the endpoint reserves Allocs against through the
scheduler's ledger (corral/scheduler/ledger.py): ``snapshot``, ``lookup`` and
``assume`` are the seam for ``Reservations``.

Framework tasks take their ports from ``FRAMEWORK_PORTS``, disjoint from the range
the agent hands pods (20000-29999, corral/agent/runtime/ports.py), below the
NodePort range and Linux's ephemeral ports: a task and a pod never collide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from corral.api.alloc_view import pod_view
from corral.client.http import Client
from corral.client.informer import Informer, key_of
from corral.objects import Obj, meta, name_of, spec
from corral.offers.resources import PortRanges, Resources, subtract_ports
from corral.scheduler.loop import BOUND_SELECTOR, node_facts
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot, NodeInfo

FRAMEWORK_KIND = "Framework"
FRAMEWORK_PORTS = (10000, 19999)


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def framework_owned(obj: Obj) -> bool:
    """Whether an Alloc (or its pod view) belongs to a Mesos framework."""
    return any(ref.get("kind") == FRAMEWORK_KIND for ref in meta(obj).get("ownerReferences") or ())


def offerable(node: NodeInfo) -> bool:
    """Ready, schedulable, untainted for Allocs, and a pod slot left."""
    return (node.ready == "True" and not node.unschedulable and not node.blocking_taints
            and node.pod_count < node.alloc_pods)


@dataclass(frozen=True, slots=True)
class Held:
    """What framework Allocs hold on one node, in the scheduler's units."""

    cpu: int = 0  # millicores
    memory: int = 0  # bytes
    ephemeral: int = 0  # bytes

    def plus(self, req: PodRequirements) -> Held:
        return Held(self.cpu + req.cpu, self.memory + req.memory, self.ephemeral + req.ephemeral)


_NONE_HELD = Held()


def free_ports(node: NodeInfo, port_range: tuple[int, int]) -> PortRanges:
    """The range less every host port held on the node (any protocol or address:
    Mesos' ports carry neither)."""
    low, high = port_range
    used = tuple((p.port, p.port) for p in node.ports if low <= p.port <= high)
    return subtract_ports(((low, high),), Resources(ports=used).ports)


def node_free(node: NodeInfo, framework: Held, port_range: tuple[int, int]) -> Resources | None:
    """What frameworks may use on ``node``: None when it offers nothing."""
    if not offerable(node):
        return None
    return Resources.from_quantities(
        max(node.alloc_cpu - node.cpu + framework.cpu, 0),
        max(node.alloc_memory - node.memory + framework.memory, 0),
        max(node.alloc_ephemeral - node.ephemeral + framework.ephemeral, 0),
        free_ports(node, port_range))


def node_total(node: NodeInfo, port_range: tuple[int, int]) -> Resources:
    return Resources.from_quantities(node.alloc_cpu, node.alloc_memory, node.alloc_ephemeral,
                                     (port_range,))


class Capacity:
    """Informers into a ClusterSnapshot, and each node's free part for frameworks.
    ``add_listener`` callbacks run (synchronously) after every change, so an
    allocation loop can offer freed resources without waiting for its interval."""

    def __init__(self, client: Client, *,
                 port_range: tuple[int, int] = FRAMEWORK_PORTS) -> None:
        self.port_range = port_range
        self.snapshot = ClusterSnapshot()
        self.nodes = Informer(client, "Node")
        self.pods = Informer(client, "Pod", field_selector=BOUND_SELECTOR)
        self.allocs = Informer(client, "Alloc", field_selector=BOUND_SELECTOR)
        self._framework: dict[str, tuple[str, PodRequirements]] = {}  # view key → node, req
        self._versions: dict[str, int] = {}  # Alloc key → resourceVersion assumed
        self._listeners: list[Callable[[], None]] = []
        # node → (its generation, what frameworks held, free, total) when last asked
        self._by_node: dict[str, tuple[int, Held, Resources | None, Resources | None]] = {}
        # Told each bound pod or Alloc view's key as the informers show it (the
        # ledger's stand-ins for it can go).
        self.on_pod: Callable[[str], None] = lambda key: None
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._bound, self._bound_updated, self._unbound)
        self.allocs.add_handler(self._alloc, self._alloc_updated, self._alloc_gone)
        self.pods.add_index("node", lambda p: [spec(p).get("nodeName") or ""])
        self.allocs.add_index("node", lambda a: [spec(a).get("nodeName") or ""])

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    async def start(self, timeout: float | None = None) -> None:
        """Start the informers and wait until each has listed."""
        informers = (self.nodes, self.pods, self.allocs)
        for informer in informers:
            informer.start()
        for informer in informers:
            await informer.wait_synced(timeout)

    async def stop(self) -> None:
        for informer in (self.nodes, self.pods, self.allocs):
            await informer.stop()

    # -- what the allocator reads ------------------------------------------------

    def free(self) -> dict[str, Resources]:
        """Offerable node → what frameworks may use there (allocator's ``free``)."""
        held = self._framework_held()
        out: dict[str, Resources] = {}
        for node in self.snapshot.nodes:
            free = self._node(node, held.get(node.name, _NONE_HELD))[0]
            if free is not None:
                out[node.name] = free
        return out

    def totals(self) -> dict[str, Resources]:
        """Offerable node → its allocatable (the allocator's DRF denominator)."""
        out: dict[str, Resources] = {}
        for node in self.snapshot.nodes:
            total = self._node(node, _NONE_HELD, held_too=False)[1]
            if total is not None:
                out[node.name] = total
        return out

    def _node(self, node: NodeInfo, held: Held, *, held_too: bool = True
              ) -> tuple[Resources | None, Resources | None]:
        """The node's (free, total), each None when it offers nothing: worked out
        again only when the node changed (the snapshot gives each change of a node
        a generation never used before) or, for free, what frameworks hold there.
        The offer cycle asks at every allocation round, up to one per ended task."""
        known = self._by_node.get(node.name)
        if known is not None and known[0] == node.generation and (
                not held_too or known[1] == held):
            return known[2], known[3]
        free = node_free(node, held, self.port_range)
        total = node_total(node, self.port_range) if offerable(node) else None
        if len(self._by_node) > 2 * len(self.snapshot.nodes) + 16:
            self._by_node.clear()  # nodes that went
        self._by_node[node.name] = (node.generation, held, free, total)
        return free, total

    def _framework_held(self) -> dict[str, Held]:
        held: dict[str, Held] = {}
        for key, (node, req) in self._framework.items():
            placed = self.snapshot.pod(key)
            if placed is not None and placed.node_name == node:
                held[node] = held.get(node, Held()).plus(req)
        return held

    # -- the ledger's seam ---------------------------------------------------------

    def lookup(self, key: str) -> tuple[PodRequirements, str] | None:
        """A bound pod or Alloc view by key, as ``Reservations`` asks for it."""
        placed = self.snapshot.pod(key)
        return (placed.req, placed.node_name) if placed is not None else None

    def assume(self, alloc: Obj, node: str) -> PodRequirements:
        """Count an Alloc on ``node`` before the informer shows it bound (what the
        scheduler does before reserving); returns its requirements for the ledger."""
        view = pod_view(alloc)
        view["spec"]["nodeName"] = node
        if _rv(alloc):
            self._versions[key_of(alloc)] = _rv(alloc)
        self._account(view)
        return pod_requirements(view)

    def forget(self, alloc: Obj) -> None:
        """Undo ``assume`` (its reservation or creation failed)."""
        key = key_of(pod_view(alloc))
        self.snapshot.remove_pod(key)
        self._framework.pop(key, None)

    # -- informer handlers -------------------------------------------------------------

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    def _node_added(self, node: Obj) -> None:
        self.snapshot.add_node(node)
        name = name_of(node)
        for pod in self.pods.by_index("node", name):
            self._account(pod)
        for alloc in self.allocs.by_index("node", name):
            self._account(pod_view(alloc))
        self._changed()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_facts(old) != node_facts(new):
            self.snapshot.update_node(new)
            self._changed()

    def _node_deleted(self, node: Obj) -> None:
        self.snapshot.remove_node(name_of(node))
        self._changed()

    def _bound(self, pod: Obj) -> None:
        self._account(pod)
        self._changed()

    def _bound_updated(self, old: Obj, new: Obj) -> None:
        if old.get("spec") != new.get("spec"):
            self._bound(new)

    def _unbound(self, pod: Obj) -> None:
        self._remove(pod)
        self._changed()

    def _alloc(self, alloc: Obj) -> None:
        if not self._stale(alloc):
            self._bound(pod_view(alloc))

    def _alloc_updated(self, old: Obj, new: Obj) -> None:
        if not self._stale(new):
            self._bound_updated(pod_view(old), pod_view(new))

    def _stale(self, alloc: Obj) -> bool:
        """An event older than what ``assume`` already counts (a framework Alloc
        the master itself just resized): the snapshot keeps the newer size."""
        key = key_of(alloc)
        seen = self._versions.get(key)
        if seen is None:
            return False
        if _rv(alloc) < seen:
            return True
        del self._versions[key]  # the informer has caught up
        return False

    def _alloc_gone(self, alloc: Obj) -> None:
        self._unbound(pod_view(alloc))

    def _account(self, pod: Obj) -> None:
        node = spec(pod).get("nodeName") or ""
        if self.snapshot.node(node) is None:
            return  # counted when its node is added
        info = self.snapshot.add_pod(pod)
        self.on_pod(info.key)
        if framework_owned(pod):
            self._framework[info.key] = (node, info.req)
        else:
            self._framework.pop(info.key, None)

    def _remove(self, pod: Obj) -> None:
        key = key_of(pod)
        self.on_pod(key)
        placed = self.snapshot.pod(key)
        if placed is not None and placed.node_name == spec(pod).get("nodeName"):
            self.snapshot.remove_pod(key)
            self._framework.pop(key, None)

