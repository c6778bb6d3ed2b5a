"""The frameworks' tasks on the leading master: Allocs in, UPDATE events out.

    agent links (agentlink.py): each node's feed of task states
        a state newer than the book's (seq) ─► UPDATE (uuid) to the framework
    Alloc informer (namespace mesos, label corral.dev/framework)
        add/update ─► TaskBook.observe ─► UPDATE (uuid) to the framework (the
                      store's word: what the feed said already, or older, is skipped)
        delete     ─► tasks not ended: TASK_LOST / TASK_GONE
    Node informer (capacity's): Ready no longer True ─► TASK_LOST / TASK_UNREACHABLE,
        and the Alloc is deleted (its resources go back to the cluster)
    tick (with the allocation loop, at most every TICK_SECONDS): updates due again
        (not acknowledged) re-sent; the pool (pool.py) shrinks Allocs and deletes
        idle ones; an Alloc not the pool's (a former leader's second one) goes
        once its tasks all ended and were acknowledged
    calls: KILL (spec.tasks[i].kill, in the pool's next write), ACKNOWLEDGE,
        RECONCILE, MESSAGE

What each live task holds is reported to ``on_used`` (the allocator's
track_used/release_used) task by task: held from its launch (or from when a new
leader finds it), released by the update that ends it — its resources are
offered again at once, not when its Alloc shrinks or goes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Container, Coroutine
from typing import Any

from corral.api.errors import APIError, Conflict, NotFound
from corral.client.http import ServerUnreachable
from corral.client.informer import Informer, key_of
from corral.objects import Obj, is_deleting, name_of, spec, status
from corral.offers.agentlink import AgentLinks, AgentTLS
from corral.offers.capacity import Capacity
from corral.offers.frameworks import Registered
from corral.offers.launch import ALLOC_NAMESPACE, TASKS_FINALIZER, Plan, alloc_task_resources
from corral.offers.master import Hooks, MesosMaster
from corral.offers.pool import AllocPool
from corral.offers.protocol import Call, event, mesos_id
from corral.offers.resources import Resources
from corral.offers.tasks import (
    FRAMEWORK_LABEL,
    RETRY_SECONDS,
    Task,
    TaskBook,
    alloc_framework,
    alloc_role,
)
from corral.scheduler.ledger import Reservations

log = logging.getLogger("corral.offers")

TICK_SECONDS = 0.2
UsedCallback = Callable[[str, str, str, Resources, bool], None]  # fw, role, node, res, held


class TaskLoop(Hooks):
    def __init__(self, master: MesosMaster, capacity: Capacity, reservations: Reservations,
                 on_used: UsedCallback, *, retry_seconds: float = RETRY_SECONDS,
                 agent_tls: AgentTLS | None = None) -> None:
        self.master = master
        self.client = master.client
        self.capacity = capacity
        self.on_used = on_used
        self.book = TaskBook(master.clock, retry_seconds=retry_seconds)
        self.allocs = Informer(self.client, "Alloc", ALLOC_NAMESPACE,
                               label_selector=FRAMEWORK_LABEL)
        self.allocs.add_handler(self._alloc_seen, lambda old, new: self._alloc_seen(new),
                                self._alloc_deleted)
        self.allocs.add_index("node", lambda a: [str(spec(a).get("nodeName") or "")])
        capacity.nodes.add_handler(self._node_seen, lambda old, new: self._node_seen(new),
                                   self._node_deleted)
        # The direct line to the agents (None: every launch goes through the store).
        self.links = (AgentLinks(self.client, capacity.nodes, agent_tls, master.clock,
                                 self._streamed) if agent_tls is not None else None)
        self.pool = AllocPool(self.client, capacity, reservations, self.book, self.written,
                              self._delete_soon, self.links, self.launched_direct)
        # (framework, task id) → (alloc key, framework, role, node, resources)
        self._held: dict[tuple[str, str], tuple[str, str, str, str, Resources]] = {}
        self._kill_staged: set[tuple[str, str]] = set()  # KILLed before their write
        self._deleting: set[str] = set()
        self._releasing: set[str] = set()
        self._not_ready: set[str] = set()
        master.handlers.update({"KILL": self._kill, "ACKNOWLEDGE": self._acknowledge,
                                "RECONCILE": self._reconcile, "MESSAGE": self._message})
        master.hooks.append(self)

    async def start(self) -> None:
        self.allocs.start()
        await self.allocs.wait_synced()

    async def stop(self) -> None:
        await self.allocs.stop()
        if self.links is not None:
            await self.links.close()

    # -- Allocs ------------------------------------------------------------------------

    def stage(self, fw_id: str, role: str, node: str, plan: Plan) -> None:
        """An ACCEPT's tasks, held from the answer on, before their Alloc is written
        (the allocator told their sum at once: each is released on its own)."""
        total = Resources()
        for task in plan.tasks:
            size = plan.sizes.get(task["id"]) or _resources(plan.resources.get(task["id"], []))
            self._held[(fw_id, task["id"])] = ("", fw_id, role, node, size)
            total = total + size
        if plan.tasks:
            self.on_used(fw_id, role, node, total, True)

    def staged(self, fw_id: str) -> set[str]:
        return {t for (f, t), h in self._held.items() if f == fw_id and not h[0]}

    def in_use(self, fw_id: str) -> Container[str]:
        """The framework's task ids a new task may not take: known (until settled)
        or held for a launch on its way."""
        return _InUse(fw_id, self.book.tasks, self._held)

    def unstage(self, fw_id: str, plan: Plan) -> None:
        """Their launch failed: nothing is held for them any more (nor known, if a
        direct launch that did not happen made them STAGING)."""
        for task in plan.tasks:
            holding = self._held.pop((fw_id, task["id"]), None)
            self._kill_staged.discard((fw_id, task["id"]))
            known = self.book.tasks.get((fw_id, task["id"]))
            if known is not None and known.state == "TASK_STAGING":
                del self.book.tasks[(fw_id, task["id"])]
            if holding is not None:
                self.on_used(*holding[1:], False)

    def written(self, alloc: Obj, resources: dict[str, list[Obj]]) -> None:
        """The pool wrote an Alloc with new tasks: they are STAGING, and held."""
        self.book.observe(alloc, resources)
        self._hold_live(alloc)
        fw_id = alloc_framework(alloc)
        for entry in spec(alloc).get("tasks") or ():
            if (fw_id, entry["id"]) in self._kill_staged:  # KILL came before the write
                self._kill_staged.discard((fw_id, entry["id"]))
                self.pool.kill(key_of(alloc), str(entry["id"]), None)

    def launched_direct(self, alloc: Obj, plan: Plan) -> None:
        """Tasks on their way to the agent directly: STAGING in the book, held
        under their Alloc (their spec write follows)."""
        fw_id, key = alloc_framework(alloc), key_of(alloc)
        node = str(spec(alloc).get("nodeName") or "")
        self.book.launched(fw_id, key, node, plan.tasks, plan.resources)
        for entry in plan.tasks:
            held = self._held.get((fw_id, entry["id"]))
            if held is not None:
                self._held[(fw_id, entry["id"])] = (key, *held[1:])
            if (fw_id, entry["id"]) in self._kill_staged:  # KILL came before the launch
                self._kill_staged.discard((fw_id, entry["id"]))
                self.pool.kill(key, str(entry["id"]), None)

    def _streamed(self, node: str, msg: Obj) -> None:
        """A state from the node's feed: sent on at once, and a task that ended
        gives its resources back (the allocator offers them again)."""
        fw = self.master.frameworks.get(str(msg.get("framework") or ""))
        if fw is None or fw.removed or not isinstance(msg.get("task"), dict):
            return
        task = self.book.streamed(fw.id, str(msg.get("alloc") or ""), node, msg["task"])
        if task is not None:
            self._send_fresh(fw.id)
            if task.terminal:
                self._release((fw.id, task.id))

    def _hold_live(self, alloc: Obj) -> None:
        """Count each live task of the Alloc once (launched here, or found)."""
        fw_id, key = alloc_framework(alloc), key_of(alloc)
        role, node = alloc_role(alloc), str(spec(alloc).get("nodeName") or "")
        for entry in spec(alloc).get("tasks") or ():
            task = self.book.tasks.get((fw_id, str(entry["id"])))
            held = self._held.get((fw_id, str(entry["id"])))
            if task is None or (held is not None and held[0]):
                continue
            if held is not None:  # staged at ACCEPT: now its Alloc is known
                self._held[(fw_id, task.id)] = (key, *held[1:])
                self._release((fw_id, task.id))  # (its agent may have told its end first)
                continue
            if task.terminal:
                continue
            holding = (key, fw_id, role, node, _resources(task.resources))
            self._held[(fw_id, task.id)] = holding
            self.on_used(*holding[1:], True)

    def _release_ended(self) -> None:
        """Tasks that ended give their resources back (a task the book forgot,
        with its framework, holds them until its Alloc is gone)."""
        for key in list(self._held):
            self._release(key)

    def _release(self, key: tuple[str, str]) -> None:
        """The task's resources back, if it ended (see ``_release_ended``). A state
        streamed releases its own task only: walking every task held for each
        one that ends cost the master more the more tasks ran."""
        holding = self._held.get(key)
        if holding is None or not holding[0]:
            return  # not held, or staged: its Alloc is being written
        task = self.book.tasks.get(key)
        if task is not None and not task.terminal:
            return
        if task is None and self.allocs.get_by_key(holding[0]) is not None:
            return
        del self._held[key]
        self.on_used(*holding[1:], False)

    def _alloc_seen(self, alloc: Obj) -> None:
        self.pool.seen(alloc)
        fw = self.master.frameworks.get(alloc_framework(alloc))
        if fw is None or not fw.removed:  # a removed framework is told nothing more
            self._send(self.book.observe(alloc, alloc_task_resources(alloc)))
        self._hold_live(alloc)
        self._release_ended()
        node = str(spec(alloc).get("nodeName") or "")
        if node in self._not_ready:
            self._lose_node(node)
        if is_deleting(alloc) and self._ended(alloc, node):
            self._release_finalizer(alloc)

    def _ended(self, alloc: Obj, node: str) -> bool:
        """Whether a deleted Alloc's tasks have said their last: the agent settled
        it, its tasks all ended, or its node is gone (no agent will say more)."""
        if status(alloc).get("phase") in ("Succeeded", "Failed") or node in self._not_ready:
            return True
        key = key_of(alloc)
        return all(t.terminal for t in self.book.tasks.values() if t.alloc == key)

    def _release_finalizer(self, alloc: Obj) -> None:
        key = key_of(alloc)
        if TASKS_FINALIZER not in (alloc["metadata"].get("finalizers") or []) \
                or key in self._releasing:
            return
        self._releasing.add(key)
        self.master.spawn(self._remove_finalizer(alloc))

    async def _remove_finalizer(self, alloc: Obj) -> None:
        key = key_of(alloc)
        try:
            for _ in range(5):
                kept = [f for f in alloc["metadata"].get("finalizers") or []
                        if f != TASKS_FINALIZER]
                body = {**alloc, "metadata": {**alloc["metadata"], "finalizers": kept}}
                try:
                    await self.client.update(body)
                    return
                except Conflict:
                    alloc = await self.client.get("Alloc", name_of(alloc), ALLOC_NAMESPACE)
        except NotFound:
            pass
        except (APIError, ServerUnreachable) as err:
            log.warning("finalizer not removed alloc=%s error=%s", key, err)
        finally:
            self._releasing.discard(key)

    def _alloc_deleted(self, alloc: Obj) -> None:
        key = key_of(alloc)
        self.pool.gone(alloc)
        self._deleting.discard(key)
        node = str(spec(alloc).get("nodeName") or "")
        self._send(self.book.alloc_gone(alloc, node_ready=node not in self._not_ready))
        self._release_ended()

    # -- nodes ---------------------------------------------------------------------------

    def _node_seen(self, node: Obj) -> None:
        name = name_of(node)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status(node).get("conditions") or ())
        if ready:
            self._not_ready.discard(name)
        elif name not in self._not_ready:
            self._not_ready.add(name)
            self._lose_node(name)

    def _node_deleted(self, node: Obj) -> None:
        self._not_ready.add(name_of(node))
        self._lose_node(name_of(node))

    def _lose_node(self, node: str) -> None:
        changed = self.book.node_lost(node)
        if changed:
            log.info("tasks lost with their node node=%s tasks=%d", node, len(changed))
        self._send(changed)
        self._release_ended()
        for alloc in self.allocs.by_index("node", node):
            if is_deleting(alloc):
                self._release_finalizer(alloc)
            else:
                self._delete_soon(alloc, grace=0)

    # -- sending -------------------------------------------------------------------------

    def _send(self, tasks: list[Task]) -> None:
        for framework_id in {t.framework_id for t in tasks}:
            self._send_fresh(framework_id)

    def _send_fresh(self, framework_id: str) -> None:
        # Taken even for a framework away: SUBSCRIBE sends it every pending head.
        statuses = self.book.fresh(framework_id)
        fw = self.master.frameworks.get(framework_id)
        if statuses and fw is not None and fw.connected:
            for st in statuses:
                self.master.send(fw, event("UPDATE", status=st))

    def warm(self, nodes: set[str]) -> None:
        """Lines to the nodes just offered, before any ACCEPT of them: a link's first
        connection (a review of the master's rights, TLS) takes tens of ms, and
        without it a framework's first launches on a node go the store's way and
        their first states come with the Alloc's status writes."""
        if self.links is not None:
            for node in nodes:
                self.links.open(node)

    def tick(self) -> None:
        self._release_ended()  # (each end releases its own task; this is the net)
        for fw in self.master.frameworks.values():
            if fw.connected:
                for st in self.book.due(fw.id):
                    self.master.send(fw, event("UPDATE", status=st))
        self.pool.tick()
        if self.links is not None:  # a line to each node a framework's Alloc is on
            nodes = ({str(spec(a).get("nodeName") or "") for a in self.allocs.list()}
                     | {k[2] for k in self.pool.standing})
            if any(fw.connected for fw in self.master.frameworks.values()):
                nodes |= set(self.capacity.free())  # where the next ACCEPT may go
            self.links.keep(nodes)
        for alloc in self.allocs.list():
            key = key_of(alloc)
            if key in self._deleting or self.pool.owns(alloc) or is_deleting(alloc):
                continue
            if self.book.settled(key) or not spec(alloc).get("tasks"):
                self._delete_soon(alloc)

    def _delete_soon(self, alloc: Obj, grace: int | None = None) -> None:
        key = key_of(alloc)
        if key in self._deleting:
            return
        self._deleting.add(key)
        self.master.spawn(self._delete(alloc, grace))

    async def _delete(self, alloc: Obj, grace: int | None) -> None:
        try:
            await self.client.delete("Alloc", name_of(alloc), ALLOC_NAMESPACE,
                                     grace_period_seconds=grace,
                                     preconditions={"uid": str(alloc["metadata"]["uid"])})
        except NotFound:
            pass
        except (APIError, ServerUnreachable) as err:
            log.warning("framework alloc not deleted alloc=%s error=%s", key_of(alloc), err)
            self._deleting.discard(key_of(alloc))  # the next tick tries again

    # -- framework lifecycle -----------------------------------------------------------

    def framework_added(self, fw: Registered) -> None:
        for flag, book_set in (("PARTITION_AWARE", self.book.partition_aware),
                               ("TASK_KILLING_STATE", self.book.killing_aware)):
            if flag in fw.capabilities:
                book_set.add(fw.id)
            else:
                book_set.discard(fw.id)
        self.book.requeue_latest(fw.id)

    def framework_subscribed(self, fw: Registered) -> None:
        self.framework_added(fw)
        self.book.resend_all(fw.id)
        for st in self.book.due(fw.id, everything=True):
            self.master.send(fw, event("UPDATE", status=st))

    async def framework_removed(self, fw: Registered) -> None:
        """Its tasks are killed: every Alloc it holds is deleted (the agent stops
        the executor within the Alloc's grace)."""
        self.pool.forget_framework(fw.id)
        for alloc in [a for a in self.allocs.list() if alloc_framework(a) == fw.id]:
            self._delete_soon(alloc)
        self.book.forget_framework(fw.id)

    def framework_state(self, fw: Registered) -> Obj:
        tasks = [self._task_state(t) for t in self.book.of_framework(fw.id)]
        done = [self._task_state(t) for t in self.book.completed.get(fw.id, {}).values()]
        return {"tasks": [t for t in tasks if not t["terminal"]],
                "completed_tasks": [t for t in tasks if t["terminal"]] + done}

    def _task_state(self, task: Task) -> Obj:
        res = Resources.from_mesos([]) if not task.resources else _resources(task.resources)
        return {"id": task.id, "name": task.name, "framework_id": task.framework_id,
                "executor_id": "", "slave_id": task.node, "agent_id": task.node,
                "state": task.state, "statuses": task.statuses, "terminal": task.terminal,
                "resources": {"cpus": res.cpus, "mem": res.mem, "disk": res.disk,
                              "ports": "[" + ", ".join(f"{b}-{e}" for b, e in res.ports)
                              + "]" if res.ports else ""}}

    # -- calls ---------------------------------------------------------------------------

    def _kill(self, fw: Registered, call: Call) -> Coroutine[Any, Any, None] | None:
        task_id = call.task_id()
        task = self.book.tasks.get((fw.id, task_id))
        if task is None and task_id in self.staged(fw.id):
            self._kill_staged.add((fw.id, task_id))  # killed once it is written
            return None
        if task is None:
            self._unknown(fw, task_id, call.body.get("agent_id"))
            return None
        if task.terminal:
            return None
        grace = ((call.body.get("kill_policy") or {}).get("grace_period") or {}).get(
            "nanoseconds")
        return self._mark_killed(task, grace / 1e9 if isinstance(grace, int) else None)

    async def _mark_killed(self, task: Task, grace: float | None) -> None:
        alloc = self.allocs.get_by_key(task.alloc)
        if self.links is not None and alloc is not None:  # at once; the spec says it after
            await self.links.launch(task.node, alloc, [], {task.id: grace})
        if self.pool.kill(task.alloc, task.id, grace):
            log.info("task kill asked task=%s alloc=%s", task.id, task.alloc)
            return
        namespace, _, name = task.alloc.partition("/")
        for _ in range(5):
            try:
                alloc = await self.client.get("Alloc", name, namespace)
            except NotFound:
                return
            tasks = [dict(t) for t in spec(alloc).get("tasks") or ()]
            for entry in tasks:
                if entry.get("id") == task.id:
                    entry["kill"] = True
                    if grace is not None:
                        entry["killGraceSeconds"] = grace
            if tasks == spec(alloc).get("tasks"):
                return
            try:
                await self.client.update({**alloc, "spec": {**spec(alloc), "tasks": tasks}})
                log.info("task kill asked task=%s alloc=%s", task.id, task.alloc)
                return
            except Conflict:
                continue

    def _acknowledge(self, fw: Registered, call: Call) -> None:
        task_id = call.task_id()
        if self.book.acknowledge(fw.id, task_id, str(call.body["uuid"])) and \
                (fw.id, task_id) in self.book.tasks:
            self._send_fresh(fw.id)

    def _reconcile(self, fw: Registered, call: Call) -> None:
        asked = call.body.get("tasks") or []
        staged = self.staged(fw.id)  # accepted, their Alloc's write on its way
        if not asked:  # implicit: every task the master knows that has not ended
            for task in self.book.of_framework(fw.id):
                if not task.terminal or (fw.id, task.id) in self.book.pending:
                    self.master.send(fw, event("UPDATE", status=self.book.status_of(
                        task, reason="REASON_RECONCILIATION")))
            for task_id in staged - {t.id for t in self.book.of_framework(fw.id)}:
                self._staging(fw, task_id)
            return
        for item in asked:
            task_id = str(item["task_id"]["value"])
            known = self.book.tasks.get((fw.id, task_id)) or \
                self.book.completed.get(fw.id, {}).get(task_id)
            if known is not None:
                self.master.send(fw, event("UPDATE", status=self.book.status_of(
                    known, reason="REASON_RECONCILIATION")))
            elif task_id in staged:
                self._staging(fw, task_id)
            else:
                self._unknown(fw, task_id, item.get("agent_id"))

    def _staging(self, fw: Registered, task_id: str) -> None:
        """A task accepted whose Alloc is being written: TASK_STAGING, as Mesos
        answers for a task it has sent to an agent that has not said more."""
        node = self._held[(fw.id, task_id)][3]
        self.master.send(fw, event("UPDATE", status={
            "task_id": mesos_id(task_id), "state": "TASK_STAGING", "agent_id": mesos_id(node),
            "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION",
            "timestamp": self.master.clock.now().timestamp()}))

    def _unknown(self, fw: Registered, task_id: str, agent: object) -> None:
        """A task the master does not know: TASK_LOST (TASK_UNKNOWN if partition-
        aware), as Mesos answers reconciliation and kills of unknown tasks."""
        st: Obj = {"task_id": mesos_id(task_id),
                   "state": "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST",
                   "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION",
                   "message": "Reconciliation: Task is unknown",
                   "timestamp": self.master.clock.now().timestamp()}
        if isinstance(agent, dict) and agent.get("value"):
            st["agent_id"] = mesos_id(str(agent["value"]))
        self.master.send(fw, event("UPDATE", status=st))

    def _message(self, fw: Registered, call: Call) -> None:
        # Mesos hands the data to the framework's executor on that agent; corral's
        # executor runs commands and takes no messages, so (as Mesos does for an
        # executor that is not there) the message is dropped.
        log.info("framework message dropped (no custom executors) framework=%s", fw.id)


class _InUse:
    def __init__(self, fw_id: str, known: Container[tuple[str, str]],
                 held: Container[tuple[str, str]]) -> None:
        self.fw_id, self.known, self.held = fw_id, known, held

    def __contains__(self, task_id: object) -> bool:
        key = (self.fw_id, task_id)
        return key in self.known or key in self.held


def _resources(wire: list[Obj]) -> Resources:
    with contextlib.suppress(Exception):
        return Resources.from_mesos(wire)
    return Resources()
