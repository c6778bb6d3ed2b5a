"""Leader election over a coordination.k8s.io/v1 Lease, as client-go does it.

    acquire: every retry_period, try_acquire_or_renew() until it succeeds
      └─► leading: on_started_leading() runs as a task
          renew: every retry_period; if no renewal succeeds within
                 renew_deadline → leadership lost: cancel the task,
                 on_stopped_leading()
          a renewal while our last write still holds is one compare-and-swap
          on the Lease we wrote (client-go's optimistic fast path: no read
          first); a Conflict falls back to read-then-write
    stop(): cancel; a leader releases the Lease (holder "") so a standby
            takes over at once instead of after lease_duration

    run_elected(): the runner every leader-elected component uses (scheduler,
            controller manager, offer allocator): campaign, lead, and on a lost
            Lease stand by and campaign again, until ``stop`` is set.

Another holder's Lease counts as expired when it has not changed for
lease_duration measured on OUR monotonic clock since we last saw it change:
clocks of different machines are never compared. Every write is a
compare-and-swap on the Lease's resourceVersion, so two candidates can never
both succeed with the same observed record.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from corral.api.errors import APIError, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, meta, rfc3339_micro, spec

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None] | None]
LEASE_NAMESPACE = "kube-system"  # where every component's leader Lease lives


@dataclass(frozen=True)
class Observation:
    """The Lease spec we last saw, and when (our monotonic clock) it last changed."""
    spec: Obj
    resource_version: str
    seen_at: float


def held_by_other(spec: Obj, identity: str, observed_at: float, now: float,
                  lease_duration: float) -> bool:
    """Whether another live holder owns the lease (so we must not take it)."""
    holder = spec.get("holderIdentity") or ""
    if not holder or holder == identity:
        return False
    duration = float(spec.get("leaseDurationSeconds") or lease_duration)
    return observed_at + duration > now


def next_spec(old: Obj | None, identity: str, now: datetime, lease_duration: float) -> Obj:
    """The spec we write to acquire or renew."""
    old = old or {}
    renewing = (old.get("holderIdentity") or "") == identity
    transitions = int(old.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(round(lease_duration), 1),
        "acquireTime": old.get("acquireTime") if renewing else rfc3339_micro(now),
        "renewTime": rfc3339_micro(now),
        "leaseTransitions": transitions if renewing or not old else transitions + 1,
    }


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, on_started_leading: Callback | None = None,
                 on_stopped_leading: Callback | None = None, release_on_cancel: bool = True,
                 clock: Clock | None = None) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.release_on_cancel = release_on_cancel
        self.clock = clock or RealClock()
        self._observed: Observation | None = None
        self._written: Obj | None = None  # the Lease as our last write left it
        self._leading = False
        self._renewed_at: float | None = None  # our clock when the last won attempt began
        self._fence: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._work: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    def holds_lease(self) -> bool:
        """Leading, and by our own clock within renew_deadline of when our last won
        attempt began: nobody else can hold the Lease yet, since a standby waits
        lease_duration from when it saw our write. False as soon as a pause or a
        cut-off outlasts that, before the renewal loop has noticed it lost: what a
        leader commands directly (agents that cannot ask the API which term is
        current) waits for this, where the API judges its fenced writes itself."""
        return (self._leading and self._renewed_at is not None
                and self.clock.monotonic() < self._renewed_at + self.renew_deadline)

    def fence(self) -> str | None:
        """The fence of the term this elector leads (or last led): its writes carry
        it, and the API refuses them once the Lease names another holder or term
        (corral/api/fencing.py). None before it first leads."""
        return self._fence

    @property
    def leader(self) -> str:
        """The holder we last observed ("" if none)."""
        return str((self._observed.spec if self._observed else {}).get("holderIdentity") or "")

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"leader-election-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def run(self) -> None:
        """Acquire, lead until the lease is lost, then return (or until cancelled)."""
        try:
            await self._acquire()
            await self._begin_leading()
            await self._renew_until_lost()
        finally:
            await self._end_leading()

    # -- the election -------------------------------------------------------

    async def _acquire(self) -> None:
        while not await self.try_acquire_or_renew():
            await self.clock.sleep(self.retry_period)
        log.info("leader elected lease=%s/%s identity=%s", self.namespace, self.name,
                 self.identity)

    async def _renew_until_lost(self) -> None:
        while True:
            await self.clock.sleep(self.retry_period)
            deadline = self.clock.monotonic() + self.renew_deadline
            while (left := deadline - self.clock.monotonic()) > 0:
                if await self._bounded_try(left):
                    break
                await self.clock.sleep(self.retry_period)
            else:  # no renewal succeeded within renew_deadline
                log.warning("leader lost lease=%s/%s identity=%s reason=renew-deadline",
                            self.namespace, self.name, self.identity)
                return

    async def _bounded_try(self, seconds: float) -> bool:
        """One attempt that counts as failed if it takes longer than ``seconds``
        (measured on the injected clock)."""
        attempt = asyncio.ensure_future(self.try_acquire_or_renew())
        timer = asyncio.ensure_future(self.clock.sleep(max(seconds, 0.0)))
        try:
            await asyncio.wait({attempt, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not attempt.done():
            attempt.cancel()
            return False
        return attempt.result()

    async def try_acquire_or_renew(self) -> bool:
        began = self.clock.monotonic()
        try:
            won = await self._try()
        except (APIError, ServerUnreachable) as err:
            log.info("leader election attempt failed lease=%s/%s error=%r", self.namespace,
                     self.name, err)
            return False
        if won:
            self._renewed_at = began
        return won

    async def _try(self) -> bool:
        if await self._renew_optimistically():
            return True
        self._written = None
        try:
            lease = await self.client.get("Lease", self.name, self.namespace)
        except NotFound:
            created = await self.client.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": next_spec(None, self.identity, self.clock.now(), self.lease_duration),
            })
            self._wrote(created)
            return True
        self._observe(lease)
        observed = self._observed
        assert observed is not None
        if held_by_other(observed.spec, self.identity, observed.seen_at, self.clock.monotonic(),
                         self.lease_duration):
            return False
        lease["spec"] = next_spec(observed.spec, self.identity, self.clock.now(),
                                  self.lease_duration)
        self._wrote(await self.client.update(lease))  # Conflict: someone else won
        return True

    async def _renew_optimistically(self) -> bool:
        """While leading on a Lease our own last write left (and that has not
        expired since), renew by writing on top of it without reading it first:
        the write is a compare-and-swap on that resourceVersion, so it lands only
        if nobody else wrote since. Half the requests of read-then-write; any
        refusal (Conflict: someone wrote; NotFound: deleted) sends us the slow way,
        which reads what is there."""
        written, observed = self._written, self._observed
        if not self._leading or written is None or observed is None:
            return False
        if observed.seen_at + self.lease_duration <= self.clock.monotonic():
            return False
        lease = {**written, "spec": next_spec(observed.spec, self.identity, self.clock.now(),
                                              self.lease_duration)}
        try:
            self._wrote(await self.client.update(lease))
        except APIError as err:
            log.info("leader lease changed under us, reading it lease=%s/%s error=%r",
                     self.namespace, self.name, err)
            return False
        return True

    def _wrote(self, lease: Obj) -> None:
        self._observe(lease)
        self._written = lease

    def _observe(self, lease: Obj) -> None:
        held = dict(spec(lease))
        rv = str(meta(lease).get("resourceVersion", ""))
        if self._observed is None or self._observed.spec != held:
            self._observed = Observation(held, rv, self.clock.monotonic())
        else:
            self._observed = Observation(held, rv, self._observed.seen_at)

    # -- leading --------------------------------------------------------------

    async def _begin_leading(self) -> None:
        self._leading = True
        term = int((self._observed.spec if self._observed else {}).get("leaseTransitions") or 0)
        self._fence = f"{self.namespace}/{self.name} {self.identity} {term}"
        if self.on_started_leading is not None:
            self._work = asyncio.create_task(_call(self.on_started_leading),
                                             name=f"leading-{self.name}")

    async def _end_leading(self) -> None:
        if not self._leading:
            return
        self._leading = False
        work, self._work = self._work, None
        if work is not None:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        if self.release_on_cancel:
            await asyncio.shield(self._release())
        if self.on_stopped_leading is not None:
            await _call(self.on_stopped_leading)

    async def _release(self) -> None:
        """Give the lease up so a standby need not wait for it to expire."""
        try:
            lease = await self.client.get("Lease", self.name, self.namespace)
            held = spec(lease)
            if held.get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**held, "holderIdentity": "", "leaseDurationSeconds": 1,
                             "renewTime": rfc3339_micro(self.clock.now())}
            await self.client.update(lease)
        except (APIError, ServerUnreachable) as err:
            log.info("leader release failed lease=%s/%s error=%r", self.namespace, self.name,
                     err)


def _fenced_work(work: Work, client: Client) -> Callable[[], Awaitable[None]]:
    return lambda: work(client)


async def _call(callback: Callback) -> None:
    result = callback()
    if inspect.isawaitable(result):
        await result


# -- the runner components use ------------------------------------------------------

@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults; a component's flags may shorten them."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def of_lease(cls, seconds: float) -> LeaseTiming:
        """Timing for a lease of ``seconds``: renewed every eighth of it, given up
        when no renewal succeeded for three quarters of it (client-go's ratios
        are 15/10/2; a standby takes over ``seconds`` after the last renewal)."""
        if seconds < 1:
            raise ValueError("a leader lease must last at least 1 second")
        return cls(seconds, seconds * 0.75, seconds / 8)


# In `corral master`: several masters (on etcd) fail over in about this many seconds.
MASTER_LEASE_SECONDS = 3.0
# A master alone on its store (SQLite: one process's file) has no standby to fail
# over to: a short Lease would buy nothing but renewals (each component's every
# 0.375 s), and lost Leases when its loop stalls. Its components hold theirs as
# client-go does; a restart takes them back at once (same identity), a stop
# releases them.
SOLE_MASTER_LEASE_SECONDS = 15.0


def master_identity(server: str) -> str:
    """The identity of a component inside `corral master`: stable across restarts
    of the same master, so a restarted master takes its Lease back at once."""
    return f"{socket.gethostname()}_master_{server}"


def process_identity() -> str:
    """The identity of a component run as its own process."""
    return f"{socket.gethostname()}_{os.getpid()}"


Work = Callable[[Client], Awaitable[None]]


async def run_elected(client: Client, stop: asyncio.Event, lease_name: str, identity: str,
                      work: Work, timing: LeaseTiming | None = None,
                      clock: Clock | None = None) -> None:
    """Run ``work`` while holding the Lease kube-system/``lease_name``; stand by
    (and campaign again) whenever it is lost; on ``stop`` give the Lease up.

    ``work`` gets a view of ``client`` whose writes are fenced by this term: once
    the Lease is someone else's, the API refuses them (api/fencing.py). It is
    cancelled when leadership is lost and started afresh on the next term, so it
    should build its caches inside (a new term starts clean)."""
    timing = timing or LeaseTiming()
    while not stop.is_set():
        elector = LeaderElector(client, LEASE_NAMESPACE, lease_name, identity,
                                lease_duration=timing.lease_duration,
                                renew_deadline=timing.renew_deadline,
                                retry_period=timing.retry_period, clock=clock)
        fenced = client.fenced(elector.fence, elector.holds_lease)
        elector.on_started_leading = _fenced_work(work, fenced)
        election = asyncio.create_task(elector.run(), name=f"election-{lease_name}")
        stopped = asyncio.create_task(stop.wait(), name=f"election-stop-{lease_name}")
        await asyncio.wait({election, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (election, stopped):
            task.cancel()
        await asyncio.gather(election, stopped, return_exceptions=True)
