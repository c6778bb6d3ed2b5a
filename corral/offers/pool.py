"""One Alloc per framework, role and node, reused across ACCEPTs — as Mesos runs
a framework's tasks on an agent under one executor rather than one per launch.

    ACCEPT ─► launch(fw, role, node, plan) ─► the standing Alloc of (fw, role, node)
        none yet (or going)  ─► assume + ledger reserve + create   (its executor starts)
        there                ─► one merge patch: spec.tasks += the new tasks (the
                                agent hands them to the running executor at once)
            the tasks alive then need more than it reserves ─► grow: reserved again
            on the node's ledger at the new size first (refused: a pod got there)
    ACCEPTs that arrive while a write is on its way go together in the next one.
    Directly, when the agent's link is up (agentlink.py) and the Alloc is there and
    big enough (else first grown by a write of its size alone, which quota and
    the leader's fence judge as any): the tasks go to the agent at once, the
    ACCEPT is done, and the spec write that records them follows (at most every
    WRITE_SECONDS, with what else came); a crash before it is reconciled from the
    agent's status.tasks (tasks.py: a task the spec does not name).

    tick: room its ended tasks left is given back to the cluster (the Alloc shrinks
          to what its live tasks take) once it has had no launch for SHRINK_SECONDS,
          or at once when another framework's Alloc on the node needs that room;
          an Alloc with no task alive nor update unacknowledged for IDLE_SECONDS
          is deleted (its executor exits)
    every write drops the tasks that ended and were acknowledged from spec.tasks
    (they live on in the task book's history), so the Alloc stays small.

The allocator counts a framework's tasks one by one (taskloop.py): a task's
resources go back to offers on the status update that ends it, whether or not
its Alloc has shrunk yet. The Alloc's own size is what the scheduler and the
ledger see: it never holds less than the live tasks take, and room is reserved
before it grows, so pods and frameworks still never over-commit a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from corral.api.alloc_view import alloc_name as view_alloc_name
from corral.api.alloc_view import is_alloc_key
from corral.api.errors import APIError, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, is_deleting, meta, name_of, spec
from corral.offers.agentlink import AgentLinks
from corral.offers.capacity import Capacity
from corral.offers.frameworks import Registered
from corral.offers.launch import (
    ALLOC_NAMESPACE,
    RESOURCES_ANNOTATION,
    TASK_RESOURCES_ANNOTATION,
    Plan,
    alloc_body,
    alloc_name,
    alloc_resources,
    alloc_task_resources,
    requests_of,
)
from corral.offers.liveneed import LiveNeed, Parsed, parse_cached
from corral.offers.resources import Resources
from corral.offers.tasks import TaskBook, alloc_framework, alloc_role
from corral.scheduler.ledger import Reservations

log = logging.getLogger("corral.offers")

SHRINK_SECONDS = 1.0
WRITE_SECONDS = 0.5  # tasks launched directly are written at most this often
IDLE_SECONDS = 10.0
EPSILON = 1e-9

Key = tuple[str, str, str]  # framework id, role, node
Written = Callable[[Obj, dict[str, list[Obj]]], None]  # the Alloc, new tasks' resources
Direct = Callable[[Obj, Plan], None]  # the Alloc, tasks on their way to its agent


@dataclass
class Launch:
    """One ACCEPT's tasks, waiting for their Alloc's next write."""

    fw: Registered
    plan: Plan
    done: asyncio.Future[str]  # "" launched, else why not


@dataclass
class Standing:
    key: Key
    obj: Obj | None = None  # the Alloc as last written or seen; None until created
    waiting: list[Launch] = field(default_factory=list)
    unwritten: list[Launch] = field(default_factory=list)  # launched directly, not written
    kills: dict[str, float | None] = field(default_factory=dict)  # task id → grace
    shrink: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writer: asyncio.Task[None] | None = None
    shrinking: bool = False  # a write that shrinks it is on its way
    active: float = 0.0  # monotonic: the last launch, or the last time a task was alive
    written: float = 0.0  # monotonic: the last write
    # Task id → (its Mesos resources as last seen, parsed): of the tasks it holds.
    parsed: Parsed = field(default_factory=dict)
    held: LiveNeed = field(default_factory=LiveNeed)  # its tasks, for direct fits


class AllocPool:
    def __init__(self, client: Client, capacity: Capacity, reservations: Reservations,
                 book: TaskBook, on_written: Written, delete: Callable[[Obj], None],
                 links: AgentLinks | None = None, on_direct: Direct | None = None) -> None:
        self.client = client
        self.capacity = capacity
        self.reservations = reservations
        self.book = book
        self.on_written = on_written
        self.delete = delete
        self.links = links
        self.on_direct = on_direct
        self.standing: dict[Key, Standing] = {}
        self._by_name: dict[str, Standing] = {}

    # -- launching ----------------------------------------------------------------

    async def launch(self, fw: Registered, role: str, node: str, plan: Plan) -> str:
        """Run ``plan``'s tasks in the (fw, role, node) Alloc; "" or the problem."""
        st = self.standing.get((fw.id, role, node))
        if st is None:
            st = self.standing[(fw.id, role, node)] = Standing((fw.id, role, node))
        st.active = self.book.clock.monotonic()
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if await self._launch_direct(st, Launch(fw, plan, done)):
            return ""
        st.waiting.append(Launch(fw, plan, done))
        self._kick(st)
        return await done

    async def _launch_direct(self, st: Standing, item: Launch) -> bool:
        """Hand the tasks to the agent now; their spec write follows. An Alloc too
        small is first written at its new size (room reserved on the node's ledger,
        then the store's own checks: quota, the leader's fence), as the store's way
        grows it. False: the store's way (no Alloc yet, no link, a refusal, which
        that way reports)."""
        if self.links is None or self.on_direct is None:
            return False
        node = st.key[2]
        for _ in range(3):
            fit = self._direct_fit(st, item)
            if fit is None:
                return False
            if fit is True:
                break
            async with st.lock:  # a growth: never beside a write of the Alloc
                fit = self._direct_fit(st, item)
                if isinstance(fit, Resources) and not await self._grow(st, fit):
                    return False
        else:
            return False
        obj = st.obj
        assert obj is not None
        self.on_direct(obj, item.plan)
        st.unwritten.append(item)
        size = requests_of(alloc_resources(obj))
        if not await self.links.launch(node, obj, item.plan.tasks, {}, size) and \
                item in st.unwritten:
            st.unwritten.remove(item)  # the spec write launches them instead
            return False
        # Taken by the agent, or (its answer lost) by the spec write already on its
        # way, which the agent's worker launches from: either way they run.
        item.done.set_result("")
        self._kick(st)
        return True

    def _direct_fit(self, st: Standing, item: Launch) -> bool | Resources | None:
        """True: the tasks fit the Alloc as it is held; a size: it must grow to
        that first; None: not directly (none yet, going, being shrunk — sized
        without these —, or a duplicate id, which the store's way reports)."""
        obj = st.obj
        if obj is None or is_deleting(obj) or item.fw.removed or st.shrinking:
            return None
        fw_id, held = st.key[0], st.held
        held.sync(obj, st.unwritten, st.parsed, self.book.tasks, fw_id)
        new = [str(t["id"]) for t in item.plan.tasks]
        if held.ids.intersection(new) or len(set(new)) != len(new):
            return None
        wire, sizes = item.plan.resources, item.plan.sizes
        for task_id in new:  # parsed by the ACCEPT already
            if task_id in sizes and task_id not in st.parsed:
                st.parsed[task_id] = (wire.get(task_id) or [], sizes[task_id])
        need = held.need(self.book.tasks, fw_id,
                         [parse_cached(st.parsed, t, wire.get(t) or []) for t in new])
        size = alloc_resources(obj)
        return True if _scalars_fit(need, size) else _larger(need, size)

    async def _grow(self, st: Standing, size: Resources) -> bool:
        """The Alloc written at ``size``, its tasks as they are; False: refused."""
        current, node = st.obj, st.key[2]
        if current is None:
            return False
        body = _resized(current, list(spec(current).get("tasks") or ()),
                        alloc_task_resources(current), size)
        if not await self._reserve(node, body, current):
            return False
        try:
            written = await self.client.patch("Alloc", name_of(current),
                                              _patch(current, body), ALLOC_NAMESPACE)
        except (APIError, ServerUnreachable) as err:
            log.info("framework alloc not grown alloc=%s error=%s", name_of(current), err)
            self.capacity.assume(current, node)  # back to what it holds
            return False
        self._written(st, written, {})
        return True

    def kill(self, alloc_key: str, task_id: str, grace: float | None) -> bool:
        """Mark a task killed in its Alloc's next write; False if that Alloc is not
        one of ours (the caller writes it itself)."""
        st = self._by_name.get(alloc_key.partition("/")[2])
        if st is None:
            return False
        st.kills[task_id] = grace
        self._kick(st)
        return True

    def _kick(self, st: Standing) -> None:
        if st.writer is None:
            st.writer = asyncio.create_task(self._write_loop(st), name=f"alloc-pool {st.key}")

    async def _write_loop(self, st: Standing) -> None:
        try:
            while st.waiting or st.kills or st.shrink or st.unwritten:
                if not (st.waiting or st.kills or st.shrink):  # only direct ones: batched
                    await asyncio.sleep(max(0.0, st.written + WRITE_SECONDS
                                            - self.book.clock.monotonic()))
                if st.waiting:
                    await self._make_room(st)
                async with st.lock:
                    batch, st.waiting = st.waiting, []
                    _settle([b for b in batch if b.fw.removed], "Framework has been removed")
                    batch = [b for b in batch if not b.fw.removed]
                    kills, st.kills = st.kills, {}
                    shrink, st.shrink = st.shrink, False
                    direct, st.unwritten = st.unwritten, []
                    try:
                        if not await self._write(st, batch, kills, shrink, direct):
                            st.unwritten[:0] = direct  # not written: in the next one
                    except (APIError, ServerUnreachable) as err:
                        st.unwritten[:0] = direct
                        _settle(batch, f"The master could not write the task's Alloc: {err}")
                        await asyncio.sleep(WRITE_SECONDS)  # the API is struggling
        except Exception:
            log.exception("alloc pool writer failed key=%s", st.key)
            _settle(st.waiting, "The master could not write the task's Alloc")
            st.waiting = []
        finally:
            st.writer = None

    async def _make_room(self, st: Standing) -> None:
        """Other frameworks' Allocs on the node give back the room their ended
        tasks left, before this one reserves (the ledger sees their size)."""
        for other in list(self.standing.values()):
            if other is st or other.key[2] != st.key[2] or other.obj is None:
                continue
            async with other.lock:
                if other.obj is not None and self._slack(other):
                    with contextlib.suppress(APIError, ServerUnreachable):
                        await self._write(other, [], {}, True)

    async def _write(self, st: Standing, batch: list[Launch], kills: dict[str, float | None],
                     shrink: bool, direct: list[Launch] | None = None) -> bool:
        """One write of the Alloc: ``batch`` launched by it, ``direct`` (launched on
        the agent already) recorded by it. False when ``direct`` is still to write."""
        direct = direct or []
        current = st.obj if st.obj is not None and not is_deleting(st.obj) else None
        if current is None:  # direct ones end with the Alloc they ran in
            if batch:
                await self._create(st, batch)
            return True
        fw_id = st.key[0]
        tasks, pruned = self._kept(fw_id, current, kills)
        taken = {t["id"] for t in tasks}
        wire = {k: v for k, v in alloc_task_resources(current).items() if k in taken}
        for item in direct:
            fresh = [t for t in item.plan.tasks if t["id"] not in taken]
            taken.update(t["id"] for t in fresh)
            tasks += fresh
            wire.update(item.plan.resources)
        launched: list[Launch] = []
        for item in batch:
            ids = [t["id"] for t in item.plan.tasks]
            if taken.intersection(ids) or len(set(ids)) != len(ids):
                _settle([item], "Task has duplicate ID")
                continue
            taken.update(ids)
            tasks += item.plan.tasks
            wire.update(item.plan.resources)
            launched.append(item)
        need = self._need(st, tasks, wire)
        size = alloc_resources(current)
        grow = not _scalars_fit(need, size)
        new_size = need if grow or shrink else size
        if not launched and not direct and not kills and not pruned and _same(new_size, size):
            return True
        body = _resized(current, tasks, wire, new_size)
        st.shrinking = not grow and not _same(new_size, size)
        try:
            return await self._resize(st, current, body, grow, launched, direct, pruned)
        finally:
            st.shrinking = False

    async def _resize(self, st: Standing, current: Obj, body: Obj, grow: bool,
                      launched: list[Launch], direct: list[Launch], pruned: list[str]) -> bool:
        fw_id, _, node = st.key
        if st.shrinking:
            # Shrinking: the ledger's entry first says the new size, so that no
            # reader keeps room for the old one after it is given back.
            await self._reserve(node, body, current)
        elif grow and not await self._reserve(node, body, current):
            _settle(launched, f"Node {node} no longer has the offered resources "
                              "(taken by pods)")
            return not direct
        try:
            written = await self.client.patch(
                "Alloc", name_of(current), _patch(current, body), ALLOC_NAMESPACE)
        except NotFound:
            self._forget(st)
            self.capacity.forget(current)
            _settle(launched, "The task's Alloc was deleted")
            return True
        except (APIError, ServerUnreachable):
            if grow:
                self.capacity.assume(current, node)
            raise
        self._written(st, written, {k: v for i in launched + direct
                                    for k, v in i.plan.resources.items()})
        self.book.prune(fw_id, pruned)
        _settle(launched, "")
        return True

    async def _create(self, st: Standing, batch: list[Launch]) -> None:
        fw_id, role, node = st.key
        plan = Plan()
        for item in batch:
            plan.tasks += item.plan.tasks
            plan.resources.update(item.plan.resources)
            plan.used = plan.used + item.plan.used
        body = alloc_body(alloc_name(fw_id), batch[0].fw.obj, role, node, plan)
        req = self.capacity.assume(body, node)
        if not await self.reservations.reserve(node, req):
            self.capacity.forget(body)
            _settle(batch, f"Node {node} no longer has the offered resources (taken by pods)")
            return
        try:
            created = await self.client.create(body)
        except (APIError, ServerUnreachable):
            self.capacity.forget(body)
            raise
        self._written(st, created, plan.resources)
        log.info("framework alloc created framework=%s node=%s alloc=%s tasks=%d", fw_id,
                 node, name_of(created), len(plan.tasks))
        _settle(batch, "")

    async def _reserve(self, node: str, body: Obj, current: Obj) -> bool:
        req = self.capacity.assume(body, node)
        if await self.reservations.reserve(node, req):
            return True
        self.capacity.assume(current, node)  # back to what it holds
        return False

    def _written(self, st: Standing, obj: Obj, resources: dict[str, list[Obj]]) -> None:
        if is_deleting(obj):
            self._forget(st)
        else:
            self.standing.setdefault(st.key, st)  # made again after its Alloc went
        st.obj = obj
        st.written = self.book.clock.monotonic()
        held = {str(t["id"]) for t in spec(obj).get("tasks") or ()}
        held.update(str(t["id"]) for u in st.unwritten for t in u.plan.tasks)
        st.parsed = {k: v for k, v in st.parsed.items() if k in held}
        self._by_name[name_of(obj)] = st
        self.capacity.assume(obj, st.key[2])
        self.on_written(obj, resources)

    # -- what a standing Alloc holds ---------------------------------------------

    def _kept(self, fw_id: str, alloc: Obj, kills: dict[str, float | None]
              ) -> tuple[list[Obj], list[str]]:
        """spec.tasks without those that ended and were acknowledged; kills applied."""
        kept, pruned = [], []
        for entry in spec(alloc).get("tasks") or ():
            task = self.book.tasks.get((fw_id, str(entry["id"])))
            if task is not None and task.terminal and (fw_id, task.id) not in self.book.pending:
                pruned.append(task.id)
                continue
            if entry["id"] in kills:
                entry = {**entry, "kill": True}
                grace = kills[entry["id"]]
                if grace is not None:
                    entry["killGraceSeconds"] = grace
            kept.append(entry)
        return kept, pruned

    def _alive(self, fw_id: str, task_id: str) -> bool:
        task = self.book.tasks.get((fw_id, task_id))
        return task is None or not task.terminal

    def _need(self, st: Standing, tasks: list[Obj], wire: dict[str, list[Obj]]) -> Resources:
        """What the Alloc's live tasks take (a task not seen yet is alive). Asked
        at every direct launch, of every task the Alloc holds: each task's Mesos
        resources are parsed once (``st.parsed``, while its list is the same)
        and summed as plain numbers, not a Resources made per task and per sum."""
        fw_id, parsed, book = st.key[0], st.parsed, self.book.tasks
        cpus = mem = disk = 0.0
        ports: list[tuple[int, int]] = []
        for task in tasks:
            task_id = str(task["id"])
            known = book.get((fw_id, task_id))
            if known is not None and known.terminal:
                continue
            res = parse_cached(parsed, task_id, wire.get(task_id) or [])
            if res is not None:
                cpus, mem, disk = cpus + res.cpus, mem + res.mem, disk + res.disk
                ports.extend(res.ports)
        return Resources(cpus, mem, disk, tuple(ports))

    def _slack(self, st: Standing) -> bool:
        assert st.obj is not None
        need = self._need(st, list(spec(st.obj).get("tasks") or ()),
                          alloc_task_resources(st.obj))
        return not _same(need, alloc_resources(st.obj))

    # -- the informer's view ---------------------------------------------------------

    def seen(self, alloc: Obj) -> None:
        """An Alloc of a framework as the informer shows it (ours, or found by a new
        leader: then it becomes the standing one of its key, if there is none)."""
        name = name_of(alloc)
        st = self._by_name.get(name)
        if st is None:
            if is_deleting(alloc):
                return
            key = (alloc_framework(alloc), alloc_role(alloc), str(spec(alloc).get("nodeName")))
            if key in self.standing:
                return  # a second one (an older leader's): it runs down and goes
            st = self.standing[key] = Standing(key, alloc,
                                               active=self.book.clock.monotonic())
            self._by_name[name] = st
            return
        if st.obj is None or _rv(alloc) >= _rv(st.obj):
            st.obj = alloc
        if is_deleting(alloc):
            self._forget(st)  # the next launch makes a new one

    def gone(self, alloc: Obj) -> None:
        st = self._by_name.pop(name_of(alloc), None)
        if st is not None and self.standing.get(st.key) is st and st.obj is not None \
                and name_of(st.obj) == name_of(alloc):
            del self.standing[st.key]

    def owns(self, alloc: Obj) -> bool:
        """Whether the Alloc is the standing one of its key (the pool runs it down)."""
        st = self._by_name.get(name_of(alloc))
        return st is not None and self.standing.get(st.key) is st

    def owns_key(self, key: str) -> bool:
        """Whether a snapshot key ("mesos/Alloc.<name>") is an Alloc this pool writes."""
        namespace, _, name = key.partition("/")
        return namespace == ALLOC_NAMESPACE and is_alloc_key(key) \
            and view_alloc_name(name) in self._by_name

    def _forget(self, st: Standing) -> None:
        if self.standing.get(st.key) is st:
            del self.standing[st.key]

    def forget_framework(self, fw_id: str) -> None:
        for key in [k for k in self.standing if k[0] == fw_id]:
            del self.standing[key]

    # -- the periodic part -------------------------------------------------------------

    def tick(self) -> None:
        now = self.book.clock.monotonic()
        for st in list(self.standing.values()):
            if st.obj is None or st.writer is not None or is_deleting(st.obj) or st.unwritten:
                continue
            fw_id = st.key[0]
            ids = [str(t["id"]) for t in spec(st.obj).get("tasks") or ()]
            if any(self._alive(fw_id, i) for i in ids):
                st.active = now
            elif any((fw_id, i) in self.book.pending for i in ids):
                continue  # its last updates are not acknowledged yet
            if now - st.active >= IDLE_SECONDS:
                self._forget(st)
                self.delete(st.obj)
            elif now - st.written >= SHRINK_SECONDS and self._slack(st):
                st.shrink = True
                self._kick(st)


def _settle(batch: list[Launch], problem: str) -> None:
    for item in batch:
        if not item.done.done():
            item.done.set_result(problem)


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _scalars_fit(need: Resources, size: Resources) -> bool:
    return (need.cpus <= size.cpus + EPSILON and need.mem <= size.mem + EPSILON
            and need.disk <= size.disk + EPSILON)


def _larger(a: Resources, b: Resources) -> Resources:
    """Each scalar the larger of the two (ports are not held by size)."""
    return Resources(cpus=max(a.cpus, b.cpus), mem=max(a.mem, b.mem), disk=max(a.disk, b.disk))


def _same(a: Resources, b: Resources) -> bool:
    return _scalars_fit(a, b) and _scalars_fit(b, a)


def _resized(alloc: Obj, tasks: list[Obj], wire: dict[str, list[Obj]], size: Resources) -> Obj:
    annotations = {**(meta(alloc).get("annotations") or {}),
                   RESOURCES_ANNOTATION: orjson.dumps(size.to_mesos()).decode(),
                   TASK_RESOURCES_ANNOTATION: orjson.dumps(wire).decode()}
    return {**alloc, "metadata": {**meta(alloc), "annotations": annotations},
            "spec": {**spec(alloc), "tasks": tasks, "resources": requests_of(size),
                     "slots": max(1, len(tasks))}}


def _patch(old: Obj, new: Obj) -> Obj:
    """A merge patch from ``old`` to ``new`` (spec.resources keys that went are
    nulled: a merge patch keeps what it does not name)."""
    resources: dict[str, object] = {k: None for k in spec(old).get("resources") or {}}
    resources.update(spec(new)["resources"])
    notes = meta(new)["annotations"]
    return {"metadata": {"annotations": {RESOURCES_ANNOTATION: notes[RESOURCES_ANNOTATION],
                                         TASK_RESOURCES_ANNOTATION:
                                             notes[TASK_RESOURCES_ANNOTATION]}},
            "spec": {"tasks": spec(new)["tasks"], "resources": resources,
                     "slots": spec(new)["slots"]}}
