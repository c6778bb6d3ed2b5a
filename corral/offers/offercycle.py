"""The offer cycle on the leading master: DRF offers out, ACCEPT into Allocs.

    every ALLOCATION_SECONDS, or at once when capacity changes or a framework
    subscribes, revives, declines or accepts:
        Allocator.update_capacity(Capacity.free())  → RESCIND (node gone or shrunk)
        Allocator.expired()                         → RESCIND (offer timeout)
        Allocator.allocate()                        → OFFERS, one event per framework

    ACCEPT ─► Allocator.take (InvalidOffers ─► TASK_LOST/TASK_DROPPED,
              REASON_INVALID_OFFERS, for every task asked for)
           ─► the users its tasks run as, authorized (RBAC "run" on taskusers.corral.dev)
           ─► plan_launch: TaskInfos checked and fitted (TASK_ERROR for the rest)
           ─► the framework's Alloc on the node (pool.py): made on first need,
              reserved on the node's ledger exactly as the scheduler reserves a pod,
              later ACCEPTs added to it (reserved again when it must grow); refused
              (a pod got there first) ─► TASK_LOST/TASK_DROPPED
           ─► Allocator.give_back (what the tasks did not take; ACCEPT's filters)
    DECLINE (refuse_seconds), REVIVE, SUPPRESS ─► the Allocator
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from corral.api.errors import AlreadyExists
from corral.objects import Obj, name_of, status
from corral.offers.agentlink import AgentTLS
from corral.offers.allocator import Allocator, InvalidOffers, Offer
from corral.offers.auth import ANONYMOUS, RUN, USERS, FrameworkAuth
from corral.offers.capacity import Capacity
from corral.offers.frameworks import Registered
from corral.offers.launch import ALLOC_NAMESPACE, Plan, plan_launch, task_ids, task_users
from corral.offers.master import Hooks, MesosMaster
from corral.offers.protocol import VERSION, Call, event, mesos_id, refuse_seconds
from corral.offers.resources import NOTHING, Resources
from corral.offers.taskloop import TICK_SECONDS, TaskLoop
from corral.offers.tasks import alloc_framework
from corral.scheduler.ledger import Reservations

log = logging.getLogger("corral.offers")

ALLOCATION_SECONDS = 1.0  # Mesos' --allocation_interval
ROUND_SECONDS = 0.01  # rounds at most this often, however many wakes
OFFER_TIMEOUT_SECONDS = 60.0
STATUS_SECONDS = 2.0  # Framework objects' share and counts, at most this often


class OfferCycle(Hooks):
    def __init__(self, master: MesosMaster, capacity: Capacity, auth: FrameworkAuth, *,
                 weights: dict[str, float] | None = None,
                 offer_timeout: float = OFFER_TIMEOUT_SECONDS,
                 agent_tls: AgentTLS | None = None) -> None:
        self.master = master
        self.capacity = capacity
        self.auth = auth
        self.allocator = Allocator(master.clock, offer_timeout=offer_timeout)
        for role, weight in (weights or {}).items():
            self.allocator.set_weight(role, weight)
        self.reservations = Reservations(master.client, capacity.snapshot, capacity.lookup,
                                         own=lambda key: self.tasks.pool.owns_key(key))
        capacity.on_pod = self.reservations.forget_phantoms  # the real one is seen: its
        # stand-in goes, as the scheduler's loop drops them
        self.tasks = TaskLoop(master, capacity, self.reservations, self._used,
                              agent_tls=agent_tls)
        self._wake = asyncio.Event()
        capacity.add_listener(self._wake.set)
        master.handlers.update({"ACCEPT": self._accept, "DECLINE": self._decline,
                                "REVIVE": self._revive, "SUPPRESS": self._suppress})
        master.hooks.append(self)

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        last_status = last_tick = 0.0
        while not stop.is_set():
            self._wake.clear()
            last_round = self.master.clock.monotonic()
            self.round()
            now = self.master.clock.monotonic()
            if now - last_tick >= TICK_SECONDS:  # not at every round of a burst
                last_tick = now
                self.tasks.tick()
            if now - last_status >= STATUS_SECONDS:
                last_status = now
                self.master.spawn(self._write_statuses())
            # The interval as a timer that wakes the loop (wait_for made a task, a
            # future and a timeout for every round, up to one per ended task).
            timer = asyncio.get_running_loop().call_later(ALLOCATION_SECONDS, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            # A wake after a quiet spell is served at once (an offer round trip);
            # a burst of them is one round every ROUND_SECONDS at most.
            await asyncio.sleep(max(0.0, last_round + ROUND_SECONDS
                                    - self.master.clock.monotonic()))

    def round(self) -> None:
        self.reservations.expire_phantoms()
        rescind = self.allocator.update_capacity(self.capacity.free(),
                                                 totals=self.capacity.totals())
        for offer in rescind + self.allocator.expired():
            fw = self.master.frameworks.get(offer.framework_id)
            if fw is not None:
                self.master.send(fw, event("RESCIND", offer_id=mesos_id(offer.id)))
        by_framework: dict[str, list[Obj]] = {}
        offered: set[str] = set()
        for offer in self.allocator.allocate():
            by_framework.setdefault(offer.framework_id, []).append(self._offer_json(offer))
            offered.add(offer.node)
        self.tasks.warm(offered)
        for framework_id, offers in by_framework.items():
            fw = self.master.frameworks.get(framework_id)
            if fw is not None:
                self.master.send(fw, event("OFFERS", offers=offers))

    def _offer_json(self, offer: Offer) -> Obj:
        host = self._node_host(offer.node)
        return {"id": mesos_id(offer.id), "framework_id": mesos_id(offer.framework_id),
                "agent_id": mesos_id(offer.node), "hostname": host,
                "resources": offer.resources.to_mesos(offer.role),
                "allocation_info": {"role": offer.role},
                "url": {"scheme": "http", "address": {"hostname": host, "ip": host,
                                                      "port": 5051}, "path": "/slave(1)"}}

    def _node_host(self, node: str) -> str:
        obj = self.capacity.nodes.get(None, node)
        for address in (status(obj).get("addresses") or []) if obj else []:
            if address.get("type") == "InternalIP":
                return str(address.get("address"))
        return node

    def _used(self, framework_id: str, role: str, node: str, res: Resources,
              held: bool) -> None:
        if held:
            self.allocator.track_used(framework_id, role, node, res)
        else:
            self.allocator.release_used(framework_id, role, node, res)
            self._wake.set()

    async def _write_statuses(self) -> None:
        shares = self.allocator.shares()
        for fw in list(self.master.frameworks.values()):
            if fw.removed:
                continue
            tasks = self.tasks.book.of_framework(fw.id)
            allocs = sum(1 for a in self.tasks.allocs.list() if alloc_framework(a) == fw.id)
            await self.master.write_status(
                fw, dominantShare=round(shares.get(fw.id, 0.0), 3),
                tasks=sum(1 for t in tasks if not t.terminal), allocs=allocs)

    # -- framework lifecycle -----------------------------------------------------------

    def framework_subscribed(self, fw: Registered) -> None:
        self.allocator.add_framework(fw.id, fw.roles, suppressed_roles=sorted(fw.suppressed))
        self._wake.set()

    def framework_disconnected(self, fw: Registered) -> None:
        self.allocator.remove_framework(fw.id)  # its offers are void; its tasks stay
        self._wake.set()

    async def framework_removed(self, fw: Registered) -> None:
        self.allocator.remove_framework(fw.id)
        self._wake.set()

    def framework_state(self, fw: Registered) -> Obj:
        offers = self.allocator.offers(fw.id)
        offered = Resources.sum(o.resources for o in offers)
        return {"offers": [{"id": o.id, "framework_id": o.framework_id, "slave_id": o.node,
                            "resources": _numbers(o.resources)} for o in offers],
                "offered_resources": _numbers(offered),
                "dominant_share": self.allocator.shares().get(fw.id, 0.0)}

    def agents_state(self) -> list[Obj]:
        totals = self.capacity.totals()
        free = self.capacity.free()
        out = []
        for node in self.capacity.nodes.list():
            name = name_of(node)
            host = self._node_host(name)
            total = totals.get(name, NOTHING)
            out.append({"id": name, "hostname": host, "pid": f"slave(1)@{host}:5051",
                        "active": name in totals, "resources": _numbers(total),
                        "unreserved_resources": _numbers(total),
                        "used_resources": _numbers(total - free.get(name, total)),
                        "offered_resources": _numbers(Resources.sum(
                            o.resources for o in self.allocator.offers() if o.node == name)),
                        "reserved_resources": {}, "attributes": {},
                        "registered_time": 0.0, "version": VERSION})
        return out

    # -- calls ---------------------------------------------------------------------------

    def _accept(self, fw: Registered, call: Call) -> Coroutine[Any, Any, None] | None:
        """At once when RBAC's answers for the tasks' users are cached (a framework's
        every ACCEPT but the first few), else after asking."""
        caller = fw.caller or ANONYMOUS
        users = task_users(list(call.body.get("operations") or []), fw.user)
        known = {user: self.auth.allowed_known(caller, RUN, USERS, user) for user in users}
        if any(answer is None for answer in known.values()):
            return self._accept_after_review(fw, call, users)
        self._accept_allowed(fw, call, {user for user, answer in known.items() if answer})
        return None

    async def _accept_after_review(self, fw: Registered, call: Call, users: set[str]) -> None:
        # Asked before the offers are taken: a review that fails leaves them as they were.
        caller = fw.caller or ANONYMOUS
        allowed = {user for user in users if await self.auth.allowed(caller, RUN, USERS, user)}
        self._accept_allowed(fw, call, allowed)

    def _accept_allowed(self, fw: Registered, call: Call, allowed: set[str]) -> None:
        operations = list(call.body.get("operations") or [])
        refuse = refuse_seconds(call.body.get("filters"))
        try:
            offers = self.allocator.take(fw.id, call.offer_ids())
        except InvalidOffers as err:
            self._wake.set()
            for task_id, agent in task_ids(operations):
                self._master_update(fw, task_id, agent, "REASON_INVALID_OFFERS", str(err),
                                    lost=True)
            return
        node, role = offers[0].node, offers[0].role
        offered = Resources.sum(o.resources for o in offers)
        plan = plan_launch(operations, offered, node, fw.id, self.tasks.in_use(fw.id), fw.user,
                           allowed)
        for refused in plan.refused:
            self._master_update(fw, refused.task_id, refused.agent_id,
                                refused.reason, refused.message, lost=False)
        if plan.tasks:
            # Held from now on; written into the framework's Alloc after the answer
            # (Mesos answers 202 at once too, and reports a failure as updates).
            self.tasks.stage(fw.id, role, node, plan)
            self.master.spawn(self._launch(fw, role, node, plan))
        self.allocator.give_back(offers, {node: plan.used if plan.tasks else Resources()},
                                 refuse_seconds=refuse)
        self._wake.set()

    async def _launch(self, fw: Registered, role: str, node: str, plan: Plan) -> None:
        problem = await self.tasks.pool.launch(fw, role, node, plan)
        if problem:
            self.tasks.unstage(fw.id, plan)
            for task in plan.tasks:
                self._master_update(fw, task["id"], node, "REASON_INVALID_OFFERS", problem,
                                    lost=True)
            self._wake.set()

    async def ensure_namespace(self) -> None:
        """Frameworks' Allocs live in one namespace, made on first use."""
        with contextlib.suppress(AlreadyExists):
            await self.master.client.create({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": ALLOC_NAMESPACE}})

    def _master_update(self, fw: Registered, task_id: str, agent: str, reason: str,
                       message: str, *, lost: bool) -> None:
        """An update the master makes for a task that never launched (no uuid: it
        is not acknowledged, as Mesos sends these)."""
        state = "TASK_ERROR"
        if lost:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
        st: Obj = {"task_id": mesos_id(task_id), "state": state, "source": "SOURCE_MASTER",
                   "reason": reason, "message": message,
                   "timestamp": self.master.clock.now().timestamp()}
        if agent:
            st["agent_id"] = mesos_id(agent)
        self.master.send(fw, event("UPDATE", status=st))

    def _decline(self, fw: Registered, call: Call) -> None:
        self.allocator.decline(fw.id, call.offer_ids(),
                               refuse_seconds(call.body.get("filters")))
        self._wake.set()

    def _revive(self, fw: Registered, call: Call) -> None:
        self.allocator.revive(fw.id, call.roles())
        fw.suppressed -= set(call.roles() or fw.roles)
        self._wake.set()

    def _suppress(self, fw: Registered, call: Call) -> None:
        self.allocator.suppress(fw.id, call.roles())
        fw.suppressed |= set(call.roles() or fw.roles) & set(fw.roles)


def _numbers(res: Resources) -> Obj:
    out: Obj = {"cpus": res.cpus, "mem": res.mem, "disk": res.disk, "gpus": 0.0}
    if res.ports:
        out["ports"] = "[" + ", ".join(f"{b}-{e}" for b, e in res.ports) + "]"
    return out
