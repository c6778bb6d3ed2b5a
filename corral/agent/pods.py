"""The pods bound to this node: an informer, and one PodWorker per pod uid.

    runtime.adopt() ──► instances grouped by pod uid (what already runs)
    Informer(pods, fieldSelector spec.nodeName=<node>)
        add/update ──► worker for the uid (created with its adopted instances)
        delete     ──► worker.mark_gone() (stop, clean up)
    after every (re-)list: sweep — instances and pod directories of uids no
        worker owns (pods deleted while the agent was away) are stopped and removed

Workers are keyed by uid, not name: a pod deleted and created again under the
same name is a different pod, and the old one's processes must go.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from corral.agent.pod_worker import NodeContext, PodWorker
from corral.agent.runtime.base import ContainerState
from corral.client.informer import Informer
from corral.objects import Obj, uid_of

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0
EXIT_GRACE_CAP_SECONDS = 10.0  # stop_pods_on_exit: no pod holds `corral up` longer


def _uid(pod: Obj) -> str:
    return uid_of(pod)


class PodManager:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, PodWorker] = {}
        self.informer = Informer(ctx.client, "Pod",
                                 field_selector=f"spec.nodeName={ctx.cfg.name}")
        self.informer.add_handler(on_add=self._upsert,
                                  on_update=self._updated,
                                  on_delete=self._deleted)
        self._adopted: dict[str, list[ContainerState]] = {}
        # uids cleaned up while the API still shows them (deleting): late events must
        # not revive them; each is dropped when the informer sees the pod deleted.
        self._finished: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._reapers: set[asyncio.Task[None]] = set()  # one per worker: forget it when done

    async def start(self) -> None:
        for state in await self.ctx.runtime.adopt():
            self._adopted.setdefault(state.pod_uid, []).append(state)
        self.informer.start()
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self, stop_pods: bool = False) -> None:
        tasks = [*([self._sweeper] if self._sweeper is not None else []), *self._reapers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.informer.stop()
        workers = list(self.workers.values())
        await asyncio.gather(*(w.stop() for w in workers))
        if stop_pods:
            await self._stop_every_instance(workers)

    async def _stop_every_instance(self, workers: list[PodWorker]) -> None:
        graces = {w.uid: min(float(w.grace()), EXIT_GRACE_CAP_SECONDS) for w in workers}
        running = [s for s in await self.ctx.runtime.list() if s.running]
        log.info("stopping every pod on exit count=%d", len(running))
        await asyncio.gather(*(self.ctx.runtime.stop(s.container_id,
                                                     graces.get(s.pod_uid, 2.0))
                               for s in running))

    @property
    def listed(self) -> bool:
        """Whether the node's pods have come from the master since the agent started."""
        return self.informer.has_synced

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name:
                return worker
        return None

    # -- informer events -------------------------------------------------------

    def _upsert(self, pod: Obj) -> None:
        uid = _uid(pod)
        if not uid or uid in self._finished:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = PodWorker(self.ctx, pod, self._adopted.pop(uid, []))
        self.workers[uid] = worker
        worker.start()
        reaper = asyncio.create_task(self._forget_when_finished(worker),
                                     name=f"reap {worker.namespace}/{worker.name}")
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    def _updated(self, old: Obj, new: Obj) -> None:
        if _uid(old) != _uid(new):  # replaced while our watch was down
            self._deleted(old)
        self._upsert(new)

    def _deleted(self, pod: Obj) -> None:
        self._finished.discard(_uid(pod))  # a uid is never reused: nothing to guard
        worker = self.workers.get(_uid(pod))
        if worker is not None:
            worker.mark_gone()

    async def _forget_when_finished(self, worker: PodWorker) -> None:
        await worker.finished.wait()
        shown = self.informer.get_by_key(f"{worker.namespace}/{worker.name}")
        if shown is not None and _uid(shown) == worker.uid:
            self._finished.add(worker.uid)  # until the informer reports it deleted
        self.workers.pop(worker.uid, None)

    # -- what no pod owns --------------------------------------------------------

    async def _sweep_loop(self) -> None:
        await self.informer.wait_synced()
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep of orphaned pods failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def sweep(self) -> None:
        """Stop and remove instances (and pod directories) no worker owns."""
        orphans = [s for s in await self.ctx.runtime.list() if s.pod_uid not in self.workers]
        for state in orphans:
            if state.running:
                log.info("stopping orphaned container id=%s", state.container_id)
                await self.ctx.runtime.stop(state.container_id, 2.0)
            await self.ctx.runtime.remove(state.container_id)
        for uid in {s.pod_uid for s in orphans}:
            self._adopted.pop(uid, None)
            self.ctx.ports.release(uid)
        live = {s.pod_uid for s in await self.ctx.runtime.list()}
        for uid in self.ctx.runtime.pod_uids():  # a pod's group outlives its last instance
            if uid not in self.workers and uid not in live:
                await self.ctx.runtime.remove_pod(uid)
        pods_dir = self.ctx.cfg.pods_dir
        if pods_dir.exists():
            for path in pods_dir.iterdir():
                if path.name not in self.workers:
                    await asyncio.to_thread(shutil.rmtree, path, True)


def not_on_node(what: str, node: str, listed: bool) -> tuple[int, str]:
    """The answer for something the agent does not run: 404, or 503 while the agent,
    just started, has not had its list from the master yet (it may be coming)."""
    if listed:
        return 404, f"{what} not found on node {node}"
    return 503, f"{what} not known yet: node {node}'s agent has just started"
