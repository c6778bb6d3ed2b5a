"""Per-node reservations, so that schedulers racing each other never over-commit.

A binding is a compare-and-swap on the *pod*: it stops two schedulers from
placing one pod twice, but not from filling one node twice over — each decides
on its own, slightly stale, view of the node. So before binding, a scheduler
reserves the pod on the node, with a compare-and-swap on that node's ledger
(ConfigMap kube-system/corral-sched-<node>, one entry per reservation, owned by
the Node so that it goes when the node does):

    decide on the snapshot (the pod assumed on the node)
      └─► write the ledger at the resourceVersion we last saw, with our pod added
            Conflict ─► read it ─► reservations we did not know of become
                        stand-ins on the node in our snapshot ("phantoms") ─►
                        does our pod still fit? no: refused, the loop re-queues it
            ok ────────► bind

Every reservation on a node goes through one ledger, so the scheduler that
writes version v+1 has seen every reservation of versions ≤ v: together with the
pods its informer shows bound there, nothing placed on the node escapes it.
An entry records the size it reserved ("<uid> <cpu m>:<memory>:<ephemeral>
<expiry>"): an Alloc that grows in place (a Mesos framework's, corral/offers/)
reserves again at its new size, is checked again, and a reader that still sees
it at its old size keeps room for the difference.
Entries expire after ``ENTRY_TTL`` seconds (by then every informer shows the
pod bound); a phantom leaves the snapshot when the real pod shows up bound, is
deleted, or its entry expires. Reservations wanted on one node while a write is
in flight go out together in the next write, which also keeps a lone scheduler
at one ledger write per node per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from corral.api.alloc_view import alloc_name, is_alloc_key, pod_view
from corral.api.errors import AlreadyExists, APIError, Conflict, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, meta, spec
from corral.scheduler.filters import dynamic_failures
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot

log = logging.getLogger("corral.scheduler")

LEDGER_NAMESPACE = "kube-system"
LEDGER_LABEL = "corral.dev/scheduler-ledger"
ENTRY_TTL = 30.0
WRITE_ATTEMPTS = 8
PHANTOM_MARK = "@"  # phantom key: "namespace/name@node"

# The loop's view of a pod by key: its requirements and the node it is bound
# to ("" while pending), or None when the pod is not known.
PodLookup = Callable[[str], tuple[PodRequirements, str] | None]


def ledger_name(node: str) -> str:
    name = f"corral-sched-{node}"
    if len(name) <= 253:
        return name
    return f"corral-sched-{hashlib.sha256(node.encode()).hexdigest()[:32]}"


def entry_key(pod_key: str) -> str:
    # ConfigMap keys allow [-._a-zA-Z0-9]; namespaces never contain a dot.
    return pod_key.replace("/", ".", 1)


def pod_key_of(key: str) -> str:
    return key.replace(".", "/", 1)


@dataclass
class Ledger:
    resource_version: str  # "" when the ConfigMap does not exist
    entries: dict[str, str]  # entry key → "<uid> <expiry, unix seconds>"


@dataclass
class _Wanted:
    req: PodRequirements
    done: asyncio.Future[bool]


class Reservations:
    def __init__(self, client: Client, snapshot: ClusterSnapshot, lookup: PodLookup,
                 clock: Clock | None = None, *,
                 own: Callable[[str], bool] = lambda key: False) -> None:
        self.client = client
        # Keys only this writer changes, whose size the snapshot has first-hand
        # (the Mesos master's framework Allocs): never a stand-in for their growth.
        self.own = own
        self.clock = clock or RealClock()  # wall time: entries are shared between schedulers
        self.snapshot = snapshot
        self.lookup = lookup
        self._ledgers: dict[str, Ledger] = {}  # our last known version of each node's
        self._pending: dict[str, list[_Wanted]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._phantoms: dict[str, tuple[str, float]] = {}  # phantom key → (node, expiry)

    async def reserve(self, node: str, req: PodRequirements) -> bool:
        """Record ``req`` (assumed on ``node`` in the snapshot) in the node's ledger;
        False when, with every reservation known, it no longer fits there."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(node, []).append(_Wanted(req, done))
        if node not in self._writers:
            self._writers[node] = asyncio.create_task(self._write_all(node),
                                                      name=f"ledger-{node}")
        return await done

    async def close(self) -> None:
        writers = list(self._writers.values())
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        for wanted in [w for ws in self._pending.values() for w in ws]:
            if not wanted.done.done():
                wanted.done.set_result(False)

    # -- phantoms -------------------------------------------------------------

    def forget_phantoms(self, pod_key: str) -> None:
        """The real pod showed up bound (or was deleted): its stand-ins go."""
        prefix = pod_key + PHANTOM_MARK
        for key in [k for k in self._phantoms if k.startswith(prefix)]:
            self._drop_phantom(key)

    def expire_phantoms(self) -> None:
        now = self.clock.now().timestamp()
        for key in [k for k, (_, expiry) in self._phantoms.items() if expiry < now]:
            self._drop_phantom(key)

    def _drop_phantom(self, key: str) -> None:
        self._phantoms.pop(key, None)
        self.snapshot.remove_pod(key)

    # -- writing ----------------------------------------------------------------

    async def _write_all(self, node: str) -> None:
        try:
            while self._pending.get(node):
                batch = self._pending.pop(node)
                try:
                    await self._commit(node, batch)
                except (APIError, ServerUnreachable) as err:
                    log.warning("ledger write failed node=%s error=%r", node, err)
                    self._ledgers.pop(node, None)
                    _settle(batch, False)
        finally:
            self._writers.pop(node, None)

    async def _commit(self, node: str, batch: list[_Wanted]) -> None:
        for _ in range(WRITE_ATTEMPTS):
            ledger = self._ledgers.get(node) or await self._read(node)
            await self._absorb(node, ledger)
            accepted = self._still_fitting(node, batch, ledger)
            expiry = self.clock.now().timestamp() + ENTRY_TTL
            entries = self._pruned(node, ledger) | {
                entry_key(w.req.key): f"{w.req.uid} {_size(w.req)} {expiry:.3f}"
                for w in accepted}
            try:
                self._ledgers[node] = await self._write(node, ledger, entries)
            except (Conflict, AlreadyExists, NotFound):
                self._ledgers.pop(node, None)  # someone else wrote: read it, re-check
                continue
            _settle([w for w in batch if w not in accepted], False)
            _settle(accepted, True)
            return
        log.info("ledger contended node=%s pods=%d", node, len(batch))
        _settle(batch, False)

    async def _read(self, node: str) -> Ledger:
        try:
            cm = await self.client.get("ConfigMap", ledger_name(node), LEDGER_NAMESPACE)
        except NotFound:
            return Ledger("", {})
        return Ledger(str(cm["metadata"]["resourceVersion"]), dict(cm.get("data") or {}))

    async def _write(self, node: str, ledger: Ledger, entries: dict[str, str]) -> Ledger:
        meta: Obj = {"name": ledger_name(node), "namespace": LEDGER_NAMESPACE,
                     "labels": {LEDGER_LABEL: "true"}}
        body: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                     "data": entries}
        if ledger.resource_version:
            meta["resourceVersion"] = ledger.resource_version
            written = await self.client.update(body)
        else:
            meta["ownerReferences"] = await self._owned_by_node(node)
            written = await self.client.create(body)
        return Ledger(str(written["metadata"]["resourceVersion"]), entries)

    async def _owned_by_node(self, node: str) -> list[Obj]:
        """The ledger belongs to its Node: deleting the node has the garbage
        collector delete the ledger (a node already gone: no owner)."""
        try:
            uid = (await self.client.get("Node", node))["metadata"]["uid"]
        except NotFound:
            return []
        return [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]

    def _pruned(self, node: str, ledger: Ledger) -> dict[str, str]:
        """The entries still worth keeping: unexpired, and not of a pod we see
        bound to another node (a reservation that lost its race)."""
        now = self.clock.now().timestamp()
        kept: dict[str, str] = {}
        for key, value in ledger.entries.items():
            expiry = _expiry(value)
            known = self.lookup(pod_key_of(key))
            if expiry < now or (known is not None and known[1] not in ("", node)):
                continue
            kept[key] = value
        return kept

    # -- reading others' reservations --------------------------------------------

    async def _absorb(self, node: str, ledger: Ledger) -> None:
        """Put every reservation on ``node`` we do not account yet into the snapshot."""
        now = self.clock.now().timestamp()
        for key, value in ledger.entries.items():
            pod_key, expiry = pod_key_of(key), _expiry(value)
            phantom = f"{pod_key}{PHANTOM_MARK}{node}"
            if expiry < now or phantom in self._phantoms:
                continue
            placed = self.snapshot.pod(pod_key)
            if placed is not None and placed.node_name == node:
                if self.own(pod_key) or _covers(placed.req, value):
                    continue  # bound there, or our own reservation
                # It grew in place beyond what we see of it: keep room for the rest.
                self._add_phantom(phantom, node, expiry, _growth(placed.req, value))
                continue
            known = self.lookup(pod_key) or await self._fetch(pod_key)
            if known is None or known[1] not in ("", node) or self.snapshot.node(node) is None:
                continue  # gone, or bound elsewhere: the reservation is moot
            if known[0].uid and value.split(" ", 1)[0] not in ("", known[0].uid):
                continue  # made for an earlier object of the same name, now gone
            self._add_phantom(phantom, node, expiry, known[0])

    def _add_phantom(self, phantom: str, node: str, expiry: float,
                     req: PodRequirements) -> None:
        self.snapshot.add_pod(replace(req, name=phantom.split("/", 1)[1]), node)
        self._phantoms[phantom] = (node, expiry)

    async def _fetch(self, pod_key: str) -> tuple[PodRequirements, str] | None:
        """A pod another scheduler reserved before our informer showed it to us."""
        namespace, _, name = pod_key.partition("/")
        try:
            if is_alloc_key(pod_key):
                pod = pod_view(await self.client.get("Alloc", alloc_name(name), namespace))
            else:
                pod = await self.client.get("Pod", name, namespace)
        except NotFound:
            return None
        if meta(pod).get("deletionTimestamp"):
            return None  # on its way out (a finalizer holds it): no room to keep for it
        return pod_requirements(pod), spec(pod).get("nodeName") or ""

    def _still_fitting(self, node: str, batch: list[_Wanted],
                       ledger: Ledger) -> list[_Wanted]:
        """Our pods that fit with everything else on the node, in batch order; the
        others leave the snapshot (the loop re-queues them). A pod the ledger holds
        already (reserved by another scheduler, or by our earlier try) is counted
        there whoever binds it, so it stays."""
        info = self.snapshot.node(node)
        if info is None:
            return []
        now = self.clock.now().timestamp()
        ours = [w for w in batch if w.req.key in info.pods]
        held = [w for w in ours
                if _expiry(ledger.entries.get(entry_key(w.req.key), "")) > now
                and _reserved_for(ledger.entries[entry_key(w.req.key)], w.req)]
        fresh = [w for w in ours if w not in held]
        for wanted in fresh:
            self.snapshot.remove_pod(wanted.req.key)
        accepted = list(held)
        for wanted in fresh:
            if not dynamic_failures(wanted.req, info, label_sensitive=True):
                self.snapshot.add_pod(wanted.req, node)
                accepted.append(wanted)
        return accepted


def _expiry(value: str) -> float:
    try:
        return float(value.rsplit(" ", 1)[-1])
    except ValueError:
        return 0.0


def _size(req: PodRequirements) -> str:
    return f"{req.cpu}:{req.memory}:{req.ephemeral}"


def _entry_size(value: str) -> tuple[int, int, int] | None:
    """The size an entry reserved (None: an entry without one)."""
    parts = value.split(" ")
    try:
        cpu, memory, ephemeral = (int(x) for x in parts[1].split(":"))
    except (IndexError, ValueError):
        return None
    return (cpu, memory, ephemeral) if len(parts) == 3 else None


def _covers(req: PodRequirements, value: str) -> bool:
    """Whether ``req`` is at least the size the entry reserved."""
    size = _entry_size(value)
    return size is None or (req.cpu >= size[0] and req.memory >= size[1]
                            and req.ephemeral >= size[2])


def _reserved_for(value: str, req: PodRequirements) -> bool:
    """Whether the entry already reserved at least ``req`` (a grown Alloc's is not)."""
    size = _entry_size(value)
    return size is None or (size[0] >= req.cpu and size[1] >= req.memory
                            and size[2] >= req.ephemeral)


def _growth(req: PodRequirements, value: str) -> PodRequirements:
    """What the entry reserved beyond ``req`` (a stand-in with only that)."""
    cpu, memory, ephemeral = _entry_size(value) or (0, 0, 0)
    return replace(req, cpu=max(cpu - req.cpu, 0), memory=max(memory - req.memory, 0),
                   ephemeral=max(ephemeral - req.ephemeral, 0), host_ports=())


def _settle(batch: list[_Wanted], ok: bool) -> None:
    for wanted in batch:
        if not wanted.done.done():
            wanted.done.set_result(ok)
