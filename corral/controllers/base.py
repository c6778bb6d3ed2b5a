"""The shape every controller shares (Kubernetes' sample-controller):

    informer handlers ──enqueue(key)──► WorkQueue (deduplicating, rate-limited)
                                             │ N workers: get()
                                             ▼
                                   reconcile(key): read the caches, compare
                                   desired with actual, issue the smallest write
                                             │
                     ok ─► forget(key)       │       error ─► add_rate_limited(key)
                     (a reconcile may ask to be run again later: requeue_after)

Level-triggered: a reconcile reads the whole current state, never the event
that woke it, so a missed or repeated event is harmless. Cached objects are
shared: copy before changing (copy.deepcopy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from corral.api.errors import APIError
from corral.client.events import EventRecorder
from corral.client.http import Client, ServerUnreachable
from corral.client.informer import Informer, key_of
from corral.client.workqueue import ShutDown, WorkQueue
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.owners import controller_ref, selector_of
from corral.objects import Obj, labels_of, name_of, namespace_of, uid_of

log = logging.getLogger("corral.controllers")


class Controller(ABC):
    """One controller: subclasses register handlers in ``__init__`` (informers
    are shared and started by the manager) and implement ``reconcile``."""

    name = "controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        self.client = client
        self.informers = informers
        self.recorder = recorder
        self.workers = workers
        self.queue = WorkQueue(base_delay=0.05, max_delay=30.0, name=self.name)

    # -- enqueueing ------------------------------------------------------------

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(key_of(obj))

    def enqueue_key(self, key: str) -> None:
        self.queue.add(key)

    def requeue_after(self, key: str, seconds: float) -> None:
        self.queue.add_after(key, max(seconds, 0.0))

    def enqueue_all(self, informer: Informer) -> None:
        for key in list(informer.keys()):
            self.queue.add(key)

    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event about ``obj`` from this controller."""
        self.recorder.event(obj, type_, reason, message, self.name)

    # -- the loop ----------------------------------------------------------------

    @abstractmethod
    async def reconcile(self, key: str) -> None:
        """Converge the object named by ``key``; raise to be retried with back-off."""

    async def run(self, stop: asyncio.Event) -> None:
        """Run the workers until ``stop`` is set."""
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(self.workers)]
        try:
            await stop.wait()
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._process(str(key))
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        try:
            await self.reconcile(key)
        except (APIError, ServerUnreachable) as err:
            retries = self.queue.num_requeues(key)
            level = logging.INFO if retries < 5 else logging.WARNING
            log.log(level, "reconcile failed controller=%s key=%s retries=%d error=%r",
                    self.name, key, retries, err)
            self.queue.add_rate_limited(key)
        except Exception:
            log.exception("reconcile crashed controller=%s key=%s", self.name, key)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)


class OwnedPodEvents:
    """The pod events of a controller that owns pods by controller reference
    (ReplicaSet, ReplicationController, DaemonSet, StatefulSet), handled as their
    Kubernetes controllers handle them (addPod, updatePod, deletePod):

        added   ─► owned: creation observed, owner enqueued
                   an orphan: every owner in its namespace whose selector matches
        updated ─► the old and the new owner enqueued; an orphan: the selecting ones
        deleted ─► owned: deletion observed (by uid), owner enqueued
        owner deleted ─► its expectations forgotten, its key enqueued

    A reference resolves only to the cached owner of ``kind`` with the
    reference's uid (resolveControllerRef): a namesake made since owns nothing."""

    def __init__(self, controller: Controller, kind: str, owners: Informer, pods: Informer,
                 expectations: Expectations) -> None:
        self.controller = controller
        self.kind = kind
        self.owners = owners
        self.expectations = expectations
        pods.add_handler(self.added, self.updated, self.deleted)

    def owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        key = f"{namespace_of(pod)}/{ref.get('name')}"
        owner = self.owners.get_by_key(key)
        return key if owner is not None and uid_of(owner) == ref.get("uid") else None

    def added(self, pod: Obj) -> None:
        key = self.owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue_key(key)
        elif controller_ref(pod) is None:
            self._enqueue_selecting(pod)

    def updated(self, old: Obj, new: Obj) -> None:
        for key in {self.owner_key(old), self.owner_key(new)} - {None}:
            self.controller.enqueue_key(str(key))
        if controller_ref(new) is None:
            self._enqueue_selecting(new)

    def deleted(self, pod: Obj) -> None:
        key = self.owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, uid_of(pod))
            self.controller.enqueue_key(key)

    def owner_deleted(self, owner: Obj) -> None:
        self.expectations.forget(f"{namespace_of(owner)}/{name_of(owner)}")
        self.controller.enqueue(owner)

    def _enqueue_selecting(self, pod: Obj) -> None:
        """An orphan: wake every owner of its namespace that selects it (to adopt it)."""
        for owner in self.owners.by_index(NAMESPACE, namespace_of(pod)):
            selector = selector_of(owner)
            if selector is not None and selector.matches(labels_of(pod)):
                self.controller.enqueue(owner)


def split_key(key: str) -> tuple[str | None, str]:
    """"ns/name" → (ns, name); "name" → (None, name)."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, namespace)
