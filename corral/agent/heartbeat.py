"""Heartbeat: the node Lease renewed every period, Node status on change and
every status interval.

    lease loop   every heartbeat: renew kube-node-lease/<node> (CAS on its
                 resourceVersion; created when missing)
    status loop  every STATUS_CHECK_SECONDS (or heartbeat, if longer; status
                 interval, if shorter): measure the node; PUT nodes/<node>/status if
                 anything changed or status_interval has passed since the last post,
                 on top of the Node as our last post left it (a compare-and-swap: no
                 read first); read it again only when someone else wrote it since

Losing the master changes nothing on the node: each loop waits with back-off
and jitter (so a restarted master is not hit by every agent at once) and tries
again, while pods keep running under their shims.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.agent.config import AgentConfig
from corral.agent.node import stamp, without_times
from corral.api.errors import APIError, Conflict, NotFound
from corral.client.backoff import Backoff
from corral.client.clock import Clock, RealClock
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, rfc3339, rfc3339_micro, spec

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
StatusSource = Callable[[], Obj]  # the node status measured now, without times
# How often the node is measured (~0.5 ms: psutil, /proc, two statvfs). Liveness is
# the Lease's, renewed every heartbeat; what a measurement can find changed is a
# pressure condition, which the kubelet looks at every 10 s (its status update
# frequency and eviction housekeeping).
STATUS_CHECK_SECONDS = 2.0


class Heartbeat:
    def __init__(self, client: Client, cfg: AgentConfig, status_source: StatusSource,
                 clock: Clock | None = None,
                 register: Callable[[], Awaitable[Obj]] | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.status_source = status_source
        # Creates the Node again when someone deleted it (the kubelet does too).
        self.register = register
        self.clock = clock or RealClock()
        self.renewals = 0  # successful Lease renewals, for tests and logs
        self.status_posts = 0
        self.renewed_at: float | None = None  # clock.monotonic() of the last renewal
        self._lease: Obj | None = None
        self._posted: Obj | None = None  # the last status posted, without times
        self._node: Obj | None = None  # the Node as our last status post left it
        self._posted_at = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        check = min(max(self.cfg.heartbeat_seconds, STATUS_CHECK_SECONDS),
                    self.cfg.status_interval_seconds)
        self._tasks = [
            asyncio.create_task(self._forever(self.renew_lease, "lease",
                                              self.cfg.heartbeat_seconds)),
            asyncio.create_task(self._forever(self.post_status_if_due, "status", check))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _forever(self, step: Callable[[], Any], what: str, period: float) -> None:
        backoff = Backoff(initial=self.cfg.heartbeat_seconds, maximum=10.0)
        down = False
        while True:
            try:
                await step()
            except (ServerUnreachable, APIError) as err:
                if not down:
                    log.warning("heartbeat failed part=%s node=%s error=%s", what,
                                self.cfg.name, err)
                down = True
                await self.clock.sleep(backoff.next_delay())
                continue
            if down:
                log.info("heartbeat restored part=%s node=%s", what, self.cfg.name)
            down = False
            backoff.reset()
            await self.clock.sleep(period)

    # -- the Lease ---------------------------------------------------------

    def _lease_spec(self) -> Obj:
        now = rfc3339_micro(self.clock.now())
        old = spec(self._lease or {})
        return {"holderIdentity": self.cfg.name,
                "leaseDurationSeconds": self.cfg.lease_duration_seconds,
                "acquireTime": old.get("acquireTime") or now, "renewTime": now}

    async def renew_lease(self) -> None:
        if self._lease is None:
            self._lease = await self._get_or_create_lease()
        lease = {**self._lease, "spec": self._lease_spec()}
        try:
            self._lease = await self.client.update(lease)
        except (Conflict, NotFound):
            self._lease = None  # someone else wrote it (or removed it): re-read
            raise
        self.renewals += 1
        self.renewed_at = self.clock.monotonic()

    def age(self) -> float:
        """Seconds since the Lease was last renewed (+Inf before the first renewal)."""
        if self.renewed_at is None:
            return float("inf")
        return self.clock.monotonic() - self.renewed_at

    async def _get_or_create_lease(self) -> Obj:
        try:
            return await self.client.get("Lease", self.cfg.name, LEASE_NAMESPACE)
        except NotFound:
            pass
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.cfg.name, "namespace": LEASE_NAMESPACE},
                "spec": self._lease_spec()}
        return await self.client.create(body, LEASE_NAMESPACE)

    # -- Node status -------------------------------------------------------

    async def post_status_if_due(self) -> None:
        measured = await asyncio.to_thread(self.status_source)
        due = self.clock.monotonic() - self._posted_at >= self.cfg.status_interval_seconds
        if due or without_times(measured) != self._posted:
            await self.post_status(measured)

    async def post_status(self, measured: Obj | None = None) -> Obj:
        if measured is None:
            measured = await asyncio.to_thread(self.status_source)
        written = None
        if self._node is not None:
            # Refused when anyone wrote the Node since (a cordon, a label, the node
            # controller's Ready=Unknown): then read it and post on what is there.
            with contextlib.suppress(Conflict, NotFound):
                written = await self.client.update_status(self._with_status(self._node,
                                                                            measured))
        if written is None:
            self._node = None
            written = await self.client.update_status(
                self._with_status(await self._current_node(), measured))
        self._node = written
        self._posted = without_times(measured)
        self._posted_at = self.clock.monotonic()
        self.status_posts += 1
        return written

    async def _current_node(self) -> Obj:
        try:
            return await self.client.get("Node", self.cfg.name)
        except NotFound:
            if self.register is None:
                raise
            log.warning("node object deleted: registering again node=%s", self.cfg.name)
            return await self.register()

    def _with_status(self, node: Obj, measured: Obj) -> Obj:
        old = node.get("status") or {}
        status = {**old, **measured,
                  "conditions": stamp(measured["conditions"], old.get("conditions"),
                                      rfc3339(self.clock.now()))}
        return {**node, "status": status}
