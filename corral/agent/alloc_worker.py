"""One worker per Alloc bound to this node: its executor, its tasks, its status.

    start: executor running already (agent restart)? adopt it : start it
           connect ─► hello (tasks it runs) ─► exits folded as each read brings them
    loop (woken by exits, spec changes, deletion, retry times):
      deleting? ─► executor "stop" (the Alloc's grace) ─► last exits ─► final
                   status ─► DELETE grace 0 (its owner's finalizer may keep it
                   until the owner has recorded what it did)
      claim ahead ─► status (at most every FLUSH_SECONDS; a compare-and-swap):
        claimed, completed, failedIndexes, failures, running
        ok ─► claims committed; exits up to the status acknowledged to the executor
      launch from committed claims, before the write (the executor's queue keeps
      the slots busy while it is on its way) and after it (what it claimed)

A status write that fails is simply made again: nothing is acknowledged to the
executor before it is on record, so an agent that dies loses nothing the next
one (re-adopting the executor) will not be told again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from corral.agent.config import AgentConfig
from corral.agent.framework_feed import TaskFeed
from corral.agent.framework_tasks import FrameworkTasks
from corral.agent.run_as import (
    NamedUsers,
    NodeUsers,
    RunAsError,
    node_users,
    run_as_for_alloc,
)
from corral.agent.runtime.base import RunAs
from corral.agent.runtime.executor import ExecutorConfig
from corral.agent.runtime.executors import (
    ExecutorConnection,
    ExecutorGone,
    ExecutorRuntime,
    TaskExit,
    TaskStarted,
    launch_message,
)
from corral.agent.task_array import ClaimPace, TaskArray
from corral.aiotasks import cancel_and_wait
from corral.api.errors import APIError, Conflict, NotFound
from corral.api.quantity import bytes_value, cpu_millis
from corral.client.http import Client, ServerUnreachable
from corral.indexset import IndexSet
from corral.objects import (
    Obj,
    is_deleting,
    labels_of,
    meta,
    name_of,
    namespace_of,
    now_rfc3339,
    spec,
    status,
    uid_of,
)
from corral.offers.tasks import FRAMEWORK_LABEL

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2  # status at most this often
RESYNC_SECONDS = 2.0
DEFAULT_LOG_BYTES = 30 * 1024 * 1024  # per Alloc, across its rotated files
LOG_FILES = 3
WINDOW_FACTOR = 2  # claimed and handed to the executor ahead: at least slots × this
CLAIM_SECONDS = 1.0  # claims cover about this long of work at the current rate
# A framework's launch is written this much later: a write at once would say only
# TASK_STARTING, and a short task's start and end go in the same write instead.
LAUNCH_HOLD_SECONDS = 0.1
# With a master reading the node's feed (framework_feed.py) it hears each state at
# once: the status write that keeps the store right may come seldom. Each carries
# every task of the Alloc and costs the agent (an HTTPS PUT, then its echo on the
# watch) and the master (the write, its watchers): in bench/offers.py it was the
# largest single item of the agent's profile at once a second.
FEED_FLUSH_SECONDS = 3.0


@dataclass
class AllocContext:
    cfg: AgentConfig
    client: Client
    executors: ExecutorRuntime
    users: NodeUsers = field(default_factory=lambda: node_users(None))
    feed: TaskFeed = field(default_factory=lambda: TaskFeed(""))


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def executor_config(alloc: Obj) -> ExecutorConfig:
    s, m = spec(alloc), meta(alloc)
    resources: dict[str, Any] = s.get("resources") or {}
    cpu = int(cpu_millis(resources["cpu"])) if resources.get("cpu") else None
    memory = int(bytes_value(resources["memory"])) if resources.get("memory") else None
    total_log = int(s.get("logMaxBytes") or DEFAULT_LOG_BYTES)
    return ExecutorConfig(uid_of(alloc), str(m.get("namespace") or ""), str(m.get("name")),
                          slots=int(s.get("slots") or 1), cpu_request_millis=cpu,
                          cpu_limit_millis=cpu, memory_limit_bytes=memory,
                          log_max_bytes=max(4096, total_log // LOG_FILES),
                          log_max_files=LOG_FILES)


def _size(alloc: Obj) -> tuple[int, int | None, int | None]:
    """Slots, cpu millis and memory bytes, as the executor is told them."""
    config = executor_config(alloc)
    return config.slots, config.cpu_limit_millis, config.memory_limit_bytes


def _room(needed: int, told: tuple[int, int | None, int | None] | None) -> int:
    """The slots a framework's executor is told: at least ``needed`` (a slot for
    each of its tasks, so none waits), with room to grow, so that it is not
    resized for the slots alone at nearly every launch (the told ones stand
    while they are within 4× of what is needed)."""
    if told is not None and needed <= told[0] <= 4 * needed:
        return told[0]
    return 2 * needed


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def task_env(alloc: Obj) -> dict[str, str]:
    task = spec(alloc).get("task") or {}
    return {str(e["name"]): str(e.get("value") or "") for e in task.get("env") or ()}


class AllocWorker:
    def __init__(self, ctx: AllocContext, alloc: Obj) -> None:
        self.ctx = ctx
        self.alloc = alloc
        self.uid = uid_of(alloc)
        self.namespace = namespace_of(alloc)
        self.name = name_of(alloc)
        self.array: TaskArray | None = (TaskArray.from_alloc(alloc) if spec(alloc).get("task")
                                        else None)
        # A Mesos framework's tasks (corral/offers/): launched one by one, not by index.
        framework = spec(alloc).get("tasks") or labels_of(alloc).get(FRAMEWORK_LABEL)
        self.tasks: FrameworkTasks | None = (FrameworkTasks.from_alloc(alloc) if framework
                                             else None)
        if self.tasks is not None:
            self.tasks.on_change = self._publish
        self.gone = False
        self.finished = asyncio.Event()
        self.conn: ExecutorConnection | None = None
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0  # the last exit folded into the array
        self._dirty = True
        self._changes = 0  # bumped by every change a status must carry
        self._last_flush = 0.0
        self._hold_until = 0.0  # no status write before (tasks just launched)
        self._sized: tuple[int, int | None, int | None] | None = None  # told the executor
        self._direct_size: tuple[int | None, int | None] | None = None  # cpu, memory
        self._parsed_size: tuple[Any, tuple[int, int | None, int | None]] | None = None
        self._pace = ClaimPace(CLAIM_SECONDS)
        self._executor_lost = ""
        # A task array's user, as its Job's pod template says (run_as.py); a
        # template the node cannot honour leaves the Alloc waiting, as a pod.
        self._user: RunAs | None = None
        self._config_error = ""
        if self.array is not None:
            try:
                self._user = run_as_for_alloc(alloc, ctx.users)
            except RunAsError as err:
                self._config_error = str(err)
        self._stopping = False  # the executor was told to stop: kills are not failures
        # A framework's launches: its tasks' users as looked up lately, and the
        # directory their sandboxes go in (made with the first launch).
        self._named = NamedUsers(ctx.users)
        self._sandboxes = ""  # with a trailing "/"
        self._size_asked: dict[str, str] = {}  # the last size launch_direct parsed

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"alloc {self.namespace}/{self.name}")

    def update(self, alloc: Obj) -> None:
        if uid_of(alloc) != self.uid or _rv(alloc) < _rv(self.alloc):
            return
        if self.array is not None and spec(alloc).get("ranges") != spec(self.alloc).get("ranges"):
            self.array.reassigned(spec(alloc).get("ranges"))
            self._mark_dirty()
        if self.tasks is not None:
            self.tasks.update(alloc)
        self.alloc = alloc
        self._kick.set()

    def _publish(self, entry: Obj) -> None:
        self.ctx.feed.publish(f"{self.namespace}/{self.name}", self.uid,
                              labels_of(self.alloc).get(FRAMEWORK_LABEL, ""), entry)

    def feed_snapshot(self) -> list[tuple[str, str, str, Obj]]:
        if self.tasks is None:
            return []
        key, fw = f"{self.namespace}/{self.name}", labels_of(self.alloc).get(FRAMEWORK_LABEL, "")
        return [(key, self.uid, fw, entry) for entry in self.tasks.states.values()]

    def launch_direct(self, tasks: list[Obj], kills: dict[str, float | None],
                      size: dict[str, str] | None = None) -> list[str]:
        """The master's launches and kills, straight to the running executor (their
        spec write follows, with the Alloc's ``size`` when it grew for them); the
        ids launched. ValueError: a malformed size."""
        if self.tasks is None or self.gone or is_deleting(self.alloc) or self._stopping:
            raise LookupError("the Alloc is going away")
        # Parsed when it changed (or was let go), not at every launch.
        if size and (size != self._size_asked or self._direct_size is None):
            self._direct_size = (int(cpu_millis(size["cpu"])) if size.get("cpu") else None,
                                 int(bytes_value(size["memory"])) if size.get("memory")
                                 else None)
            self._size_asked = size
        taken = self.tasks.launch_direct(tasks, kills)
        # Handed to the executor here, the launches leave a turn of the loop only
        # the status write to do, and that may be timed already (kills need the
        # turn: it times their KILL).
        handed = self.conn is not None and not self._executor_lost
        timed = handed and not kills and self._write_timed()
        if handed:
            self._run_tasks(self.tasks)
        self._mark_dirty()
        if not timed:
            self._kick.set()
        return taken

    def task_done(self, task_id: str) -> bool:
        """Whether a task has nothing more to print (for following its log)."""
        if self.finished.is_set() or self.array is None or not task_id.isdigit():
            return True
        index = int(task_id)
        return index not in self.array.launched and index not in (
            self.array.claimed - self.array.finished())

    def mark_gone(self) -> None:
        self.gone = True
        self._kick.set()

    async def stop(self) -> None:
        """Stop supervising (the agent exits); the executor keeps running."""
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self.conn is not None:
            self.conn.close()

    async def _run(self) -> None:
        try:
            await self._supervise()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("alloc worker failed alloc=%s/%s", self.namespace, self.name)
        finally:
            self.finished.set()

    async def _supervise(self) -> None:
        if not await self._connect():
            await self._settle_without_executor()
            return
        while True:
            self._kick.clear()
            try:
                if await self.sync():
                    return
            except (ServerUnreachable, APIError) as err:
                log.warning("alloc sync: master not reachable alloc=%s/%s error=%s",
                            self.namespace, self.name, err)
            # A timeout on the wait itself, not wait_for's task around it: this
            # loop turns several times per framework task.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait_seconds()):
                    await self._kick.wait()

    async def _connect(self) -> bool:
        if self.gone or (is_deleting(self.alloc) and not self.ctx.executors.dir(
                self.uid).path.exists()):
            return False  # deleted before it ever ran here
        try:
            adopted = await self.ctx.executors.ensure(executor_config(self.alloc))
            self.conn = await self.ctx.executors.connect(self.uid)
        except ExecutorGone as err:
            self._executor_lost = str(err)
            return False
        if self.array is not None:
            # Exits replayed after the hello count as launched until they are read,
            # or the first sync would start those tasks again.
            self.array.adopt([int(i) for i in [*self.conn.running, *self.conn.queued,
                                               *self.conn.exited] if i.isdigit()])
        if self.tasks is not None:
            self.tasks.adopt([*self.conn.running, *self.conn.queued, *self.conn.exited],
                             tuple(self.conn.queued))
        log.info("executor %s alloc=%s/%s pid=%d tasks=%d", "adopted" if adopted else "ready",
                 self.namespace, self.name, self.conn.pid,
                 len(self.conn.running) + len(self.conn.queued))
        self.conn.listen(self._on_events)
        return True

    def _on_events(self, events: list[TaskExit | TaskStarted]) -> None:
        """What the executor said in one read, folded at once (no task wakes for it)."""
        if not events:
            log.info("executor connection ended alloc=%s/%s", self.namespace, self.name)
            self._kick.set()  # the executor has gone (stopped, or died)
            return
        # A framework's exits change nothing a turn of the loop would act on
        # but the next status write: no turn for them when it is timed already.
        timed = self._write_timed()
        self._fold(events)
        if not timed:
            self._kick.set()

    def _write_timed(self) -> bool:
        """Whether the next status write is timed already: the Alloc is dirty and
        a framework's, with a master reading the feed (the write then comes
        FEED_FLUSH_SECONDS after the last, whatever changes meanwhile)."""
        return self._dirty and self.array is None and self.ctx.feed.watched()

    def _fold(self, events: list[TaskExit | TaskStarted]) -> None:
        now = time.monotonic()
        for done in events:
            if isinstance(done, TaskStarted):
                if self.tasks is not None:
                    self.tasks.started(done.id)
                continue
            self._seq = max(self._seq, done.seq)
            if self.tasks is not None:
                self.tasks.exited(done.id, done.code, done.signal, done.reason, done.message,
                                  self._stopping)
            if self.array is None or not done.id.isdigit():
                continue
            if self._stopping and done.code != 0:
                self.array.interrupted(int(done.id))
            else:
                self.array.exited(int(done.id), done.code, done.reason, now)
        self._mark_dirty()

    def _mark_dirty(self) -> None:
        self._dirty = True
        self._changes += 1

    def _wait_seconds(self) -> float:
        wait = RESYNC_SECONDS
        if self._dirty:
            wait = max(0.0, self._flush_at() - time.monotonic())
        retry = self.array.next_retry() if self.array is not None else None
        if self.tasks is not None:
            retry = self.tasks.next_kill()
        if retry is not None:
            wait = min(wait, max(0.0, retry - time.monotonic()))
        return wait

    # -- one pass ----------------------------------------------------------------

    async def sync(self) -> bool:
        """Converge once; True when the worker is done with the Alloc."""
        assert self.conn is not None
        if self.gone or is_deleting(self.alloc):
            await self._terminate()
            return True
        if self.conn.ended.is_set() and not self._executor_lost:
            self._executor_lost = "the executor exited unexpectedly"
            if self.tasks is not None:
                self.tasks.end_all("TASK_FAILED", self._executor_lost)
            self._mark_dirty()
        if self.tasks is not None and not self._executor_lost:
            self._run_tasks(self.tasks)
        array = self.array
        live = array is not None and not self._executor_lost and not self._config_error
        if array is not None and live:
            if array.claim_ahead(self._ahead()):
                self._mark_dirty()
            # The executor's queue carries the slots through the status write below.
            self._launch(array)
        if self._dirty and time.monotonic() >= self._flush_at():
            await self._flush()
            if array is not None and live:
                self._launch(array)  # what that write claimed
        return False

    def _flush_at(self) -> float:
        if self.tasks is not None and self.ctx.feed.watched():
            return self._last_flush + FEED_FLUSH_SECONDS
        return max(self._last_flush + FLUSH_SECONDS, self._hold_until)

    def _ahead(self) -> int:
        return self._pace.ahead(self._slots() * WINDOW_FACTOR)

    def _run_tasks(self, tasks: FrameworkTasks) -> None:
        """Launch a framework's new tasks, signal those it asked to kill."""
        assert self.conn is not None
        slots, cpu, memory = self._spec_size()
        # Tasks launched directly count before their spec write says them, and so
        # does the size the Alloc grew to for them.
        if not tasks.direct:
            self._direct_size = None
        elif self._direct_size is not None:
            cpu, memory = _max(cpu, self._direct_size[0]), _max(memory, self._direct_size[1])
        size = (_room(max(slots, len(tasks.specs)), self._sized), cpu, memory)
        if size != self._sized:  # its framework's tasks came or went
            self._sized = size
            self.conn.resize(*size)  # before the launches it makes room for
        batch = []
        for launch in tasks.to_launch():
            if not self._sandboxes:
                self._sandboxes = f"{self.ctx.executors.sandbox_dir(self.uid)}/"
            sandbox = self._sandboxes + launch.sandbox
            env = {**launch.env, "MESOS_TASK_ID": launch.id, "MESOS_SANDBOX": sandbox}
            self._mark_dirty()
            try:
                user = self._named.get(launch.user)
            except RunAsError as err:
                tasks.exited(launch.id, 128, None, "StartError", str(err), False)
                continue
            batch.append(launch_message(launch.id, launch.command, env, sandbox, user,
                                        notify=True))
        if batch:
            self.conn.launch_many(batch)  # one message for all that came together
            self._hold_until = time.monotonic() + LAUNCH_HOLD_SECONDS
        for task_id, sig in tasks.to_kill(time.monotonic()):
            self.conn.kill(task_id, sig)
            self._mark_dirty()

    def _spec_size(self) -> tuple[int, int | None, int | None]:
        """``_size`` of the Alloc, parsed again only when its spec changed."""
        resources = (spec(self.alloc).get("slots"), spec(self.alloc).get("resources"))
        if self._parsed_size is None or self._parsed_size[0] != resources:
            self._parsed_size = (resources, _size(self.alloc))
        return self._parsed_size[1]

    def _slots(self) -> int:
        return int(spec(self.alloc).get("slots") or 1)

    def _launch(self, array: TaskArray) -> None:
        assert self.conn is not None
        task = spec(self.alloc).get("task") or {}
        command = [str(c) for c in task.get("command") or ()]
        env = task_env(self.alloc)
        cwd = str(task.get("workingDir") or "/")
        for index in array.to_launch(self._ahead(), time.monotonic()):
            self.conn.launch(str(index), command, {**env, "JOB_COMPLETION_INDEX": str(index)},
                             cwd, self._user)

    # -- status ------------------------------------------------------------------

    def _status(self, phase: str) -> Obj:
        current = status(self.alloc)
        out: Obj = {k: v for k, v in current.items() if k in ("conditions", "startTime")}
        out.setdefault("startTime", now_rfc3339())
        out.update({"phase": phase, "hostIP": self.ctx.cfg.node_ip})
        if self.conn is not None:
            out["executorPid"] = self.conn.pid
        if self._executor_lost:
            out["reason"], out["message"] = "ExecutorLost", self._executor_lost
        elif self._config_error:
            out["reason"], out["message"] = "CreateContainerConfigError", self._config_error
        if self.array is not None:
            out.update(self.array.status_fields())
        if self.tasks is not None:
            out.update(self.tasks.status_fields())
        return out

    async def _flush(self, phase: str | None = None) -> bool:
        """Write the status; on success commit the claims it carried and acknowledge
        the exits it records. False when it must be tried again."""
        seq, changes = self._seq, self._changes
        claiming = self.array.claiming.copy() if self.array is not None else IndexSet()
        if phase is None:
            phase = "Failed" if self._executor_lost else (
                "Pending" if self._config_error else "Running")
        # Only the status is new: the rest is sent as it is (never changed here),
        # not copied deeply — a framework's Alloc carries every task of its spec.
        body = {**self.alloc, "status": self._status(phase)}
        self._last_flush = time.monotonic()
        if self.array is not None:
            self._pace.observe(len(self.array.completed), self._last_flush)
        if body["status"] == status(self.alloc) and not claiming:
            self._dirty = self._changes != changes
            self._ack(seq)
            return True
        try:
            written = await self.ctx.client.update_status(body)
        except Conflict:
            await self._refetch()
            return False
        except NotFound:
            self.gone = True
            return False
        # Exits folded while the write was on its way are for the next one.
        self._dirty = self._changes != changes
        self.alloc = written
        if self.array is not None:
            self.array.commit_claims(claiming)
        self._ack(seq)
        return True

    def _ack(self, seq: int) -> None:
        if self.conn is not None and seq:
            self.conn.ack(seq)

    async def _refetch(self) -> None:
        try:
            fresh = await self.ctx.client.get("Alloc", self.name, self.namespace)
        except NotFound:
            self.gone = True
            return
        if uid_of(fresh) != self.uid:
            self.gone = True
            return
        self.update(fresh)

    # -- the end -----------------------------------------------------------------

    async def _terminate(self) -> None:
        """Stop the executor (the Alloc's grace), record what it did, delete."""
        assert self.conn is not None
        log.info("alloc stopping alloc=%s/%s gone=%s deleting=%s", self.namespace, self.name,
                 self.gone, is_deleting(self.alloc))
        grace = float(meta(self.alloc).get("deletionGracePeriodSeconds")
                      or spec(self.alloc).get("terminationGracePeriodSeconds") or 30)
        self._stopping = True
        self.conn.stop(0 if self.gone else grace)
        await self.conn.drain()
        with contextlib.suppress(TimeoutError):  # its last exits, folded as they come
            async with asyncio.timeout(grace + 10):
                await self.conn.ended.wait()
        if self.array is not None:
            self.array.launched = IndexSet()  # whatever did not report has not finished
        if self.tasks is not None:
            self.tasks.end_all("TASK_KILLED", "The task's Alloc was stopped")
        await self._settle("Succeeded" if self._all_done() else "Failed")
        self.conn.close()
        self.ctx.executors.retire(self.uid, self.namespace, self.name)

    def _all_done(self) -> bool:
        if self.tasks is not None:
            return all(t.get("state") == "TASK_FINISHED" for t in self.tasks.states.values())
        return self.array is not None and not (self.array.assigned - self.array.finished())

    async def _settle(self, phase: str) -> None:
        """The last status, then the graceful deletion finished (grace 0)."""
        for _ in range(5):
            if self.gone:
                return
            if await self._flush(phase):
                break
        with contextlib.suppress(NotFound, Conflict):
            await self.ctx.client.delete("Alloc", self.name, self.namespace,
                                         grace_period_seconds=0,
                                         preconditions={"uid": self.uid})
        log.info("alloc finished alloc=%s/%s phase=%s", self.namespace, self.name, phase)

    async def _settle_without_executor(self) -> None:
        """No executor can run (deleted before it started, or it is gone)."""
        if self._executor_lost:
            log.warning("alloc has no executor alloc=%s/%s reason=%s", self.namespace,
                        self.name, self._executor_lost)
            if self.tasks is not None:
                self.tasks.end_all("TASK_FAILED", self._executor_lost)
            self._mark_dirty()
            await self._flush("Failed")
        while not (self.gone or is_deleting(self.alloc)):
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), RESYNC_SECONDS)
        await self._settle("Failed")
        self.ctx.executors.retire(self.uid, self.namespace, self.name)
