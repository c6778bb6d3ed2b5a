"""The Allocs bound to this node: an informer, and one AllocWorker per Alloc uid.

    Informer(allocs, fieldSelector spec.nodeName=<node>)
        add/update ──► worker for the uid (it starts or re-adopts the executor)
        delete     ──► worker.mark_gone() (stop the executor, clean up)
    after the first list, and every SWEEP_SECONDS: executors of uids no worker
        owns (Allocs deleted while the agent was away) are killed and removed
    at start: the node's launcher is started (executors are forked from it)
"""

from __future__ import annotations

import asyncio
import logging

from corral.agent.alloc_worker import AllocContext, AllocWorker
from corral.aiotasks import cancel_and_wait
from corral.client.informer import Informer
from corral.objects import Obj, uid_of

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0


class AllocManager:
    def __init__(self, ctx: AllocContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, AllocWorker] = {}
        self.informer = Informer(ctx.client, "Alloc",
                                 field_selector=f"spec.nodeName={ctx.cfg.name}")
        self.informer.add_handler(on_add=self._upsert, on_update=self._updated,
                                  on_delete=self._deleted)
        self._finished: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.informer.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="alloc-sweeper")

    async def stop(self, stop_allocs: bool = False) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
        await self.informer.stop()
        workers = list(self.workers.values())
        await asyncio.gather(*(w.stop() for w in workers))
        if stop_allocs:
            for uid in self.ctx.executors.known():
                self.ctx.executors.kill(uid)
                self.ctx.executors.remove(uid)

    @property
    def listed(self) -> bool:
        """Whether the node's Allocs have come from the master since the agent started."""
        return self.informer.has_synced

    def find(self, namespace: str, name: str) -> AllocWorker | None:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name:
                return worker
        return None

    def feed_snapshot(self) -> list[tuple[str, str, str, Obj]]:
        """Every framework task's state on the node (the feed's first lines)."""
        return [item for w in list(self.workers.values()) for item in w.feed_snapshot()]

    def _upsert(self, alloc: Obj) -> None:
        uid = uid_of(alloc)
        if not uid or uid in self._finished:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(alloc)
            return
        worker = AllocWorker(self.ctx, alloc)
        self.workers[uid] = worker
        worker.start()
        asyncio.create_task(self._forget_when_finished(worker))

    def _updated(self, old: Obj, new: Obj) -> None:
        if uid_of(old) != uid_of(new):
            self._deleted(old)
        self._upsert(new)

    def _deleted(self, alloc: Obj) -> None:
        worker = self.workers.get(uid_of(alloc))
        if worker is not None:
            worker.mark_gone()

    async def _forget_when_finished(self, worker: AllocWorker) -> None:
        await worker.finished.wait()
        self._finished.add(worker.uid)
        self.workers.pop(worker.uid, None)

    async def _sweep_loop(self) -> None:
        launcher = self.ctx.executors.launcher
        if launcher is not None:  # the first Alloc's executor is then a fork too
            await launcher.warm()
        await self.informer.wait_synced()
        while True:
            for uid in self.ctx.executors.known():
                if uid not in self.workers:
                    log.info("removing the executor of a deleted alloc uid=%s", uid)
                    self.ctx.executors.kill(uid)
                    self.ctx.executors.remove(uid)
            await asyncio.sleep(SWEEP_SECONDS)
