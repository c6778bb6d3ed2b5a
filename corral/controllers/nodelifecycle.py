"""Node lifecycle: how the master knows a worker is alive, and what it does
when one is not.

    Lease kube-node-lease/<node> renewed ─► we note WHEN WE SAW renewTime change
    (our monotonic clock: the agent's clock is never compared with ours)

    every monitor period, per node (looked at only if a look can do something:
    silent past its grace, or back from that and still marked — the monitor
    runs every 0.5 s and renewals come every heartbeat, from every node):
      seen renewal older than grace_period ─► Ready=Unknown (status subresource),
          taint node.kubernetes.io/unreachable:NoExecute, Event NodeNotReady
      unreachable for eviction_timeout ─► graceful delete of its pods (their
          controllers recreate them elsewhere; a toleration of the taint delays
          or prevents it); a pod still there grace_period after that is deleted
          with grace 0, since no agent will ever confirm it stopped
      renewals again ─► taint removed, Ready=True until the agent posts its own
          status, Event NodeReady; the agent stops whatever the API no longer has

After a restart (or a leader change) every node starts with a full grace
period: no false alarm because this process did not see the last renewal.
The timing rules live in nodehealth.py, measured on the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
from dataclasses import dataclass

from corral.aiotasks import cancel_and_wait
from corral.api.errors import Conflict, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.events import NORMAL, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.controllers.nodehealth import NodeHealth
from corral.controllers.pods import is_finished
from corral.objects import Obj, is_deleting, meta, name_of, rfc3339, spec, status, uid_of

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NODE_INDEX = "node"
UNKNOWN_REASON = "NodeStatusUnknown"


@dataclass
class NodeLifecycleOptions:
    # 4 s = 4 missed 1 s heartbeats (8 at the harness' 0.5 s): a loaded 2-core
    # box delays a renewal by a second or two, not four.
    grace_period: float = 4.0
    eviction_timeout: float = 2.0
    monitor_period: float = 0.5

    @classmethod
    def from_env(cls) -> NodeLifecycleOptions:
        env = os.environ.get
        return cls(float(env("CORRAL_NODE_GRACE_PERIOD", "4")),
                   float(env("CORRAL_POD_EVICTION_TIMEOUT", "2")),
                   float(env("CORRAL_NODE_MONITOR_PERIOD", "0.5")))


def node_of(pod: Obj) -> list[str]:
    name = spec(pod).get("nodeName")
    return [str(name)] if name else []


def ready_status(node: Obj) -> str | None:
    for c in status(node).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status"))
    return None


def has_unreachable_taint(node: Obj) -> bool:
    return any(t.get("key") == UNREACHABLE for t in spec(node).get("taints") or [])


def marked_unknown(node: Obj) -> bool:
    """Ready=Unknown as this controller marks a silent node."""
    return any(c.get("type") == "Ready" and c.get("reason") == UNKNOWN_REASON
               for c in status(node).get("conditions") or [])


def toleration_seconds(pod: Obj) -> float | None:
    """How long the pod tolerates the unreachable taint: None → not at all,
    inf → forever."""
    best: float | None = None
    for t in spec(pod).get("tolerations") or []:
        key_ok = t.get("key") in (None, "", UNREACHABLE) and (
            t.get("key") or t.get("operator") == "Exists")
        effect_ok = t.get("effect") in (None, "", "NoExecute")
        if not (key_ok and effect_ok):
            continue
        seconds = t.get("tolerationSeconds")
        value = float("inf") if seconds is None else float(seconds)
        best = value if best is None else max(best, value)
    return best


def with_ready(node: Obj, status: str, reason: str, message: str, now: str) -> Obj:
    fresh = copy.deepcopy(node)
    st = fresh.setdefault("status", {})
    conditions = [c for c in st.get("conditions") or [] if c.get("type") != "Ready"]
    conditions.append({"type": "Ready", "status": status, "reason": reason, "message": message,
                       "lastHeartbeatTime": now, "lastTransitionTime": now})
    st["conditions"] = conditions
    return fresh


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, options: NodeLifecycleOptions | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(client, informers, recorder, workers=2)
        self.options = options or NodeLifecycleOptions()
        self.clock = clock or RealClock()
        self.health = NodeHealth(self.clock, self.options.grace_period,
                                 self.options.eviction_timeout)
        self.nodes = informers.get("Node")
        self.leases = informers.get("Lease", LEASE_NAMESPACE)
        self.pods = informers.get("Pod")
        self.pods.add_index(NODE_INDEX, node_of)
        # Allocs are evicted from a dead node as pods are (their owners re-place the work).
        self.allocs = informers.get("Alloc")
        self.allocs.add_index(NODE_INDEX, node_of)
        self.nodes.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._forget)
        self.leases.add_handler(self._lease_seen, lambda old, new: self._lease_seen(new))
        self.pods.add_handler(on_delete=self._pod_gone)
        self.allocs.add_handler(on_delete=self._pod_gone)

    def _lease_seen(self, lease: Obj) -> None:
        name = str(meta(lease).get("name"))
        if self.health.renewed(name, str(spec(lease).get("renewTime") or "")) and \
                self._needs_look(name):
            self.enqueue_key(name)

    def _needs_look(self, name: str) -> bool:
        """Whether reconcile would do anything for the node: it is silent past its
        grace (mark, taint, evict), or it renews again and is still marked (or
        the last look found it unreachable: its NodeReady Event is due). A live,
        unmarked node needs no look; every node on every tick and renewal was
        a work-queue round each for nothing."""
        if self.health.is_unreachable(name) or self.health.was_unreachable(name):
            return True
        node = self.nodes.get_by_key(name)
        return node is not None and (has_unreachable_taint(node) or marked_unknown(node))

    def _pod_gone(self, pod: Obj) -> None:
        self.health.gone(uid_of(pod))

    def _forget(self, node: Obj) -> None:
        self.health.forget(str(meta(node).get("name")))

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    async def run(self, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._tick(), name="node-lifecycle-monitor")
        try:
            await super().run(stop)
        finally:
            await cancel_and_wait(ticker)

    async def _tick(self) -> None:
        while True:
            await self.clock.sleep(self.options.monitor_period)
            for name in list(self.nodes.keys()):
                if self._needs_look(name):
                    self.enqueue_key(name)

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get_by_key(key)
        if node is None:
            return
        if self.health.is_unreachable(key):
            await self._unreachable(key, node)
        else:
            await self._reachable(key, node)

    # -- a silent node --------------------------------------------------------------

    async def _unreachable(self, name: str, node: Obj) -> None:
        if ready_status(node) != "Unknown":
            await self.client.update_status(with_ready(
                node, "Unknown", UNKNOWN_REASON, "Kubelet stopped posting node status.",
                self._now()))
            self.emit(node, NORMAL, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            return  # the taint goes on with the next look, from the fresh cache
        if not has_unreachable_taint(node):
            fresh = copy.deepcopy(node)
            spec = fresh.setdefault("spec", {})
            spec["taints"] = [*(spec.get("taints") or []), {
                "key": UNREACHABLE, "effect": "NoExecute", "timeAdded": self._now()}]
            await self.client.update(fresh)
        await self._evict(name, self.health.unreachable_for(name))

    async def _evict(self, name: str, unreachable_for: float) -> None:
        for kind, pod in [*(("Pod", p) for p in self.pods.by_index(NODE_INDEX, name)),
                          *(("Alloc", a) for a in self.allocs.by_index(NODE_INDEX, name))]:
            if is_finished(pod):
                continue
            if is_deleting(pod):
                await self._force_delete_if_stuck(kind, pod)
                continue
            if self.health.eviction_due(unreachable_for, toleration_seconds(pod)):
                await self._delete(kind, pod, None)
                self.health.deleted(uid_of(pod))
                self.emit(pod, NORMAL, "TaintManagerEviction",
                          f"Marking for deletion {kind} "
                          f"{meta(pod).get('namespace')}/{name_of(pod)}")

    async def _force_delete_if_stuck(self, kind: str, pod: Obj) -> None:
        if self.health.stuck(uid_of(pod)):
            await self._delete(kind, pod, 0)
            self.health.gone(uid_of(pod))

    async def _delete(self, kind: str, pod: Obj, grace: int | None) -> None:
        m = meta(pod)
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(kind, str(m.get("name")),
                                     m.get("namespace"),
                                     grace_period_seconds=grace,
                                     preconditions={"uid": uid_of(pod)})

    # -- a live node ------------------------------------------------------------------

    async def _reachable(self, name: str, node: Obj) -> None:
        if self.health.back(name):
            self.emit(node, NORMAL, "NodeReady", f"Node {name} status is now: NodeReady")
        if has_unreachable_taint(node):
            fresh = copy.deepcopy(node)
            fresh["spec"]["taints"] = [t for t in fresh["spec"].get("taints") or []
                                       if t.get("key") != UNREACHABLE] or None
            await self.client.update(fresh)
            return
        if marked_unknown(node):
            await self.client.update_status(with_ready(
                node, "True", "KubeletReady", "node lease renewed again", self._now()))
