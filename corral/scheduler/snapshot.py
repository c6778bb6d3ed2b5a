"""The scheduler's view of the cluster: nodes, the pods bound to them, and what
each node has left — kept current incrementally as the loop sees changes.

Every change to a node (a pod added or removed, the node updated) gives it a
new ``generation`` from one snapshot-wide counter, so a generation is never
reused: the equivalence cache can key verdicts by (node index, generation).
``changes`` journals the node indexes touched, which lets a class that fit
nowhere re-check only the nodes that changed since.

With ``incremental=False`` (a benchmark baseline) the snapshot does not keep
per-node totals; ``NodeInfo.recount`` recomputes them from the node's pods.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from corral.objects import name_of
from corral.scheduler.requirements import (
    CPU,
    EPHEMERAL,
    HOSTNAME_KEY,
    MEMORY,
    PODS,
    HostPort,
    PodAffinityTerm,
    PodRequirements,
    Taint,
    pod_requirements,
    quantity_amount,
    taint_of,
)

BLOCK_SIZE = 64  # nodes per block: the unit the core samples and bounds scores by
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")

PodLike = Mapping[str, Any] | PodRequirements


class PodInfo:
    """A pod bound (or assumed bound) to a node."""

    __slots__ = ("node_name", "req")

    def __init__(self, req: PodRequirements, node_name: str) -> None:
        self.req = req
        self.node_name = node_name

    @property
    def key(self) -> str:
        return self.req.key

    @property
    def priority(self) -> int:
        return self.req.priority


class NodeInfo:
    """A node's static facts (labels, taints, allocatable) and running totals."""

    __slots__ = (
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_extended",
        "alloc_memory",
        "alloc_pods",
        "anti_affinity_pods",
        "blocking_taints",
        "cpu",
        "ephemeral",
        "extended",
        "generation",
        "index",
        "labels",
        "memory",
        "name",
        "owner_counts",
        "pod_count",
        "pods",
        "ports",
        "prefer_taints",
        "ready",
        "score_cpu",
        "score_memory",
        "spec_generation",
        "unschedulable",
        "wildcard_ports",
    )

    def __init__(self, node: Mapping[str, Any]) -> None:
        self.pods: dict[str, PodInfo] = {}
        self.generation = 0
        self.spec_generation = 0  # changes only when the Node object itself changes
        self.index = -1
        self.set_node(node)
        self._zero()

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Take the node object's static facts; running totals are kept."""
        meta: Mapping[str, Any] = node.get("metadata") or {}
        spec: Mapping[str, Any] = node.get("spec") or {}
        status: Mapping[str, Any] = node.get("status") or {}
        self.name: str = meta.get("name") or ""
        self.labels: dict[str, str] = dict(meta.get("labels") or {})
        self.labels.setdefault(HOSTNAME_KEY, self.name)
        self.unschedulable = bool(spec.get("unschedulable"))
        self.ready = _ready_status(status)
        taints = [taint_of(t) for t in spec.get("taints") or ()] + self._implied_taints(spec)
        self.blocking_taints = tuple(t for t in taints if t.effect in BLOCKING_EFFECTS)
        self.prefer_taints = tuple(t for t in taints if t.effect == "PreferNoSchedule")
        self._set_allocatable(status.get("allocatable") or status.get("capacity") or {})

    def _implied_taints(self, spec: Mapping[str, Any]) -> list[Taint]:
        # What the node lifecycle controller would add: a node whose Ready
        # condition is not True is tainted, so pods that tolerate it may still land.
        if self.ready == "True":
            return []
        key = UNREACHABLE_TAINT if self.ready == "Unknown" else NOT_READY_TAINT
        if any(t.get("key") == key for t in spec.get("taints") or ()):
            return []
        return [Taint(key, "", "NoSchedule")]

    def _set_allocatable(self, allocatable: Mapping[str, Any]) -> None:
        amounts = {name: quantity_amount(name, q, 0) for name, q in allocatable.items()}
        self.alloc_cpu = amounts.pop(CPU, 0)
        self.alloc_memory = amounts.pop(MEMORY, 0)
        self.alloc_ephemeral = amounts.pop(EPHEMERAL, 0)
        self.alloc_pods = amounts.pop(PODS, 0)
        self.alloc_extended = amounts

    def _zero(self) -> None:
        self.cpu = self.memory = self.ephemeral = self.pod_count = 0
        self.score_cpu = self.score_memory = 0
        self.extended: dict[str, int] = {}
        self.ports: dict[HostPort, int] = {}
        self.wildcard_ports: dict[tuple[str, int], int] = {}  # (protocol, port) in use
        self.owner_counts: dict[str, int] = {}
        self.anti_affinity_pods: list[PodInfo] = []

    def account(self, pod: PodInfo, sign: int) -> None:
        """Add (sign=1) or subtract (sign=-1) one pod's usage."""
        req = pod.req
        self.cpu += sign * req.cpu
        self.memory += sign * req.memory
        self.ephemeral += sign * req.ephemeral
        self.pod_count += sign
        self.score_cpu += sign * req.score_cpu
        self.score_memory += sign * req.score_memory
        for name, amount in req.extended:
            self.extended[name] = self.extended.get(name, 0) + sign * amount
        for port in req.host_ports:
            _bump(self.ports, port, sign)
            _bump(self.wildcard_ports, (port.protocol, port.port), sign)
        if req.owner_uid:
            _bump(self.owner_counts, req.owner_uid, sign)
        if req.anti_affinity:
            if sign > 0:
                self.anti_affinity_pods.append(pod)
            else:
                self.anti_affinity_pods.remove(pod)

    def recount(self) -> None:
        """Recompute every running total from the pods (the non-incremental way)."""
        self._zero()
        for pod in self.pods.values():
            self.account(pod, 1)

    def clone(self) -> NodeInfo:
        """A copy with its own pod set and totals, for what-if checks (preemption)."""
        copy = object.__new__(NodeInfo)
        for slot in NodeInfo.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.pods = dict(self.pods)
        copy.recount()
        return copy

    def without(self, victims: list[PodInfo]) -> NodeInfo:
        copy = self.clone()
        for victim in victims:
            del copy.pods[victim.key]
            copy.account(victim, -1)
        return copy

    @property
    def anti_affinity_terms(self) -> Iterator[tuple[PodInfo, PodAffinityTerm]]:
        for pod in self.anti_affinity_pods:
            for term in pod.req.anti_affinity:
                yield pod, term


def _bump(counts: dict[Any, int], key: Any, sign: int) -> None:
    value = counts.get(key, 0) + sign
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


def _ready_status(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("status") or "Unknown")
    return "Unknown"


class ClusterSnapshot:
    """Nodes by name and by dense index, plus the pods bound to them."""

    def __init__(self, incremental: bool = True) -> None:
        self.incremental = incremental
        self.nodes: list[NodeInfo] = []
        self.generations: list[int] = []  # parallel to nodes: the hot loop reads this
        self.block_versions: list[int] = []  # newest generation in each block of nodes
        self.block_spec_versions: list[int] = []  # newest spec generation in each block
        self.min_alloc_cpu = self.min_alloc_memory = 0  # smallest seen (score bounds)
        self.changes: list[int] = []  # journal of node indexes, see module docstring
        self.changes_base = 0  # journal position of changes[0] after trimming
        self.anti_affinity_pod_count = 0
        self._by_name: dict[str, NodeInfo] = {}
        self._pod_nodes: dict[str, str] = {}  # pod key → node name
        self._counter = itertools.count(1)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def pod(self, key: str) -> PodInfo | None:
        node = self._by_name.get(self._pod_nodes.get(key, ""))
        return node.pods.get(key) if node else None

    @property
    def version(self) -> int:
        """Journal position: changes since a version are changes[version-base:]."""
        return self.changes_base + len(self.changes)

    def add_node(self, node: Mapping[str, Any]) -> NodeInfo:
        info = NodeInfo(node)
        if info.name in self._by_name:
            return self.update_node(node)
        info.index = len(self.nodes)
        self.nodes.append(info)
        self.generations.append(0)
        self._by_name[info.name] = info
        self._touch(info, spec=True)
        return info

    def update_node(self, node: Mapping[str, Any]) -> NodeInfo:
        name = name_of(node)
        info = self._by_name.get(name)
        if info is None:
            return self.add_node(node)
        info.set_node(node)
        self._touch(info, spec=True)
        return info

    def remove_node(self, name: str) -> None:
        """Forget a node and its pods. The last node moves into its slot and,
        with a fresh generation, no cached verdict of either index survives."""
        info = self._by_name.pop(name, None)
        if info is None:
            return
        for key in info.pods:
            self._pod_nodes.pop(key, None)
        self.anti_affinity_pod_count -= len(info.anti_affinity_pods)
        last = self.nodes.pop()
        self.generations.pop()
        vacated_block = len(self.nodes) // BLOCK_SIZE
        if last is not info:
            last.index = info.index
            self.nodes[info.index] = last
            self._touch(last, spec=True)
        del self.block_versions[self.block_count():]
        del self.block_spec_versions[self.block_count():]
        if vacated_block < len(self.block_versions):  # the block lost its last node
            version = next(self._counter)
            self.block_versions[vacated_block] = version
            self.block_spec_versions[vacated_block] = version
        self.changes.append(info.index)

    def add_pod(self, pod: PodLike, node_name: str | None = None) -> PodInfo:
        """Account a pod on its node (``spec.nodeName`` unless given). Adding a pod
        that is already known moves it (a re-add replaces the old entry)."""
        req = pod if isinstance(pod, PodRequirements) else pod_requirements(pod)
        target = node_name or req.node_name
        node = self._by_name.get(target)
        if node is None:
            raise KeyError(f"node {target!r} is not in the snapshot")
        if req.key in self._pod_nodes:
            self.remove_pod(req.key)
        info = PodInfo(req, target)
        node.pods[req.key] = info
        self._pod_nodes[req.key] = target
        if self.incremental:
            node.account(info, 1)
        self.anti_affinity_pod_count += bool(req.anti_affinity)
        self._touch(node)
        return info

    def remove_pod(self, key: str) -> PodInfo | None:
        """Forget the pod "namespace/name"; None when it was not bound here."""
        node = self._by_name.get(self._pod_nodes.pop(key, ""))
        if node is None:
            return None
        info = node.pods.pop(key)
        if self.incremental:
            node.account(info, -1)
        self.anti_affinity_pod_count -= bool(info.req.anti_affinity)
        self._touch(node)
        return info

    def _note_allocatable(self, node: NodeInfo) -> None:
        if node.alloc_cpu > 0:
            self.min_alloc_cpu = min(self.min_alloc_cpu or node.alloc_cpu, node.alloc_cpu)
        if node.alloc_memory > 0:
            self.min_alloc_memory = min(self.min_alloc_memory or node.alloc_memory,
                                        node.alloc_memory)

    def all_pods(self) -> Iterator[PodInfo]:
        for node in self.nodes:
            yield from node.pods.values()

    def block_count(self) -> int:
        return (len(self.nodes) + BLOCK_SIZE - 1) // BLOCK_SIZE

    def block_range(self, block: int) -> range:
        start = block * BLOCK_SIZE
        return range(start, min(start + BLOCK_SIZE, len(self.nodes)))

    def _touch(self, node: NodeInfo, spec: bool = False) -> None:
        node.generation = next(self._counter)
        self.generations[node.index] = node.generation
        block = node.index // BLOCK_SIZE
        if block == len(self.block_versions):
            self.block_versions.append(0)
            self.block_spec_versions.append(0)
        self.block_versions[block] = node.generation
        if spec:
            node.spec_generation = node.generation
            self.block_spec_versions[block] = node.generation
            self._note_allocatable(node)
        self.changes.append(node.index)
        if len(self.changes) > 4 * len(self.nodes) + 4096:
            half = len(self.changes) // 2
            del self.changes[:half]
            self.changes_base += half
