"""The scheduler as an API client: informers in, bindings out, the pure core between.

    Node informer ─────────────► snapshot.add/update/remove_node ─┐ something may
    Pod informer (bound:        ► snapshot.add/remove_pod ─────────┤ fit now: parked
      spec.nodeName!=, running)                                    ┘ pods → active
    Pod informer (pending:      ► queue.add (schedulerName "", default-scheduler, corral)
      spec.nodeName=)
                 queue.pop() ─► core.schedule(snapshot, pod)
      node ─► assume (snapshot.add_pod) ─► bind task: ledger.reserve ─► Client.bind
                 refused by the ledger / lost a race (409) ─► unassume; retry / drop
      none ─► preemption.find_preemption ─► victims: Event Preempted, graceful delete;
              preemptor: status.nominatedNodeName
              then Event FailedScheduling + PodScheduled=False (reason Unschedulable)
              and queue.park (back-off; a cluster change wakes it at once)

Decisions are made one at a time on the event loop (the core never awaits), so
the snapshot cannot change under a decision; binds run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from corral.api.alloc_view import alloc_name, is_alloc_key
from corral.api.errors import APIError, Conflict, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.events import EventRecorder
from corral.client.http import Client, ServerUnreachable
from corral.client.informer import Informer, key_of
from corral.client.leaderelection import LeaseTiming, master_identity, run_elected
from corral.objects import Obj, meta, name_of, now_rfc3339, spec, status
from corral.scheduler.allocs import SCHEDULED, AllocSource
from corral.scheduler.core import CoreMemory, Decision, SchedulerOptions, schedule
from corral.scheduler.ledger import ENTRY_TTL, Reservations
from corral.scheduler.metrics import SCHEDULER_METRICS, PodTimes
from corral.scheduler.nominees import Nominees
from corral.scheduler.preemption import Preemption, find_preemption
from corral.scheduler.queue import QueueClosed, SchedulingQueue
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot

log = logging.getLogger("corral.scheduler")

COMPONENT = "default-scheduler"  # source.component of its Events, as kube-scheduler
SCHEDULER_NAMES = frozenset({"", "default-scheduler", "corral"})
MAX_BINDS_IN_FLIGHT = 64
HOUSEKEEPING_SECONDS = 5.0
RECENTLY_BOUND_SECONDS = 60.0
BOUND_SELECTOR = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
TERMINATING_VICTIM = "preemption: not eligible due to a terminating pod on the nominated node."


def is_ours(pod: Obj) -> bool:
    """A pending pod this scheduler places."""
    spec = pod.get("spec") or {}
    return (spec.get("schedulerName") or "") in SCHEDULER_NAMES and not spec.get(
        "nodeName") and not meta(pod).get("deletionTimestamp")


def node_facts(node: Obj) -> tuple[Any, ...]:
    """What scheduling reads from a Node; heartbeats that change nothing else are
    not worth a cache invalidation."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get(
        "status") or {}
    ready = [c.get("status") for c in status.get("conditions") or ()
             if c.get("type") == "Ready"]
    return (meta.get("labels"), spec.get("taints"), spec.get("unschedulable"),
            status.get("allocatable"), status.get("capacity"), ready)


class Scheduler:
    def __init__(self, client: Client, options: SchedulerOptions | None = None,
                 instance: str | None = None, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.options = options or SchedulerOptions()
        self.snapshot = ClusterSnapshot()
        self.memory = CoreMemory()  # the core's caches for this snapshot
        self.queue = SchedulingQueue()
        self.nodes = Informer(client, "Node")
        self.pending = Informer(client, "Pod", field_selector="spec.nodeName=")
        self.bound = Informer(client, "Pod", field_selector=BOUND_SELECTOR)
        self.bound.add_index("node", lambda p: [spec(p).get("nodeName") or ""])
        self.allocs = AllocSource(client, BOUND_SELECTOR)  # Allocs, seen as pods
        self.nominees = Nominees()  # preemptors' room, held from lower priorities
        self.events = EventRecorder(client, instance=instance, component=COMPONENT)
        self.ledger = Reservations(client, self.snapshot, self._lookup, self.clock)
        self._binding: set[str] = set()
        # Pods whose bind failed in a way that leaves where they are unknown: still
        # counted on the node we tried, until the bound informer shows them.
        self._doubtful: dict[str, tuple[str, float]] = {}
        # Unschedulable pods with required pod affinity: a pod bound anywhere may be
        # the partner they wait for, so they are tried again at once when one is.
        self._awaiting_peers: set[str] = set()
        # uid → when we bound it: the pending informer may still show it unbound.
        self._recently_bound: dict[str, float] = {}
        self._binds: set[asyncio.Task[None]] = set()
        self._bind_slots = asyncio.Semaphore(MAX_BINDS_IN_FLIGHT)
        self.bound_count = 0
        self.times = PodTimes()
        SCHEDULER_METRICS.watch_queue(lambda: len(self.queue), lambda: self.queue.parked)

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule until ``stop`` is set (or the task is cancelled)."""
        self._register_handlers()
        informers = (self.nodes, self.bound, self.pending, *self.allocs.informers)
        helpers: list[asyncio.Task[None]] = []
        try:
            for informer in informers:
                informer.start()
            for informer in informers:
                await informer.wait_synced()
            self.events.start()
            helpers = [asyncio.create_task(self._close_on(stop), name="scheduler-stop"),
                       asyncio.create_task(self._housekeeping(), name="scheduler-housekeeping")]
            log.info("scheduler started nodes=%d pending=%d", len(self.snapshot),
                     len(self.queue))
            await self._schedule_forever()
        finally:
            await self._shutdown(informers, helpers)

    async def _close_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.queue.close()

    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(HOUSEKEEPING_SECONDS)
            self.ledger.expire_phantoms()
            self._resolve_doubts()
            horizon = self.clock.monotonic() - RECENTLY_BOUND_SECONDS
            for uid in [u for u, at in self._recently_bound.items() if at < horizon]:
                del self._recently_bound[uid]

    async def _shutdown(self, informers: tuple[Informer, ...],
                        helpers: list[asyncio.Task[None]]) -> None:
        self.queue.close()
        SCHEDULER_METRICS.watch_queue(lambda: 0, lambda: 0)  # a standby queues nothing
        for task in [*helpers, *self._binds]:
            task.cancel()
        await asyncio.gather(*helpers, *self._binds, return_exceptions=True)
        await self.ledger.close()
        await self.events.stop()
        for informer in informers:
            await informer.stop()

    # -- informer handlers -----------------------------------------------------------

    def _register_handlers(self) -> None:
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.bound.add_handler(self._bound_added, self._bound_updated, self._bound_deleted)
        self.pending.add_handler(self._pending_added, self._pending_updated,
                                 self._pending_deleted)
        self.allocs.connect((self._pending_added, self._pending_updated, self._pending_deleted),
                            (self._bound_added, self._bound_updated, self._bound_deleted))

    # Pods and Allocs' pod views by key: the loop reads both kinds through these.

    def _pending_get(self, key: str) -> Obj | None:
        if is_alloc_key(key):
            return self.allocs.pending_view(key)
        return self.pending.get_by_key(key)

    def _bound_get(self, key: str) -> Obj | None:
        if is_alloc_key(key):
            return self.allocs.bound_view(key)
        return self.bound.get_by_key(key)

    def _bound_on(self, node: str) -> list[Obj]:
        return [*self.bound.by_index("node", node), *self.allocs.bound_on(node)]

    def _about(self, pod: Obj) -> Obj:
        """What an Event about ``pod`` names: the Alloc itself for an Alloc's view."""
        return self.allocs.original(pod) if is_alloc_key(key_of(pod)) else pod

    def _node_added(self, node: Obj) -> None:
        name = name_of(node)
        self.snapshot.add_node(node)
        for pod in self._bound_on(name):
            self._account(pod)
        self.queue.move_all_to_active()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_facts(old) != node_facts(new):
            self.snapshot.update_node(new)
            self.queue.move_all_to_active()

    def _node_deleted(self, node: Obj) -> None:
        self.snapshot.remove_node(name_of(node))

    def _bound_added(self, pod: Obj) -> None:
        self._account(pod)
        self._wake_awaiting_peers()

    def _bound_updated(self, old: Obj, new: Obj) -> None:
        if old.get("spec") != new.get("spec") or meta(old).get(
                "labels") != meta(new).get("labels"):
            self._account(new)
            self._wake_awaiting_peers()

    def _wake_awaiting_peers(self) -> None:
        for key in self._awaiting_peers:
            self.queue.requeue(key)
        self._awaiting_peers.clear()

    def _bound_deleted(self, pod: Obj) -> None:
        key = key_of(pod)
        self._doubtful.pop(key, None)
        self.ledger.forget_phantoms(key)  # it is gone: nothing to keep room for
        placed = self.snapshot.pod(key)
        if placed is not None and placed.node_name == spec(pod).get("nodeName"):
            self.snapshot.remove_pod(key)
        self.queue.move_all_to_active()

    def _account(self, pod: Obj) -> None:
        key = key_of(pod)
        self.ledger.forget_phantoms(key)
        self._doubtful.pop(key, None)
        if self.snapshot.node(spec(pod).get("nodeName") or "") is not None:
            self.snapshot.add_pod(pod)

    def _pending_added(self, pod: Obj) -> None:
        self._note_nominee(pod)
        if is_ours(pod):
            self._enqueue(pod)

    def _pending_updated(self, old: Obj, new: Obj) -> None:
        self._note_nominee(new)
        if not is_ours(new):
            self.queue.remove(key_of(new))
            return
        changed = old.get("spec") != new.get("spec") or meta(old).get(
            "labels") != meta(new).get("labels")
        if changed or key_of(new) not in self.queue:
            self._enqueue(new)

    def _note_nominee(self, pod: Obj) -> None:
        node = status(pod).get("nominatedNodeName")
        self.nominees.set(key_of(pod), node if is_ours(pod) else None, pod_requirements(pod))

    def _pending_deleted(self, pod: Obj) -> None:
        # Also what a bind looks like from here; the pod's stand-ins stay until the
        # bound informer shows it (it is a separate stream) or they expire.
        key = key_of(pod)
        self.queue.remove(key)
        self.nominees.forget(key)
        if key not in self._binding:
            self.times.forget(key)

    def _enqueue(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        priority = pod_requirements(pod).priority
        self.times.seen(key_of(pod))
        self.queue.add(key_of(pod), priority, str(meta.get("creationTimestamp") or ""))

    def _lookup(self, key: str) -> tuple[PodRequirements, str] | None:
        for get in (self._bound_get, self._pending_get):
            pod = get(key)
            if pod is not None:
                return pod_requirements(pod), spec(pod).get("nodeName") or ""
        return None

    # -- one attempt -------------------------------------------------------------------

    async def _schedule_forever(self) -> None:
        while True:
            try:
                key = await self.queue.pop()
            except QueueClosed:
                return
            try:
                await self.schedule_one(key)
            except Exception:  # one bad pod must not stop scheduling for every other
                log.exception("scheduling attempt failed pod=%s", key)
                self.queue.park(key)

    async def schedule_one(self, key: str) -> None:
        pod = self._pending_get(key)
        if pod is None or not is_ours(pod) or self._bound_get(key) is not None:
            # The two pod informers are separate streams: a bound pod may still be
            # in the pending one for a moment. Assuming it would move it.
            self.queue.remove(key)
            return
        if key in self._binding or meta(pod).get("uid") in self._recently_bound:
            return  # a bind is in flight (it re-queues the pod if it fails), or done
        started, result = time.perf_counter(), "error"
        self.times.attempted(key)
        try:
            req = pod_requirements(pod)
            with self.nominees.held(self.snapshot, req):
                decision = schedule(self.snapshot, req, self.options, self.memory)
            if decision.node is not None:
                self._assume_and_bind(pod, req, decision.node)
                result = "scheduled"
            else:
                await self._unschedulable(pod, req, decision)
                result = "unschedulable"
        finally:
            SCHEDULER_METRICS.attempt(result, time.perf_counter() - started)

    def _assume_and_bind(self, pod: Obj, req: PodRequirements, node: str) -> None:
        self.snapshot.add_pod(req, node)
        self._binding.add(req.key)
        task = asyncio.create_task(self._bind(pod, req, node), name=f"bind-{req.key}")
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    async def _bind(self, pod: Obj, req: PodRequirements, node: str) -> None:
        key = req.key
        try:
            async with self._bind_slots:
                if not await self.ledger.reserve(node, req):
                    self._unassume(key, node)
                    self.queue.requeue(key)
                    return
                if is_alloc_key(key):
                    await AllocSource.bind(self.client, req.namespace, req.name, node)
                else:
                    await self.client.bind(req.name, req.namespace, node)
            self.queue.remove(key)
            self.nominees.forget(key)
            self._recently_bound[req.uid] = self.clock.monotonic()
            self.bound_count += 1
            self.times.bound(key)
            self.events.event(self._about(pod), "Normal", "Scheduled",
                              f"Successfully assigned {key_of(self._about(pod))} to {node}")
        except NotFound:  # deleted meanwhile
            self._unassume(key, node)
            self.queue.remove(key)
            self.times.forget(key)
        except Conflict:
            # Bound by someone else — maybe to this very node, under a ledger entry
            # we share; keep counting it here until the informer shows where it went.
            self._doubt(key, node)
            self.queue.remove(key)
            self.times.forget(key)
            log.info("bind lost pod=%s node=%s reason=Conflict", key, node)
        except (APIError, ServerUnreachable) as err:
            self._doubt(key, node)  # the bind may have happened all the same
            self.queue.park(key)
            log.warning("bind failed pod=%s node=%s error=%r", key, node, err)
        finally:
            self._binding.discard(key)

    def _doubt(self, key: str, node: str) -> None:
        if self._bound_get(key) is not None:
            self._unassume(key, node)  # we know where it is: account it there
        else:
            self._doubtful[key] = (node, self.clock.monotonic() + ENTRY_TTL)

    def _resolve_doubts(self) -> None:
        now = self.clock.monotonic()
        for key, (node, until) in list(self._doubtful.items()):
            if until < now:
                del self._doubtful[key]
                self._unassume(key, node)

    def _unassume(self, key: str, node: str) -> None:
        """Take back our assumption of ``key`` on ``node``; if the pod is in fact
        bound (by someone else, or by our own earlier attempt), account it there."""
        placed = self.snapshot.pod(key)
        if placed is None or placed.node_name != node:
            return
        real = self._bound_get(key)
        if real is not None:
            self._account(real)
        else:
            self.snapshot.remove_pod(key)

    # -- no node fits ------------------------------------------------------------------

    async def _unschedulable(self, pod: Obj, req: PodRequirements, decision: Decision) -> None:
        message = decision.message
        nominated = status(pod).get("nominatedNodeName") or None
        if nominated and self._victims_terminating(nominated, req.priority):
            message = f"{message} {TERMINATING_VICTIM}"
        else:
            with self.nominees.held(self.snapshot, req):
                result = find_preemption(self.snapshot, req)
            if result.preemption is not None and result.preemption.victims:
                await self._preempt(pod, result.preemption)
                nominated = result.preemption.node
                self.nominees.set(req.key, nominated, req)
            elif result.message:
                message = f"{message} {result.message}"
        self.events.event(self._about(pod), "Warning", "FailedScheduling", message)
        await self._set_unschedulable(pod, message, nominated)
        self.queue.park(req.key)
        if req.affinity:
            self._awaiting_peers.add(req.key)

    def _victims_terminating(self, node: str, priority: int) -> bool:
        """Victims of an earlier preemption still stopping: wait, do not evict more."""
        for pod in self._bound_on(node):
            if meta(pod).get("deletionTimestamp") and pod_requirements(
                    pod).priority < priority:
                return True
        return False

    async def _preempt(self, preemptor: Obj, preemption: Preemption) -> None:
        uid = meta(preemptor).get("uid")
        SCHEDULER_METRICS.preempted(len(preemption.victims))
        log.info("preempting pod=%s node=%s victims=%s", key_of(preemptor), preemption.node,
                 ",".join(v.key for v in preemption.victims))
        await asyncio.gather(*(self._evict(victim.key, f"Preempted by pod {uid} on node "
                                           f"{preemption.node}")
                               for victim in preemption.victims))

    async def _evict(self, key: str, message: str) -> None:
        victim = self._bound_get(key)
        if victim is None:
            return  # a reservation another scheduler holds, or already gone: nothing to evict
        self.events.event(self._about(victim), "Normal", "Preempted", message)
        namespace, _, name = key.partition("/")
        try:
            if is_alloc_key(key):  # its owner takes the Alloc's unfinished work back
                await AllocSource.delete(self.client, key)
            else:
                await self.client.delete("Pod", name, namespace)  # graceful: its own period
        except NotFound:
            pass
        except (APIError, ServerUnreachable) as err:
            log.warning("preemption delete failed pod=%s error=%r", key, err)

    async def _set_unschedulable(self, pod: Obj, message: str, nominated: str | None) -> None:
        kind, condition_type, name = "Pod", "PodScheduled", pod["metadata"]["name"]
        if is_alloc_key(key_of(pod)):
            kind, condition_type, name = "Alloc", SCHEDULED, alloc_name(name)
        status = pod.get("status") or {}
        current: Obj = next((c for c in status.get("conditions") or ()
                            if c.get("type") == condition_type), {})
        same = (current.get("status") == "False" and current.get("reason") == "Unschedulable"
                and current.get("message") == message)
        if same and (status.get("nominatedNodeName") or None) == nominated:
            return
        condition = {"type": condition_type, "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": current.get("lastTransitionTime")
                     if current.get("status") == "False" else now_rfc3339()}
        patch: Obj = {"metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
                      "status": {"conditions": [condition]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        meta = pod["metadata"]
        try:
            await self.client.patch(kind, name, patch, meta.get("namespace"),
                                    patch_type="merge" if kind == "Alloc" else "strategic",
                                    subresource="status")
        except (Conflict, NotFound):
            pass  # changed meanwhile (bound, deleted, updated): the next attempt writes it
        except (APIError, ServerUnreachable) as err:
            log.info("pod status write failed pod=%s error=%r", key_of(pod), err)


# -- running it: in the master, or as its own process ------------------------------------

LEASE_NAME = "corral-scheduler"  # in kube-system


async def run_in_master(client: Client, stop: asyncio.Event, timing: LeaseTiming) -> None:
    """The in-process scheduler of `corral master`: leader-elected, so that of
    several masters (or a master and `corral scheduler --leader-elect`) one
    schedules, its writes fenced by its term."""
    identity = master_identity(client.server)

    async def work(fenced: Client) -> None:
        await Scheduler(fenced, instance=identity).run(stop)

    await run_elected(client, stop, LEASE_NAME, identity, work, timing)
